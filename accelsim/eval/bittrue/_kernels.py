"""Numba kernels of the bit-true executor: int64 arrays and scalars in, int64 arrays out; the
requantiser, I-BERT's integer softmax and layernorm, and an exact integer square root.

Only numpy and numba here. The typed callers (:mod:`~accelsim.eval.bittrue.formats`,
:mod:`~accelsim.eval.bittrue.units`) validate shapes, widths and constants before calling across
the jit boundary.

Rounding codes (``rounding``): 0 = half up (add half, arithmetic shift right; gemmlowp's
``RoundingDivideByPOT`` for non-negative values), 1 = half to even, 2 = floor (plain shift).
"""

from __future__ import annotations

import numpy as np
from numba import njit

ROUND_HALF_UP = 0
ROUND_HALF_EVEN = 1
ROUND_FLOOR = 2


@njit(cache=True)
def shift_round(p: int, n: int, rounding: int) -> int:
    """``p / 2**n`` rounded as ``rounding`` says (``n >= 0``, ``|p| < 2**62``)."""
    if n == 0:
        return p
    if n >= 63:
        if rounding == ROUND_FLOOR and p < 0:
            return -1
        return 0
    if rounding == ROUND_FLOOR:
        return p >> n
    half = 1 << (n - 1)
    if rounding == ROUND_HALF_UP:
        return (p + half) >> n
    f = p >> n
    rem = p - (f << n)
    if rem > half or (rem == half and (f & 1) == 1):
        f += 1
    return f


@njit(cache=True)
def requantize(
    x: np.ndarray,
    m0: np.ndarray,
    n: np.ndarray,
    zp: np.ndarray,
    inner: int,
    qmin: int,
    qmax: int,
    rounding: int,
) -> np.ndarray:
    """``clamp(round(x * m0[c] / 2**n[c]) + zp[c], qmin, qmax)`` over a flat int64 array.

    The channel of element ``i`` is ``(i // inner) % len(m0)``: a C-contiguous array whose channel
    axis has ``len(m0)`` entries and ``inner`` elements after it per step (``x.size`` must be a
    multiple of ``len(m0) * inner``).
    """
    out = np.empty(x.shape[0], np.int64)
    nc = m0.shape[0]
    i = 0
    # nested (outer, channel, inner) loops: no per-element integer division
    for _ in range(x.shape[0] // (nc * inner)):
        for c in range(nc):
            m, sh, z = m0[c], n[c], zp[c]
            for _k in range(inner):
                v = shift_round(x[i] * m, sh, rounding) + z
                if v < qmin:
                    v = qmin
                elif v > qmax:
                    v = qmax
                out[i] = v
                i += 1
    return out


@njit(cache=True)
def softmax_rows(x: np.ndarray, x0: int, qb: int, qc: int, out_frac: int) -> np.ndarray:
    """I-BERT's integer softmax of each row of ``x`` (fixed point, scale ``S``).

    ``exp`` of ``d = x - max(x) <= 0``: ``d = z * x0 + p`` with ``x0 = floor(-ln2 / S)``, then
    ``exp(p) ~ 0.3585 (p + 1.353)**2 + 0.344`` as ``(p + qb)**2 + qc`` and ``exp(d) = exp(p) >> z``
    (Kim et al. 2021, arXiv:2101.01321, Alg. 2). The row is normalised by an integer division;
    the result has scale ``2**-out_frac``.
    """
    rows, length = x.shape
    out = np.empty((rows, length), np.int64)
    e = np.empty(length, np.int64)
    for r in range(rows):
        mx = x[r, 0]
        for j in range(1, length):
            if x[r, j] > mx:
                mx = x[r, j]
        total = 0
        for j in range(length):
            d = x[r, j] - mx
            z = d // x0
            p = d - z * x0
            t = (p + qb) * (p + qb) + qc
            e[j] = t >> z if z < 62 else 0
            total += e[j]
        for j in range(length):
            out[r, j] = (e[j] << out_frac) // total
    return out


@njit(cache=True)
def isqrt(v: int) -> int:
    """``floor(sqrt(v))`` exactly for ``0 <= v < 2**62`` (what an integer Newton iteration converges to)."""
    if v <= 0:
        return 0
    s = int(np.sqrt(np.float64(v)))
    while s * s > v:
        s -= 1
    while (s + 1) * (s + 1) <= v:
        s += 1
    return s


@njit(cache=True)
def layernorm_rows(x: np.ndarray, eps_q: int, ext: int, norm_frac: int) -> np.ndarray:
    """Integer layernorm of each row of ``x`` (fixed point, scale ``S``), before the affine.

    ``mean = floor(sum / L)``, ``var = floor(sum (x - mean)**2 / L) + eps_q`` (scale ``S**2``),
    ``std = isqrt(var << 2 ext)`` (scale ``S / 2**ext``), ``y = ((x - mean) << (norm_frac + ext)) // std``
    with scale ``2**-norm_frac`` (I-BERT, arXiv:2101.01321, Sec. 3.5, with ``ext`` extra bits so
    that rows of small variance keep their precision).
    """
    rows, length = x.shape
    out = np.empty((rows, length), np.int64)
    for r in range(rows):
        s = 0
        for j in range(length):
            s += x[r, j]
        mean = s // length
        ss = 0
        for j in range(length):
            d = x[r, j] - mean
            ss += d * d
        var = ss // length + eps_q
        std = isqrt(var << (2 * ext))
        if std == 0:
            std = 1
        for j in range(length):
            out[r, j] = ((x[r, j] - mean) << (norm_frac + ext)) // std
    return out


__all__ = [
    "ROUND_FLOOR",
    "ROUND_HALF_EVEN",
    "ROUND_HALF_UP",
    "isqrt",
    "layernorm_rows",
    "requantize",
    "shift_round",
    "softmax_rows",
]
