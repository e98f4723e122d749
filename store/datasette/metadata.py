"""Datasette metadata built from the code's own descriptions, so Datasette, the README and the
schema can never disagree about what a column means."""

from __future__ import annotations

from collections.abc import Iterable

from store import descriptions
from store.datasette.dashboards import build_dashboard
from store.datasette.queries import QUERIES
from store.schema import TABLES, VIEWS

#: Facets offered by default on a table's page, and the column that names a row in links.
TABLE_OPTIONS: dict[str, dict] = {
    "changes": {
        "sort_desc": "id",
        "facets": ["kind", "provider"],
        "label_column": "resource_name",
    },
    "users": {
        "facets": ["provider", "status", "account_type"],
        "label_column": "email",
    },
    "memberships": {"facets": ["provider", "resource_type", "role"]},
    "organizations": {"facets": ["provider"], "label_column": "name"},
    "teams": {"facets": ["provider"], "label_column": "name"},
    "roles": {"facets": ["provider", "is_system"], "label_column": "name"},
    "grants": {"facets": ["provider", "resource_type", "role"]},
    "credentials": {"facets": ["provider"], "label_column": "name"},
    "sync_runs": {"sort_desc": "id", "facets": ["provider", "status"]},
    "user_versions": {"facets": ["provider", "status"]},
    "membership_versions": {"facets": ["provider", "role"]},
    "grant_versions": {"facets": ["provider", "resource_type"]},
    "baselines": {"facets": ["provider"]},
    "effective_grants": {"facets": ["provider", "resource_type", "role"]},
}

#: Tables that are never public, hidden whether or not they exist yet.
INTERNAL_TABLES = ("_sqlite_migrations",)


def _described(name: str, columns: Iterable[str]) -> dict:
    return {
        "description": descriptions.TABLES[name],
        "columns": {
            column: descriptions.column_description(name, column)
            for column in columns
            if descriptions.column_description(name, column)
        },
        **TABLE_OPTIONS.get(name, {}),
    }


def is_public(table: str) -> bool:
    return table in TABLES or table in VIEWS


def build_metadata(
    database_name: str,
    existing_tables: Iterable[str] = (),
    password_hash: str | None = None,
    web_user: str = "auditor",
    title: str = "accesstrail",
) -> dict:
    """Datasette's metadata for the database named ``database_name``.

    ``existing_tables`` are the database's tables: every one that is not public (§4) is hidden.
    With ``password_hash`` (from ``datasette hash-password``) only ``web_user``, logged in at
    ``/-/login`` or by HTTP Basic, may see anything.
    """
    tables = {name: _described(name, spec["columns"]) for name, spec in TABLES.items()}
    tables.update({name: _described(name, view["columns"]) for name, view in VIEWS.items()})
    for table in (*INTERNAL_TABLES, *existing_tables):
        if not is_public(table):
            tables[table] = {"hidden": True}
    plugins: dict[str, dict] = {
        "datasette-dashboards": {"accesstrail": build_dashboard(database_name)},
        "datasette-block-robots": {"disallow": ["/"]},
    }
    metadata: dict = {
        "title": title,
        "description": "Who can get into the organisation's Scalr and PlanetScale accounts, and "
        "since when. Timestamps are UTC; the state at instant T is valid_from <= T "
        "AND (valid_to IS NULL OR valid_to > T).",
        "databases": {
            database_name: {
                "tables": tables,
                "queries": {
                    name: {**query, "sql": query["sql"].strip()} for name, query in QUERIES.items()
                },
            }
        },
        "plugins": plugins,
    }
    if password_hash:
        plugins["datasette-auth-passwords"] = {f"{web_user}_password_hash": password_hash}
        metadata["allow"] = {"id": web_user}
    return metadata
