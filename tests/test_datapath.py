"""The datapath's integer arithmetic (accelsim.datapath): the log2 divider bit for bit against
plain-integer references, and the true divider's rounding by hand."""

import json
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.datapath import log2_round_exponent, log2_round_pow2, log2_shift_divide, true_divide_round


def ref_log2_shift_divide(num: int, den: int) -> int:
    """Plain-integer reference: e = round(log2(den)); (num + 2**(e-1)) >> e (Python's >> floors)."""
    if den <= 1:
        return num
    k = den.bit_length() - 1
    e = k + (1 if den * den >= 1 << (2 * k + 1) else 0)  # den >= 2**(k + 1/2)
    return (num + (1 << (e - 1))) >> e if e > 0 else num


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-(2**40), 2**40), st.integers(-3, 2**50)), min_size=1, max_size=20))
def test_log2_shift_divide_matches_integer_reference(pairs: list[tuple[int, int]]) -> None:
    num = np.array([p[0] for p in pairs], dtype=np.int64)
    den = np.array([p[1] for p in pairs], dtype=np.int64)
    got = log2_shift_divide(num, den)
    assert got.tolist() == [ref_log2_shift_divide(n, d) for n, d in pairs]


def test_log2_exponent_is_nearest_power_of_two_in_log_domain() -> None:
    den = np.arange(1, 1 << 16, dtype=np.int64)
    assert np.array_equal(log2_round_exponent(den), np.rint(np.log2(den)).astype(np.int64))
    big = np.array([2**62 - 1, 2**61 + 2**60, 3037000499, 3037000500, 2**53 + 1], dtype=np.int64)
    ref = []
    for d in big.tolist():
        k = d.bit_length() - 1
        ref.append(k + (1 if d * d >= 1 << (2 * k + 1) else 0))
    assert log2_round_exponent(big).tolist() == ref


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 2**52), min_size=1, max_size=20))
def test_float_nearest_power_of_two_agrees_with_integer_exponent(dens: list[int]) -> None:
    # the executor's real-valued divisor and the unit's integer one round to the same power of two
    den = np.array(dens, dtype=np.int64)
    assert np.array_equal(log2_round_pow2(den.astype(np.float64)), np.exp2(log2_round_exponent(den)))


def test_float_nearest_power_of_two_by_hand() -> None:
    # 2**1.5 = 2.83: 2.8 -> 2, 2.9 -> 4; 0.3 -> 2**round(-1.74) = 1/4; den <= 0 -> 2**-1022
    got = log2_round_pow2(np.array([2.8, 2.9, 0.3, 1e-5 + 1.0, 0.0, -1.0]))
    assert got.tolist() == [2.0, 4.0, 0.25, 1.0, 2.0**-1022, 2.0**-1022]


def test_true_divide_rounds_half_up_by_hand() -> None:
    # 7/2 = 3.5 -> 4, 5/2 = 2.5 -> 3, -5/2 = -2.5 -> -2 (half up, not away from zero); den <= 0 -> 0
    got = true_divide_round(np.array([7, 5, -5, 9, 3]), np.array([2, 2, 2, 0, -4]))
    assert got.tolist() == [4, 3, -2, 0, 0]


def test_datapath_imports_neither_torch_nor_numba() -> None:
    # the timing side and the executor both import it: it must cost neither of them anything
    code = "import json, sys, accelsim.datapath; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert [m for m in json.loads(out) if m.split(".")[0] in ("torch", "numba")] == []
