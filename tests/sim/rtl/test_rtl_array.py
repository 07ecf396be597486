"""The systolic arrays in RTL (``accelsim/sim/reference/rtl/``), simulated by Verilator through cocotb.

Small random integer GEMMs run through the ws and os arrays (is: the ws array on the transposed
problem) on a few array sizes, unpacked and with two products per DSP (WP486 packing, each way the
RTL packs: along N under ws and os, along M under is, and the streamed vectors of ws with M packed
and of is with N packed), and DeiT-Tiny's GEMMs on a 32x64 array, unpacked and packed as the default
INT8 design packs them (n = 2). For every GEMM the product must equal numpy's, and the cycle the
RTL counts as its last MAC must equal both the fast formula
(``gemm_timing(..., "pipelined").compute_cycles``) and the PE-level model (``pe_gemm``): the
timing of the simulator checked against a hardware description, not against itself.

The shapes cover one and many folds, partial folds at every edge, folds shorter than the weight
preload (``T < R``: ws with small M, is with small N, os with small K), GEMVs (``M = 1``) and one
row or column arrays. Without Verilator or cocotb these tests skip with one line saying what to
install; ``.ci/run`` installs Verilator, so CI runs them. Two Verilator builds (the small arrays,
and the five 32x64 arrays with memories of 1000 rows; about 1.5 to 2 minutes each on two shared
cores at load 5, one compile job) are cached in pytest's cache directory and reused while nothing
that goes into them changes; the 32x64 GEMMs then take about two and a half minutes (130,000 cycles
packed, 26,000 unpacked; Verilator evaluates the 2,048 PEs of the running array every cycle).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from rtl_harness import (
    ArraySpec,
    GemmCase,
    RtlBuild,
    RtlResult,
    array_spec,
    build,
    missing_tools,
    product_disagreements,
    run,
)

from accelsim.sim.engines.systolic import NO_PACKING, Packing, gemm_timing
from accelsim.sim.reference.pe import pe_gemm
from accelsim.sim.reference.rtl import SOURCES

ARRAYS = [(1, 1), (2, 3), (4, 4), (3, 5)]
# packed too: Packing(n=2) packs ws's and os's columns and is's stream, Packing(m=2) ws's stream
# and is's columns (os cannot pack M), so together they build every packed array
PACKED_ARRAYS = [(1, 1), (3, 5)]
SMALL_PACKINGS = [Packing(n=2), Packing(m=2)]
MAX_DIM = 20
# (M, K, N): by hand, for what each one exercises on the arrays above
SHAPES = [
    (1, 1, 1),  # one MAC
    (1, 20, 20),  # GEMV: ws folds of T = 1, waiting for every weight load
    (2, 9, 4),  # ws T = M = 2 below R = 3, 4; partial K folds
    (20, 1, 20),  # os T = K = 1 < R: folds issue every R cycles, bound by the drain port
    (20, 20, 20),  # many full folds back to back
    (17, 13, 19),  # partial folds at every edge
    (3, 20, 2),  # few columns, long reduction
    (20, 3, 1),  # N = 1: is folds of T = 1
    (5, 5, 5),
    (13, 2, 17),
]
RANDOM_SHAPES = 4  # per array size, drawn from a fixed seed
DATAFLOWS = ["ws", "is", "os"]

# The arrays at a real size: 32 x 64 DSPs, unpacked and with the default INT8 design's packing (two
# products per DSP48E2 along N, WP486), on DeiT-Tiny's GEMMs (197 tokens, embed 192, 3 heads of
# 64, MLP 768) and two GEMVs. One build holds the five arrays (ws and os at each packing; is
# packs its stream, another ws array), memories of REAL_MAX_DIM rows and columns.
REAL_ARRAY = (32, 64)
REAL_MAX_DIM = 1000  # the classifier head's N; benchmarks/bench_error_table.py --rtl shares this build
PACKINGS = [Packing(n=2), NO_PACKING]
DEIT_TINY_GEMMS = [
    (197, 192, 576),  # attn.qkv
    (197, 192, 192),  # attn.proj
    (197, 192, 768),  # mlp.fc1
    (197, 768, 192),  # mlp.fc2
    (197, 64, 197),  # q @ k^T, one head
    (197, 197, 64),  # p @ v, one head
    (196, 768, 192),  # patch embedding (16x16/16 conv as a GEMM)
    (1, 192, 1000),  # M = 1: the classifier head (ws: folds of T = 1, bound by the weight loads)
    (1, 768, 192),  # M = 1: fc2 on one token (os: one row of outputs, a one-row drain per fold)
]

MISSING = missing_tools()


@pytest.fixture(scope="session")
def rtl_build(rtl_cache_dir: Path) -> RtlBuild:
    if MISSING is not None:
        pytest.skip(MISSING)
    specs = [ArraySpec(kind, r, c) for r, c in ARRAYS for kind in ("ws", "os")]
    specs += sorted({array_spec(df, r, c, p) for r, c in PACKED_ARRAYS for df, p in _packed_kinds()}, key=str)
    return build(specs, rtl_cache_dir, max_dim=MAX_DIM)


def _packed_kinds() -> list[tuple[str, Packing]]:
    return [(df, p) for df in DATAFLOWS for p in SMALL_PACKINGS if not (df == "os" and p.m > 1)]


def _cases(rows: int, cols: int) -> list[GemmCase]:
    rng = np.random.default_rng(1000 * rows + cols)
    shapes = SHAPES + [tuple(int(v) for v in rng.integers(1, MAX_DIM + 1, 3)) for _ in range(RANDOM_SHAPES)]
    cases = []
    for M, K, N in shapes:
        a = rng.integers(-128, 128, (M, K))
        b = rng.integers(-128, 128, (K, N))
        cases += [GemmCase(a, b, rows, cols, df) for df in DATAFLOWS]
        if (rows, cols) in PACKED_ARRAYS:
            cases += [GemmCase(a, b, rows, cols, df, p) for df, p in _packed_kinds()]
    return cases


def _disagreements(case: GemmCase, res: RtlResult, pe_model: bool = True) -> list[str]:
    """What is wrong with the RTL's result: its product against numpy, its last MAC cycle against the
    formula and (``pe_model``) the PE model."""
    (M, K), N = case.a.shape, case.b.shape[1]
    packed = "" if case.packing == NO_PACKING else f" packed {case.packing}"
    label = f"{case.dataflow} M={M} K={K} N={N} on {case.rows}x{case.cols}{packed}"
    if res.timed_out:
        return [f"{label}: the RTL never raised done"]
    out = product_disagreements(label, res.product, case.a @ case.b)
    formula = gemm_timing(
        M, K, N, case.rows, case.cols, case.dataflow, "pipelined", case.packing
    ).compute_cycles
    pe_cycles = formula
    if pe_model:
        pe_cycles = pe_gemm(case.a, case.b, case.rows, case.cols, case.dataflow, "pipelined", case.packing)[1]
    if not res.last_mac_cycle == formula == pe_cycles:
        out.append(
            f"{label}: last MAC cycle RTL {res.last_mac_cycle}, formula {formula}, PE model {pe_cycles}"
        )
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("rows", "cols"), ARRAYS)
def test_rtl_product_and_cycles_equal_numpy_formula_and_pe_model(
    rtl_build: RtlBuild, rows: int, cols: int, tmp_path: Path
) -> None:
    cases = _cases(rows, cols)
    results = run(rtl_build, cases, tmp_path)
    failures = [msg for case, res in zip(cases, results, strict=True) for msg in _disagreements(case, res)]
    assert not failures, f"{len(failures)} disagreements in {len(cases)} GEMMs:\n" + "\n".join(failures)


@pytest.fixture(scope="session")
def rtl_build_real(rtl_cache_dir: Path) -> RtlBuild:
    if MISSING is not None:
        pytest.skip(MISSING)
    specs = {array_spec(df, *REAL_ARRAY, p) for df in DATAFLOWS for p in PACKINGS}
    return build(sorted(specs, key=lambda s: s.name), rtl_cache_dir, max_dim=REAL_MAX_DIM)


# Unpacked, the array runs each GEMM in up to twice the cycles: a subset keeps the module's time down
# (qkv: partial column folds; p @ v: a partial row fold; the head: a GEMV), every shape in the bench
UNPACKED_GEMMS = [(197, 192, 576), (197, 197, 64), (1, 192, 1000)]


@pytest.mark.slow
@pytest.mark.parametrize("packing", PACKINGS, ids=["packed", "unpacked"])
def test_rtl_at_32x64_on_deit_tiny_gemms_equals_numpy_and_formula(
    rtl_build_real: RtlBuild, packing: Packing, tmp_path: Path
) -> None:
    rng = np.random.default_rng(23)
    cases = []
    for M, K, N in DEIT_TINY_GEMMS if packing != NO_PACKING else UNPACKED_GEMMS:
        a = rng.integers(-128, 128, (M, K))
        b = rng.integers(-128, 128, (K, N))
        cases += [GemmCase(a, b, *REAL_ARRAY, df, packing) for df in DATAFLOWS]
    results = run(rtl_build_real, cases, tmp_path)
    # the PE model is left out here: at 32x64 it costs half a second a GEMM, and
    # benchmarks/bench_error_table.py shows it equal to the formula on every one of these layers
    failures = [
        m for case, res in zip(cases, results, strict=True) for m in _disagreements(case, res, pe_model=False)
    ]
    assert not failures, f"{len(failures)} disagreements in {len(cases)} GEMMs:\n" + "\n".join(failures)


def test_a_wrong_product_or_cycle_count_is_reported() -> None:
    """The comparison itself can fail: wrong entries and a wrong cycle count are both named."""
    a, b = np.arange(6).reshape(2, 3), np.ones((3, 2), np.int64)
    case = GemmCase(a, b, 2, 2, "os")
    right = gemm_timing(2, 3, 2, 2, 2, "os").compute_cycles
    assert not _disagreements(case, RtlResult(a @ b, right, right + 3, 0.0))
    wrong = a @ b
    wrong[1, 0] += 1
    (msg,) = _disagreements(case, RtlResult(wrong, right, right + 3, 0.0))
    assert "product differs from numpy in 1 of 4 entries" in msg
    (msg,) = _disagreements(case, RtlResult(a @ b, right + 1, right + 4, 0.0))
    assert f"last MAC cycle RTL {right + 1}, formula {right}, PE model {right}" in msg
    assert _disagreements(case, RtlResult(np.zeros((0, 0), np.int64), -1, -1, 0.0, timed_out=True)) == [
        "os M=2 K=3 N=2 on 2x2: the RTL never raised done"
    ]


# each module unpacked and with each packing it builds (two 8-bit products per DSP)
LINT_TOPS = [
    ("os_gemm", {}),
    ("os_gemm", {"PN": 2}),
    ("ws_gemm", {}),
    ("ws_gemm", {"PC": 2}),
    ("ws_gemm", {"PS": 2}),
]


@pytest.mark.skipif(shutil.which("verilator") is None, reason="needs Verilator (apt-get install verilator)")
@pytest.mark.parametrize(("top", "packing"), LINT_TOPS)  # dataflow_pair: test_rtl_dataflow.py
@pytest.mark.parametrize(
    ("rows", "cols", "widths"), [(1, 1, (8, 32)), (1, 4, (8, 32)), (4, 1, (8, 32)), (3, 5, (16, 40))]
)
def test_rtl_is_lint_clean(
    top: str, packing: dict[str, int], rows: int, cols: int, widths: tuple[int, int]
) -> None:
    params = {"ROWS": rows, "COLS": cols, "DATA_W": widths[0], "ACC_W": widths[1], **packing}
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", top]
    cmd += [f"-G{k}={v}" for k, v in params.items()] + [str(p) for p in SOURCES[top]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if packing and widths[0] != 8:  # WP486's layout is for 8-bit operands: the array refuses others
        assert proc.returncode != 0
        assert "packing is two products of 8-bit operands per DSP at most" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr


# Every INT8 triple (a0, a1, c) through packed_mul2: WP486's sign correction is exact everywhere.
_PACKED_MUL2_TB = """
module tb;
    reg [15:0] a;
    reg [7:0] c;
    wire [31:0] p;
    assign p = packed_mul2::mul(a, c);
    integer i, j, k, bad;
    initial begin
        bad = 0;
        for (i = 0; i < 256; i = i + 1) for (j = 0; j < 256; j = j + 1) for (k = 0; k < 256; k = k + 1) begin
            a = {i[7:0], j[7:0]};
            c = k[7:0];
            #1;
            if ($signed(p[15:0]) != $signed(j[7:0]) * $signed(k[7:0])
                || $signed(p[31:16]) != $signed(i[7:0]) * $signed(k[7:0])) bad = bad + 1;
        end
        $display("wrong products: %0d of 16777216", bad);
        $finish;
    end
endmodule
"""


@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_packed_mul2_gives_both_products_of_every_int8_triple(tmp_path: Path) -> None:
    (tmp_path / "tb.v").write_text(_PACKED_MUL2_TB)
    src = SOURCES["ws_gemm"][1]
    assert src.name == "packed_mul2.v"
    build = [
        "verilator",
        "--binary",
        "-j",
        "1",
        "--timing",
        "-Wno-fatal",
        "--top-module",
        "tb",
        "-Mdir",
        "obj",
    ]
    proc = subprocess.run(
        [*build, str(src), "tb.v"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_ = subprocess.run([str(tmp_path / "obj" / "Vtb")], capture_output=True, text=True, timeout=120)
    assert "wrong products: 0 of 16777216" in run_.stdout, run_.stdout + run_.stderr
