"""Reading several listings of one provider at the same time.

A provider's listings are independent once the listing they hang off (the account, the
organisations, an organisation's teams) has been read, so they are read together: the sync then
waits for the provider's latency once per window of requests, not once per page. The HTTP layer
bounds how many requests are in flight and keeps PlanetScale's budget, so this only decides
*what* may run together. Each job reads one or more scopes, which were declared (and so ordered)
before any job started: the snapshot does not depend on which job finishes first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

#: Listings read at once. Each fetches its own pages ahead within the HTTP layer's slots, so
#: this only needs to be wide enough to keep those slots busy across short listings.
LISTING_WORKERS = 8


def read_concurrently(jobs: Iterable[Callable[[], object]], workers: int = LISTING_WORKERS) -> None:
    """Run every job, at most ``workers`` at once, and return when all have ended.

    A scope's own failure is recorded by the scope and does not end its job; what escapes a job
    (a stop, a required listing's failure, a bug) is re-raised here, the first declared first,
    once the jobs not yet started have been cancelled and those running have finished.
    """
    pending = list(jobs)
    if not pending:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pending)))) as pool:
        futures = [pool.submit(job) for job in pending]
        try:
            for future in futures:
                future.result()
        finally:
            for future in futures:
                future.cancel()
