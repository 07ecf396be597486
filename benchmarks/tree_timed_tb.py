"""The adder-tree engine's cocotb testbench (``tests/sim/rtl/tree_tb.py``) with each case's wall time too.

Not a pytest module: ``bench_peers.py`` names it as the test module of ``tree_harness.run``. The
testbench times CPU from ``start`` to ``done``; this adds the wall time of the same wait (the
engine's run, ``start``'s one-cycle pulse aside) by wrapping the ``with_timeout`` it awaits, one
line per case appended to ``$ACCELSIM_TREE_WALLS``, so the testbench itself stays the tests' own.
"""

from __future__ import annotations

import os
import time
from typing import Any

import tree_tb
from cocotb.triggers import with_timeout


async def _timed_wait(trigger: Any, *args: Any, **kwargs: Any) -> Any:
    t0 = time.perf_counter()
    try:
        return await with_timeout(trigger, *args, **kwargs)
    finally:
        with open(os.environ["ACCELSIM_TREE_WALLS"], "a") as f:
            f.write(f"{time.perf_counter() - t0!r}\n")


tree_tb.with_timeout = _timed_wait  # type: ignore[assignment]
run_gemms = tree_tb.run_gemms  # the one cocotb test: discovered in this module
