"""PE-level systolic models: exact products and cycle counts equal to the fast formulas, both modes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.errors import ConfigError
from accelsim.sim.engines.systolic import Packing, gemm_timing
from accelsim.sim.reference.pe import pe_gemm

DATAFLOWS = ["os", "ws", "is"]
TIMINGS = ["pipelined", "scalesim"]
PACKINGS = [Packing(), Packing(n=2), Packing(k=3), Packing(m=2, n=2)]


def test_single_fold_by_hand() -> None:
    a = np.arange(6).reshape(2, 3)
    b = np.arange(6).reshape(3, 2) - 2
    for timing in TIMINGS:  # one fold: both modes are SCALE-Sim's fold
        # os on 2x2 (Sr=M=2, Sc=N=2, T=K=3): 3 + 2 + 2 - 2 = 5 busy cycles -> last index 4
        assert pe_gemm(a, b, 2, 2, "os", timing)[1] == 4
        # ws/is on 3 rows x 2 cols (Sr=K=3; T=M=2 or N=2): 3 preload + 2 + 3 + 2 - 2 = 8 -> index 7
        assert pe_gemm(a, b, 3, 2, "ws", timing)[1] == 7
        assert pe_gemm(a, b, 3, 2, "is", timing)[1] == 7
    # ws on 2x2 needs two K folds of 2*2 + 2 + 2 - 2 = 6 cycles -> index 11 back to back; pipelined,
    # the second fold's weights load while the first streams: 6 + max(T=2, R=2) = 8 -> index 7
    assert pe_gemm(a, b, 2, 2, "ws", "scalesim")[1] == 11
    assert pe_gemm(a, b, 2, 2, "ws", "pipelined")[1] == 7
    for df in DATAFLOWS:
        for timing in TIMINGS:
            # [[0,1,2],[3,4,5]] @ [[-2,-1],[0,1],[2,3]]: 0-0+4=4, 0+1+6=7, -6+0+10=4, -3+4+15=16
            assert pe_gemm(a, b, 2, 2, df, timing)[0].tolist() == [[4, 7], [4, 16]]


def test_pipelined_folds_shorter_than_the_preload_wait_for_it() -> None:
    # GEMV on a 4x4 ws array: T = M = 1 < R = 4. K = 8, N = 8: 2 x 2 folds; the first takes
    # 2*4 + 4 + 1 - 2 = 11 cycles, each further one waits for its 4-cycle weight load: 11 + 3*4 = 23.
    a = np.arange(8).reshape(1, 8)
    b = np.arange(64).reshape(8, 8) % 7 - 3
    prod, cycles = pe_gemm(a, b, 4, 4, "ws")
    np.testing.assert_array_equal(prod, a @ b)
    assert cycles == 23 - 1
    # os drains R = 4 results per column per fold, so folds of T = K = 2 start every 4 cycles:
    # M = N = 8 on 4x4: 4 folds, 2 + 4 + 4 - 2 = 8, then 3 x 4.
    a2, b2 = np.ones((8, 2), int), np.ones((2, 8), int)
    prod2, cycles2 = pe_gemm(a2, b2, 4, 4, "os")
    np.testing.assert_array_equal(prod2, a2 @ b2)
    assert cycles2 == 8 + 3 * 4 - 1


def test_packed_dsps_skew_over_physical_columns() -> None:
    # Two products per DSP along N (WP486) on 2x2 physical: ws, K = 2, N = 8 -> 1 x 2 folds of
    # 2 x 4 logical; T = M = 3: 2*2 + 2 + 3 - 2 = 7 (physical skew), then max(3, 2) = 3 more.
    a = np.arange(6).reshape(3, 2)
    b = np.arange(16).reshape(2, 8)
    prod, cycles = pe_gemm(a, b, 2, 2, "ws", "pipelined", Packing(n=2))
    np.testing.assert_array_equal(prod, a @ b)
    assert cycles == 7 + 3 - 1
    # SCALE-Sim's view of the same array: 2 x 4 PEs, two folds of 2*2 + 4 + 3 - 2 = 9
    assert pe_gemm(a, b, 2, 2, "ws", "scalesim", Packing(n=2))[1] == 2 * 9 - 1


def _assert_exact_and_formula_cycles(
    a: np.ndarray, b: np.ndarray, R: int, C: int, df: str, timing: str, packing: Packing
) -> None:
    """The PE model's product is ``a @ b`` exactly and its last busy cycle is the fast formula's."""
    (M, K), N = a.shape, b.shape[1]
    prod, cycles = pe_gemm(a, b, R, C, df, timing, packing)
    np.testing.assert_array_equal(prod, a @ b)
    assert cycles == gemm_timing(M, K, N, R, C, df, timing, packing).compute_cycles


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("df", DATAFLOWS)
@pytest.mark.parametrize(
    ("M", "K", "N", "R", "C"), [(1, 1, 1, 1, 1), (17, 13, 19, 3, 5), (20, 20, 20, 1, 6), (4, 9, 2, 6, 6)]
)
def test_folded_shapes(df: str, timing: str, M: int, K: int, N: int, R: int, C: int) -> None:
    rng = np.random.default_rng(M * 1000 + K * 10 + N)
    a = rng.integers(-1000, 1000, (M, K))
    b = rng.integers(-1000, 1000, (K, N))
    for packing in PACKINGS:
        _assert_exact_and_formula_cycles(a, b, R, C, df, timing, packing)


def test_large_values_are_exact() -> None:
    big = 2**30 + 7  # products ~2**60, sums of 4 of them ~2**62: exact in int64, not in float64
    a = np.full((3, 4), big, dtype=np.int64)
    b = np.full((4, 2), -big, dtype=np.int64)
    for timing in TIMINGS:
        prod, _ = pe_gemm(a, b, 2, 2, "ws", timing)
        assert int(prod[0, 0]) == -4 * big * big
        np.testing.assert_array_equal(prod, a @ b)


@settings(max_examples=120, deadline=None)
@given(
    M=st.integers(1, 20),
    K=st.integers(1, 20),
    N=st.integers(1, 20),
    R=st.integers(1, 6),
    C=st.integers(1, 6),
    df=st.sampled_from(DATAFLOWS),
    timing=st.sampled_from(TIMINGS),
    packing=st.sampled_from(PACKINGS),
    seed=st.integers(0, 2**32 - 1),
)
def test_pe_model_equals_numpy_and_formula(
    M: int, K: int, N: int, R: int, C: int, df: str, timing: str, packing: Packing, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (M, K))
    b = rng.integers(-128, 128, (K, N))
    _assert_exact_and_formula_cycles(a, b, R, C, df, timing, packing)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(
    M=st.integers(1, 64),
    K=st.integers(1, 64),
    N=st.integers(1, 64),
    R=st.integers(1, 16),
    C=st.integers(1, 16),
    df=st.sampled_from(DATAFLOWS),
    seed=st.integers(0, 2**32 - 1),
)
def test_pipelined_pe_model_at_the_issue_sizes(
    M: int, K: int, N: int, R: int, C: int, df: str, seed: int
) -> None:
    """Shapes up to 64x64x64 on arrays up to 16x16, the pipelined array with INT8 packing."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (M, K))
    b = rng.integers(-128, 128, (K, N))
    _assert_exact_and_formula_cycles(a, b, R, C, df, "pipelined", Packing(n=2))


def test_accepts_unsigned_and_small_int_dtypes() -> None:
    a = np.array([[200, 100]], dtype=np.uint8)
    b = np.array([[3], [4]], dtype=np.int8)
    for timing in TIMINGS:
        assert pe_gemm(a, b, 1, 1, "is", timing)[0].tolist() == [[1000]]


@pytest.mark.parametrize(
    ("a", "b", "rows", "df", "match"),
    [
        (
            np.ones((2, 3)),
            np.ones((3, 2), int),
            2,
            "os",
            r"A: must be a non-empty 2-D integer matrix \(got float64",
        ),
        (np.ones(3, int), np.ones((3, 2), int), 2, "os", "A: must be a non-empty 2-D integer matrix"),
        (np.ones((2, 0), int), np.ones((0, 2), int), 2, "os", "A: must be a non-empty"),
        (np.ones((2, 3), int), np.ones((4, 2), int), 2, "os", "B: has 4 rows, A has 3 columns"),
        (np.ones((2, 3), int), np.ones((3, 2), int), 0, "os", r"rows: must be a positive integer \(got 0\)"),
        (np.ones((2, 3), int), np.ones((3, 2), int), 2, "rs", "dataflow: must be one of"),
    ],
)
def test_rejects_bad_input(a: np.ndarray, b: np.ndarray, rows: int, df: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        pe_gemm(a, b, rows, 2, df)
    with pytest.raises(ConfigError, match="timing: must be one of"):
        pe_gemm(np.ones((2, 3), int), np.ones((3, 2), int), 2, 2, "os", "fast")
