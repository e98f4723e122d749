"""Page-number pagination that always ends: in the listing's last page, or in an error.

A listing that stops early would look exactly like "everyone after page N was removed", so every
way paging can go wrong is an error here, never a silent end: a next page that does not advance,
one beyond the listing's own total, an empty page that claims a successor, totals that move while
the listing is read, or more pages than a hard cap. Next-page URLs are never taken from the body:
the caller's path is reused with the new page number, on the configured origin.

When the first page states how many pages there are, the rest are fetched concurrently (a window
of the HTTP layer's concurrency, so a listing never has more requests in flight than it may),
and still yielded in order and checked exactly as one-at-a-time paging would check them. No page
beyond the stated total is ever requested, and when the listing fails, the pages not yet sent are
not sent.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from daemon import errors
from daemon.http import ProviderHTTP
from store import timestamps

MAX_PAGES = 5000


@dataclass(frozen=True)
class Page:
    items: list
    next_page: int | None
    total_pages: int | None = None
    total_count: int | None = None
    included: dict | None = None  # JSON:API included resources the caller asked to keep


ReadPage = Callable[[dict, str], Page]


def iterate_pages(
    http: ProviderHTTP,
    path: str,
    params: dict,
    *,
    page_param: str,
    read_page: ReadPage,
    key: Callable[[dict], str],
    max_pages: int = MAX_PAGES,
    object_hook: Callable[[dict], object] | None = None,
) -> Iterator[Page]:
    """Yield each page of ``path`` in order, starting at page 1, and prove the listing whole.

    ``key`` names an item (and rejects one without a name). Offset paging over a listing that
    changes while it is read can skip an item, and a skipped item would be recorded as a
    removal; so when the provider reports a total, the total must not move between pages and
    every counted item must have been seen, or the listing is an error. ``object_hook`` goes
    to the decoder (see ``ProviderHTTP.get_page``).
    """
    listing = _Listing(http, path, key, max_pages)

    def fetch(number: int) -> Page:
        return http.get_page(
            path,
            {**params, page_param: number},
            lambda document: read_page(document, path),
            object_hook,
        )

    first = fetch(1)
    following = listing.check(1, first)
    yield first
    ahead = following is not None and _states_its_end(first, max_pages)
    if ahead:
        numbered = _fetch_ahead(fetch, 2, first.total_pages or 1, http.concurrency)
    else:
        numbered = _fetch_one_by_one(fetch, following, listing)
    for number, page in numbered:
        following = listing.check(number, page, in_step=ahead)
        yield page
    if following is not None:  # only when fetching ahead: the stated last page named another
        raise listing.bad(f"paging does not advance: page {number} of {number} named a next page")


class _KeyHashes:
    """The keys a listing has named, as 8-byte hashes rather than a set of strings.

    A listing of 100,000 members costs under 1 MB, and counting the distinct ones builds a set
    of one bucket at a time (1/64 of them), not of all: a set of 100,000 ints would briefly
    cost 6 MB per listing, and listings are read at the same time. Two keys sharing a hash
    would only make the listing look short, which fails it: never a silent success.
    """

    BUCKETS = 64

    def __init__(self) -> None:
        self._buckets = [array("q") for _ in range(self.BUCKETS)]
        self._count = 0

    def add(self, key: str) -> None:
        hashed = hash(key)
        self._buckets[hashed % self.BUCKETS].append(hashed)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def distinct(self) -> int:
        return sum(len(set(bucket)) for bucket in self._buckets)


class _Listing:
    """What the pages of one listing must agree on, checked page by page in order."""

    def __init__(self, http: ProviderHTTP, path: str, key: Callable[[dict], str], cap: int):
        self.http, self.path, self.key, self.cap = http, path, key, cap
        self.seen = _KeyHashes()
        self.first: Page | None = None

    def check(self, number: int, page: Page, *, in_step: bool = False) -> int | None:
        """Record ``page`` (page ``number``) and return the next page's number, or raise.

        ``in_step``: the pages are being fetched ahead by number, so each must name exactly the
        one after it, and the page count must stay what page 1 said.
        """
        for item in page.items:
            self.seen.add(self.key(item))
        first = self.first = self.first or page
        for name, then, now in (
            ("total", first.total_count, page.total_count),
            ("page count", first.total_pages, page.total_pages),
        ):
            if then is not None and now is not None and now != then:
                raise self._changed(f"its {name} went from {then} to {now}")
        following = page.next_page
        if following is None:
            self._check_the_end(number, first)
            return None
        problem = None
        if following <= number:
            problem = f"page {number} points back to page {following}"
        elif page.total_pages is not None and following > max(page.total_pages, 1):
            problem = f"page {number} points to page {following} of {page.total_pages}"
        elif not page.items:
            problem = f"page {number} was empty yet named a next page"
        elif in_step and following != number + 1:
            problem = f"page {number} points to page {following}, not {number + 1}"
        if problem:
            raise self.bad(f"paging does not advance: {problem}")
        return following

    def _check_the_end(self, number: int, first: Page) -> None:
        if first.total_pages is not None and number < first.total_pages and number > 1:
            raise self._changed(f"page {number} of {first.total_pages} was the last")
        if first.total_count is not None and len(self.seen) >= first.total_count:
            distinct = self.seen.distinct()
            if distinct < first.total_count:
                raise self._changed(f"{distinct} of {first.total_count} items seen")
        elif first.total_count is not None:
            raise self._changed(f"{len(self.seen)} of {first.total_count} items seen")

    def bad(self, what: str) -> errors.BadResponse:
        return errors.BadResponse(self.http.label, what, path=self.path)

    def _changed(self, how: str) -> errors.BadResponse:
        return _changed(self.http, self.path, how)


def _states_its_end(first: Page, cap: int) -> bool:
    """Page 1 says how many pages there are, so pages 2..N can be asked for at once."""
    total = first.total_pages
    return total is not None and first.next_page == 2 and 2 <= total <= cap


def _fetch_one_by_one(
    fetch: Callable[[int], Page], following: int | None, listing: _Listing
) -> Iterator[tuple[int, Page]]:
    """Follow ``next_page`` from page to page: a listing that does not state its length."""
    while following is not None:
        if following > listing.cap:
            raise listing.bad(f"paging did not end within {listing.cap} pages")
        page = fetch(following)
        yield following, page
        following = page.next_page


def _fetch_ahead(
    fetch: Callable[[int], Page], start: int, last: int, window: int
) -> Iterator[tuple[int, Page]]:
    """Pages ``start..last``, at most ``window`` in flight, yielded in page order.

    The next page is sent as soon as one is handed on, so the window stays full while the caller
    works. Leaving early (an error here or in the caller) cancels the pages not yet sent and
    waits for the ones in flight, so no request outlives the listing.
    """
    window = max(1, window)
    pending: deque[tuple[int, Future[Page]]] = deque()
    upcoming = iter(range(start, last + 1))
    with ThreadPoolExecutor(max_workers=min(window, last - start + 1)) as pool:

        def send_next() -> None:
            number = next(upcoming, None)
            if number is not None:
                pending.append((number, pool.submit(fetch, number)))

        try:
            for _ in range(window):
                send_next()
            while pending:
                number, future = pending.popleft()
                page = future.result()
                send_next()
                yield number, page
                if page.next_page is None:
                    return  # the listing ended early; the check of this page says so
        finally:
            for _number, future in pending:
                future.cancel()


def _changed(http: ProviderHTTP, path: str, how: str) -> errors.BadResponse:
    return errors.BadResponse(
        http.label,
        f"the listing changed while it was read ({how})",
        path=path,
        hint="nothing was recorded from it; the next sync reads it again",
    )


def expect_list(document: dict, key: str, label: str, path: str) -> list:
    """``document[key]`` as a list of objects, or a BadResponse naming what was wrong."""
    value = document.get(key)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise errors.BadResponse(label, f"answered without a list of objects in '{key}'", path=path)
    return value


def optional_int(value, label: str, path: str, name: str) -> int | None:
    """A paging number that may be absent; anything but an integer is a bad response."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.BadResponse(label, f"answered a non-integer '{name}'", path=path)
    return value


def text(item: dict, key: str, label: str, path: str) -> str | None:
    """A string field of a response object; absent or null is None.

    Anything else (a number, an object) is a bad response: storing it would put a value in the
    history that the provider never meant.
    """
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.BadResponse(label, f"sent a non-text '{key}'", path=path)
    return value


def required_text(item: dict, key: str, label: str, path: str) -> str:
    """A string field that must be there and not empty (an id, a name used in URLs)."""
    value = text(item, key, label, path)
    if not value:
        raise errors.BadResponse(label, f"listed an item without '{key}'", path=path)
    return value


def timestamp(value, label: str, path: str) -> str | None:
    """A provider timestamp in the database's format, or a bad response."""
    try:
        return timestamps.normalise(value)
    except (ValueError, AttributeError, TypeError):
        raise errors.BadResponse(
            label, f"sent a timestamp that is not ISO-8601: {value!r}", path=path
        ) from None
