"""The integer arithmetic of the accelerator's datapath, shared by the hardware timing units and the
bit-true executor.

The linear-attention unit (:mod:`accelsim.sim.engines.units`; Trio-ViT, Shi et al., arXiv:2405.03882, on
EfficientViT's ReLU linear attention, Cai et al., ICCV 2023, arXiv:2205.14756) normalises each
output by its k-sum. Its ``shift`` divider quantises the divisor to the nearest power of two in the
log domain, so that the divide is a rounding arithmetic right shift (add half, then shift: gemmlowp's
``RoundingDivideByPOT`` for non-negative values); its ``true`` divider divides exactly and rounds half up. The bit-true
executor (:mod:`accelsim.eval.bittrue`) divides by the same power of two.

NumPy only: no torch, no numba, so both sides import it for free.
"""

from __future__ import annotations

import math

import numpy as np


def _pow2_thresholds() -> np.ndarray:
    # Smallest integer >= 2**(k + 1/2): isqrt(2**(2k+1)) + 1, since 2**(2k+1) is never a square.
    return np.array([math.isqrt(1 << (2 * k + 1)) + 1 for k in range(63)], dtype=np.int64)


_POW2_HALF = _pow2_thresholds()


def log2_round_exponent(den: np.ndarray) -> np.ndarray:
    """``round(log2(den))`` of positive integers, exactly, in integer arithmetic (0 for den <= 1).

    The nearest power of two in the log domain: ``k = floor(log2 den)``, plus one when
    ``den >= 2**(k + 1/2)``. There are no ties (``log2`` of an integer is never ``k + 1/2``), so
    this equals ``numpy.rint(numpy.log2(den))`` wherever float64 resolves it.
    """
    d = np.asarray(den, dtype=np.int64)
    safe = np.maximum(d, 1)
    k = np.floor(np.log2(safe.astype(np.float64))).astype(np.int64)
    # float64 may be off by one next to powers of two above 2**53: correct exactly.
    k = np.where(np.left_shift(np.int64(1), k) > safe, k - 1, k)
    k = np.where((k < 62) & (np.left_shift(np.int64(1), np.minimum(k + 1, 62)) <= safe), k + 1, k)
    return np.where(d <= 1, 0, k + (safe >= _POW2_HALF[np.clip(k, 0, 62)]))


def log2_round_pow2(den: np.ndarray) -> np.ndarray:
    """The same nearest power of two, ``2**round(log2(den))``, of a real-valued divisor (float64).

    For a divisor that is not an integer (a scaled accumulator plus an epsilon, as the bit-true
    executor divides by); ``den <= 0`` is clamped to the smallest normal float64. For integers
    ``1 <= den < 2**53`` it is ``2.0**log2_round_exponent(den)``.
    """
    d = np.asarray(den, dtype=np.float64)
    return np.exp2(np.rint(np.log2(np.maximum(d, np.finfo(np.float64).tiny))))


def log2_shift_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """The linear-attention unit's normaliser: ``num / den`` with ``den`` quantised to a power of
    two, as a rounding arithmetic right shift: ``(num + 2**(e-1)) >> e``, ``e = round(log2 den)``.

    Integer in, integer out (int64, broadcasting); ``den <= 1`` leaves ``num`` unchanged.
    """
    e = log2_round_exponent(den)
    n = np.asarray(num, dtype=np.int64)
    half = np.where(e > 0, np.left_shift(np.int64(1), np.maximum(e - 1, 0)), 0)
    return np.right_shift(n + half, e)


def true_divide_round(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """The exact divider option: ``num / den`` rounded half up, ``floor((2 num + den) / (2 den))``
    (``den <= 0`` gives 0)."""
    n = np.asarray(num, dtype=np.int64)
    d = np.asarray(den, dtype=np.int64)
    safe = np.where(d > 0, d, 1)
    return np.where(d > 0, np.floor_divide(2 * n + safe, 2 * safe), 0)


__all__ = ["log2_round_exponent", "log2_round_pow2", "log2_shift_divide", "true_divide_round"]
