"""Page-number pagination that always ends: in the listing's last page, or in an error.

A listing that stops early would look exactly like "everyone after page N was removed", so every
way paging can go wrong is an error here, never a silent end: a next page that does not advance,
one beyond the listing's own total, an empty page that claims a successor, or more pages than a
hard cap. Next-page URLs are never taken from the body: the caller's path is reused with the new
page number, on the configured origin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    document: dict | None = None


def iterate_pages(
    http: ProviderHTTP,
    path: str,
    params: dict,
    *,
    page_param: str,
    read_page: Callable[[dict, str], Page],
    key: Callable[[dict], str],
    max_pages: int = MAX_PAGES,
) -> Iterator[Page]:
    """Yield each page of ``path`` in order, starting at page 1, and prove the listing whole.

    ``key`` names an item (and rejects one without a name). Offset paging over a listing that
    changes while it is read can skip an item, and a skipped item would be recorded as a
    removal; so when the provider reports a total, the total must not move between pages and
    every counted item must have been seen, or the listing is an error.
    """
    number = 1
    fetched = 0
    seen: set[str] = set()
    first_total: int | None = None
    while True:
        fetched += 1
        if fetched > max_pages:
            raise errors.BadResponse(
                http.label, f"paging did not end within {max_pages} pages", path=path
            )
        document = http.get_json(path, {**params, page_param: number})
        page = read_page(document, path)
        seen.update(key(item) for item in page.items)
        if page.total_count is not None:
            if first_total is None:
                first_total = page.total_count
            elif page.total_count != first_total:
                raise _changed(
                    http, path, f"its total went from {first_total} to {page.total_count}"
                )
        yield page
        following = page.next_page
        if following is None:
            if first_total is not None and len(seen) < first_total:
                raise _changed(http, path, f"{len(seen)} of {first_total} items seen")
            return
        problem = None
        if following <= number:
            problem = f"page {number} points back to page {following}"
        elif page.total_pages is not None and following > max(page.total_pages, 1):
            problem = f"page {number} points to page {following} of {page.total_pages}"
        elif not page.items:
            problem = f"page {number} was empty yet named a next page"
        if problem:
            raise errors.BadResponse(http.label, f"paging does not advance: {problem}", path=path)
        number = following


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
