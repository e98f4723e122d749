"""The malloc tuning the CLI applies at start-up really reaches glibc on this platform.

Its effect on a sync's peak memory is measured by the benchmark (``make bench``), on real pages.
"""

from __future__ import annotations

import platform

import pytest

from daemon import memory

glibc_only = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="mallopt and malloc_trim are glibc's"
)


@glibc_only
def test_glibc_accepts_the_arena_limit_the_mapping_threshold_and_the_trim():
    assert memory.tune_malloc() is True
    memory.hand_back_freed_memory()
