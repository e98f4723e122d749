"""Datasette metadata built from the code's own descriptions, so Datasette, the README and the
schema can never disagree about what a column means."""

from __future__ import annotations

from store import descriptions
from store.datasette.queries import QUERIES
from store.schema import TABLES, VIEWS


def build_metadata(database_name: str) -> dict:
    tables = {
        name: {
            "description": descriptions.TABLES[name],
            "columns": {
                column: descriptions.column_description(name, column)
                for column in TABLES[name]["columns"]
                if descriptions.column_description(name, column)
            },
        }
        for name in TABLES
    }
    tables.update(
        {
            name: {
                "description": descriptions.TABLES[name],
                "columns": {
                    column: descriptions.column_description(name, column)
                    for column in view["columns"]
                    if descriptions.column_description(name, column)
                },
            }
            for name, view in VIEWS.items()
        }
    )
    return {
        "title": "accesstrail",
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
    }
