"""Fast systolic timing formulas: hand-computed cases, kernel/py_func agreement, invariants, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.errors import ConfigError
from accelsim.sim import systolic
from accelsim.sim.systolic import (
    DATAFLOW_CODES,
    GemmTiming,
    fold_cycles,
    gemm_busy_cycles,
    gemm_compute_cycles,
    gemm_folds,
    gemm_timing,
    gemm_timing_batch,
)

OS, WS, IS = DATAFLOW_CODES["os"], DATAFLOW_CODES["ws"], DATAFLOW_CODES["is"]


def test_dataflow_codes_are_the_agreed_ones() -> None:
    assert DATAFLOW_CODES == {"os": 0, "ws": 1, "is": 2}


# Hand computations, C[7,5] = A[7,3] B[3,5] on a 4x4 array:
#  os: Sr=M=7, Sc=N=5, T=K=3 -> 2x2 folds of 3+4+4-2 = 9 cycles -> 36 busy, 35 reported;
#      used PEs 16+4+12+3 = 35 = 7*5 -> mapping 35/64; util 35*3/(16*9*4) = 105/576.
#  ws: Sr=K=3, Sc=N=5, T=M=7 -> 1x2 folds of 2*4+4+7-2 = 17 -> 33; mapping 15/32;
#      util 15*7/(16*(8+8+7-3)*2) = 105/640.
#  is: Sr=K=3, Sc=M=7, T=N=5 -> 1x2 folds of 2*4+4+5-2 = 15 -> 29; mapping 21/32;
#      util 21*5/(16*(8+8+5-3)*2) = 105/576.
@pytest.mark.parametrize(
    ("df", "folds", "fold", "cycles", "mapping", "util"),
    [
        ("os", (2, 2), 9, 35, 35 / 64, 105 / 576),
        ("ws", (1, 2), 17, 33, 15 / 32, 105 / 640),
        ("is", (1, 2), 15, 29, 21 / 32, 105 / 576),
    ],
)
def test_hand_computed_7x3x5_on_4x4(
    df: str, folds: tuple[int, int], fold: int, cycles: int, mapping: float, util: float
) -> None:
    code = DATAFLOW_CODES[df]
    assert gemm_folds(7, 3, 5, 4, 4, code) == folds
    stream_len = {"os": 3, "ws": 7, "is": 5}[df]
    assert fold_cycles(stream_len, 4, 4, code) == fold
    assert gemm_busy_cycles(7, 3, 5, 4, 4, code) == cycles + 1
    assert gemm_compute_cycles(7, 3, 5, 4, 4, code) == cycles
    timing = gemm_timing(7, 3, 5, 4, 4, df)
    assert isinstance(timing, GemmTiming)
    assert (timing.compute_cycles, timing.mapping_efficiency, timing.compute_utilization) == (
        cycles,
        pytest.approx(mapping, rel=1e-15),
        pytest.approx(util, rel=1e-15),
    )


def test_deit_qkv_on_32x32_os_by_hand() -> None:
    # 197x192x576: ceil(197/32)=7 x ceil(576/32)=18 folds of 192+32+32-2 cycles
    assert gemm_compute_cycles(197, 192, 576, 32, 32, OS) == 7 * 18 * 254 - 1 == 32003


def test_non_square_array_uses_rows_for_sr_and_cols_for_sc() -> None:
    # ws, 12 rows x 14 cols: Sr=K=30 -> 3 row folds, Sc=N=15 -> 2 col folds, fold 24+14+5-2
    assert gemm_folds(5, 30, 15, 12, 14, WS) == (3, 2)
    assert gemm_compute_cycles(5, 30, 15, 12, 14, WS) == 6 * 41 - 1
    assert gemm_compute_cycles(5, 30, 15, 14, 12, WS) != gemm_compute_cycles(5, 30, 15, 12, 14, WS)


@pytest.mark.parametrize("kernel", ["gemm_compute_cycles", "gemm_busy_cycles", "gemm_folds"])
@pytest.mark.parametrize("df", [OS, WS, IS])
def test_jitted_kernels_match_their_python_originals(kernel: str, df: int) -> None:
    fn = getattr(systolic, kernel)
    for args in [(1, 1, 1, 1, 1), (197, 64, 197, 16, 8), (3, 50, 2, 12, 14)]:
        assert fn(*args, df) == fn.py_func(*args, df)


dims = st.integers(1, 5000)
arr = st.integers(1, 256)
dfs = st.sampled_from(["os", "ws", "is"])


@settings(max_examples=300, deadline=None)
@given(M=dims, K=dims, N=dims, R=arr, C=arr, df=dfs)
def test_invariants(M: int, K: int, N: int, R: int, C: int, df: str) -> None:
    t = gemm_timing(M, K, N, R, C, df)
    assert 0.0 < t.mapping_efficiency <= 1.0
    assert 0.0 < t.compute_utilization <= 1.0  # 1.0 exactly on a 1x1 os array
    assert t.compute_utilization <= t.mapping_efficiency
    # never beats the roofline: busy cycles x PEs >= MACs
    assert (t.compute_cycles + 1) * R * C >= M * K * N
    # every PE-cycle of real work is counted: folds x used PEs sum to Sr x Sc
    fr, fc = gemm_folds(M, K, N, R, C, DATAFLOW_CODES[df])
    sr_sc = {"os": M * N, "ws": K * N, "is": K * M}[df]
    assert t.mapping_efficiency == pytest.approx(sr_sc / (R * C * fr * fc), rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(dims, dims, dims, arr, arr, st.integers(0, 2)), min_size=1, max_size=20),
)
def test_batch_equals_scalar(rows: list[tuple[int, int, int, int, int, int]]) -> None:
    a = np.array(rows, dtype=np.int64).T
    cyc, mapping, util = gemm_timing_batch(*a)
    names = {v: k for k, v in DATAFLOW_CODES.items()}
    for i, (M, K, N, R, C, df) in enumerate(rows):
        t = gemm_timing(M, K, N, R, C, names[df])
        assert cyc[i] == t.compute_cycles
        assert mapping[i] == t.mapping_efficiency
        assert util[i] == t.compute_utilization


def test_batch_broadcasts_gemms_against_hardware_points() -> None:
    gemms = np.array([[197, 192, 576], [197, 64, 197]])
    sizes = np.array([8, 16, 32])
    cyc, mapping, util = gemm_timing_batch(
        gemms[:, 0:1], gemms[:, 1:2], gemms[:, 2:3], sizes[None, :], sizes[None, :], "ws"
    )
    assert cyc.shape == mapping.shape == util.shape == (2, 3)
    assert cyc[1, 2] == gemm_timing(197, 64, 197, 32, 32, "ws").compute_cycles


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dataflow": "rs"}, r"dataflow: must be one of 'os', 'ws', 'is' \(got 'rs'\)"),
        ({"M": 0}, r"M: must be a positive integer \(got 0\)"),
        ({"cols": -3}, r"cols: must be a positive integer \(got -3\)"),
        ({"K": 2.0}, r"K: must be a positive integer \(got 2.0\)"),
        ({"rows": True}, r"rows: must be a positive integer \(got True\)"),
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
