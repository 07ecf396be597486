"""Fast systolic timing formulas: hand-computed cases in both timing modes, packing, invariants, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.errors import ConfigError
from accelsim.sim.engines import systolic
from accelsim.sim.engines.systolic import (
    DATAFLOW_CODES,
    TIMING_CODES,
    GemmTiming,
    Packing,
    array_busy_cycles,
    fold_cycles,
    gemm_busy_cycles,
    gemm_compute_cycles,
    gemm_folds,
    gemm_timing,
    gemm_timing_batch,
)

OS, WS, IS = DATAFLOW_CODES["os"], DATAFLOW_CODES["ws"], DATAFLOW_CODES["is"]
PIPE, SCALE = TIMING_CODES["pipelined"], TIMING_CODES["scalesim"]


def test_dataflow_codes_are_the_agreed_ones() -> None:
    assert DATAFLOW_CODES == {"os": 0, "ws": 1, "is": 2}


# Hand computations, C[7,5] = A[7,3] B[3,5] on a 4x4 array (105 MACs):
#  os: Sr=M=7, Sc=N=5, T=K=3 -> 2x2 folds of 3+4+4-2 = 9 cycles.
#      scalesim: 4 x 9 = 36 busy, 35 reported; used PEs 16+4+12+3 = 35 -> mapping 35/64;
#      util 35*3/(16*9*4) = 105/576.  pipelined: folds of L = 4, 3, 4, 3 data rows (the second row
#      fold drains only its 3 rows): starts S = 0, 4, 7, 11 (S2 = S1 + max(3, 3) = 7 = DS0 + 1 with
#      DS0 = 0 + 3 + 4 - 1; S3 = S2 + max(3, 4) = 11), busy = S3 + 3 + 4 + 4 - 2 = 20.
#  ws: Sr=K=3, Sc=N=5, T=M=7 -> 1x2 folds of 2*4+4+7-2 = 17.
#      scalesim: 34 busy; mapping 15/32; util 15*7/(16*(8+8+7-3)*2) = 105/640.
#      pipelined: each fold loads only its 3 rows of data: 3 + max(7, 3) + 7 + 4 + 4 - 2 = 23 busy.
#  is: Sr=K=3, Sc=M=7, T=N=5 -> 1x2 folds of 2*4+4+5-2 = 15.
#      scalesim: 30 busy; mapping 21/32; util 21*5/(16*(8+8+5-3)*2) = 105/576.
#      pipelined: 3 + max(5, 3) + 5 + 4 + 4 - 2 = 19 busy.
@pytest.mark.parametrize(
    ("df", "folds", "fold", "scalesim_busy", "mapping", "s_util", "pipelined_busy"),
    [
        ("os", (2, 2), 9, 36, 35 / 64, 105 / 576, 20),
        ("ws", (1, 2), 17, 34, 15 / 32, 105 / 640, 23),
        ("is", (1, 2), 15, 30, 21 / 32, 105 / 576, 19),
    ],
)
def test_hand_computed_7x3x5_on_4x4(
    df: str,
    folds: tuple[int, int],
    fold: int,
    scalesim_busy: int,
    mapping: float,
    s_util: float,
    pipelined_busy: int,
) -> None:
    code = DATAFLOW_CODES[df]
    assert gemm_folds(7, 3, 5, 4, 4, code) == folds
    stream_len = {"os": 3, "ws": 7, "is": 5}[df]
    assert fold_cycles(stream_len, 4, 4, code) == fold
    assert gemm_busy_cycles(7, 3, 5, 4, 4, code) == scalesim_busy
    assert gemm_compute_cycles(7, 3, 5, 4, 4, code) == scalesim_busy - 1
    for timing, busy in (("scalesim", scalesim_busy), ("pipelined", pipelined_busy)):
        t = gemm_timing(7, 3, 5, 4, 4, df, timing)
        assert isinstance(t, GemmTiming)
        assert (t.compute_cycles, t.busy_cycles) == (busy - 1, busy)
        assert t.utilization == pytest.approx(105 / (16 * busy), rel=1e-15)
        # SCALE-Sim's own fold averages do not depend on the timing mode
        assert t.scalesim_mapping_efficiency == pytest.approx(mapping, rel=1e-15)
        assert t.scalesim_compute_utilization == pytest.approx(s_util, rel=1e-15)


def test_deit_qkv_on_32x32_os_by_hand() -> None:
    # 197x192x576: ceil(197/32)=7 x ceil(576/32)=18 = 126 folds of 192+32+32-2 = 254 cycles
    assert gemm_compute_cycles(197, 192, 576, 32, 32, OS) == 126 * 254 - 1 == 32003
    # pipelined: the skew once, then 125 more folds of max(192, 32)
    assert gemm_timing(197, 192, 576, 32, 32, "os").busy_cycles == 254 + 125 * 192 == 24254


def test_deit_qkv_on_the_zcu102_default_by_hand() -> None:
    # 32x64 DSP48E2 slices, two INT8 products per slice along N (WP486): a fold is 32 x 128 logical.
    # ws: Sr=K=192 -> 6 row folds, Sc=N=576 -> 5 col folds, T=M=197.
    # scalesim (logical array): 30 folds of 2*32 + 128 + 197 - 2 = 387 (the figure).
    # pipelined (physical skew): 2*32 + 64 + 197 - 2 = 323 once, then 29 folds of max(197, 32).
    w8a8 = Packing(n=2)
    assert gemm_timing(197, 192, 576, 32, 64, "ws", "scalesim", w8a8).busy_cycles == 30 * 387
    assert gemm_timing(197, 192, 576, 32, 64, "ws", "pipelined", w8a8).busy_cycles == 323 + 29 * 197


def test_packing_along_k_and_along_the_stream_by_hand() -> None:
    # DSP58 INT8: a three-term dot product per slice (k=3). ws on 8x8: 24 logical rows.
    # M=50, K=48, N=16: 2 row folds x 2 col folds, T=50: 2*8+8+50-2 = 72, then 3 x 50.
    assert gemm_timing(50, 48, 16, 8, 8, "ws", "pipelined", Packing(k=3)).busy_cycles == 72 + 3 * 50
    # ...under os the dot product shortens the stream: T' = ceil(48/3) = 16, folds 7 x 2.
    assert gemm_timing(50, 48, 16, 8, 8, "os", "pipelined", Packing(k=3)).busy_cycles == (16 + 14) + 13 * 16
    # INT4 2x2 outer product (m=2, n=2) under ws: 8 x 16 logical, T' = ceil(50/2) = 25.
    # folds: ceil(48/8)=6 x ceil(16/16)=1; 2*8+8+25-2 = 47, then 5 x 25.
    assert gemm_timing(50, 48, 16, 8, 8, "ws", "pipelined", Packing(m=2, n=2)).busy_cycles == 47 + 5 * 25


def test_a_fold_shorter_than_its_preload_waits_for_the_weight_chain() -> None:
    # GEMV (M=1) under ws on 16x16: T=1 < R=16, so every fold after the first costs R cycles.
    # K=64, N=64: 4 x 4 folds; the first 2*16+16+1-2 = 47.
    assert gemm_timing(1, 64, 64, 16, 16, "ws").busy_cycles == 47 + 15 * 16
    # K=40: row folds of 16, 16 and 8 rows; the last of each column fold loads its 8 rows only:
    # 16 + (4 x (2 x 16 + 8) - 16) + 1 + 16 + 16 - 2 = 191: the loads take 40 rows per column fold
    # whatever R (the rest is skew), so 20 rows cost only the 4 more cycles of their skew
    assert gemm_timing(1, 40, 64, 16, 16, "ws").busy_cycles == 191
    assert gemm_timing(1, 40, 64, 20, 16, "ws").busy_cycles == 20 + (4 * 40 - 20) + 1 + 20 + 16 - 2


def test_non_square_array_uses_rows_for_sr_and_cols_for_sc() -> None:
    # ws, 12 rows x 14 cols: Sr=K=30 -> 3 row folds, Sc=N=15 -> 2 col folds, fold 24+14+5-2
    assert gemm_folds(5, 30, 15, 12, 14, WS) == (3, 2)
    assert gemm_compute_cycles(5, 30, 15, 12, 14, WS) == 6 * 41 - 1
    assert gemm_compute_cycles(5, 30, 15, 14, 12, WS) != gemm_compute_cycles(5, 30, 15, 12, 14, WS)


@pytest.mark.parametrize("df", [OS, WS, IS])
def test_jitted_kernels_match_their_python_originals(df: int) -> None:
    for args in [(1, 1, 1, 1, 1), (197, 64, 197, 16, 8), (3, 50, 2, 12, 14)]:
        for fn in (gemm_compute_cycles, gemm_busy_cycles, gemm_folds):
            assert fn(*args, df) == fn.py_func(*args, df)
        m, k, n, r, c = args
        for timing in (PIPE, SCALE):
            key = (m, k, n, 3, r, c, df, timing, 1, 2, 2)
            assert array_busy_cycles(*key) == array_busy_cycles.py_func(*key)


def test_a_batch_of_gemms_is_one_run_of_folds() -> None:
    # 4 heads of 16x8x16 on 8x8 ws: 4 x 1 x 2 folds; scalesim pays 8 full folds of 16+8+16-2 = 38,
    # pipelined the skew once: 38 + 7 x max(16, 8).
    assert array_busy_cycles(16, 8, 16, 4, 8, 8, WS, SCALE, 1, 1, 1) == (8 * 38, 1, 2)
    assert array_busy_cycles(16, 8, 16, 4, 8, 8, WS, PIPE, 1, 1, 1) == (38 + 7 * 16, 1, 2)


dims = st.integers(1, 5000)
arr = st.integers(1, 256)
dfs = st.sampled_from(["os", "ws", "is"])
packings = st.sampled_from([Packing(), Packing(n=2), Packing(k=3), Packing(m=2, n=2)])


@settings(max_examples=300, deadline=None)
@given(M=dims, K=dims, N=dims, R=arr, C=arr, df=dfs, pack=packings)
def test_invariants(M: int, K: int, N: int, R: int, C: int, df: str, pack: Packing) -> None:
    s = gemm_timing(M, K, N, R, C, df, "scalesim", pack)
    p = gemm_timing(M, K, N, R, C, df, "pipelined", pack)
    for t in (s, p):
        assert 0.0 < t.utilization <= 1.0  # never beats the roofline: busy x peak >= MACs
        assert 0.0 < t.scalesim_mapping_efficiency <= 1.0
        assert 0.0 < t.scalesim_compute_utilization <= 1.0  # 1.0 exactly on a 1x1 os array
        assert t.scalesim_compute_utilization <= t.scalesim_mapping_efficiency
    # pipelined never slower than SCALE-Sim's per-fold timing of the same array (where both modes
    # see the same array: packing along N is extra columns in both)
    if pack.m == pack.k == 1:
        assert p.busy_cycles <= s.busy_cycles
    # every PE-cycle of real work is counted: folds x used PEs sum to Sr x Sc
    code = DATAFLOW_CODES[df]
    _, fr, fc = array_busy_cycles(M, K, N, 1, R, C, code, SCALE, pack.m, pack.k, pack.n)
    lr, lc, _ = systolic.logical_array(R, C, code, SCALE, pack.m, pack.k, pack.n, 1)
    sr_sc = {"os": M * N, "ws": K * N, "is": K * M}[df]
    assert s.scalesim_mapping_efficiency == pytest.approx(sr_sc / (lr * lc * fr * fc), rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(M=dims, K=dims, N=dims, R=arr, C=arr, df=dfs, pack=packings)
def test_pipelined_grows_by_at_most_the_skew_it_adds(
    M: int, K: int, N: int, R: int, C: int, df: str, pack: Packing
) -> None:
    base = gemm_timing(M, K, N, R, C, df, "pipelined", pack).busy_cycles
    # one more column adds one cycle of skew and never adds folds
    assert gemm_timing(M, K, N, R, C + 1, df, "pipelined", pack).busy_cycles <= base + 1
    # one more row adds its preload and skew to the first fold (ws/is: 2 cycles, os: 1), and one
    # preload cycle to each further fold only where the preload is what sets its length
    folds = np.prod(gemm_folds(M, K, N, R, C, DATAFLOW_CODES[df], pack.m, pack.k, pack.n))
    _, _, t = systolic.spatio_temporal_dims(M, K, N, DATAFLOW_CODES[df])
    p_stream = systolic.packed_dims(DATAFLOW_CODES[df], pack.m, pack.k, pack.n)[2]
    preload_bound = -(-t // p_stream) <= R
    bound = (1 if df == "os" else 2) + (folds - 1) * preload_bound
    assert gemm_timing(M, K, N, R + 1, C, df, "pipelined", pack).busy_cycles <= base + bound


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(dims, dims, dims, arr, arr, st.integers(0, 2)), min_size=1, max_size=20))
def test_batch_equals_scalar(rows: list[tuple[int, int, int, int, int, int]]) -> None:
    a = np.array(rows, dtype=np.int64).T
    names = {v: k for k, v in DATAFLOW_CODES.items()}
    for timing in ("pipelined", "scalesim"):
        cyc, util, mapping, s_util = gemm_timing_batch(*a, timing=timing)
        for i, (M, K, N, R, C, df) in enumerate(rows):
            t = gemm_timing(M, K, N, R, C, names[df], timing)
            assert cyc[i] == t.compute_cycles
            assert util[i] == t.utilization
            assert mapping[i] == t.scalesim_mapping_efficiency
            assert s_util[i] == t.scalesim_compute_utilization


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(dims, dims, dims, arr, arr, st.integers(0, 2)), min_size=1, max_size=10), packings)
def test_packed_batch_equals_scalar(rows: list[tuple[int, int, int, int, int, int]], pack: Packing) -> None:
    names = {v: k for k, v in DATAFLOW_CODES.items()}
    cyc = gemm_timing_batch(*np.array(rows, dtype=np.int64).T, packing=pack)[0]
    for i, (M, K, N, R, C, df) in enumerate(rows):
        assert cyc[i] == gemm_timing(M, K, N, R, C, names[df], "pipelined", pack).compute_cycles


def test_batch_broadcasts_gemms_against_hardware_points() -> None:
    gemms = np.array([[197, 192, 576], [197, 64, 197]])
    sizes = np.array([8, 16, 32])
    out = gemm_timing_batch(gemms[:, 0:1], gemms[:, 1:2], gemms[:, 2:3], sizes[None, :], sizes[None, :], "ws")
    assert all(x.shape == (2, 3) for x in out)
    assert out[0][1, 2] == gemm_timing(197, 64, 197, 32, 32, "ws").compute_cycles


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dataflow": "rs"}, r"dataflow: must be one of 'os', 'ws', 'is' \(got 'rs'\)"),
        ({"timing": "fast"}, r"timing: must be one of 'pipelined', 'scalesim' \(got 'fast'\)"),
        ({"M": 0}, r"M: must be a positive integer \(got 0\)"),
        ({"cols": -3}, r"cols: must be a positive integer \(got -3\)"),
        ({"K": 2.0}, r"K: must be a positive integer \(got 2.0\)"),
        ({"rows": True}, r"rows: must be a positive integer \(got True\)"),
        ({"packing": Packing(k=0)}, r"pk: must be a positive integer \(got 0\)"),
    ],
)
def test_gemm_timing_rejects_bad_input(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"M": 4, "K": 4, "N": 4, "rows": 2, "cols": 2, "dataflow": "os"} | kwargs
    with pytest.raises(ConfigError, match=match):
        gemm_timing(**args)  # type: ignore[arg-type]


def test_gemm_timing_batch_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="N: must be positive"):
        gemm_timing_batch([4], [4], [0], 2, 2, "os")
    with pytest.raises(ConfigError, match="M: must be an integer array"):
        gemm_timing_batch([4.5], [4], [4], 2, 2, "os")
    with pytest.raises(
        ConfigError, match=r"dataflow: codes must be 0 \(os\), 1 \(ws\) or 2 \(is\) \(got \[3\]\)"
    ):
        gemm_timing_batch([4], [4], [4], 2, 2, np.array([3]))
    with pytest.raises(ConfigError, match="dataflow: must be one of"):
        gemm_timing_batch([4], [4], [4], 2, 2, "xs")
    with pytest.raises(ConfigError, match=r"pn: must be a positive integer \(got 0\)"):
        gemm_timing_batch([4], [4], [4], 2, 2, "os", packing=Packing(n=0))


def test_a_bigger_array_runs_an_op_as_a_smaller_one() -> None:
    # A depthwise channel as a GEMM (M = 784 pixels, K = 9 taps, N = 1) under os on 28 and 29 rows
    # of 4 columns, INT8 x2 along N. 28 rows: 28 full folds, each bound by its drain (max(9, 28)),
    # busy = 27 x 28 + 9 + 28 + 4 - 2 = 795. 29 rows: 27 full folds and one of 1 row, busy =
    # 27 x 29 + 9 + 29 + 4 - 2 = 823 (the last fold streams 9 vectors for 1 row of outputs). The
    # mapper runs it on 28 of the 29 rows (balanced folds), paying one cycle of skew: 796.
    os_, pip = DATAFLOW_CODES["os"], systolic.TIMING_CODES["pipelined"]
    assert systolic.array_busy_cycles(784, 9, 1, 1, 28, 4, os_, pip, 1, 1, 2)[0] == 795
    assert systolic.array_busy_cycles(784, 9, 1, 1, 29, 4, os_, pip, 1, 1, 2)[0] == 823
    assert systolic.mapped_busy_cycles(784, 9, 1, 1, 29, 4, os_, pip, 1, 1, 2) == (796, 28, 1)
    # SCALE-Sim's timing keeps its fixed folds
    sc = systolic.TIMING_CODES["scalesim"]
    assert systolic.mapped_busy_cycles(784, 9, 1, 1, 29, 4, os_, sc, 1, 1, 2) == systolic.array_busy_cycles(
        784, 9, 1, 1, 29, 4, os_, sc, 1, 1, 2
    )


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 300), st.integers(1, 300), st.integers(1, 300), st.integers(1, 3),
    st.integers(1, 40), st.integers(1, 40), st.sampled_from(["ws", "os", "is"]),
    st.sampled_from([(1, 1, 1), (1, 1, 2), (2, 1, 2), (1, 3, 1)]),
)  # fmt: skip
def test_one_more_row_or_column_costs_at_most_its_skew(
    m: int, k: int, n: int, batch: int, rows: int, cols: int, df: str, pack: tuple[int, int, int]
) -> None:
    code, pip = DATAFLOW_CODES[df], systolic.TIMING_CODES["pipelined"]
    base = systolic.mapped_busy_cycles(m, k, n, batch, rows, cols, code, pip, *pack)[0]
    assert base <= systolic.array_busy_cycles(m, k, n, batch, rows, cols, code, pip, *pack)[0]
    assert systolic.mapped_busy_cycles(m, k, n, batch, rows + 1, cols, code, pip, *pack)[0] <= base + 1
    assert systolic.mapped_busy_cycles(m, k, n, batch, rows, cols + 1, code, pip, *pack)[0] <= base + 1
