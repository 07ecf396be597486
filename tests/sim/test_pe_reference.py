"""PE-level systolic model: exact products and cycle counts equal to the fast formulas."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.errors import ConfigError
from accelsim.sim.pe_reference import pe_gemm
from accelsim.sim.systolic import DATAFLOW_CODES, gemm_compute_cycles

DATAFLOWS = ["os", "ws", "is"]


def test_single_fold_by_hand() -> None:
    a = np.arange(6).reshape(2, 3)
    b = np.arange(6).reshape(3, 2) - 2
    # os on 2x2 (Sr=M=2, Sc=N=2, T=K=3): 3 + 2 + 2 - 2 = 5 busy cycles -> last index 4
    assert pe_gemm(a, b, 2, 2, "os")[1] == 4
    # ws/is on 3 rows x 2 cols (Sr=K=3; T=M=2 or N=2): 3 preload + 2 + 3 + 2 - 2 = 8 -> index 7
    assert pe_gemm(a, b, 3, 2, "ws")[1] == 7
    assert pe_gemm(a, b, 3, 2, "is")[1] == 7
    # ws on 2x2 needs two K folds of 2*2 + 2 + 2 - 2 = 6 cycles -> index 11
    assert pe_gemm(a, b, 2, 2, "ws")[1] == 11
    for df in DATAFLOWS:
        # [[0,1,2],[3,4,5]] @ [[-2,-1],[0,1],[2,3]]: 0-0+4=4, 0+1+6=7, -6+0+10=4, -3+4+15=16
        assert pe_gemm(a, b, 2, 2, df)[0].tolist() == [[4, 7], [4, 16]]


def _assert_exact_and_formula_cycles(a: np.ndarray, b: np.ndarray, R: int, C: int, df: str) -> None:
    """The PE model's product is ``a @ b`` exactly and its last busy cycle is the analytic formula's."""
    (M, K), N = a.shape, b.shape[1]
    prod, cycles = pe_gemm(a, b, R, C, df)
    np.testing.assert_array_equal(prod, a @ b)
    assert cycles == gemm_compute_cycles(M, K, N, R, C, DATAFLOW_CODES[df])


@pytest.mark.parametrize("df", DATAFLOWS)
@pytest.mark.parametrize(
    ("M", "K", "N", "R", "C"), [(1, 1, 1, 1, 1), (17, 13, 19, 3, 5), (20, 20, 20, 1, 6), (4, 9, 2, 6, 6)]
)
def test_folded_shapes(df: str, M: int, K: int, N: int, R: int, C: int) -> None:
    rng = np.random.default_rng(M * 1000 + K * 10 + N)
    a = rng.integers(-1000, 1000, (M, K))
    b = rng.integers(-1000, 1000, (K, N))
    _assert_exact_and_formula_cycles(a, b, R, C, df)


def test_large_values_are_exact() -> None:
    big = 2**30 + 7  # products ~2**60, sums of 4 of them ~2**62: exact in int64, not in float64
    a = np.full((3, 4), big, dtype=np.int64)
    b = np.full((4, 2), -big, dtype=np.int64)
    prod, _ = pe_gemm(a, b, 2, 2, "ws")
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
    seed=st.integers(0, 2**32 - 1),
)
def test_pe_model_equals_numpy_and_formula(
    M: int, K: int, N: int, R: int, C: int, df: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (M, K))
    b = rng.integers(-128, 128, (K, N))
    _assert_exact_and_formula_cycles(a, b, R, C, df)


def test_accepts_unsigned_and_small_int_dtypes() -> None:
    a = np.array([[200, 100]], dtype=np.uint8)
    b = np.array([[3], [4]], dtype=np.int8)
    assert pe_gemm(a, b, 1, 1, "is")[0].tolist() == [[1000]]


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
