"""The adder-tree engine in RTL (``accelsim/sim/reference/rtl/tree_gemm.v``), simulated by Verilator
through cocotb, against numpy and the fast model (``adder_tree_busy_cycles``).

The engines are those the published adder-tree designs build, read from their configs
(``trio_vit`` / ``efficientvit_fpga``: 16 lanes x 4 columns x trees of 8; ``heatvit`` /
``auto_vit_acc``: 2 x 64 x 16; both with two INT8 products per DSP, WP486), run on every GEMM the
simulator runs on that engine for DeiT-Tiny (the patch embedding, a block's qkv, projection, both
MLP layers and its two attention matmuls as a batch of 3 heads, the classifier with M = 1), each
also with M = 1; and two small engines on hand-computed cases with partial folds in every
dimension, an odd tree (5 inputs: 3 levels, one node passing through) and packing. For every
GEMM the product must equal numpy's and the engine's own index of its last accumulation cycle
must equal ``busy - 1`` of the formula (the convention of ``GemmTiming.compute_cycles``) and,
for DeiT-Tiny's layers, the compute cycles the simulator charges the layer.

Without Verilator or cocotb these tests skip with one line saying what to install. The Verilator
build (every engine in one: 50 to 65 s on two shared cores at load 7, 23 s of CPU) is cached in
pytest's cache directory and reused while nothing that goes into it changes; with it cached the
module takes 23 to 42 s there (load 7 to 8; the simulator's CPU from start to done is 1.4 s for
145,776 cycles on the 16x4x8 engine and 1.1 s for 41,032 on the 2x64x16 one, the rest is
loading, dumping, start-up and the load's wait).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from rtl_harness import missing_tools, product_disagreements
from tree_harness import TreeCase, TreeEngine, TreeResult, build, run

from accelsim.config.hardware import HardwareConfig
from accelsim.ir.builders import vit_graph
from accelsim.sim import simulate
from accelsim.sim.engines.systolic import adder_tree_busy_cycles
from accelsim.sim.graph_arrays import compile_graph
from accelsim.sim.reference.rtl import SOURCES

Built = tuple[Path, tuple[TreeEngine, ...]]  # a build's directory and its engines


def _published(config: str, max_kf: int) -> TreeEngine:
    hw = HardwareConfig.load(config)
    a, pack = hw.array, hw.packing_for(8, 8)
    assert a.kind == "adder_tree" and (pack.m, pack.k) == (1, 1)  # the RTL packs along N only
    return TreeEngine(a.rows, a.cols, a.tree, pack.n, max_rows=1024, max_kf=max_kf, max_cols=1024, max_n=1024)


#: memories hold K = 768 (ceil(768 / tree) words a row) and a batch of 3 x 197 rows or columns
TRIO_CONFIG, HEAT_CONFIG = "published/trio_vit", "published/heatvit"
TRIO = _published(TRIO_CONFIG, max_kf=128)
HEAT = _published(HEAT_CONFIG, max_kf=64)
SMALL = TreeEngine(3, 2, 5)  # 3 tree levels (5 -> 3 -> 2 -> 1), no packing
SMALL_PACKED = TreeEngine(2, 3, 3, 2)  # 2 levels, 6 output channels per step
ENGINES = [TRIO, HEAT, SMALL, SMALL_PACKED]

#: DeiT-Tiny's GEMMs (M, K, N): qkv, projection, MLP up, MLP down, Q K^T, attention x V
DEIT_TINY = [
    (197, 192, 576),
    (197, 192, 192),
    (197, 192, 768),
    (197, 768, 192),
    (197, 64, 197),
    (197, 197, 64),
]

#: (engine, batch, M, K, N, last accumulation cycle by hand): S steps issue in cycles 0..S-1 and
#: each reaches its accumulator LV + 1 cycles later (multiplier register, LV tree levels), so the
#: last accumulation is in cycle S + LV; S = batch ceil(M / lanes) ceil(N / (cols pn)) ceil(K / tree)
HAND = [
    # 7 = 2x3 + 1 tokens, 5 = 2x2 + 1 channels, 12 = 2x5 + 2 inputs: 3 x 3 x 3 = 27 steps, + 3
    (SMALL, 1, 7, 12, 5, 27 + 3),
    # M = 1: one token block with 2 idle lanes; 3 channel blocks x 4 folds (20 = 4x5) = 12 steps
    (SMALL, 1, 1, 20, 6, 12 + 3),
    # a batch of 2: 2 x (2 x 4 x 2) = 32 steps
    (SMALL, 2, 4, 9, 7, 32 + 3),
    # one step: multiply in cycle 0, levels in 1..3, accumulate in cycle 4
    (SMALL, 1, 1, 1, 1, 1 + 3),
    # packed: 7 channels = one block of 6 and one with a single product of a DSP pair used:
    # 2 x (2 token blocks x 2 channel blocks x 3 folds (9 = 3x3)) = 24 steps, + 2
    (SMALL_PACKED, 2, 4, 9, 7, 24 + 2),
    # 4 token blocks x 1 channel block x 4 folds (12 = 4x3) = 16 steps
    (SMALL_PACKED, 1, 7, 12, 5, 16 + 2),
    (SMALL_PACKED, 1, 1, 1, 1, 1 + 2),
]

MISSING = missing_tools()


@pytest.fixture(scope="module")
def tree_build(rtl_cache_dir: Path) -> Built:
    if MISSING is not None:
        pytest.skip(MISSING)
    return build(ENGINES, rtl_cache_dir)


def _case(engine: TreeEngine, batch: int, m: int, k: int, n: int, seed: int) -> TreeCase:
    rng = np.random.default_rng(seed)
    return TreeCase(rng.integers(-128, 128, (batch, m, k)), rng.integers(-128, 128, (batch, k, n)), engine)


def _formula(case: TreeCase) -> int:
    (batch, m, k), n, e = case.a.shape, case.b.shape[2], case.engine
    return adder_tree_busy_cycles(m, k, n, batch, e.lanes, e.cols, e.tree, 1, 1, e.pn)[0] - 1


def _disagreements(case: TreeCase, res: TreeResult, other: tuple[str, int] | None = None) -> list[str]:
    """What differs between the RTL's result, numpy, the formula and ``other``'s figure
    (``(name, last cycle)``: by hand, or what the simulator charges the layer)."""
    (batch, m, k), n, e = case.a.shape, case.b.shape[2], case.engine
    label = f"{batch} x {m}x{k}x{n} on {e.name}"
    if res.timed_out:
        return [f"{label}: the RTL never raised done"]
    out = product_disagreements(label, res.product, case.a @ case.b)
    formula = _formula(case)
    if res.last_out_cycle != formula or (other is not None and other[1] != formula):
        also = f", {other[0]} {other[1]}" if other is not None else ""
        out.append(f"{label}: last output cycle RTL {res.last_out_cycle}, formula {formula}{also}")
    return out


def _check(built: Built, cases: list[TreeCase], tmp_path: Path, others: list[tuple[str, int] | None]) -> None:
    results = run(built, cases, tmp_path)
    failures = [
        msg for c, r, o in zip(cases, results, others, strict=True) for msg in _disagreements(c, r, o)
    ]
    assert not failures, f"{len(failures)} disagreements in {len(cases)} GEMMs:\n" + "\n".join(failures)


@pytest.mark.slow
def test_rtl_tree_by_hand(tree_build: Built, tmp_path: Path) -> None:
    cases = [_case(e, b, m, k, n, seed) for seed, (e, b, m, k, n, _) in enumerate(HAND)]
    _check(tree_build, cases, tmp_path, [("by hand", h[-1]) for h in HAND])


def _simulated_gemms(config: str) -> dict[tuple[int, int, int, int], int]:
    """``(batch, M, K, N) -> compute cycles`` of every array op of DeiT-Tiny as the simulator
    charges it on ``config`` (attention's matmuls are batched over the heads)."""
    g, hw = vit_graph("tiny"), HardwareConfig.load(config)
    ga = compile_graph(g)
    shape_of = {name: ga.shapes[ga.shape_id[i]].tolist() for i, name in enumerate(ga.names)}
    out = {}
    for row in simulate(g, hw).layers:
        if row.engine == "array":
            m, k, n, _, _, batch, _ = shape_of[row.name]
            out[(batch, m, k, n)] = row.compute_cycles
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "engine"), [(TRIO_CONFIG, TRIO), (HEAT_CONFIG, HEAT)], ids=[TRIO.name, HEAT.name]
)
def test_rtl_tree_deit_tiny_equals_numpy_formula_and_simulator(
    tree_build: Built, config: str, engine: TreeEngine, tmp_path: Path
) -> None:
    charged = _simulated_gemms(config)
    # DeiT-Tiny's GEMMs: the patch embedding, the six of a block (attention's over 3 heads), the head
    assert {(m, k, n) for _, m, k, n in charged} >= set(DEIT_TINY) and len(charged) == 8
    shapes = [*charged, *sorted({(1, 1, k, n) for _, _, k, n in charged} - set(charged))]  # and M = 1
    cases = [_case(engine, *s, seed) for seed, s in enumerate(shapes)]
    _check(tree_build, cases, tmp_path, [("simulator", charged[s]) if s in charged else None for s in shapes])


def test_a_wrong_product_or_cycle_count_is_reported() -> None:
    """The comparison itself can fail: wrong entries and a wrong cycle count are both named."""
    case = _case(SMALL, 1, 7, 12, 5, 0)
    right = _formula(case)
    assert right == 30  # HAND's first case
    assert not _disagreements(case, TreeResult(case.a @ case.b, right, 0.0), ("by hand", right))
    wrong = case.a @ case.b
    wrong[0, 6, 4] += 1
    (msg,) = _disagreements(case, TreeResult(wrong, right, 0.0))
    assert msg == "1 x 7x12x5 on t3x2x5p1: product differs from numpy in 1 of 35 entries"
    (msg,) = _disagreements(case, TreeResult(case.a @ case.b, right + 1, 0.0), ("by hand", right))
    assert msg.endswith("last output cycle RTL 31, formula 30, by hand 30")
    (msg,) = _disagreements(case, TreeResult(case.a @ case.b, right, 0.0), ("simulator", right + 2))
    assert msg.endswith("last output cycle RTL 30, formula 30, simulator 32")
    (msg,) = _disagreements(case, TreeResult(np.zeros((0, 0, 0), np.int64), -1, 0.0, timed_out=True))
    assert msg == "1 x 7x12x5 on t3x2x5p1: the RTL never raised done"


@pytest.mark.skipif(shutil.which("verilator") is None, reason="needs Verilator (apt-get install verilator)")
@pytest.mark.parametrize(
    ("lanes", "cols", "tree", "pn"), [(1, 1, 1, 1), (3, 2, 5, 1), (2, 3, 3, 2), (16, 4, 8, 2), (2, 64, 16, 2)]
)
def test_rtl_tree_is_lint_clean(lanes: int, cols: int, tree: int, pn: int) -> None:
    params = {"LANES": lanes, "COLS": cols, "TREE": tree, "PN": pn}
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", "tree_gemm"]
    cmd += [f"-G{k}={v}" for k, v in params.items()] + [str(p) for p in SOURCES["tree_gemm"]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
