"""The README's schema section is generated from the migrated database, so it cannot go stale."""

import re
from pathlib import Path

from store import docs
from store.datasette.queries import QUERIES

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_schema_section_matches_the_database():
    text = README.read_text()
    assert docs.replace_section(text, docs.schema_markdown()) == text, (
        "README schema is stale: run `python -m store.docs --write README.md`"
    )


def test_readme_gives_the_two_setup_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text


def test_readme_lists_every_canned_query_and_no_other():
    text = README.read_text()
    section = text.split("## Example audits", 1)[1].split("```sql", 1)[0]
    listed = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M)
    assert sorted(listed) == sorted(QUERIES)
