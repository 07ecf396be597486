"""The schedule kernel's block jump: skipping repeated transformer blocks changes no output.

The kernel with the jump (the program's period hint) must return exactly the arrays it returns
without it (period ``(0, 0, 0)``), on the shipped graphs over random hardware points, on hand-made
programs that differ in one block, and on random periodic programs (hypothesis) with right and
wrong hints. A fourth period entry receives the blocks skipped, so the tests also check that the
jump happened where it should.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_report_pins import GRAPHS, _graph, _point
from test_sweep import _mixed, _points

from accelsim.config.hardware import HardwareConfig
from accelsim.ir.builders import vit_graph
from accelsim.sim import _schedule_kernel as K
from accelsim.sim import compile_graph, map_graph
from accelsim.sim._period import NO_PERIOD, block_period, find_period

_OFF = np.zeros(3, np.int64)
#: designs whose mapping the sweep does not reach: units of every kind, adder trees, overlays
_BASES = (
    "zcu102",
    "zcu102_softmax",
    "zcu102_trio",
    "u280",
    "published/auto_vit_acc",
    "published/auto_vit_acc_fixed",
    "published/efficientvit_fpga",
    "published/trio_vit",
    "published/heatvit",
    "published/p2_vit",
    "published/huang_tcas1",
)


def _both(prog: tuple[Any, ...], dram: tuple[Any, ...], overlap: bool, py: bool = False) -> int:
    """Runs ``prog`` with its period and without; asserts the same arrays; the blocks skipped."""
    run = K.run_schedule.py_func if py else K.run_schedule
    period = np.zeros(4, np.int64)
    period[:3] = prog[-1]
    on = run((*prog[:-1], period), dram, overlap, False)
    off = run((*prog[:-1], _OFF), dram, overlap, False)
    np.testing.assert_array_equal(on.ops, off.ops)
    np.testing.assert_array_equal(on.busy, off.busy)
    assert on[4:] == off[4:]
    return int(period[3])


def _prog(s: Any) -> tuple[tuple[Any, ...], tuple[Any, ...], bool]:
    return tuple(s.program()), tuple(s.dram()), bool(s.hardware.overlap)


def test_period_of_the_shipped_deits_and_of_plain_signatures() -> None:
    # DeiT: 5 prefix ops (patch embed, cls, pos), blocks of 19 ops; the 12th block feeds the tail
    # differently, so 11 of them are alike
    for name in ("deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224"):
        assert block_period(_graph(name)).tolist() == [5, 19, 11]
    assert find_period(np.array([9, 1, 2, 1, 2, 1, 2, 7])).tolist() == [1, 2, 3]
    assert find_period(np.array([1, 2, 3, 4])).tolist() == NO_PERIOD.tolist() == [0, 0, 0]
    assert find_period(np.array([5, 5, 5, 5])).tolist() == [0, 1, 4]  # the shortest block wins a tie


@pytest.mark.parametrize("graph", GRAPHS)
def test_jump_changes_nothing_on_random_points(graph: str) -> None:
    ga = _graph(graph)
    rng = random.Random(f"jump/{graph}")
    points = [_point(rng) for _ in range(10)] + [HardwareConfig.load(b) for b in _BASES]
    skipped = [_both(*_prog(map_graph(ga, hw))) for hw in points]
    if graph.startswith("deit"):
        # every point with overlap jumps (serial mode never does)
        assert all((k > 0) == hw.overlap for k, hw in zip(skipped, points, strict=True)), skipped


def test_jump_changes_nothing_over_the_deit_small_sweep() -> None:
    """A deterministic tenth of the benchmark sweep (bench_sim.sweep_points): every point jumps."""
    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    from bench_sim import sweep_points

    ga = _graph("deit_small_patch16_224")
    points = sweep_points(HardwareConfig.load("zcu102"), 1000)[::10]
    skipped = [_both(*_prog(map_graph(ga, hw))) for hw in points]
    assert min(skipped) >= 8, skipped


def test_jump_changes_nothing_with_streaming_and_buffers_varied() -> None:
    ga = _graph("deit_small_patch16_224")
    base = HardwareConfig.load("zcu102")
    for db in (True, False):
        for kib in (8, 32, 512):  # 8 KiB: tiles split fine, partial sums spill
            for heads in (True, False):
                hw = base.with_changes(
                    **{
                        "buffers.double_buffer": db,
                        "buffers.input_kib": kib,
                        "buffers.weight_kib": kib,
                        "buffers.output_kib": kib,
                        "pipeline_heads": heads,
                    }
                )
                assert _both(*_prog(map_graph(ga, hw))) > 0


def test_a_block_that_differs_is_not_jumped_over() -> None:
    """One op of block 9 (of the hint's 11) computes one cycle longer: the kernel stops its jump
    before the block that differs, and still returns the arrays of the run without the jump."""
    s = map_graph(_graph("deit_small_patch16_224"), HardwareConfig.load("zcu102"))
    prog, dram, overlap = _prog(s)
    s0, per, _ = prog[-1]
    assert _both(prog, dram, overlap) == 9  # blocks 2..10 (block 11 of 12 feeds the tail)
    for j in (0, 7, 18):  # an op on the array, another, the block's last
        x = s0 + 9 * per + j
        comp = prog[5].copy()
        comp[x] += 1
        bent = (*prog[:5], comp, *prog[6:])
        assert 0 < _both(bent, dram, overlap) < 9
    stores = prog[9].copy()
    stores[s0 + 4 * per + 3] += 64
    assert 0 < _both((*prog[:9], stores, *prog[10:]), dram, overlap) < 9
    # two neighbours of the array's queue swapped in block 6 (the program's per-op fields all
    # repeat; only the queue does not): the run without the jump gets stuck there, and so must
    # the one with it
    eq_ptr, eq_ops = prog[15], prog[16].copy()
    h = int(np.flatnonzero(eq_ops[: eq_ptr[1]] >= s0 + 6 * per)[0])
    eq_ops[h], eq_ops[h + 1] = eq_ops[h + 1], eq_ops[h]
    assert 0 < _both((*prog[:16], eq_ops, *prog[17:]), dram, overlap) < 9


def test_wrong_hints_are_harmless() -> None:
    s = map_graph(_graph("deit_tiny_patch16_224"), HardwareConfig.load("zcu102"))
    prog, dram, overlap = _prog(s)
    for hint in ((5, 19, 12), (4, 19, 11), (5, 38, 5), (5, 18, 12), (0, 1, 200), (5, 19, 2), (0, 0, 0)):
        _both((*prog[:-1], np.array(hint, np.int64)), dram, overlap)
    assert _both((*prog[:-1], np.array((5, 38, 5), np.int64)), dram, overlap) > 0  # two blocks at once


def test_the_python_original_jumps_as_the_compiled_kernel() -> None:
    s = map_graph(_graph("deit_tiny_patch16_224"), HardwareConfig.load("zcu102"))
    prog, dram, overlap = _prog(s)
    period = np.zeros(4, np.int64)
    period[:3] = prog[-1]
    got = K.run_schedule.py_func((*prog[:-1], period), dram, overlap, False)
    want = K.run_schedule(prog, dram, overlap, False)
    np.testing.assert_array_equal(got.ops, want.ops)
    assert got[4:] == want[4:] and int(period[3]) == 9


def test_short_and_uneven_graphs() -> None:
    """Two blocks (nothing to skip), token pruning that makes blocks 3 and 6 of 8 differ, and a
    graph without repeats (every streaming edge kind): the same arrays, skips only where allowed."""
    hw = HardwareConfig.load("zcu102")
    two = compile_graph(vit_graph((192, 2, 3)))
    assert block_period(two).tolist() == [0, 0, 0]  # the second block feeds the head: none alike
    assert _both(*_prog(map_graph(two, hw))) == 0
    eight = compile_graph(vit_graph((192, 8, 3)))
    assert block_period(eight).tolist() == [4, 17, 7]  # the builder's blocks are 17 ops
    assert _both(*_prog(map_graph(eight, hw))) > 0
    pruned = compile_graph(vit_graph((192, 8, 3), token_keep=((3, 6), 0.7)))
    assert block_period(pruned).tolist() == [4, 17, 2]  # two equal blocks between the prunings
    assert _both(*_prog(map_graph(pruned, hw))) == 0  # fewer than three blocks: no jump
    mixed = compile_graph(_mixed())
    for hw2 in (hw, *_points()):
        _both(*_prog(map_graph(mixed, hw2)))


@st.composite
def _periodic(draw: st.DrawFn) -> tuple[tuple[Any, ...], tuple[Any, ...], int]:
    """A random program: a prefix, ``B`` copies of a random block of ``P`` ops (engines, tiles,
    bytes, dependencies up to 3 ops back, streaming behind the previous op), a tail; the hint is
    right or a little wrong; sometimes one field of one op is changed afterwards, or two ops swapped
    in a queue (swapped across engines or against their order, the run is stuck: both runs must stop
    alike)."""
    n_eng = draw(st.integers(1, 3))
    per = draw(st.integers(1, 4))
    n_blk = draw(st.integers(2, 10))
    pre, tail = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    ints = st.integers

    def op() -> dict[str, int]:
        tpo, n_out = draw(ints(1, 3)), draw(ints(1, 2))
        return {
            "engine": draw(ints(-1, n_eng - 1)), "tpo": tpo, "n_outer": n_out, "nt": tpo * n_out,
            "reuse": draw(ints(0, 1)), "comp": draw(ints(0, 40)), "once": draw(ints(0, 300)),
            "strm": draw(ints(0, 300)), "spill": draw(ints(0, 60)), "store": draw(ints(0, 300)),
            "act": draw(ints(0, 1)), "slots": draw(ints(1, 3)), "back": draw(ints(0, 7)),
            "pipe": draw(ints(0, 1)), "groups": draw(ints(0, 2)), "span": draw(ints(1, 6)),
        }  # fmt: skip

    block = [op() for _ in range(per)]
    ops = (
        [op() for _ in range(pre)]
        + [dict(o) for _ in range(n_blk) for o in block]
        + [op() for _ in range(tail)]
    )
    n = len(ops)
    if draw(st.booleans()):  # one op differs from its copies
        o = ops[draw(ints(0, n - 1))]
        o[draw(st.sampled_from(("comp", "store", "once", "slots", "engine")))] += 1
        o["engine"] = min(o["engine"], n_eng - 1)
    preds: list[list[int]] = []
    for x, o in enumerate(ops):
        ps = sorted({x - 1} | {x - d for d in (2, 3) if (o["back"] >> (d - 2)) & 1}) if x else []
        preds.append([p for p in ps if p >= 0])
    col = {k: np.array([o[k] for o in ops], np.int64) for k in ops[0]}
    pipe_on = np.array(
        [x > 0 and o["pipe"] and o["engine"] >= 0 and ops[x - 1]["engine"] >= 0 for x, o in enumerate(ops)],
        np.int64,
    )
    pipe_src = np.where(pipe_on > 0, np.arange(n) - 1, -1).astype(np.int64)
    pred_ptr = np.cumsum([0] + [len(p) for p in preds]).astype(np.int64)
    succs: list[list[int]] = [[] for _ in range(n)]
    for x, ps in enumerate(preds):
        for p in ps:
            succs[p].append(x)
    succ_ptr = np.cumsum([0] + [len(s) for s in succs]).astype(np.int64)
    succ_idx = np.array([s for ss in succs for s in ss] or [0], np.int64)[: succ_ptr[-1]]
    eq_ops = np.array([x for e in range(n_eng) for x in range(n) if ops[x]["engine"] == e], np.int64)
    eq_ptr = np.cumsum([0] + [int((col["engine"] == e).sum()) for e in range(n_eng)]).astype(np.int64)
    if eq_ops.size >= 2 and draw(ints(0, 3)) == 0:  # two neighbours in a queue swapped (a stuck run too)
        h = draw(ints(0, eq_ops.size - 2))
        eq_ops[h], eq_ops[h + 1] = eq_ops[h + 1], eq_ops[h]
    hint = draw(
        st.sampled_from(((pre, per, n_blk), (pre, per, n_blk), (max(0, pre - 1), per, n_blk + 1), (pre, 2 * per, n_blk // 2), (pre + 1, per, n_blk)))
    )  # fmt: skip
    prog = (
        col["engine"], col["nt"], col["tpo"], col["n_outer"], col["reuse"], col["comp"], col["once"],
        col["strm"], col["spill"], col["store"], col["act"], col["slots"], pred_ptr, succ_ptr, succ_idx,
        eq_ptr, eq_ops, pipe_src, col["groups"], np.minimum(col["span"], col["nt"]), pipe_on,
        np.array(hint, np.int64),
    )  # fmt: skip
    dram = (
        float(draw(st.sampled_from((2.0, 8.0, 32.0)))),
        draw(st.sampled_from((16, 64))),
        draw(ints(0, 30)),
    )
    return prog, dram, n_blk


@settings(max_examples=400, deadline=None)
@given(_periodic())
def test_random_periodic_programs(case: tuple[tuple[Any, ...], tuple[Any, ...], int]) -> None:
    prog, dram, _ = case
    _both(prog, dram, True)
