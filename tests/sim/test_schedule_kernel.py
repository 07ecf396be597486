"""The schedule kernel and its steps, through their Python originals (``py_func``).

The steps that touch the kernel's state arrays are closures inside ``run_schedule`` (numba
inlines them for free; see the module's docstring): the first test runs them, with every
module-level step, in Python against the compiled kernel."""

from __future__ import annotations

import numpy as np
import pytest
from test_sweep import _mixed, _points

from accelsim.sim import _schedule_kernel as K
from accelsim.sim import compile_graph, map_graph

_STEPS = ("_shares", "_load_bytes", "_store_bytes", "_dma", "_pipe_need", "_occupancy")


def test_every_step_in_python_equals_the_compiled_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel with its helpers swapped for their Python originals, on a graph with every
    streaming edge kind, gives the compiled kernel's arrays exactly (records included)."""
    ga = compile_graph(_mixed())
    schedules = [map_graph(ga, hw) for hw in _points()]
    want = [K.run_schedule(tuple(s.program()), tuple(s.dram()), s.hardware.overlap, True) for s in schedules]
    for name in _STEPS:
        monkeypatch.setattr(K, name, getattr(K, name).py_func)
    for s, w in zip(schedules, want, strict=True):
        got = K.run_schedule.py_func(tuple(s.program()), tuple(s.dram()), s.hardware.overlap, True)
        for a, b in zip(got, w, strict=True):
            np.testing.assert_array_equal(a, b)
        assert len(got.tile_op) == s.n_tiles


def test_load_bytes_shares_and_counters() -> None:
    # 2 outer folds of 3 tiles, streamed operand reused: only the first fold's tiles load it.
    f = K._load_bytes.py_func
    sh = (10, 1, 0, 0, 7, 2)  # once 10 (+1 on tile 0), no spill, stream 7 (+1 on the first 2)
    got = []
    cnt = (0, 0, 0)
    for k in range(6):
        lb, *cnt_ = f(k, *cnt, *sh, 1, 3, 2)
        cnt = tuple(cnt_)
        got.append(lb)
    assert got == [11 + 8, 10 + 8, 10 + 7, 10, 10, 10]
    assert cnt == (0, 0, 3)  # back to fold 0, position 0; three first-fold tiles seen


def test_pipe_need_rounds_up_to_whole_heads() -> None:
    f = K._pipe_need.py_func
    # consumer of 4 tiles behind a producer of 8 tiles in 2 heads: tile 0 needs the first head
    assert [f(k, 8, 2, 4) for k in range(4)] == [4, 4, 8, 8]
    assert [f(k, 8, 0, 4) for k in range(4)] == [2, 4, 6, 8]  # element-grained


def test_shares_spread_totals_over_tiles() -> None:
    f = K._shares.py_func
    # 10 tiles: compute 23 = 2 each + 1 on the first 3; stream 7 per fold over 2 folds, not reused
    # (every tile loads its share of 14); reused: only the 5 first-fold tiles load 7
    assert f(10, 23, 5, 0, 40, 7, 0, 2) == (2, 3, 0, 5, 0, 0, 4, 0, 1, 4)
    assert f(10, 23, 5, 0, 40, 7, 1, 2)[8:] == (1, 2)


def test_store_bytes_output_and_spill() -> None:
    f = K._store_bytes.py_func
    assert [f(k, 10, 2, 3, 1) for k in range(3)] == [15, 14, 13]


def test_dma_memo_and_channel() -> None:
    f = K._dma.py_func
    # 100 B: one 128-B burst round at 48 B/cycle = 3 cycles, after the channel frees at 10
    assert f(100, 5, 10, -1, 0, 128, 48.0) == (10, 3, 100, 3)
    # the same size again: the memo answers (a wrong memo shows: 7 is not the occupancy)
    assert f(100, 20, 13, 100, 7, 128, 48.0) == (20, 7, 100, 7)
    assert f(300, 20, 13, 100, 7, 128, 48.0) == (20, 8, 300, 8)  # 3 rounds: ceil(384 / 48)


def test_the_ring_holds_the_deepest_prefetch() -> None:
    from accelsim.sim._kernels import MAX_SLOTS

    assert MAX_SLOTS <= K.RING and K.RING & (K.RING - 1) == 0
