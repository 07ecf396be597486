"""Special units: the softmax unit and the vector unit's layernorm, batchnorm, activations (lookup
tables or float) and element-wise ops (a residual add of two integer tensors in integers).

They follow :class:`~accelsim.config.arithmetic.ArithmeticConfig`: softmax as I-BERT's
shift-based integer exp, GELU and hardswish as lookup tables, layernorm with integer
mean/variance/square root. An integer unit takes its input through the fixed-point converter of
:func:`~accelsim.eval.bittrue.formats._to_fixed`. An add or subtract of two integer tensors (a
residual) rescales both operands by fixed-point multipliers onto one grid (an accumulator
operand's own, so a shortcut is added into the conv's accumulator; else a grid finer than both)
and sums them in the accumulator, range-checked like a MAC's. Other element-wise ops, and an add
with a float operand, compute on real values in float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from accelsim.errors import UnsupportedOpError
from accelsim.eval.bittrue import _kernels as K
from accelsim.eval.bittrue._registry import _resolve, register_handler
from accelsim.eval.bittrue.formats import (
    IntVal,
    Value,
    _arr,
    _is_operand,
    _rescale,
    _to_fixed,
    quantize_float,
    real,
)
from accelsim.ir.graph import Op, OpKind

if TYPE_CHECKING:  # pragma: no cover
    from accelsim.eval.bittrue.executor import _Ctx

#: layernorm: fractional bits of the normalised value and of gamma, extra bits of the std
_LN_NORM_FRAC, _LN_GAMMA_FRAC, _LN_STD_EXT = 12, 16, 8


def _axis_of(op: Op, ndim: int) -> int:
    a = op.attrs.get("dim", op.attrs.get("axis", -1))
    return int(a) % ndim


@register_handler(OpKind.SOFTMAX)
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


@register_handler(OpKind.LAYERNORM)
def _layernorm(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    x = vals[0]
    eps = float(op.attrs.get("eps", 1e-5))
    if op.attrs.get("norm") == "rms":  # RMSNorm (lowering's rms_norm): no integer unit model, float
        ctx.stats.float_ops.add(op.name)
        xf = real(x)
        y = xf / np.sqrt((xf * xf).mean(axis=-1, keepdims=True) + np.float32(eps))
        return [(y * real(vals[1]) if len(vals) > 1 else y).astype(np.float32)]
    params = _norm_params(op, vals, (2, 3))
    gamma, beta = params[0], params[1]
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


@register_handler(OpKind.BATCHNORM)
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


@register_handler(OpKind.ACTIVATION)
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


@register_handler(OpKind.ELTWISE)
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
    elif fn == "col2im":  # nn.Fold's overlap-add (lowering's col2im): a sum, done by torch's own op
        import torch

        x = torch.from_numpy(np.ascontiguousarray(args[0], dtype=f32))
        out = torch.ops.aten.col2im(x, *(list(map(int, a)) for a in args[1:6])).numpy()
    else:
        known = ", ".join(sorted([*_BINARY, "rsub", "where", "masked_fill"]))
        raise UnsupportedOpError(f"op {op.name!r}: eltwise fn {fn!r} unknown (known: {known})")
    out = np.asarray(out)
    return [out if out.dtype == bool else out.astype(f32)]


__all__ = ["gelu_ref", "hardswish_ref"]
