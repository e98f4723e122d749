"""The history itself: schema, diff and writes, reads, and what Datasette shows. It knows
SQLite and the snapshot types of ``store/model.py``, and nothing of HTTP or the daemon."""
