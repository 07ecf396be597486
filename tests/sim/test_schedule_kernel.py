"""The schedule kernel's steps, each through its Python original (``py_func``)."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import tiny_hw
from test_sweep import _mixed, _points

from accelsim.sim import _schedule_kernel as K
from accelsim.sim import compile_graph, map_graph

_STEPS = (
    "_load_bytes", "_pipe_need", "_dma", "_issue_load", "_issue_store", "_record_tile", "_record_xfer",
    "_candidate", "_stream", "_refresh_candidates", "_pick", "_start_op", "_retire_tile", "_retire_op",
    "_release_free_ops", "_run_engine", "_tables",
)  # fmt: skip


def test_every_step_in_python_equals_the_compiled_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The event loop with every step swapped for its Python original, on a graph with every
    streaming edge kind, gives the compiled kernel's arrays exactly (records included)."""
    ga = compile_graph(_mixed())
    schedules = [map_graph(ga, hw) for hw in _points()]
    want = [K.run_schedule(s.program(), s.dram(), s.hardware.overlap, True) for s in schedules]
    for name in _STEPS:
        monkeypatch.setattr(K, name, getattr(K, name).py_func)
    for s, w in zip(schedules, want, strict=True):
        got = K.run_schedule.py_func(s.program(), s.dram(), s.hardware.overlap, True)
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


def test_dma_memo_and_channel() -> None:
    dram = (128, 48.0, 30)
    # 100 B: one burst round of 128 B at 48 B/cycle = 3 cycles, after the channel frees at 10
    assert K._dma.py_func(100, 5, 10, (-1, 0), dram) == (10, 13, 3, (100, 3))
    # same size again: the memo answers; issued after the channel is free
    assert K._dma.py_func(100, 20, 13, (100, 3), dram) == (20, 23, 3, (100, 3))


def test_issue_load_and_store() -> None:
    dram = (128, 48.0, 30)
    sh = (100, 0, 0, 0, 0, 0, 1, 1, 1)
    t, lb, s0, occ, chan, cnt, memo = K._issue_load.py_func(0, (0, 0, 0), sh, 7, 0, (-1, 0), dram)
    assert (t, lb, s0, occ, chan, cnt, memo) == (7 + 3 + 30, 100, 7, 3, 10, (0, 0, 1), (100, 3))
    none = (0, 0, 0, 0, 0, 0, 1, 1, 1)
    assert K._issue_load.py_func(0, (0, 0, 0), none, 7, 4, (-1, 0), dram)[:5] == (7, 0, 7, 0, 4)
    # store: 64 B output + 64 B spill on tile 0 (remainders 1): 130 B = 2 rounds = 6 cycles
    assert K._issue_store.py_func(0, (64, 1, 64, 1), 50, 20, (-1, 0), dram) == (130, 50, 6, 56, (130, 6))
    assert K._issue_store.py_func(1, (0, 1, 0, 1), 50, 20, (-1, 0), dram) == (0, 50, 0, 20, (-1, 0))


def test_pick_ties_go_to_the_lowest_engine() -> None:
    eng = np.zeros((4, K._E_N), np.int64)
    eng[:, K._E_CAND] = (9, 5, 5, K._NONE)
    assert K._pick.py_func(eng) == (1, 9, 5)
    eng[:, K._E_CAND] = K._NONE
    assert K._pick.py_func(eng)[0] == -1


def test_start_op_spreads_totals_over_tiles() -> None:
    prog = map_graph(_mixed(), tiny_hw()).program()
    opc, _ops, _n = K._tables.py_func(prog)
    i = int(np.flatnonzero(prog.n_tiles > 1)[0])
    eng = np.zeros((1, K._E_N), np.int64)
    K._start_op.py_func(eng, 0, i, opc, 17)
    nt = prog.n_tiles[i]
    assert eng[0, K._E_READY] == 17
    assert (eng[0, K._E_Q_COMP], eng[0, K._E_R_COMP]) == divmod(prog.comp[i], nt)
    assert (eng[0, K._E_Q_ST], eng[0, K._E_R_ST]) == divmod(prog.store[i], nt)
    assert eng[0, K._E_PRE] == -1


def test_candidate_waits_for_the_producer_tiles_it_needs() -> None:
    eng = np.zeros((1, K._E_N), np.int64)
    eng[0, K._E_NEED_K] = -1
    ops = np.zeros((2, K._O_N), np.int64)
    tile_end = np.array([0, 0, 0, 0, 40, 41, 42, 43], np.int64)  # op 0's 4 tiles at 0..3
    tile_end[:4] = (10, 20, 30, 35)
    strm = (1, 0, 4, 0, 2, 0)  # behind op 0 (4 tiles), element-grained, over 2 tiles
    ops[0, K._O_TDONE] = 1
    assert K._candidate.py_func(0, 1, 0, 5, 3, True, strm, eng, ops, tile_end) == (K._NONE, 0)
    ops[0, K._O_TDONE] = 2
    assert K._candidate.py_func(0, 1, 0, 5, 3, True, strm, eng, ops, tile_end) == (20, 20)
    assert K._candidate.py_func(0, 1, 0, 25, 3, True, strm, eng, ops, tile_end) == (25, 20)
    assert K._candidate.py_func(0, 1, 0, 25, 3, False, strm, eng, ops, tile_end)[0] == 1  # serial: op index


def test_retire_tile_and_op_release_successors() -> None:
    prog = map_graph(_mixed(), tiny_hw()).program()
    opc, ops, n_all = K._tables.py_func(prog)
    tile_end = np.zeros(n_all, np.int64)
    ring = np.zeros((1, 4), np.int64)
    assert K._retire_tile.py_func(0, 0, 0, 99, ring, 5, 3, opc[0, K._C_TOFF], tile_end, ops) == 6
    assert ring[0, 5 & 3] == 99
    assert ops[0, K._O_TDONE] == 1
    assert tile_end[opc[0, K._C_TOFF]] == 99
    stack = np.zeros(len(prog.engine) + 1, np.int64)
    succ = prog.succ_idx[prog.succ_ptr[0] : prog.succ_ptr[1]]
    left = ops[succ, K._O_LEFT].copy()
    K._retire_op.py_func(0, 123, opc, ops, prog.succ_ptr, prog.succ_idx, stack, 0)
    for s, was in zip(succ, left, strict=True):
        if not (prog.pipe_on[s] and prog.pipe_src[s] == 0):
            assert ops[s, K._O_READY] == 123
            assert ops[s, K._O_LEFT] == was - 1
