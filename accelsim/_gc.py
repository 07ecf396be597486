"""The cyclic garbage collector paused for a sweep."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for one sweep, back as it was after (nested uses too).

    A sweep keeps every point's config and report alive until it returns: thousands of new
    container objects, so the collector's thresholds set off passes, full ones over the whole heap
    (graph, numba, pydantic schemas) among them, that free nothing (a sweep leaves no reference
    cycles). Back-to-back 1,000-point sweeps took 3 to 7% less CPU time without them
    (benchmarks/README.md).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
