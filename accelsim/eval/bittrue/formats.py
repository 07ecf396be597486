"""Number formats of the bit-true executor: integer codes with an affine scale, and the conversions
between them (quantise a float, requantise codes by a fixed-point multiplier, feed an integer unit).

A tensor's value is either a float32 array (real values) or an :class:`IntVal`: int64 codes with
an affine scale, ``real = (q - zero_point) * scale`` (scale per tensor or per channel). A tensor
named in ``Graph.quant`` always holds its quantised form: the op that produces it (or the graph
input / weight) converts its result (:func:`to_quant`):

- float -> codes: ``clamp(round_half_even(x / scale) + zero_point)``, as the torch fake-quantiser
  (``torch.round`` rounds half to even);
- integer -> codes (requantisation): a fixed-point multiplier, never a float. The real ratio
  ``M = s_in / s_out`` is written ``M ~ m0 * 2**-n`` with ``2**(B-1) <= m0 < 2**B`` (``B =
  requant_mantissa_bits``, 31 as in gemmlowp/TFLite's Q0.31 multiplier, Jacob et al. 2018,
  arXiv:1712.05877, Sec. 2.2); then ``q_out = clamp(round((q_in - zp_in) * m0 / 2**n) + zp_out)``
  in int64 with the configured rounding;
- ``mode="log2"`` tensors travel as their exact dequantised values ``sign * 2**-q * scale``
  (a shift-add MAC on them is emulated in float64, exact while the shifted terms span < 53 bits).

An integer unit takes its input through a fixed-point converter of ``unit_frac_bits`` fractional
bits (:func:`_to_fixed`: an integer requantisation from codes, a rounding from float).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim.config.arithmetic import ArithmeticConfig
from accelsim.errors import AccumulatorOverflowError, GraphFormatError
from accelsim.eval.bittrue import _kernels as K
from accelsim.ir.quant import QuantParams

_ROUNDING = {"half_up": K.ROUND_HALF_UP, "half_even": K.ROUND_HALF_EVEN, "floor": K.ROUND_FLOOR}
#: operands wider than this are accumulators, not MAC operands
_MAX_OPERAND_BITS = 16


# -- values -------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class IntVal:
    """Integer codes with an affine scale: ``real = (q - zp) * scale``.

    ``scale``/``zp`` are 0-d (per tensor) or 1-d along ``axis`` of ``q``. ``acc`` marks an
    accumulator (not a MAC operand; it is requantised or dequantised before use).
    """

    q: np.ndarray
    scale: np.ndarray
    zp: np.ndarray
    axis: int | None
    bits: int
    signed: bool = True
    acc: bool = False

    def _bcast(self, a: np.ndarray) -> np.ndarray:
        if a.ndim == 0 or self.axis is None:
            return a
        shape = [1] * self.q.ndim
        shape[self.axis] = a.shape[0]
        return a.reshape(shape)

    def centered(self) -> np.ndarray:
        """``q - zp`` (int64)."""
        if not np.any(self.zp):
            return self.q
        return self.q - self._bcast(self.zp)

    def real(self) -> np.ndarray:
        return (self.centered() * self._bcast(self.scale)).astype(np.float32)

    @property
    def per_tensor(self) -> bool:
        return self.scale.ndim == 0

    def with_q(self, q: np.ndarray, axis: int | None = None) -> IntVal:
        return IntVal(
            q, self.scale, self.zp, axis if self.scale.ndim else None, self.bits, self.signed, self.acc
        )


Value = Any  # np.ndarray (float32) | IntVal


def real(v: Value) -> np.ndarray:
    """The real (float32) values of ``v``."""
    return v.real() if isinstance(v, IntVal) else np.asarray(v, dtype=np.float32)


def _is_operand(v: Value) -> bool:
    """A narrow integer tensor a MAC (or an activation table) takes as it is."""
    return isinstance(v, IntVal) and not v.acc and v.bits <= _MAX_OPERAND_BITS


def _arr(v: Any) -> Any:
    """Real values of a tensor argument; scalars stay Python numbers."""
    return real(v) if isinstance(v, IntVal | np.ndarray) else v


# -- fixed-point helpers ------------------------------------------------------------------------
def fixed_point_multiplier(m: np.ndarray, mantissa_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Write each positive real ``m`` as ``m0 * 2**-n`` with ``2**(B-1) <= m0 < 2**B`` (``B = mantissa_bits``).

    Returns int64 ``(m0, n)``; a zero ``m`` gives ``(0, 0)``.

    Raises:
        AccumulatorOverflowError: ``m >= 2**B`` (the right shift would be negative: a multiplier no
            requantiser implements).

    Examples:
        >>> fixed_point_multiplier(np.array([0.75]), 8)
        (array([192]), array([8]))
    """
    m = np.atleast_1d(np.asarray(m, dtype=np.float64))
    if np.any(m < 0) or not np.all(np.isfinite(m)):
        raise GraphFormatError(f"requantisation multiplier must be finite and >= 0, got {m[~(m >= 0)][:3]}")
    frac, exp = np.frexp(m)  # m = frac * 2**exp, frac in [0.5, 1)
    m0 = np.round(frac * 2.0**mantissa_bits).astype(np.int64)
    carry = m0 == (1 << mantissa_bits)
    m0[carry] >>= 1
    exp = exp.astype(np.int64) + carry
    n = mantissa_bits - exp
    zero = m == 0
    m0[zero], n[zero] = 0, 0
    if np.any(n < 0):
        raise AccumulatorOverflowError(
            f"requantisation multiplier {m.max():.4g} >= 2**{mantissa_bits}: scales are inconsistent"
        )
    return m0, n


def _requant(
    x: np.ndarray,
    m: np.ndarray,
    axis: int | None,
    zp: np.ndarray,
    qmin: int,
    qmax: int,
    arith: ArithmeticConfig,
) -> np.ndarray:
    """Integer rescale ``clamp(round(x * m) + zp)`` with ``m`` as a fixed-point multiplier (per ``axis``)."""
    m0, n = fixed_point_multiplier(m, arith.requant_mantissa_bits)
    x = np.ascontiguousarray(x, dtype=np.int64)
    nc = max(m0.shape[0], np.atleast_1d(zp).shape[0])
    if nc > 1 and axis is None:
        raise GraphFormatError("per-channel requantisation needs a channel axis")
    inner = int(np.prod(x.shape[axis + 1 :])) if (nc > 1 and axis is not None) else max(x.size, 1)
    m0 = np.broadcast_to(m0, (nc,)).astype(np.int64)
    n = np.broadcast_to(n, (nc,)).astype(np.int64)
    zpa = np.broadcast_to(np.atleast_1d(np.asarray(zp, dtype=np.int64)), (nc,)).astype(np.int64)
    out = K.requantize(x.reshape(-1), m0, n, zpa, inner, qmin, qmax, _ROUNDING[arith.requant_rounding])
    return out.reshape(x.shape)


def _rescale(x: np.ndarray, m: np.ndarray, axis: int | None, arith: ArithmeticConfig) -> np.ndarray:
    """``round(x * m)`` by fixed-point multipliers with no clamp: a move onto a finer (or wider) grid
    inside the datapath, not a requantisation to a narrow format."""
    big = np.iinfo(np.int64).max
    return _requant(x, m, axis, np.zeros(()), -big, big, arith)


def _norm_axis(axis: int | None, ndim: int) -> int | None:
    if axis is None:
        return None
    return axis % ndim if ndim else None


def quantize_float(x: np.ndarray, qp: QuantParams) -> np.ndarray:
    """``clamp(round_half_even(x / scale) + zp)`` as int64 (uniform mode)."""
    x = np.asarray(x)
    scale, zp = qp.scale, qp.zero_point
    if scale.ndim and qp.axis is not None:
        shape = [1] * x.ndim
        shape[_norm_axis(qp.axis, x.ndim) or 0] = scale.shape[0]
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    if x.dtype == np.float32 and np.all(scale.astype(np.float32) == scale):
        # the fake-quantiser divides in float32; so do we, so that ties round alike
        q = np.rint(x / scale.astype(np.float32)).astype(np.float64) + zp
    else:
        q = np.rint(x.astype(np.float64) / scale) + zp
    return np.clip(q, qp.qmin, qp.qmax).astype(np.int64)


def log2_values(x: np.ndarray, qp: QuantParams) -> np.ndarray:
    """Log2 codes as their values: ``2**-q * scale`` with ``q = round(-log2(x / scale))``.

    Codes above ``2**bits - 2`` and non-positive inputs mean 0 (the top code is zero, contract of
    :mod:`accelsim.ir.quant`); with ``signed`` the sign of ``x`` is kept. Computed in float32 like
    the torch fake-quantiser, so the codes agree bit for bit.
    """
    x = np.asarray(x, dtype=np.float32)
    scale = np.float32(np.asarray(qp.scale).reshape(-1)[0])
    qmax = 2**qp.bits - 2
    mag = np.abs(x) if qp.signed else x
    xn = np.maximum(mag / scale, np.finfo(np.float32).tiny)
    q = np.rint(-np.log2(xn))
    vals = np.where((q > qmax) | (mag <= 0), np.float32(0), np.exp2(-q) * scale).astype(np.float32)
    return vals * np.sign(x) if qp.signed else vals


def to_quant(v: Value, qp: QuantParams, arith: ArithmeticConfig) -> Value:
    """Convert ``v`` to the format ``qp`` describes (see the module docstring)."""
    if qp.mode == "log2":
        return log2_values(real(v), qp)
    q_ndim = v.q.ndim if isinstance(v, IntVal) else np.ndim(v)
    axis = _norm_axis(qp.axis, q_ndim) if qp.scale.ndim else None
    if isinstance(v, IntVal):
        if (
            not v.acc
            and v.bits == qp.bits
            and v.signed == qp.signed
            and v.axis == axis
            and np.array_equal(v.scale, qp.scale)
            and np.array_equal(v.zp, qp.zero_point)
        ):
            return v
        if v.scale.ndim and qp.scale.ndim and v.axis != axis:
            q = quantize_float(v.real(), qp)  # two different channel axes: no single multiplier exists
        else:
            m = v.scale / qp.scale
            ch_axis = v.axis if v.scale.ndim else axis
            q = _requant(v.centered(), m, ch_axis, qp.zero_point, qp.qmin, qp.qmax, arith)
    else:
        q = quantize_float(v, qp)
    return IntVal(q, qp.scale, qp.zero_point, axis, qp.bits, qp.signed)


def _to_fixed(v: Value, frac_bits: int, arith: ArithmeticConfig) -> np.ndarray:
    """The fixed-point converter in front of an integer unit: codes of scale ``2**-frac_bits`` (int64)."""
    s = 2.0**-frac_bits
    if isinstance(v, IntVal):
        m = v.scale / s
        if v.per_tensor and float(m) == 1.0:
            return v.centered()
        return _rescale(v.centered(), m, v.axis, arith)
    return np.rint(np.asarray(v, dtype=np.float64) / s).astype(np.int64)


__all__ = [
    "IntVal",
    "Value",
    "fixed_point_multiplier",
    "log2_values",
    "quantize_float",
    "real",
    "to_quant",
]
