"""Render the public schema as Markdown for the README, from the live database definition.

``python -m store.docs --write README.md`` refreshes the README between its schema markers, and
``tests/test_readme.py`` fails when someone changes the schema without doing so.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

from store import descriptions, schema

START, END = "<!-- schema:start -->", "<!-- schema:end -->"


def schema_markdown() -> str:
    """The schema as created by the migrations (not as declared), table by table."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "schema.db"
        schema.connect(path).close()
        conn = sqlite3.connect(path)
        try:
            lines = []
            for table in (*schema.TABLES, *schema.VIEWS):
                view = " (view)" if table in schema.VIEWS else ""
                lines += [
                    f"### `{table}`{view}",
                    "",
                    descriptions.TABLES[table],
                    "",
                    "| column | type | key | meaning |",
                    "|---|---|---|---|",
                ]
                for _, name, kind, _, _, pk in conn.execute(f"PRAGMA table_info({table})"):
                    key = f"pk {pk}" if pk else ""
                    meaning = descriptions.column_description(table, name)
                    lines.append(f"| `{name}` | {kind} | {key} | {meaning} |")
                lines.append("")
            return "\n".join(lines).rstrip() + "\n"
        finally:
            conn.close()


def replace_section(text: str, section: str) -> str:
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    return f"{before}{START}\n{section}{END}{after}"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--write":
        readme = Path(argv[1])
        readme.write_text(replace_section(readme.read_text(), schema_markdown()))
        return 0
    sys.stdout.write(schema_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
