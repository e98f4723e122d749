"""Alerts: rules over a committed run's change rows, and the outbox they are delivered from.

``raise_alerts`` runs inside the apply's transaction, after the change rows (``store/apply.py``),
so an alert exists exactly when its run committed: a crash can neither lose one nor raise one for
a run that did not happen. Each rule is one SQL query over the run's ``changes`` rows (and the
current tables the same transaction just wrote); a baseline has no change rows, so it raises
nothing. The ``alerts`` row holds the JSON payload that is sent; ``_alert_sinks`` (internal)
says which sinks each alert is owed to — the sinks configured when it was raised — and which of
them have it. Delivery itself is the daemon's (``daemon/delivery.py``), after the commit.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

from store import timestamps
from store.schema import TABLES
from store.transactions import transaction

#: Every rule, in the order alerts of one run are written.
RULES = (
    "new_admin",
    "account_enabled",
    "mfa_disabled",
    "offboarding_gap",
    "organization_access_lost",
    "credential_added",
    "credential_never_expires",
)
SINKS = ("webhook", "events_file")

#: A role is an admin role when it is named ``admin`` or its permissions include ``*:*``.
_ADMIN_ROLE = (
    "EXISTS (SELECT 1 FROM roles r WHERE r.provider = c.provider "
    "AND r.id = json_extract(c.detail, '$.role_id') "
    "AND (r.name = 'admin' OR instr(',' || r.permissions || ',', ',*:*,') > 0)) "
    "OR (c.new_value = 'admin' AND NOT EXISTS (SELECT 1 FROM roles r "
    "WHERE r.provider = c.provider AND r.id = json_extract(c.detail, '$.role_id')))"
)
#: Each rule but ``offboarding_gap``: the ids of this run's change rows that trigger it.
_ROW_RULES = {
    "new_admin": "(c.kind = 'role_changed' AND c.resource_type = 'organization' "
    "AND c.field = 'role' AND c.new_value = 'admin') "
    "OR (c.kind = 'membership_added' AND c.resource_type = 'organization' AND EXISTS ("
    "SELECT 1 FROM memberships m WHERE m.provider = c.provider "
    "AND m.resource_type = 'organization' AND m.resource_id = c.resource_id "
    "AND m.user_id = c.user_id AND m.role = 'admin')) "
    f"OR (c.kind = 'grant_added' AND c.resource_type = 'organization' AND ({_ADMIN_ROLE}))",
    "account_enabled": "c.kind = 'status_changed' AND c.old_value = 'disabled' "
    "AND c.new_value = 'enabled'",
    "mfa_disabled": "c.kind = 'user_updated' AND c.field = 'mfa_enabled' "
    "AND c.old_value = '1' AND c.new_value = '0'",
    "organization_access_lost": "c.kind = 'organization_removed'",
    "credential_added": "c.kind = 'credential_added'",
    "credential_never_expires": "c.kind = 'credential_added' AND EXISTS (SELECT 1 FROM "
    "credentials k WHERE k.provider = c.provider AND k.id = c.resource_id "
    "AND k.expires_at IS NULL)",
}
#: ``offboarding_gap``: a change row of this run that took away an *enabled* account (a removal
#: of an account last seen enabled, or a disabling), after which the person (``lower(email)``)
#: has no present enabled account left in this provider yet one in another. Because the row
#: must take an enabled account away, a gap raises once: the removal of an account already
#: disabled (its gap already raised) raises nothing.
_GAP = (
    "SELECT lower(c.email) AS person, c.id FROM changes c "
    "WHERE c.run_id = :run AND c.email IS NOT NULL AND ("
    "(c.kind = 'user_removed' AND EXISTS (SELECT 1 FROM users u WHERE u.provider = c.provider "
    "AND u.id = c.user_id AND u.status = 'enabled')) "
    "OR (c.kind = 'status_changed' AND c.old_value = 'enabled' AND c.new_value = 'disabled')) "
    "AND NOT EXISTS (SELECT 1 FROM users u WHERE u.provider = c.provider "
    "AND lower(u.email) = lower(c.email) AND u.removed_at IS NULL AND u.status = 'enabled') "
    "AND EXISTS (SELECT 1 FROM users u WHERE u.provider <> c.provider "
    "AND lower(u.email) = lower(c.email) AND u.removed_at IS NULL AND u.status = 'enabled') "
    "ORDER BY c.id"
)
#: Every column of a change row, as a payload's change objects carry them.
CHANGE_COLUMNS = tuple(TABLES["changes"]["columns"])

# OCSF 1.x classes and activities (schema.ocsf.io): Account Change 3001, Entity Management 3004,
# User Access Management 3005, Group Management 3006. 99 is "Other" in every class.
ACCOUNT_CHANGE, ENTITY_MANAGEMENT, USER_ACCESS, GROUP_MANAGEMENT = 3001, 3004, 3005, 3006
OTHER = 99
_OCSF_BY_KIND = {
    "user_added": (ACCOUNT_CHANGE, 1),  # Create
    "user_removed": (ACCOUNT_CHANGE, 6),  # Delete
    "last_sign_in_changed": (ACCOUNT_CHANGE, OTHER),
    "membership_added": (GROUP_MANAGEMENT, 3),  # Add User
    "membership_removed": (GROUP_MANAGEMENT, 4),  # Remove User
    "team_added": (GROUP_MANAGEMENT, 6),  # Create
    "team_removed": (GROUP_MANAGEMENT, 5),  # Delete
    "team_updated": (GROUP_MANAGEMENT, OTHER),
    "role_changed": (USER_ACCESS, 1),  # Assign Privileges
    "grant_added": (USER_ACCESS, 1),  # Assign Privileges
    "grant_removed": (USER_ACCESS, 2),  # Revoke Privileges
    "organization_added": (ENTITY_MANAGEMENT, 1),  # Create
    "organization_removed": (ENTITY_MANAGEMENT, 4),  # Delete
    "organization_updated": (ENTITY_MANAGEMENT, 3),  # Update
    "role_added": (ENTITY_MANAGEMENT, 1),
    "role_removed": (ENTITY_MANAGEMENT, 4),
    "role_updated": (ENTITY_MANAGEMENT, 3),
    "credential_added": (ENTITY_MANAGEMENT, 1),
    "credential_removed": (ENTITY_MANAGEMENT, 4),
    "credential_updated": (ENTITY_MANAGEMENT, 3),
    "credential_used": (ENTITY_MANAGEMENT, 3),
}


def ocsf_classification(change: dict) -> dict[str, int]:
    """``class_uid``, ``activity_id`` and ``type_uid`` (class_uid * 100 + activity_id)."""
    kind = change["kind"]
    if kind == "status_changed":
        pair = (ACCOUNT_CHANGE, 2 if change["new_value"] == "enabled" else 5)  # Enable/Disable
    elif kind == "user_updated" and change["field"] == "mfa_enabled":
        pair = (ACCOUNT_CHANGE, 10 if change["new_value"] == "1" else 11)  # MFA Enable/Disable
    elif kind == "user_updated":
        pair = (ACCOUNT_CHANGE, OTHER)
    else:
        pair = _OCSF_BY_KIND.get(kind, (ENTITY_MANAGEMENT, OTHER))
    class_uid, activity_id = pair
    type_uid = class_uid * 100 + activity_id
    return {"class_uid": class_uid, "activity_id": activity_id, "type_uid": type_uid}


class UnknownRule(ValueError):
    pass


def parse_rules(text: str | None) -> frozenset[str]:
    """``ACCESSTRAIL_ALERTS``: a comma list (any case, spaces ignored), ``none``, unset = all."""
    if text is None or not text.strip():
        return frozenset(RULES)
    names = [part.replace(" ", "").lower() for part in text.split(",")]
    names = [name for name in names if name]
    if names == ["none"]:
        return frozenset()
    unknown = [name for name in names if name not in RULES]
    if unknown:
        raise UnknownRule(
            f"unknown alert rule {unknown[0]!r}; rules are {', '.join(RULES)}, or none"
        )
    return frozenset(names)


@dataclass(frozen=True)
class Alerting:
    """What a run raises (``rules``) and who is owed each alert (``sinks``)."""

    rules: frozenset[str] = frozenset(RULES)
    sinks: tuple[str, ...] = ()


def database_id(db: sqlite_utils.Database) -> str:
    row = db.execute("SELECT value FROM _accesstrail WHERE key = 'database_id'").fetchone()
    return row[0]


def create_internal_tables(db: sqlite_utils.Database) -> None:
    """Release 3's internal tables: the database's own id (given once), and the outbox's sinks."""
    db.execute("CREATE TABLE IF NOT EXISTS _accesstrail (key TEXT PRIMARY KEY, value TEXT)")
    db.execute(
        "INSERT OR IGNORE INTO _accesstrail (key, value) VALUES ('database_id', ?)",
        [secrets.token_hex(16)],
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS _alert_sinks (alert_id INTEGER NOT NULL "
        "REFERENCES alerts(id), sink TEXT NOT NULL, delivered_at TEXT, attempted_at TEXT, "
        "PRIMARY KEY (alert_id, sink))"
    )


def raise_alerts(db: sqlite_utils.Database, run_id: int, alerting: Alerting) -> int:
    """Write the alerts of run ``run_id`` (call inside the apply's transaction); how many."""
    if not alerting.rules:
        return 0
    triggered: list[tuple[str, list[int]]] = []
    for rule in RULES:
        if rule not in alerting.rules:
            continue
        if rule == "offboarding_gap":
            people: dict[str, list[int]] = {}
            for person, change_id in db.execute(_GAP, {"run": run_id}).fetchall():
                people.setdefault(person, []).append(change_id)
            triggered += [(rule, ids) for ids in people.values()]
        else:
            rows = db.execute(
                f"SELECT c.id FROM changes c WHERE c.run_id = :run AND ({_ROW_RULES[rule]}) "
                "ORDER BY c.id",
                {"run": run_id},
            ).fetchall()
            triggered += [(rule, [change_id]) for (change_id,) in rows]
    if not triggered:
        return 0
    ident = database_id(db)
    for rule, ids in triggered:
        changes = _change_rows(db, ids)
        first = changes[0]
        summary = summarize(rule, changes)
        cursor = db.execute(
            "INSERT INTO alerts (run_id, provider, rule, observed_at, summary, payload, "
            "delivered_at, attempts, last_error) VALUES (?, ?, ?, ?, ?, '', NULL, 0, NULL)",
            [run_id, first["provider"], rule, first["observed_at"], summary],
        )
        alert_id = cursor.lastrowid
        payload = {
            "id": f"accesstrail:{ident}:{alert_id}",
            "rule": rule,
            "provider": first["provider"],
            "observed_at": first["observed_at"],
            "run_id": run_id,
            "summary": summary,
            "changes": [{**c, **ocsf_classification(c)} for c in changes],
        }
        db.execute(
            "UPDATE alerts SET payload = ? WHERE id = ?",
            [json.dumps(payload, sort_keys=False), alert_id],
        )
        db.conn.executemany(
            "INSERT INTO _alert_sinks (alert_id, sink) VALUES (?, ?)",
            [(alert_id, sink) for sink in alerting.sinks],
        )
    return len(triggered)


def _change_rows(db: sqlite_utils.Database, ids: list[int]) -> list[dict]:
    marks = ", ".join("?" for _ in ids)
    cursor = db.execute(
        f"SELECT {', '.join(CHANGE_COLUMNS)} FROM changes WHERE id IN ({marks}) ORDER BY id", ids
    )
    return [dict(zip(CHANGE_COLUMNS, row, strict=True)) for row in cursor.fetchall()]


_LABEL = {"scalr": "Scalr", "planetscale": "PlanetScale"}


def summarize(rule: str, changes: list[dict]) -> str:
    """One line a person reads in Slack: what happened, to whom, where."""
    c = changes[0]
    where = _LABEL.get(c["provider"], c["provider"])
    who = c["email"] or c["user_id"] or "?"
    on = c["resource_name"] or c["resource_id"]
    if rule == "new_admin":
        how = {"role_changed": "made admin", "membership_added": "added as admin"}.get(
            c["kind"], f"granted {c['new_value'] or 'an admin role'}"
        )
        principal = who
        if c["kind"] == "grant_added" and c["detail"]:
            principal = json.loads(c["detail"]).get("principal_name") or principal
        return f"{where}: {principal} {how} of {on}"
    if rule == "account_enabled":
        return f"{where}: disabled account {who} enabled again"
    if rule == "mfa_disabled":
        return f"{where}: MFA switched off for {who}"
    if rule == "offboarding_gap":
        what = "removed" if c["kind"] == "user_removed" else "disabled"
        return f"{where}: {c['email']} {what}, but still has an enabled account in another provider"
    if rule == "organization_access_lost":
        return f"{where}: organisation {on} is no longer visible to the token"
    if rule == "credential_added":
        return f"{where}: credential {on} created for {who}"
    if rule == "credential_never_expires":
        return f"{where}: credential {on} for {who} never expires"
    return f"{where}: {rule}"


# -- the outbox ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    alert_id: int
    sink: str
    payload: str
    summary: str
    attempts: int
    attempted_at: str | None


def pending(db: sqlite_utils.Database, sinks: Iterable[str]) -> list[Pending]:
    """Every (alert, sink) owed and not yet delivered, for ``sinks``, oldest first."""
    sinks = list(sinks)
    if not sinks:
        return []
    marks = ", ".join("?" for _ in sinks)
    rows = db.execute(
        "SELECT a.id, s.sink, a.payload, a.summary, a.attempts, s.attempted_at "
        "FROM _alert_sinks s JOIN alerts a ON a.id = s.alert_id "
        f"WHERE s.delivered_at IS NULL AND s.sink IN ({marks}) ORDER BY a.id, s.sink",
        sinks,
    ).fetchall()
    return [Pending(*row) for row in rows]


def mark(db: sqlite_utils.Database, alert_id: int, sink: str, error: str | None) -> None:
    """Record one delivery attempt: success (``error`` None) or the reason it failed."""
    stamp = timestamps.now()
    with transaction(db):
        if error is None:
            db.execute(
                "UPDATE _alert_sinks SET delivered_at = ?, attempted_at = ? "
                "WHERE alert_id = ? AND sink = ?",
                [stamp, stamp, alert_id, sink],
            )
            db.execute(
                "UPDATE alerts SET last_error = NULL, delivered_at = CASE WHEN NOT EXISTS ("
                "SELECT 1 FROM _alert_sinks s WHERE s.alert_id = alerts.id "
                "AND s.delivered_at IS NULL) THEN ? END WHERE id = ?",
                [stamp, alert_id],
            )
        else:
            db.execute(
                "UPDATE _alert_sinks SET attempted_at = ? WHERE alert_id = ? AND sink = ?",
                [stamp, alert_id, sink],
            )
            db.execute(
                "UPDATE alerts SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                [f"{sink}: {error}", alert_id],
            )


def recent(db: sqlite_utils.Database, limit: int) -> list[dict]:
    """The newest alerts with their delivery state per owed sink."""
    rows = db.execute(
        "SELECT a.id, a.run_id, a.provider, a.rule, a.observed_at, a.summary, a.delivered_at, "
        "a.attempts, a.last_error, (SELECT group_concat(s.sink || '=' || "
        "CASE WHEN s.delivered_at IS NULL THEN 'pending' ELSE 'delivered' END, ' ') "
        "FROM _alert_sinks s WHERE s.alert_id = a.id) AS sinks "
        "FROM alerts a ORDER BY a.id DESC LIMIT ?",
        [limit],
    )
    columns = [d[0] for d in rows.description]
    return [dict(zip(columns, row, strict=True)) for row in rows.fetchall()]
