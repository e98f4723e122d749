"""The ``accesstrail`` dashboard for datasette-dashboards, served at ``/-/dashboards/accesstrail``.

Its charts are drawn with Vega-Lite, whose scripts datasette-dashboards ships inside its own
package and serves from ``/-/static-plugins/datasette_dashboards/``: nothing is fetched from a CDN.
The ``map`` chart library (which would load OpenStreetMap tiles) is not used.

An admin is (README, "Example audits"): a PlanetScale organisation membership with role
``admin``, or a Scalr grant on the account (``resource_type`` ``organization``) of a role
named ``admin`` or whose permissions include ``*:*``, held directly or through a team.
"""

from __future__ import annotations

#: Scalr roles that make their holder an admin of the account.
_ADMIN_ROLES = (
    "SELECT provider, id FROM roles "
    "WHERE name = 'admin' OR ',' || COALESCE(permissions, '') || ',' LIKE '%,*:*,%'"
)

#: Everyone who is an admin now: one row per (provider, email).
ADMINS_NOW = f"""
SELECT m.provider, u.email
FROM memberships m JOIN users u ON u.provider = m.provider AND u.id = m.user_id
WHERE m.provider = 'planetscale' AND m.resource_type = 'organization' AND m.role = 'admin'
  AND m.removed_at IS NULL AND u.removed_at IS NULL
UNION
SELECT e.provider, e.email
FROM effective_grants e
LEFT JOIN roles r ON r.provider = e.provider AND r.id = e.role_id
WHERE e.provider = 'scalr' AND e.resource_type = 'organization'
  AND (e.role = 'admin' OR (e.provider, e.role_id) IN ({_ADMIN_ROLES}))
"""

#: Admins at the start of every run, rebuilt from the version tables.
ADMINS_OVER_TIME = f"""
WITH instants AS (SELECT DISTINCT started_at AS t FROM sync_runs WHERE status != 'running'),
ps AS (
  SELECT i.t, 'planetscale' AS provider, mv.user_id AS who
  FROM instants i JOIN membership_versions mv
    ON mv.provider = 'planetscale' AND mv.resource_type = 'organization' AND mv.role = 'admin'
   AND mv.valid_from <= i.t AND (mv.valid_to IS NULL OR mv.valid_to > i.t)
),
held AS (
  SELECT i.t, gv.principal_type, gv.principal_id
  FROM instants i JOIN grant_versions gv
    ON gv.provider = 'scalr' AND gv.resource_type = 'organization'
   AND gv.valid_from <= i.t AND (gv.valid_to IS NULL OR gv.valid_to > i.t)
  WHERE (gv.provider, gv.role_id) IN ({_ADMIN_ROLES})
),
sc AS (
  SELECT t, 'scalr' AS provider, principal_id AS who FROM held WHERE principal_type = 'user'
  UNION
  SELECT held.t, 'scalr', mv.user_id FROM held JOIN membership_versions mv
    ON mv.provider = 'scalr' AND mv.resource_type = 'team' AND mv.resource_id = held.principal_id
   AND mv.valid_from <= held.t AND (mv.valid_to IS NULL OR mv.valid_to > held.t)
  WHERE held.principal_type = 'team'
)
SELECT t AS at, provider, COUNT(DISTINCT who) AS admins
FROM (SELECT * FROM ps UNION SELECT * FROM sc)
GROUP BY t, provider ORDER BY t, provider
"""

_ENABLED_PEOPLE = (
    "SELECT COUNT(*) AS count FROM users WHERE provider = '{provider}' AND removed_at IS NULL "
    "AND status = 'enabled' AND account_type = 'human'"
)


def _metric(title: str, database: str, sql: str, suffix: str = "") -> dict:
    return {
        "title": title,
        "db": database,
        "query": sql.strip(),
        "library": "metric",
        "display": {"field": "count", "prefix": "", "suffix": suffix},
    }


def build_dashboard(database: str) -> dict:
    """The datasette-dashboards configuration of the ``accesstrail`` dashboard."""
    return {
        "title": "accesstrail",
        "description": "Who can get in now, who changed, and whether the syncs are current.",
        "layout": [
            ["people-scalr", "people-planetscale", "admins-now", "changes-7d"],
            ["last-sync", "last-sync", "admins-list", "admins-list"],
            ["changes-per-day", "changes-per-day", "changes-per-day", "changes-per-day"],
            ["accounts-by-status", "accounts-by-status", "admins-over-time", "admins-over-time"],
        ],
        "charts": {
            "people-scalr": _metric(
                "Enabled people in Scalr", database, _ENABLED_PEOPLE.format(provider="scalr")
            ),
            "people-planetscale": _metric(
                "Enabled people in PlanetScale",
                database,
                _ENABLED_PEOPLE.format(provider="planetscale"),
            ),
            "admins-now": _metric(
                "Admins now", database, f"SELECT COUNT(*) AS count FROM ({ADMINS_NOW})"
            ),
            "changes-7d": _metric(
                "Changes in the last 7 days",
                database,
                "SELECT COUNT(*) AS count FROM changes "
                "WHERE observed_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days')",
            ),
            "last-sync": {
                "title": "Last successful sync per provider",
                "db": database,
                "query": "SELECT provider, MAX(finished_at) AS last_success, "
                "CAST(ROUND((julianday('now') - julianday(MAX(finished_at))) * 1440) AS INTEGER) "
                "AS age_minutes FROM sync_runs WHERE status = 'succeeded' "
                "GROUP BY provider ORDER BY provider",
                "library": "table",
                "display": {},
            },
            "admins-list": {
                "title": "Who is an admin now",
                "db": database,
                "query": f"SELECT provider, email FROM ({ADMINS_NOW}) ORDER BY provider, email",
                "library": "table",
                "display": {},
            },
            "changes-per-day": {
                "title": "Changes per day, by kind",
                "db": database,
                "query": "SELECT substr(observed_at, 1, 10) AS day, kind, COUNT(*) AS changes "
                "FROM changes GROUP BY day, kind ORDER BY day, kind",
                "library": "vega-lite",
                "display": {
                    "mark": {"type": "bar", "tooltip": True},
                    "encoding": {
                        "x": {"field": "day", "type": "ordinal", "title": "day (UTC)"},
                        "y": {"field": "changes", "type": "quantitative", "aggregate": "sum"},
                        "color": {"field": "kind", "type": "nominal"},
                    },
                },
            },
            "accounts-by-status": {
                "title": "Accounts by status, per provider",
                "db": database,
                "query": "SELECT provider, CASE WHEN removed_at IS NOT NULL THEN 'removed' "
                "ELSE status END AS status, COUNT(*) AS accounts FROM users "
                "GROUP BY 1, 2 ORDER BY 1, 2",
                "library": "vega-lite",
                "display": {
                    "mark": {"type": "bar", "tooltip": True},
                    "encoding": {
                        "x": {"field": "provider", "type": "nominal"},
                        "y": {"field": "accounts", "type": "quantitative"},
                        "color": {"field": "status", "type": "nominal"},
                    },
                },
            },
            "admins-over-time": {
                "title": "Admins over time (at the start of each run)",
                "db": database,
                "query": ADMINS_OVER_TIME.strip(),
                "library": "vega-lite",
                "display": {
                    "mark": {"type": "line", "point": True, "tooltip": True},
                    "encoding": {
                        "x": {"field": "at", "type": "temporal", "title": "run started"},
                        "y": {"field": "admins", "type": "quantitative"},
                        "color": {"field": "provider", "type": "nominal"},
                    },
                },
            },
        },
    }
