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
    max_pages: int = MAX_PAGES,
) -> Iterator[Page]:
    """Yield each page of ``path`` in order, starting at page 1."""
    number = 1
    fetched = 0
    while True:
        fetched += 1
        if fetched > max_pages:
            raise errors.BadResponse(http.provider, f"paging did not end within {max_pages} pages",
                                     path=path)
        document = http.get_json(path, {**params, page_param: number})
        page = read_page(document, path)
        yield page
        following = page.next_page
        if following is None:
            return
        problem = None
        if following <= number:
            problem = f"page {number} points back to page {following}"
        elif page.total_pages is not None and following > max(page.total_pages, 1):
            problem = f"page {number} points to page {following} of {page.total_pages}"
        elif not page.items:
            problem = f"page {number} was empty yet named a next page"
        if problem:
            raise errors.BadResponse(http.provider, f"paging does not advance: {problem}",
                                     path=path)
        number = following


def expect_list(document: dict, key: str, provider: str, path: str) -> list:
    """``document[key]`` as a list of objects, or a BadResponse naming what was wrong."""
    value = document.get(key)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise errors.BadResponse(provider, f"answered without a list of objects in '{key}'",
                                 path=path)
    return value


def optional_int(value, provider: str, path: str, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise errors.BadResponse(provider, f"answered a non-numeric '{name}'",
                                     path=path) from None
    return value
