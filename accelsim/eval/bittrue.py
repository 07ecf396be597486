"""Bit-true execution of a :class:`~accelsim.ir.Graph` with the accelerator's integer arithmetic.

No torch here: a saved graph plus its weights sidecar (:mod:`accelsim.ir.sidecar`) executes on
NumPy and Numba alone.

Values and formats
------------------
A tensor's value is either a float32 array (real values) or an :class:`IntVal`: int64 codes with
an affine scale, ``real = (q - zero_point) * scale`` (scale per tensor or per channel). A tensor
named in ``Graph.quant`` always holds its quantised form: the op that produces it (or the graph
input / weight) converts its result:

- float -> codes: ``clamp(round_half_even(x / scale) + zero_point)``, as the torch fake-quantiser
  (``torch.round`` rounds half to even);
- integer -> codes (requantisation): a fixed-point multiplier, never a float. The real ratio
  ``M = s_in / s_out`` is written ``M ~ m0 * 2**-n`` with ``2**(B-1) <= m0 < 2**B`` (``B =
  requant_mantissa_bits``, 31 as in gemmlowp/TFLite's Q0.31 multiplier, Jacob et al. 2018,
  arXiv:1712.05877, Sec. 2.2); then ``q_out = clamp(round((q_in - zp_in) * m0 / 2**n) + zp_out)``
  in int64 with the configured rounding;
- ``mode="log2"`` tensors travel as their exact dequantised values ``sign * 2**-q * scale``
  (a shift-add MAC on them is emulated in float64, exact while the shifted terms span < 53 bits).

MAC ops (matmul, conv2d, dwconv2d, linear_attention) whose operands are both integer tensors run
on integers: ``acc = sum (qa - za)(qb - zb) + bias_q`` with ``bias_q = round(bias / (sa sb))`` (the
TFLite bias convention). The sum is evaluated exactly (BLAS in float32 on K-chunks small enough
that every partial sum is an exact integer, else float64) and checked against the two's
complement range of ``accumulator_bits``: beyond it the executor raises
:class:`~accelsim.errors.OverflowReport` naming the op and the largest magnitude (or, with
``overflow: report``, wraps the value as hardware would and records the event). Only the final
sum is checked: a two's complement accumulator that wraps on the way still ends right.

An add or subtract of two integer tensors (a residual) also runs on integers: the operands are
rescaled by fixed-point multipliers onto one grid (an accumulator operand's own, so a shortcut is
added into the conv's accumulator; else a grid finer than both) and summed in the accumulator,
range-checked like a MAC's. Other element-wise ops, and an add with a float operand, compute on
real values in float32.

Special units follow :class:`~accelsim.config.arithmetic.ArithmeticConfig`: softmax as I-BERT's
shift-based integer exp, GELU and hardswish as lookup tables, layernorm with integer
mean/variance/square root, and the linear-attention normaliser as a shift by the nearest power of
two. An integer
unit takes its input through a fixed-point converter of ``unit_frac_bits`` fractional bits (an
integer requantisation from codes, a rounding from float).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelsim.config.arithmetic import ArithmeticConfig
from accelsim.datapath import log2_round_pow2
from accelsim.errors import GraphFormatError, OverflowReport, UnsupportedOpError
from accelsim.eval import _int_kernels as K
from accelsim.ir.graph import MOVEMENT_KINDS, Graph, Op, OpKind
from accelsim.ir.quant import QuantParams

_ROUNDING = {"half_up": K.ROUND_HALF_UP, "half_even": K.ROUND_HALF_EVEN, "floor": K.ROUND_FLOOR}
#: operands wider than this are accumulators, not MAC operands
_MAX_OPERAND_BITS = 16
#: layernorm: fractional bits of the normalised value and of gamma, extra bits of the std
_LN_NORM_FRAC, _LN_GAMMA_FRAC, _LN_STD_EXT = 12, 16, 8
#: linear attention: fractional bits the divider keeps below v's scale when the op's output has no
#: format of its own. The fake-quant model rounds the quotient once, at the next quantiser; rounding
#: it to v's grid first added a second error of up to half an LSB of v on ref_efficientvit.
#: 16 more bits make that second rounding negligible.
_LA_OUT_FRAC = 16


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


@dataclass
class OverflowEvent:
    op: str
    max_abs: int
    limit: int
    where: str


@dataclass
class BittrueStats:
    """What an execution observed: accumulator overflows (``overflow: report``) and the ops that ran in integers."""

    overflows: list[OverflowEvent] = field(default_factory=list)
    integer_ops: set[str] = field(default_factory=set)
    float_ops: set[str] = field(default_factory=set)


# -- fixed-point helpers ------------------------------------------------------------------------
def fixed_point_multiplier(m: np.ndarray, mantissa_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Write each positive real ``m`` as ``m0 * 2**-n`` with ``2**(B-1) <= m0 < 2**B`` (``B = mantissa_bits``).

    Returns int64 ``(m0, n)``; a zero ``m`` gives ``(0, 0)``.

    Raises:
        OverflowReport: ``m >= 2**B`` (the right shift would be negative: a multiplier no
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
        raise OverflowReport(
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


# -- the executor -------------------------------------------------------------------------------
Handler = Callable[["_Ctx", Op, list[Value]], list[Value]]
_HANDLERS: dict[OpKind, Handler] = {}


def _register(*kinds: OpKind) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for k in kinds:
            if k in _HANDLERS:
                raise RuntimeError(f"op kind {k} already executed by {_HANDLERS[k].__qualname__}")
            _HANDLERS[k] = fn
        return fn

    return deco


@dataclass
class _Ctx:
    graph: Graph
    arith: ArithmeticConfig
    stats: BittrueStats
    batch_factor: int = 1

    def check_acc(self, op: Op, acc: np.ndarray, where: str = "accumulator") -> np.ndarray:
        """Raise (or record and wrap) when ``acc`` (exact integers, int64 or float64) leaves the accumulator range."""
        bits = self.arith.accumulator_bits
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if acc.size == 0:
            return acc.astype(np.int64)
        amax, amin = float(acc.max()), float(acc.min())
        if amax <= hi and amin >= lo:
            return acc.astype(np.int64)
        worst = int(max(abs(amax), abs(amin)))
        if self.arith.overflow == "raise":
            raise OverflowReport(
                f"op {op.name!r} ({op.kind.value}): {where} reaches {worst} "
                f"(needs {worst.bit_length() + 1} bits), beyond the {bits}-bit range [{lo}, {hi}]"
            )
        self.stats.overflows.append(OverflowEvent(op.name, worst, hi, where))
        a = acc.astype(np.int64)  # |acc| < 2**53 here, exact
        return ((a - lo) & ((1 << bits) - 1)) + lo

    def shape_of(self, tensor: str) -> tuple[int, ...]:
        """The graph's shape of ``tensor``, its leading (batch) dimension scaled to this run's batch."""
        shape = list(self.graph.tensors[tensor].shape)
        if shape and self.batch_factor != 1:
            shape[0] *= self.batch_factor
        return tuple(shape)


class Executor:
    """A graph prepared for repeated bit-true execution (weights quantised once)."""

    def __init__(self, graph: Graph, arith: ArithmeticConfig | None = None) -> None:
        self.graph = graph
        self.arith = arith or ArithmeticConfig()
        self.ops = list(graph.ops())
        self._handlers = [handler_for(op) for op in self.ops]
        self.weights: dict[str, Value] = {}
        for name, t in graph.tensors.items():
            if not t.weight or not graph.consumers(name):
                continue
            if name not in graph.constants:
                raise GraphFormatError(
                    f"weight tensor {name!r} has no value: lower with keep_constants=True, "
                    "or load the sidecar with accelsim.ir.sidecar.load_constants(graph, json_path)"
                )
            val = np.asarray(graph.constants[name])
            self.weights[name] = self._weight_value(name, val)
        # free each activation after its last consumer
        last: dict[str, int] = {}
        for i, op in enumerate(self.ops):
            for tname in op.inputs:
                last[tname] = i
        self._free_after: list[list[str]] = [[] for _ in self.ops]
        outs = set(graph.outputs)
        for tname, i in last.items():
            if tname not in outs and tname not in self.weights:
                self._free_after[i].append(tname)

    def _weight_value(self, name: str, val: np.ndarray) -> Value:
        qp = self.graph.quant.get(name)
        if qp is None or not np.issubdtype(val.dtype, np.floating):
            return val.astype(np.float32) if np.issubdtype(val.dtype, np.floating) else val
        return to_quant(val.astype(np.float32), qp, self.arith)

    def run(
        self, inputs: Mapping[str, np.ndarray], stats: BittrueStats | None = None
    ) -> dict[str, np.ndarray]:
        """Execute once; returns the real (float32) values of the graph outputs."""
        g = self.graph
        stats = stats if stats is not None else BittrueStats()
        missing = [n for n in g.inputs if n not in inputs]
        if missing:
            raise GraphFormatError(f"graph {g.name!r}: missing input(s) {missing} (inputs: {g.inputs})")
        env: dict[str, Value] = dict(self.weights)
        factor = 1
        for name in g.inputs:
            x = np.asarray(inputs[name], dtype=np.float32)
            want = g.tensors[name].shape
            if x.shape[1:] != tuple(want[1:]) or (want and want[0] and x.shape[0] % want[0]):
                raise GraphFormatError(f"input {name!r}: shape {x.shape}, graph expects {want} (any batch)")
            factor = x.shape[0] // want[0] if want and want[0] else 1
            qp = g.quant.get(name)
            env[name] = to_quant(x, qp, self.arith) if qp is not None else x
        ctx = _Ctx(g, self.arith, stats, factor)
        for i, op in enumerate(self.ops):
            vals = [env[t] for t in op.inputs]
            outs = self._handlers[i](ctx, op, vals)
            if len(outs) != len(op.outputs):
                raise GraphFormatError(
                    f"op {op.name!r}: produced {len(outs)} values for outputs {op.outputs}"
                )
            for t, v in zip(op.outputs, outs, strict=True):
                qp = g.quant.get(t)
                env[t] = to_quant(v, qp, self.arith) if qp is not None else v
            for t in self._free_after[i]:
                env.pop(t, None)
        return {t: real(env[t]) for t in g.outputs}


def execute(
    graph: Graph,
    inputs: Mapping[str, np.ndarray],
    arith: ArithmeticConfig | None = None,
    *,
    stats: BittrueStats | None = None,
) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``inputs`` with the accelerator's arithmetic.

    Args:
        graph: a graph with its weights in ``graph.constants`` (lowering with ``keep_constants``
            or :func:`accelsim.ir.sidecar.load_constants`), quantisation in ``graph.quant``.
        inputs: the graph inputs by name; any batch size that is a multiple of the graph's.
        arith: the datapath's arithmetic (default: :class:`ArithmeticConfig` defaults).
        stats: filled with overflow events (``overflow: report``) and which ops ran in integers.

    Returns:
        The graph outputs by name, as float32 real values.

    Raises:
        OverflowReport: an accumulator exceeded ``arith.accumulator_bits`` (``overflow: raise``).
        GraphFormatError: a weight has no value, or an input is missing or mis-shaped.
        UnsupportedOpError: an op kind has no execution rule.
    """
    return Executor(graph, arith).run(inputs, stats)


def run_bittrue(
    graph: Graph,
    images: np.ndarray,
    arith: ArithmeticConfig | None = None,
    batch_size: int = 256,
    *,
    stats: BittrueStats | None = None,
) -> np.ndarray:
    """Logits of ``images`` (N, C, H, W) through a single-input, single-output graph, in batches."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise GraphFormatError(
            f"run_bittrue needs one input and one output, graph {graph.name!r} has {graph.inputs} -> {graph.outputs}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ex = Executor(graph, arith)
    (name,) = graph.inputs
    (out,) = graph.outputs
    b0 = max(graph.tensors[name].shape[0], 1)
    bs = max(b0, batch_size // b0 * b0)
    images = np.asarray(images, dtype=np.float32)
    if images.shape[0] % b0:
        raise GraphFormatError(f"{images.shape[0]} images is not a multiple of the graph's batch {b0}")
    parts = [ex.run({name: images[i : i + bs]}, stats)[out] for i in range(0, images.shape[0], bs)]
    return np.concatenate(parts) if parts else np.zeros((0,), np.float32)


# -- MAC ops ------------------------------------------------------------------------------------
def _is_operand(v: Value) -> bool:
    return isinstance(v, IntVal) and not v.acc and v.bits <= _MAX_OPERAND_BITS


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b``; a shared 2-D ``b`` folds ``a``'s batch into M (numpy's broadcast matmul does not
    reach BLAS that way and is ~25x slower)."""
    if b.ndim == 2 and a.ndim > 2:
        return (a.reshape(-1, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[-1])
    return a @ b


def _exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` of integer-valued arrays, exactly, returned as float64 (exact integers).

    float32 BLAS is exact while every partial sum stays below 2**24, so K is cut into chunks
    that guarantee it (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., Sec. 3.1:
    integer sums below 2**p are exact in p-bit floating point); else float64 (2**53).
    """
    ka = a.shape[-1]
    amax = float(np.abs(a).max(initial=0)) if a.size else 0.0
    bmax = float(np.abs(b).max(initial=0)) if b.size else 0.0
    bound = amax * bmax
    if bound == 0:
        return np.zeros((*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-1]))
    chunk = int(2**24 // bound)
    if chunk >= 1:
        a32, b32 = a.astype(np.float32), b.astype(np.float32)
        if chunk >= ka:
            return _mm(a32, b32).astype(np.float64)
        out = None
        for s in range(0, ka, chunk):
            part = _mm(a32[..., s : s + chunk], b32[..., s : s + chunk, :]).astype(np.float64)
            out = part if out is None else out + part
        assert out is not None
        return out
    if bound * ka < 2**53:
        return _mm(a.astype(np.float64), b.astype(np.float64))
    raise OverflowReport(f"operands of magnitude {amax:.0f} x {bmax:.0f} over K={ka}: sums beyond 2**53")


def _weight_channel_scale(v: IntVal, ch_axis: int, n_ch: int, op: Op) -> np.ndarray | None:
    """The per-output-channel scale of a weight operand, or None when it is not per output channel."""
    if v.per_tensor:
        return np.broadcast_to(v.scale, (n_ch,))
    if v.axis == ch_axis and v.scale.shape[0] == n_ch:
        return v.scale
    return None


def _bias_real(vals: list[Value], idx: int) -> np.ndarray | None:
    return real(vals[idx]).astype(np.float64) if len(vals) > idx else None


def _finish_acc(
    ctx: _Ctx, op: Op, acc: np.ndarray, scale: np.ndarray, axis: int, bias: np.ndarray | None
) -> IntVal:
    """Add the bias in the accumulator's scale, check the range, wrap as an accumulator value."""
    shape = [1] * acc.ndim
    shape[axis] = -1
    if bias is not None:
        bias_q = np.rint(bias / scale)
        acc = acc + bias_q.reshape(shape) if bias_q.ndim else acc + bias_q
    acc_i = ctx.check_acc(op, acc)
    ctx.stats.integer_ops.add(op.name)
    sc = np.asarray(scale, dtype=np.float64)
    return IntVal(
        acc_i,
        sc,
        np.zeros_like(sc, dtype=np.int64),
        axis if sc.ndim else None,
        ctx.arith.accumulator_bits,
        acc=True,
    )


def _b_matrix(op: Op, a_shape: tuple[int, ...], b: np.ndarray) -> tuple[np.ndarray, bool]:
    """B as ``[..., K, N]``; True when it is stored ``[..., N, K]`` (``weight_layout: NK``, a torch Linear weight)."""
    k = a_shape[-1]
    nk = op.attrs.get("weight_layout") == "NK" or bool(op.attrs.get("transpose_b"))
    if nk or (b.ndim >= 2 and b.shape[-2] != k and b.shape[-1] == k):
        return np.swapaxes(b, -1, -2), True
    return b, False


@_register(OpKind.MATMUL)
def _matmul(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    a, b = vals[0], vals[1]
    bias = _bias_real(vals, 2)
    if _is_operand(a) and _is_operand(b) and a.per_tensor:
        bq, swapped = _b_matrix(op, a.q.shape, b.centered())
        n_axis = b.q.ndim - (2 if swapped else 1)  # the output-channel axis in B's stored layout
        scale_b = _weight_channel_scale(b, n_axis, bq.shape[-1], op)
        if scale_b is not None:
            acc = _exact_matmul(a.centered(), bq)
            scale = np.asarray(float(a.scale) * (float(b.scale) if b.per_tensor else scale_b))
            return [_finish_acc(ctx, op, acc, scale, acc.ndim - 1, bias)]
    ctx.stats.float_ops.add(op.name)
    bm, _ = _b_matrix(op, real(a).shape, real(b))
    # a log2 operand meets an integer one: the shift-add MAC, emulated in float64
    out = _mm(real(a).astype(np.float64), bm.astype(np.float64)) if _is_log2_like(a, b) else _mm(real(a), bm)
    if bias is not None:
        out = out + bias
    return [out.astype(np.float32)]


def _is_log2_like(*vals: Value) -> bool:
    return any(not isinstance(v, IntVal) for v in vals) and any(isinstance(v, IntVal) for v in vals)


def _conv_params(op: Op) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int]:
    at = op.attrs

    def pair(key: str, default: int) -> tuple[int, int]:
        v = at.get(key, default)
        if isinstance(v, int):
            return (v, v)
        v = list(v)
        return (int(v[0]), int(v[-1]))

    return pair("stride", 1), pair("padding", 0), pair("dilation", 1), int(at.get("groups", 1))


def _conv2d_core(
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, int],
    pad: tuple[int, int],
    dil: tuple[int, int],
    groups: int,
    exact: bool,
) -> np.ndarray:
    """Grouped 2-D cross-correlation (torch ``conv2d`` semantics, zero padding) by im2col + BLAS."""
    bsz, cin, _, _ = x.shape
    cout, cg, kh, kw = w.shape
    if pad[0] or pad[1]:
        x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    h, wd = x.shape[2], x.shape[3]
    oh = (h - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd - dil[1] * (kw - 1) - 1) // stride[1] + 1
    if groups == cin and cg == 1:  # depthwise (channel multiplier cout // cin): tap by tap
        mult = cout // cin
        xr = np.repeat(x, mult, axis=1) if mult > 1 else x
        dt: type[np.floating[Any]] = np.float64 if exact else np.float32
        out: np.ndarray = np.zeros((bsz, cout, oh, ow), dt)
        for i in range(kh):
            for j in range(kw):
                hs, ws_ = i * dil[0], j * dil[1]
                patch = xr[
                    :,
                    :,
                    hs : hs + stride[0] * (oh - 1) + 1 : stride[0],
                    ws_ : ws_ + stride[1] * (ow - 1) + 1 : stride[1],
                ]
                tap: np.ndarray = np.asarray(w[:, 0, i, j], dtype=dt)[None, :, None, None]
                np.add(out, np.asarray(patch, dtype=dt) * tap, out=out)
        return out
    win = np.lib.stride_tricks.sliding_window_view(
        x, (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1), axis=(2, 3)
    )
    win = win[
        :,
        :,
        : stride[0] * (oh - 1) + 1 : stride[0],
        : stride[1] * (ow - 1) + 1 : stride[1],
        :: dil[0],
        :: dil[1],
    ]
    # (B, C, OH, OW, kh, kw) -> (B, OH, OW, C, kh, kw)
    cols = win.transpose(0, 2, 3, 1, 4, 5)
    outs = []
    og = cout // groups
    for gi in range(groups):
        cg_cols = cols[:, :, :, gi * cg : (gi + 1) * cg].reshape(bsz * oh * ow, cg * kh * kw)
        wg = w[gi * og : (gi + 1) * og].reshape(og, cg * kh * kw).T
        outs.append(
            _exact_matmul(cg_cols, wg) if exact else cg_cols.astype(np.float32) @ wg.astype(np.float32)
        )
    res = outs[0] if groups == 1 else np.concatenate(outs, axis=1)
    return res.reshape(bsz, oh, ow, cout).transpose(0, 3, 1, 2)


@_register(OpKind.CONV2D, OpKind.DWCONV2D)
def _conv(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    x, w = vals[0], vals[1]
    bias = _bias_real(vals, 2)
    stride, pad, dil, groups = _conv_params(op)
    if op.kind == OpKind.DWCONV2D and "groups" not in op.attrs:
        groups = (x.q if isinstance(x, IntVal) else np.asarray(x)).shape[1]
    if _is_operand(x) and _is_operand(w) and x.per_tensor:
        cout = w.q.shape[0]
        scale_w = _weight_channel_scale(w, 0, cout, op)
        if scale_w is not None:
            acc = np.ascontiguousarray(
                _conv2d_core(x.centered(), w.centered(), stride, pad, dil, groups, exact=True)
            )
            scale = (
                np.asarray(float(x.scale) * scale_w)
                if not w.per_tensor
                else np.asarray(float(x.scale) * float(w.scale))
            )
            return [_finish_acc(ctx, op, acc, scale, 1, bias)]
    ctx.stats.float_ops.add(op.name)
    out = _conv2d_core(real(x), real(w), stride, pad, dil, groups, exact=False)
    if bias is not None:
        out = out + bias.astype(np.float32)[None, :, None, None]
    return [np.ascontiguousarray(out, dtype=np.float32)]


def _la_divisor(op: Op, den: np.ndarray, arith: ArithmeticConfig) -> np.ndarray:
    """The divisor the linear-attention unit divides by (float64, per row).

    ``true_divide``: ``den`` itself. ``log2_shift``: a power of two times a constant, so that the
    division is a shift: the log2 code of ``attrs["quant"]["divisor"]`` (a :class:`QuantParams` dict
    recorded by lowering from the model's log2 divisor quantiser) when present, else the nearest
    power of two, ``2**round(log2(den))`` (:func:`accelsim.datapath.log2_round_pow2`: ``den`` is a
    real-valued divisor here, the scaled accumulator plus ``eps``, not the unit's integer one).
    """
    if arith.la_divisor == "true_divide":
        return den
    dq = _fused_quant(op, "divisor")
    if dq is not None:
        qp = QuantParams.from_dict(dict(dq)) if isinstance(dq, Mapping) else dq
        return log2_values(den.astype(np.float32), qp).astype(np.float64)
    return log2_round_pow2(den)


def _fused_quant(op: Op, role: str) -> Any:
    """The quantisation lowering kept for a tensor fused away, by role (``attrs["quant"][role]``,
    see :func:`accelsim.lower.passes.fuse_linear_attention`)."""
    return (op.attrs.get("quant") or {}).get(role)


def _la_operand(ctx: _Ctx, op: Op, v: Value, role: str, relu: bool) -> Value:
    """An operand of the fused linear attention, quantised as lowering recorded for ``role`` (the
    model's quantiser sat after the ReLU inside the fused pattern, so it is kept on the op)."""
    d = _fused_quant(op, role)
    if d is None:
        return v
    qp = QuantParams.from_dict(dict(d)) if isinstance(d, Mapping) else d
    if relu:
        if isinstance(v, IntVal):
            v = IntVal(np.maximum(v.q, v._bcast(v.zp)), v.scale, v.zp, v.axis, v.bits, v.signed, v.acc)
        else:
            v = np.maximum(real(v), np.float32(0))
    return to_quant(v, qp, ctx.arith)


@_register(OpKind.LINEAR_ATTENTION)
def _linear_attention(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    """EfficientViT's ReLU linear attention: ``ReLU(Q)(ReLU(K)^T V) / (ReLU(Q) sum_n ReLU(K) + eps)``.

    Inputs ``(q, k, v)`` of shape ``[..., tokens, head_dim]`` (``v`` may come padded with the
    ones column, ``[V, 1]``). In integers, ``K^T V``, the k-sum and both products with ``Q`` are
    exact accumulators (each range-checked); the division is one fixed-point multiplier per row,
    ``s_q s_k s_v / (divisor * s_out)``, which for a power-of-two divisor is a constant multiplier
    and a per-row shift. ``s_out`` is the output tensor's scale when it is quantised, else ``s_v``
    with :data:`_LA_OUT_FRAC` more fractional bits (the quotient is rounded once, at the consumer's
    requantiser, as in the fake-quant model).
    """
    if len(vals) < 3:
        raise GraphFormatError(f"op {op.name!r}: linear_attention needs inputs (q, k, v), got {len(vals)}")
    relu = str(op.attrs.get("kernel", "relu")) == "relu"
    q, k, v = (_la_operand(ctx, op, vals[i], key, relu and i < 2) for i, key in enumerate(("q", "k", "v")))
    eps = float(op.attrs.get("eps", 1e-5))
    qd = (q.q if isinstance(q, IntVal) else np.asarray(q)).shape[-1]
    vd = (v.q if isinstance(v, IntVal) else np.asarray(v)).shape[-1]
    v_padded = vd == qd + 1  # lowering may hand over [V, 1] already padded
    if all(_is_operand(t) and t.per_tensor for t in (q, k, v)):
        qi, ki, vi = q.centered(), k.centered(), v.centered()
        if relu:
            qi, ki = np.maximum(qi, 0), np.maximum(ki, 0)
        if v_padded:
            vi = vi[..., :-1]
        kv = ctx.check_acc(op, _exact_matmul(np.swapaxes(ki, -1, -2), vi), "K^T V accumulator")
        ksum = ctx.check_acc(op, ki.sum(axis=-2, keepdims=True).astype(np.float64), "K sum")
        num = ctx.check_acc(op, _exact_matmul(qi, kv), "Q (K^T V) accumulator")
        den = ctx.check_acc(op, _exact_matmul(qi, np.swapaxes(ksum, -1, -2)), "divisor accumulator")
        sqk = float(q.scale) * float(k.scale)
        divisor = _la_divisor(op, den.astype(np.float64) * sqk + eps, ctx.arith)  # [..., tokens, 1]
        qp = ctx.graph.quant.get(op.outputs[0])
        per_tensor_out = qp is not None and qp.mode == "uniform" and qp.scale.ndim == 0
        out_scale = (
            float(qp.scale) if per_tensor_out and qp is not None else float(v.scale) * 2.0**-_LA_OUT_FRAC
        )
        with np.errstate(divide="ignore"):
            m = sqk * float(v.scale) / out_scale / divisor.reshape(-1)
        # a row whose divisor accumulator is 0 has ReLU(q) > 0 only where a column of ReLU(k) is all
        # zero, so its numerator is 0 too: multiplier 0 is exact and spares eps's tiny divisor
        m = np.where(np.isfinite(m) & (den.reshape(-1) != 0), m, 0.0)
        rows = m.shape[0]
        out = _rescale(num.reshape(rows, -1), m, 0, ctx.arith).reshape(num.shape)
        ctx.stats.integer_ops.add(op.name)
        out_bits = max(32, v.bits + _LA_OUT_FRAC + 1)
        return [IntVal(out, np.asarray(out_scale), np.zeros((), np.int64), None, out_bits, acc=True)]
    ctx.stats.float_ops.add(op.name)
    qf, kf, vf = real(q).astype(np.float64), real(k).astype(np.float64), real(v).astype(np.float64)
    if relu:
        qf, kf = np.maximum(qf, 0), np.maximum(kf, 0)
    if v_padded:
        vf = vf[..., :-1]
    num_f = qf @ (np.swapaxes(kf, -1, -2) @ vf)
    den_f = qf @ np.swapaxes(kf.sum(axis=-2, keepdims=True), -1, -2) + eps
    return [(num_f / _la_divisor(op, den_f, ctx.arith)).astype(np.float32)]


# -- special units --------------------------------------------------------------------------------
def _axis_of(op: Op, ndim: int) -> int:
    a = op.attrs.get("dim", op.attrs.get("axis", -1))
    return int(a) % ndim


@_register(OpKind.SOFTMAX)
def _softmax(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    x = vals[0]
    ndim = (x.q if isinstance(x, IntVal) else np.asarray(x)).ndim
    ax = _axis_of(op, ndim)
    if ctx.arith.softmax == "float":
        ctx.stats.float_ops.add(op.name)
        xf = real(x)
        e = np.exp(xf - xf.max(axis=ax, keepdims=True))
        return [e / e.sum(axis=ax, keepdims=True)]
    f = ctx.arith.unit_frac_bits
    xi = np.moveaxis(_to_fixed(x, f, ctx.arith), ax, -1)
    shp = xi.shape
    s = 2.0**-f
    x0 = math.floor(-math.log(2.0) / s)
    qb = math.floor(1.353 / s)
    qc = math.floor(0.344 / (0.3585 * s * s))
    p = K.softmax_rows(
        np.ascontiguousarray(xi.reshape(-1, shp[-1])), x0, qb, qc, ctx.arith.softmax_out_frac_bits
    )
    ctx.stats.integer_ops.add(op.name)
    p = np.moveaxis(p.reshape(shp), -1, ax)
    return [
        IntVal(
            p,
            np.asarray(2.0**-ctx.arith.softmax_out_frac_bits),
            np.zeros((), np.int64),
            None,
            32,
            False,
            acc=True,
        )
    ]


def _norm_params(op: Op, vals: list[Value], positions: tuple[int, ...]) -> list[np.ndarray | None]:
    """Parameter tensors of a norm op (float64, None when absent) at ATen argument ``positions``
    (``attrs["args"]`` maps them to inputs); without recorded args, the inputs after the first."""
    raw = op.attrs.get("args")
    if raw is not None:
        args = _resolve(list(raw), vals)
        picked = [args[p] if len(args) > p else None for p in positions]
    else:
        picked = [vals[i + 1] if len(vals) > i + 1 else None for i in range(len(positions))]
    return [
        None if v is None or not isinstance(v, IntVal | np.ndarray) else real(v).astype(np.float64)
        for v in picked
    ]


@_register(OpKind.LAYERNORM)
def _layernorm(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    x = vals[0]
    params = _norm_params(op, vals, (2, 3))
    gamma, beta = params[0], params[1]
    eps = float(op.attrs.get("eps", 1e-5))
    if ctx.arith.layernorm == "float":
        ctx.stats.float_ops.add(op.name)
        xf = real(x)
        mu = xf.mean(axis=-1, keepdims=True)
        var = ((xf - mu) ** 2).mean(axis=-1, keepdims=True)
        y = (xf - mu) / np.sqrt(var + np.float32(eps))
        if gamma is not None:
            y = y * gamma.astype(np.float32)
        if beta is not None:
            y = y + beta.astype(np.float32)
        return [y.astype(np.float32)]
    f = ctx.arith.unit_frac_bits
    xi = _to_fixed(x, f, ctx.arith)
    shp = xi.shape
    eps_q = max(1, round(eps * 2.0 ** (2 * f)))
    y = K.layernorm_rows(
        np.ascontiguousarray(xi.reshape(-1, shp[-1])), eps_q, _LN_STD_EXT, _LN_NORM_FRAC
    ).reshape(shp)
    g_q = np.rint((gamma if gamma is not None else np.ones(shp[-1])) * 2.0**_LN_GAMMA_FRAC).astype(np.int64)
    out_frac = _LN_NORM_FRAC + _LN_GAMMA_FRAC
    b_q = np.rint((beta if beta is not None else np.zeros(shp[-1])) * 2.0**out_frac).astype(np.int64)
    ctx.stats.integer_ops.add(op.name)
    return [IntVal(y * g_q + b_q, np.asarray(2.0**-out_frac), np.zeros((), np.int64), None, 48, acc=True)]


@_register(OpKind.BATCHNORM)
def _batchnorm(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    """Inference batchnorm over axis 1: inputs (x, weight, bias, running_mean, running_var)."""
    ctx.stats.float_ops.add(op.name)
    x = real(vals[0])
    c = x.shape[1]
    w, b, mu, var = _norm_params(op, vals, (1, 2, 3, 4))
    w = np.ones(c) if w is None else w
    b = np.zeros(c) if b is None else b
    mu = np.zeros(c) if mu is None else mu
    var = np.ones(c) if var is None else var
    eps = float(op.attrs.get("eps", 1e-5))
    shape = [1, c] + [1] * (x.ndim - 2)
    k = (w / np.sqrt(var + eps)).reshape(shape)
    return [((x - mu.reshape(shape)) * k + b.reshape(shape)).astype(np.float32)]


# -- ATen semantics of the non-MAC ops ---------------------------------------------------------
# Lowering records each op's ATen ``target`` and its arguments in ``attrs["args"]``/``["kwargs"]``,
# a tensor argument as ``{"input": i}`` (accelsim/lower/context.py). Data movement, element-wise,
# activation, pooling and selection ops are executed from those, with torch's semantics. Shapes
# come from the graph (the leading batch dimension scaled to the run's batch), so a recorded
# ``view(1, 65, 96)`` also runs on a batch of 256.

AtenFn = Callable[["_Ctx", Op, list[Any], dict[str, Any], list[Value]], list[Value]]
_ATEN: dict[str, AtenFn] = {}


def _aten(*names: str) -> Callable[[AtenFn], AtenFn]:
    def deco(fn: AtenFn) -> AtenFn:
        for n in names:
            if n in _ATEN:
                raise RuntimeError(f"{n} already executed by {_ATEN[n].__qualname__}")
            _ATEN[n] = fn
        return fn

    return deco


def _resolve(a: Any, vals: list[Value]) -> Any:
    """``{"input": i}`` -> the op's i-th input value; ``{"float": "inf"}`` -> inf; lists mapped."""
    if isinstance(a, dict):
        if "input" in a:
            return vals[int(a["input"])]
        if "float" in a:
            return float(a["float"])
        return a
    if isinstance(a, list | tuple):
        return [_resolve(x, vals) for x in a]
    return a


def _bound(
    args: list[Any], kwargs: dict[str, Any], names: tuple[str, ...], defaults: tuple[Any, ...]
) -> list[Any]:
    """Positional-or-keyword arguments by schema order (``names``), defaults filled from the end."""
    out = list(args[: len(names)])
    for j in range(len(out), len(names)):
        d = j - (len(names) - len(defaults))
        out.append(kwargs.get(names[j], defaults[d] if d >= 0 else None))
    return out


def _moved(v: Value, fn: Callable[[np.ndarray], np.ndarray]) -> Value:
    """Apply a pure data movement to ``v``: per-tensor integer codes move as codes (their format
    is unchanged); per-channel values are dequantised first (the move may carry the channel
    axis anywhere, so hardware would requantise them before moving)."""
    if isinstance(v, IntVal) and v.per_tensor:
        return v.with_q(np.ascontiguousarray(fn(v.q)))
    return np.ascontiguousarray(fn(real(v)))


def _nd(v: Value) -> int:
    return int((v.q if isinstance(v, IntVal) else np.asarray(v)).ndim)


def _arr(v: Any) -> Any:
    """Real values of a tensor argument; scalars stay Python numbers."""
    return real(v) if isinstance(v, IntVal | np.ndarray) else v


@_aten(
    "aten.view.default", "aten.reshape.default", "aten._unsafe_view.default", "aten.flatten.using_ints",
    "aten.unflatten.int", "aten.squeeze.dim", "aten.squeeze.dims", "aten.squeeze.default",
    "aten.unsqueeze.default", "aten.expand.default", "aten.view_as.default", "aten.reshape_as.default",
    "aten.expand_as.default",
)  # fmt: skip
def _a_reshape(ctx: _Ctx, op: Op, args: list[Any], kw: dict[str, Any], vals: list[Value]) -> list[Value]:
    shape = ctx.shape_of(op.outputs[0])
    x = vals[0]
    size = (x.q if isinstance(x, IntVal) else np.asarray(x)).size
    if math.prod(shape) != size:  # expand
        return [_moved(x, lambda a: np.broadcast_to(a.reshape(a.shape), shape))]
    return [_moved(x, lambda a: a.reshape(shape))]


@_aten(
    "aten.permute.default",
    "aten.transpose.int",
    "aten.t.default",
    "aten.swapaxes.default",
    "aten.movedim.int",
)
def _a_permute(ctx: _Ctx, op: Op, args: list[Any], kw: dict[str, Any], vals: list[Value]) -> list[Value]:
    nd = _nd(vals[0])
    name = op.target
    if name == "aten.permute.default":
        perm = [int(d) % nd for d in _bound(args, kw, ("self", "dims"), ())[1]]
    elif name == "aten.movedim.int":
        _, src, dst = _bound(args, kw, ("self", "source", "destination"), ())
        return [_moved(vals[0], lambda a: np.moveaxis(a, int(src), int(dst)))]
    else:
        if name == "aten.t.default":
            d0, d1 = 0, nd - 1
        else:
            _, d0, d1 = _bound(args, kw, ("self", "dim0", "dim1"), ())
        perm = list(range(nd))
        perm[int(d0) % nd], perm[int(d1) % nd] = perm[int(d1) % nd], perm[int(d0) % nd]
    return [_moved(vals[0], lambda a: a.transpose(perm))]


@_aten("aten.cat.default", "aten.concat.default", "aten.stack.default", "aten.hstack.default")
def _a_cat(ctx: _Ctx, op: Op, args: list[Any], kw: dict[str, Any], vals: list[Value]) -> list[Value]:
    tensors, dim = _bound(args, kw, ("tensors", "dim"), (0,))
    stack = op.target == "aten.stack.default"
    if op.target == "aten.hstack.default":
        dim = 1 if _nd(tensors[0]) > 1 else 0
    nd = _nd(tensors[0]) + (1 if stack else 0)
    dim = int(dim) % nd
    ints = [v for v in tensors if isinstance(v, IntVal) and v.per_tensor]
    same = len(ints) == len(tensors) and all(
        float(v.scale) == float(ints[0].scale) and int(v.zp) == int(ints[0].zp) for v in ints
    )
    arrs = [v.q for v in ints] if same else [real(v) for v in tensors]
    if dim != 0 and not stack:  # a weight of batch 1 (a class token) meets the run's batch
        b = max(a.shape[0] for a in arrs)
        arrs = [np.broadcast_to(a, (b, *a.shape[1:])) if a.shape[0] != b else a for a in arrs]
    out = np.stack(arrs, axis=dim) if stack else np.concatenate(arrs, axis=dim)
    return [ints[0].with_q(out) if same else out]


@_aten(
    "aten.slice.Tensor", "aten.select.int", "aten.narrow.default", "aten.split.Tensor",
    "aten.split_with_sizes.default", "aten.chunk.default", "aten.unbind.int", "aten.tensor_split.sections",
)  # fmt: skip
def _a_slice(ctx: _Ctx, op: Op, args: list[Any], kw: dict[str, Any], vals: list[Value]) -> list[Value]:
    x = vals[0]
    nd = _nd(x)
    name = op.target
    if name == "aten.slice.Tensor":
        _, dim, start, end, step = _bound(
            args, kw, ("self", "dim", "start", "end", "step"), (0, None, None, 1)
        )
        idx: list[Any] = [slice(None)] * nd
        idx[int(dim) % nd] = slice(start, end, step)
        return [_moved(x, lambda a: a[tuple(idx)])]
    if name == "aten.select.int":
        _, dim, index = _bound(args, kw, ("self", "dim", "index"), ())
        return [_moved(x, lambda a: np.take(a, int(index), axis=int(dim) % nd))]
    if name == "aten.narrow.default":
        _, dim, start, length = _bound(args, kw, ("self", "dim", "start", "length"), ())
        idx = [slice(None)] * nd
        idx[int(dim) % nd] = slice(int(start), int(start) + int(length))
        return [_moved(x, lambda a: a[tuple(idx)])]
    # several outputs: consecutive pieces along dim, sized by the output shapes
    if name == "aten.unbind.int":
        dim = int(_bound(args, kw, ("self", "dim"), (0,))[1]) % nd
    elif name == "aten.tensor_split.sections":
        dim = int(_bound(args, kw, ("self", "sections", "dim"), (0,))[2]) % nd
    else:
        dim = int(_bound(args, kw, ("self", "split", "dim"), (0,))[2]) % nd
    pieces, start = [], 0
    for t in op.outputs:
        shp = ctx.shape_of(t)
        size = 1 if name == "aten.unbind.int" else shp[dim]
        sel: Any = start if name == "aten.unbind.int" else np.arange(start, start + size)
        pieces.append(_moved(x, functools.partial(np.take, indices=sel, axis=dim)))
        start += size
    return pieces


def _np_pad(a: np.ndarray, pads: list[int], value: float, mode: str) -> np.ndarray:
    """torch ``F.pad``: ``pads`` lists (before, after) pairs from the last dim backwards; negative crops."""
    width = [(0, 0)] * a.ndim
    for i in range(len(pads) // 2):
        width[a.ndim - 1 - i] = (int(pads[2 * i]), int(pads[2 * i + 1]))
    if any(lo < 0 or hi < 0 for lo, hi in width):
        crop = tuple(slice(max(-lo, 0), a.shape[d] - max(-hi, 0)) for d, (lo, hi) in enumerate(width))
        a = a[crop]
        width = [(max(lo, 0), max(hi, 0)) for lo, hi in width]
    if mode == "constant":
        return np.pad(a, width, constant_values=value)
    np_mode: Any = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    return np.pad(a, width, mode=np_mode)


@_aten(
    "aten.pad.default",
    "aten.constant_pad_nd.default",
    "aten.reflection_pad2d.default",
    "aten.replication_pad2d.default",
)
def _a_pad(ctx: _Ctx, op: Op, args: list[Any], kw: dict[str, Any], vals: list[Value]) -> list[Value]:
    name = op.target
    if name == "aten.pad.default":
        _, pads, mode, value = _bound(args, kw, ("self", "pad", "mode", "value"), ("constant", None))
    elif name == "aten.constant_pad_nd.default":
        _, pads, value = _bound(args, kw, ("self", "pad", "value"), (0,))
        mode = "constant"
    else:
        _, pads = _bound(args, kw, ("self", "padding"), ())
        mode, value = ("reflect" if "reflection" in name else "replicate"), 0
    v = float(value or 0.0)
    x = vals[0]
    # integer codes pad with the code of the value when it is representable
    if isinstance(x, IntVal) and x.per_tensor and mode == "constant":
        code = v / float(x.scale) + int(x.zp)
        if code == round(code) and (x.acc or -(2 ** (x.bits - 1)) <= code < 2**x.bits):
            return [x.with_q(_np_pad(x.q, pads, round(code), mode))]
    return [_np_pad(real(x), pads, v, mode).astype(np.float32)]


@_aten(
    "aten.roll.default",
    "aten.flip.default",
    "aten.repeat.default",
    "aten.tile.default",
    "aten.repeat_interleave.self_int",
)
def _a_reindex(ctx: _Ctx, op: Op, args: list[Any], kw: dict[str, Any], vals: list[Value]) -> list[Value]:
    name = op.target
    if name == "aten.roll.default":
        _, shifts, dims = _bound(args, kw, ("self", "shifts", "dims"), ([],))
        return [_moved(vals[0], lambda a: np.roll(a, shifts, axis=tuple(dims) if dims else None))]
    if name == "aten.flip.default":
        _, dims = _bound(args, kw, ("self", "dims"), ())
        return [_moved(vals[0], lambda a: np.flip(a, axis=tuple(dims)))]
    if name == "aten.repeat_interleave.self_int":
        _, reps, dim = _bound(args, kw, ("self", "repeats", "dim"), (None,))
        return [_moved(vals[0], lambda a: np.repeat(a, int(reps), axis=dim))]
    _, reps = _bound(args, kw, ("self", "repeats" if name == "aten.repeat.default" else "dims"), ())
    return [_moved(vals[0], lambda a: np.tile(a, reps))]


@_aten("aten.gather.default", "aten.take_along_dim.default", "aten.index_select.default", "aten.index.Tensor")
def _a_gather(ctx: _Ctx, op: Op, args: list[Any], kw: dict[str, Any], vals: list[Value]) -> list[Value]:
    name = op.target
    if name == "aten.index.Tensor":
        _, indices = _bound(args, kw, ("self", "indices"), ())
        key = tuple(slice(None) if i is None else np.asarray(_arr(i)).astype(np.int64) for i in indices)
        return [_moved(vals[0], lambda a: a[key])]
    if name == "aten.take_along_dim.default":
        _, index, dim = _bound(args, kw, ("self", "indices", "dim"), (None,))
    else:
        _, dim, index = _bound(args, kw, ("self", "dim", "index"), ())
    ind = np.asarray(_arr(index)).astype(np.int64)
    nd = _nd(vals[0])
    if name == "aten.index_select.default":
        return [_moved(vals[0], lambda a: np.take(a, ind.reshape(-1), axis=int(dim) % nd))]
    return [
        _moved(vals[0], lambda a: np.take_along_axis(a, np.broadcast_to(ind, ind.shape), axis=int(dim) % nd))
    ]


@_aten("aten.topk.default")
def _a_topk(ctx: _Ctx, op: Op, args: list[Any], kw: dict[str, Any], vals: list[Value]) -> list[Value]:
    """Top-k along ``dim``; ties keep the lower index (a stable sort)."""
    x, k, dim, largest, _ = _bound(args, kw, ("self", "k", "dim", "largest", "sorted"), (-1, True, True))
    a = real(x)
    d = int(dim) % a.ndim
    order = np.argsort(-a if largest else a, axis=d, kind="stable")
    idx = np.take(order, np.arange(int(k)), axis=d)
    return [np.take_along_axis(a, idx, axis=d), idx.astype(np.int64)][: len(op.outputs)]


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function in float64 (scipy's, which scikit-learn already brings in)."""
    from scipy.special import erf

    return np.asarray(erf(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def gelu_ref(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """GELU in float64 (exact erf, or the tanh form), as torch's ``F.gelu``."""
    x = np.asarray(x, dtype=np.float64)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def hardswish_ref(x: np.ndarray) -> np.ndarray:
    """Hardswish in float64, as torch's ``F.hardswish``: ``x * relu6(x + 3) / 6``."""
    x = np.asarray(x, dtype=np.float64)
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _softplus(x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    return np.where(x * beta > threshold, x, np.log1p(np.exp(np.minimum(x * beta, threshold))) / beta)


#: activation fn -> f(x, extra args, kwargs); the names are lowering's ``attrs["fn"]``.
_UNARY: dict[str, Callable[[np.ndarray, list[Any], dict[str, Any]], np.ndarray]] = {
    "relu": lambda x, a, k: np.maximum(x, 0),
    "relu6": lambda x, a, k: np.clip(x, 0, 6),
    "gelu": lambda x, a, k: gelu_ref(x, str(k.get("approximate", a[0] if a else "none"))),
    "hardswish": lambda x, a, k: hardswish_ref(x),
    "hardsigmoid": lambda x, a, k: np.clip(x + 3, 0, 6) / 6,
    "hardtanh": lambda x, a, k: np.clip(x, a[0] if a else -1.0, a[1] if len(a) > 1 else 1.0),
    "leaky_relu": lambda x, a, k: np.where(x >= 0, x, x * (a[0] if a else 0.01)),
    "elu": lambda x, a, k: np.where(x > 0, x, (a[0] if a else 1.0) * np.expm1(np.minimum(x, 0))),
    "silu": lambda x, a, k: x / (1 + np.exp(-x)),
    "sigmoid": lambda x, a, k: 1 / (1 + np.exp(-x)),
    "tanh": lambda x, a, k: np.tanh(x),
    "softplus": lambda x, a, k: _softplus(x, *(float(v) for v in a[:2])),
    "mish": lambda x, a, k: x * np.tanh(_softplus(x)),
    "exp": lambda x, a, k: np.exp(x),
    "log": lambda x, a, k: np.log(x),
    "sqrt": lambda x, a, k: np.sqrt(x),
    "rsqrt": lambda x, a, k: 1 / np.sqrt(x),
    "erf": lambda x, a, k: _erf(x),
    "abs": lambda x, a, k: np.abs(x),
    "neg": lambda x, a, k: -x,
    "reciprocal": lambda x, a, k: 1 / x,
    "square": lambda x, a, k: x * x,
    "round": lambda x, a, k: np.rint(x),
    "floor": lambda x, a, k: np.floor(x),
    "ceil": lambda x, a, k: np.ceil(x),
    "sign": lambda x, a, k: np.sign(x),
    "clamp": lambda x, a, k: np.clip(x, _opt(a, 0, k, "min"), _opt(a, 1, k, "max")),
    "clip": lambda x, a, k: np.clip(x, _opt(a, 0, k, "min"), _opt(a, 1, k, "max")),
    "clamp_min": lambda x, a, k: np.maximum(x, _arr(a[0])),
    "clamp_max": lambda x, a, k: np.minimum(x, _arr(a[0])),
    "pow": lambda x, a, k: np.power(x, _arr(a[0])),
    "identity": lambda x, a, k: x,
}


def _opt(a: list[Any], i: int, k: dict[str, Any], name: str) -> Any:
    v = a[i] if len(a) > i else k.get(name)
    return None if v is None else _arr(v)


@_register(OpKind.ACTIVATION)
def _activation(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    fn = str(op.attrs.get("fn", ""))
    if fn not in _UNARY:
        raise UnsupportedOpError(
            f"op {op.name!r}: activation fn {fn!r} unknown (known: {', '.join(sorted(_UNARY))})"
        )
    args = _resolve(list(op.attrs.get("args") or [{"input": 0}]), vals)
    kw = _resolve(dict(op.attrs.get("kwargs") or {}), vals)
    if "approximate" in op.attrs:
        kw.setdefault("approximate", op.attrs["approximate"])
    if fn == "gelu" and ctx.arith.gelu == "lut":
        approx = str(kw.get("approximate", args[1] if len(args) > 1 else "none"))
        return [_lut_activation(ctx, op, vals[0], lambda xs: gelu_ref(xs, approx))]
    if fn == "hardswish" and ctx.arith.hardswish == "lut":
        return [_lut_activation(ctx, op, vals[0], hardswish_ref)]
    ctx.stats.float_ops.add(op.name)
    x = real(vals[0])
    return [np.asarray(_UNARY[fn](x, list(args[1:]), kw), dtype=np.float32)]


def _lut_activation(ctx: _Ctx, op: Op, x: Value, f: Callable[[np.ndarray], np.ndarray]) -> Value:
    """An activation ``f`` (GELU, hardswish: 0 far below zero, the identity far above) through a
    table: indexed by the input code when it is a narrow integer tensor, else by a ``lut_bits``
    fixed-point grid over ``[-lut_range, lut_range]`` (identity above, ``f(0)`` = 0 below). When the
    output is quantised the table holds output codes, as a hardware LUT would."""
    qp = ctx.graph.quant.get(op.outputs[0])
    out_q = qp if qp is not None and qp.mode == "uniform" and qp.scale.ndim == 0 else None

    def table_of(xs: np.ndarray) -> np.ndarray:
        y = f(xs).astype(np.float32)
        return quantize_float(y, out_q) if out_q is not None else y

    ctx.stats.integer_ops.add(op.name)
    if _is_operand(x) and x.per_tensor and x.bits <= ctx.arith.lut_bits:
        lo = -(2 ** (x.bits - 1)) if x.signed else 0
        codes = np.arange(lo, lo + 2**x.bits, dtype=np.int64)
        out = table_of(((codes - x.zp) * x.scale).astype(np.float32))[x.q - lo]
    else:
        step = 2.0 * ctx.arith.lut_range / 2**ctx.arith.lut_bits
        half = 2 ** (ctx.arith.lut_bits - 1)
        if isinstance(x, IntVal):
            idx = _rescale(x.centered(), x.scale / step, x.axis, ctx.arith)
        else:
            idx = np.rint(np.asarray(x, dtype=np.float64) / step).astype(np.int64)
        table = table_of(np.arange(-half, half, dtype=np.float64) * step)
        xr = real(x)
        above = quantize_float(xr, out_q) if out_q is not None else xr
        below = table_of(np.zeros(1))[0]
        inside = table[np.clip(idx, -half, half - 1) + half]
        out = np.where(idx >= half, above, np.where(idx < -half, below, inside))
    if out_q is not None:
        return IntVal(out.astype(np.int64), out_q.scale, out_q.zero_point, None, out_q.bits, out_q.signed)
    return out.astype(np.float32)


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "pow": np.power,
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "gt": np.greater,
    "le": np.less_equal,
    "ge": np.greater_equal,
}


#: guard bits below the finer operand's scale when two narrow integer tensors are added: both are
#: rescaled up onto this grid (multipliers >= 1, so nothing is rounded away before the sum), as
#: TFLite's quantised ADD shifts its int8 inputs left by 20 inside int32
_ADD_GUARD_BITS = 8


def _integer_add(ctx: _Ctx, op: Op, fn: str, a: IntVal, b: IntVal) -> IntVal | None:
    """``a + b`` (or ``a - b``) of two integer tensors in the vector unit's integer datapath.

    Both operands are rescaled by fixed-point multipliers onto one grid and summed in the accumulator;
    the op's output quantiser then requantises the sum like any accumulator. The grid is that of an
    accumulator operand when there is one (a residual added into the conv's accumulator, the shortcut
    rescaled into it; the finer of two accumulators), else the finer operand's scale with
    :data:`_ADD_GUARD_BITS` more bits.

    Returns ``None`` (the caller adds in float) where no single grid exists: different shapes
    (broadcasting), or two per-channel operands along different axes.
    """
    if a.q.shape != b.q.shape:
        return None
    if not a.per_tensor and not b.per_tensor and a.axis != b.axis:
        return None
    if a.acc or b.acc:
        # an accumulator's grid is fine already: the other operand joins it (of two accumulators,
        # the finer one's grid, so neither loses bits)
        accs = [v for v in (a, b) if v.acc]
        base = min(accs, key=lambda v: float(np.min(v.scale)))
        scale, axis = base.scale, base.axis
    else:
        finest = min(float(np.min(a.scale)), float(np.min(b.scale)))
        scale, axis = np.asarray(finest * 2.0**-_ADD_GUARD_BITS), None

    def onto_grid(v: IntVal) -> np.ndarray:
        if v.scale.shape == scale.shape and np.array_equal(v.scale, scale):
            return v.centered()
        # per-channel multipliers along whichever operand is per-channel (at most one axis here)
        ch_axis = axis if scale.ndim else v.axis
        return _rescale(v.centered(), v.scale / scale, ch_axis, ctx.arith)

    qa, qb = onto_grid(a), onto_grid(b)
    total = qa + qb if fn == "add" else qa - qb
    acc = ctx.check_acc(op, total, "residual add")
    ctx.stats.integer_ops.add(op.name)
    return IntVal(acc, scale, np.zeros_like(scale, dtype=np.int64), axis if scale.ndim else None,
                  ctx.arith.accumulator_bits, True, acc=True)  # fmt: skip


def _operand_order(raw: list[Any], n_inputs: int) -> tuple[int, int] | None:
    """``(i, j)`` when the op's torch arguments are exactly ``(input i, input j)``."""
    if len(raw) != 2 or n_inputs != 2 or not all(isinstance(r, dict) and set(r) == {"input"} for r in raw):
        return None
    return int(raw[0]["input"]), int(raw[1]["input"])


@_register(OpKind.ELTWISE)
def _eltwise(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    """Element-wise arithmetic with torch's argument conventions: an add/sub of two integer tensors
    in integers (:func:`_integer_add`), everything else on real values (float32)."""
    fn = str(op.attrs.get("fn", ""))
    raw = op.attrs.get("args")
    if raw is None:  # a hand-made op: inputs, then attrs["scalar"]
        raw = [{"input": i} for i in range(len(vals))] + (
            [op.attrs["scalar"]] if "scalar" in op.attrs else []
        )
    order = _operand_order(list(raw), len(vals)) if fn in ("add", "sub") else None
    if order is not None and not op.attrs.get("kwargs"):
        a, b = vals[order[0]], vals[order[1]]
        if isinstance(a, IntVal) and isinstance(b, IntVal):
            summed = _integer_add(ctx, op, fn, a, b)
            if summed is not None:
                return [summed]
    args = [_arr(a) for a in _resolve(list(raw), vals)]
    kw = {k: _arr(v) for k, v in _resolve(dict(op.attrs.get("kwargs") or {}), vals).items()}
    ctx.stats.float_ops.add(op.name)
    f32 = np.float32
    if fn in ("add", "sub", "rsub"):
        alpha = kw.get("alpha", args[2] if len(args) > 2 else 1)
        a, b = args[0], args[1]
        if fn == "rsub":
            a, b = b, a
        b = b if alpha == 1 else np.multiply(b, alpha)
        out = np.add(a, b) if fn == "add" else np.subtract(a, b)
    elif fn == "div" and kw.get("rounding_mode", args[2] if len(args) > 2 else None) is not None:
        mode = kw.get("rounding_mode", args[2] if len(args) > 2 else None)
        q = np.divide(args[0], args[1])
        out = np.floor(q) if mode == "floor" else np.trunc(q)
    elif fn == "where":
        out = np.where(np.asarray(args[0]).astype(bool), args[1], args[2])
    elif fn == "masked_fill":
        out = np.where(np.asarray(args[1]).astype(bool), args[2], args[0])
    elif fn in _BINARY:
        out = _BINARY[fn](args[0], args[1])
    else:
        known = ", ".join(sorted([*_BINARY, "rsub", "where", "masked_fill"]))
        raise UnsupportedOpError(f"op {op.name!r}: eltwise fn {fn!r} unknown (known: {known})")
    out = np.asarray(out)
    return [out if out.dtype == bool else out.astype(f32)]


@_aten(
    "aten.mean.dim", "aten.mean.default", "aten.sum.dim_IntList", "aten.sum.default", "aten.amax.default",
    "aten.amin.default",
)  # fmt: skip
def _a_reduce(ctx: _Ctx, op: Op, args: list[Any], kw: dict[str, Any], vals: list[Value]) -> list[Value]:
    x = real(vals[0])
    _, dims, keep = _bound(args, kw, ("self", "dim", "keepdim"), (None, False))
    if op.target in ("aten.mean.default", "aten.sum.default"):
        dims = None
    axes = (
        None
        if dims in (None, [])
        else tuple(int(d) % x.ndim for d in ([dims] if isinstance(dims, int) else dims))
    )
    fn = str(op.attrs.get("fn", "mean"))
    xd = x.astype(np.float64)
    if fn == "mean":
        out = xd.mean(axis=axes, keepdims=bool(keep))
    elif fn == "sum":
        out = xd.sum(axis=axes, keepdims=bool(keep))
    else:
        out = (
            xd.max(axis=axes, keepdims=bool(keep)) if fn == "max" else xd.min(axis=axes, keepdims=bool(keep))
        )
    return [np.asarray(out, dtype=np.float32).reshape(ctx.shape_of(op.outputs[0]))]


def _adaptive_bounds(n_in: int, n_out: int) -> list[tuple[int, int]]:
    """torch's adaptive pooling windows: ``[floor(i n / m), ceil((i + 1) n / m))``."""
    return [((i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)) for i in range(n_out)]


@_aten(
    "aten.adaptive_avg_pool2d.default",
    "aten._adaptive_avg_pool2d.default",
    "aten.adaptive_max_pool2d.default",
)
def _a_adaptive(ctx: _Ctx, op: Op, args: list[Any], kw: dict[str, Any], vals: list[Value]) -> list[Value]:
    x = real(vals[0])
    oh, ow = ctx.shape_of(op.outputs[0])[-2:]
    red = np.max if "max" in op.target else np.mean
    out = np.empty((*x.shape[:-2], oh, ow), np.float32)
    for i, (h0, h1) in enumerate(_adaptive_bounds(x.shape[-2], oh)):
        for j, (w0, w1) in enumerate(_adaptive_bounds(x.shape[-1], ow)):
            out[..., i, j] = red(x[..., h0:h1, w0:w1].astype(np.float64), axis=(-1, -2))
    return [out][: len(op.outputs)]


@_aten("aten.avg_pool2d.default", "aten.max_pool2d.default", "aten.max_pool2d_with_indices.default")
def _a_pool2d(ctx: _Ctx, op: Op, args: list[Any], kw: dict[str, Any], vals: list[Value]) -> list[Value]:
    x = real(vals[0])
    is_max = "max" in op.target
    if is_max:
        _, ker, stride, pad, dil, ceil = _bound(
            args, kw, ("self", "kernel_size", "stride", "padding", "dilation", "ceil_mode"), ([], 0, 1, False)
        )
        include_pad, divisor = True, None
    else:
        _, ker, stride, pad, ceil, include_pad, divisor = _bound(
            args,
            kw,
            (
                "self",
                "kernel_size",
                "stride",
                "padding",
                "ceil_mode",
                "count_include_pad",
                "divisor_override",
            ),
            ([], 0, False, True, None),
        )
        dil = 1
    if ceil:
        raise UnsupportedOpError(f"op {op.name!r}: pooling with ceil_mode=True is not executed bit-true")
    kh, kw_ = _pair(ker)
    sh, sw = _pair(stride) if stride not in (None, []) else (kh, kw_)
    ph, pw = _pair(pad)
    dh, dw = _pair(dil)
    padv = -np.inf if is_max else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=padv) if (ph or pw) else x
    win = np.lib.stride_tricks.sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw_ - 1) + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]
    if is_max:
        out = win.max(axis=(-1, -2))
    elif divisor:
        out = win.sum(axis=(-1, -2)) / float(divisor)
    elif include_pad or not (ph or pw):
        out = win.mean(axis=(-1, -2))
    else:
        ones = np.pad(np.ones(x.shape[2:], np.float32), ((ph, ph), (pw, pw)))
        cnt = np.lib.stride_tricks.sliding_window_view(ones, (kh, kw_))[::sh, ::sw].sum(axis=(-1, -2))
        out = win.sum(axis=(-1, -2)) / cnt
    return [np.asarray(out, dtype=np.float32)][: len(op.outputs)]


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = list(v)
    return (int(v[0]), int(v[-1]))


@_aten("aten.upsample_nearest2d.vec", "aten.upsample_nearest2d.default")
def _a_nearest(ctx: _Ctx, op: Op, args: list[Any], kw: dict[str, Any], vals: list[Value]) -> list[Value]:
    oh, ow = ctx.shape_of(op.outputs[0])[-2:]

    def up(a: np.ndarray) -> np.ndarray:
        hi = np.floor(np.arange(oh) * (a.shape[-2] / oh)).astype(np.int64)
        wi = np.floor(np.arange(ow) * (a.shape[-1] / ow)).astype(np.int64)
        return a[..., hi, :][..., wi]

    return [_moved(vals[0], up)]


@_register(OpKind.POOL)
def _pool(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    """Hand-made pool ops (no ATen target): a global ``fn`` over the axes the output shape drops."""
    x = real(vals[0])
    ctx.stats.float_ops.add(op.name)
    out_shape = ctx.shape_of(op.outputs[0])
    dims = op.attrs.get("dims", op.attrs.get("dim"))
    if dims is None:
        dims = _reduced_axes(x.shape, out_shape)
    axes = tuple(int(d) % x.ndim for d in ([dims] if isinstance(dims, int) else dims))
    fn = str(op.attrs.get("fn", "avg"))
    out = x.max(axis=axes) if fn == "max" else x.astype(np.float64).mean(axis=axes)
    return [np.asarray(out, dtype=np.float32).reshape(out_shape)]


def _reduced_axes(shape_in: tuple[int, ...], shape_out: tuple[int, ...]) -> tuple[int, ...]:
    """Axes a global reduction removed (or kept as 1), inferred from the shapes."""
    if len(shape_in) == len(shape_out):
        return tuple(i for i, (a, b) in enumerate(zip(shape_in, shape_out, strict=True)) if a != b)
    axes, j = [], 0
    for i, d in enumerate(shape_in):
        if j < len(shape_out) and shape_out[j] == d:
            j += 1
        else:
            axes.append(i)
    return tuple(axes)


@_register(OpKind.TOKEN_SELECT)
def _token_select(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    """Hand-made token selection (no ATen target): keep the CLS token and the ``tokens_out - 1``
    tokens of largest score (EViT, Liang et al., ICLR 2022, arXiv:2202.07800).

    Inputs ``x [B, N, C]`` and ``score [B, N - 1]`` (or ``[B, N]``, CLS first). Ties keep the lower index.
    """
    if len(vals) < 2:
        raise GraphFormatError(f"op {op.name!r}: token_select needs inputs (tokens, scores)")
    x = vals[0]
    n_tok = (x.q if isinstance(x, IntVal) else np.asarray(x)).shape[1]
    score = real(vals[1])
    if score.shape[-1] == n_tok:
        score = score[:, 1:]
    k = int(op.attrs["tokens_out"]) - 1
    idx = np.argsort(-score, axis=-1, kind="stable")[:, :k]
    idx = np.concatenate([np.zeros((idx.shape[0], 1), np.int64), idx + 1], axis=1)
    return [_moved(x, lambda a: np.take_along_axis(a, idx[:, :, None], axis=1))]


def _fallback_movement(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    """Movement ops of hand-made graphs (no ATen target), from attrs alone: ``reshape`` (to the
    output shape), ``transpose`` (``perm``), ``concat`` (``dim``), ``slice`` (``dim``, ``start``,
    ``end``, ``step``), ``pad`` (``pad``, ``value``), ``gather`` (``dim``, index input)."""
    x = vals[0]
    at = op.attrs
    nd = _nd(x)
    if op.kind == OpKind.RESHAPE:
        return _a_reshape(ctx, op, [], {}, vals)
    if op.kind == OpKind.TRANSPOSE:
        perm = [int(d) % nd for d in at.get("perm", list(range(nd))[::-1])]
        return [_moved(x, lambda a: a.transpose(perm))]
    if op.kind == OpKind.CONCAT:
        return _a_cat(ctx, op, [vals, int(at.get("dim", 0))], {}, vals)
    if op.kind == OpKind.SLICE:
        idx: list[Any] = [slice(None)] * nd
        idx[int(at.get("dim", 0)) % nd] = slice(at.get("start"), at.get("end"), int(at.get("step", 1)))
        return [_moved(x, lambda a: a[tuple(idx)])]
    if op.kind == OpKind.PAD:
        return [_np_pad(real(x), list(at["pad"]), float(at.get("value", 0.0)), "constant").astype(np.float32)]
    if op.kind == OpKind.GATHER:
        ind = np.asarray(real(vals[1])).astype(np.int64)
        return [_moved(x, lambda a: np.take(a, ind.reshape(-1), axis=int(at.get("dim", 0)) % nd))]
    raise UnsupportedOpError(f"op {op.name!r}: no rule for kind {op.kind.value!r}")


for _k in MOVEMENT_KINDS:
    _register(_k)(_fallback_movement)


def _aten_handler(fn: AtenFn) -> Handler:
    def run(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
        args = _resolve(list(op.attrs.get("args") or []), vals)
        kw = _resolve(dict(op.attrs.get("kwargs") or {}), vals)
        if op.kind not in MOVEMENT_KINDS:
            ctx.stats.float_ops.add(op.name)
        return fn(ctx, op, args, kw, vals)

    return run


#: kinds whose semantics are the IR's own (attrs), whatever ATen op they came from
_KIND_FIRST = frozenset(
    {
        OpKind.MATMUL,
        OpKind.CONV2D,
        OpKind.DWCONV2D,
        OpKind.LINEAR_ATTENTION,
        OpKind.SOFTMAX,
        OpKind.LAYERNORM,
        OpKind.BATCHNORM,
        OpKind.ACTIVATION,
        OpKind.ELTWISE,
    }
)


def handler_for(op: Op) -> Handler:
    """The rule that executes ``op``: by kind for MAC ops and units, by ATen target otherwise."""
    if op.kind not in _KIND_FIRST and op.target in _ATEN:
        return _aten_handler(_ATEN[op.target])
    if op.kind in _HANDLERS and (op.kind in _KIND_FIRST or not op.target or op.target.startswith("accelsim")):
        return _HANDLERS[op.kind]
    raise UnsupportedOpError(
        f"op {op.name!r}: the bit-true executor has no rule for {op.kind.value!r} op {op.target or '(no target)'}"
        f" (ATen ops it runs: {len(_ATEN)}; see accelsim.eval.bittrue.executable_targets())"
    )


def executable_targets() -> list[str]:
    """The ATen targets the executor runs by their own semantics."""
    return sorted(_ATEN)


__all__ = [
    "BittrueStats",
    "Executor",
    "IntVal",
    "OverflowEvent",
    "executable_targets",
    "execute",
    "fixed_point_multiplier",
    "gelu_ref",
    "handler_for",
    "hardswish_ref",
    "log2_values",
    "quantize_float",
    "real",
    "run_bittrue",
    "to_quant",
]
