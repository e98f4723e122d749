"""Keep the process's memory flat: fewer malloc arenas, large blocks given back as soon as they
are freed, and the rest of the freed heap handed back after a sync.

A sync reads pages in several threads, and glibc gives each thread that allocates its own malloc
arena. Every arena keeps the memory of the largest pages it ever decoded after they are freed,
so the resident size of the process grows with the number of threads and the size of pages, not
with what is actually held (measured: 125 MB with the default arenas against 94 MB with two, for
the same 20,000-identity sync, whose live Python heap is a few MB). Two arenas and a trim after
each sync keep it near what is really in use.

A page's body and its text are one block each, of a megabyte or two. glibc serves such blocks
with their own mapping, returned when freed, but only until the first one is freed: it then
raises its threshold to that size and serves the next ones from the heap, where a freed block
stays resident whenever anything lives above it. Fixing the threshold keeps every large block
in its own mapping (measured: 7 MB less at the peak of a sync, at 20,000 identities as at
100,000). Elsewhere than glibc these are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

M_ARENA_MAX = -8  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
ARENAS = 2
#: Blocks this large or larger get a mapping of their own (glibc's initial, dynamic default).
MMAP_THRESHOLD = 128 << 10


@cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def tune_malloc(arenas: int = ARENAS) -> bool:
    """Cap malloc's arenas for the threads started from now on, and fix the threshold above
    which a block gets its own mapping; True when glibc agreed to both."""
    libc = _glibc()
    if libc is None:
        return False
    capped = libc.mallopt(M_ARENA_MAX, arenas)
    fixed = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    return bool(capped and fixed)


def hand_back_freed_memory() -> None:
    """Return the free parts of the heap to the system (after a sync, before the next)."""
    libc = _glibc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
