"""Datasette keeps answering while a large sync writes: WAL readers are never locked out.

``accesstrail serve`` runs over the database in its own process, as a user starts it beside the
daemon. A reader thread loops on Datasette's JSON API (a table page of the size Datasette allows
at most, a canned query, and ``sync_runs``) while a first sync of a generated organisation of
several thousand people writes it in one ``IMMEDIATE`` apply transaction.

The overlap with that transaction is proved by state, not by timing: ``sync_provider`` calls its
``activity`` hook on every HTTP answer and once more, last, right before the apply. The reader
notes how many calls there had been when it *sent* each request; a request sent after the last
call and answered before the sync returned was served while the apply was writing (or
committing) the snapshot.
"""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime

import httpx

from daemon.simulate import bulk
from daemon.simulate.scalr.wire import ScalrSimulator
from daemon.simulate.scalr.world import ScalrState
from daemon.sync import sync_provider
from store import schema
from tests.helpers import TEST_POLICY, query, serving, settings_for

#: Scalr people in the generated organisation: about 6,200 users, 9,000 team memberships, roles,
#: policies and tokens — an apply that writes tens of thousands of rows in one transaction.
USERS = 6000

#: Responses the reader must have had while the apply ran. Each read takes milliseconds to tens
#: of milliseconds; the apply of this organisation takes far longer on any machine.
OVERLAPPING = 3

#: Datasette reads even the largest of these pages in well under a second; a request waiting
#: this long would itself be the failure (a reader stuck behind the writer).
READ_TIMEOUT = 30


def test_datasette_answers_every_read_while_a_large_sync_applies(tmp_path):
    db_path = tmp_path / "big.db"
    schema.connect(db_path).close()  # Datasette serves a file that exists: the empty history
    state = ScalrState()
    bulk.populate_scalr(
        state, random.Random(20261203), bulk.Sizes.for_users(USERS), datetime.now(UTC)
    )

    calls = 0  # activity() calls so far; only the sync thread writes it

    def activity() -> None:
        nonlocal calls
        calls += 1

    with ScalrSimulator(state) as sim, serving(db_path) as base:
        db = db_path.stem
        urls = [
            f"{base}/{db}/users.json?_size=max",
            f"{base}/{db}/no_sign_in_for_days.json?days=30&_size=max",
            f"{base}/{db}/sync_runs.json?_sort_desc=id",
        ]
        settings = settings_for(db_path, scalr=sim)
        outcome = []
        sync_done = threading.Event()

        def run_sync() -> None:
            try:
                outcome.append(
                    sync_provider(settings, "scalr", policy=TEST_POLICY, activity=activity)
                )
            finally:
                sync_done.set()

        # (activity calls when sent, sync finished when answered, status, body)
        responses: list[tuple[int, bool, int, str]] = []
        with httpx.Client(timeout=READ_TIMEOUT) as client:
            # one read before the sync starts, so the loop below can only end once the reader
            # has run through the whole sync
            first = client.get(urls[0])
            assert first.status_code == 200, first.text
            writer = threading.Thread(target=run_sync, name="large-sync")
            writer.start()
            try:
                n = 0
                while not sync_done.is_set():
                    sent_after = calls
                    response = client.get(urls[n % len(urls)])
                    responses.append(
                        (sent_after, sync_done.is_set(), response.status_code, response.text)
                    )
                    n += 1
            finally:
                writer.join()
            after = client.get(urls[0])  # the history is readable once the sync has committed

    (result,) = outcome
    assert result.status == "succeeded", result.error
    total_calls = calls
    assert total_calls >= 2  # at least one HTTP answer, then the call right before the apply

    for _sent_after, _finished, status, body in responses:
        assert status == 200, body[:500]
        assert "database is locked" not in body.lower(), body[:500]
    during_apply = [r for r in responses if r[0] == total_calls and not r[1]]
    assert len(during_apply) >= OVERLAPPING, (
        f"only {len(during_apply)} of {len(responses)} reads were sent after the fetch ended "
        f"and answered before the sync returned"
    )
    # each read saw one committed state: the empty history or the whole first sync, never part
    (final,) = query(db_path, "SELECT COUNT(*) AS n FROM users")
    assert final["n"] >= USERS
    pages = [json.loads(body) for _sent, _finished, _status, body in responses]
    pages.append(after.json())
    counts = {p["filtered_table_rows_count"] for p in pages if p.get("table") == "users"}
    assert counts <= {0, final["n"]}, counts
    assert final["n"] in counts  # the read after the sync sees all of it
