"""MAC ops: matmul, conv2d/dwconv2d and the fused linear attention, on exact integer accumulators
when both operands are narrow integer tensors, else on real values; and the exact integer matmul.

In integers ``acc = sum (qa - za)(qb - zb) + bias_q`` with ``bias_q = round(bias / (sa sb))`` (the
TFLite bias convention). The sum is evaluated exactly (BLAS in float32 on K-chunks small enough
that every partial sum is an exact integer, else float64) and range-checked by the executor
(:meth:`~accelsim.eval.bittrue.executor._Ctx.check_acc`). A log2 operand meeting an integer one is
a shift-add MAC, emulated in float64.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from accelsim.config.arithmetic import ArithmeticConfig
from accelsim.datapath import log2_round_pow2
from accelsim.errors import AccumulatorOverflowError, GraphFormatError
from accelsim.eval.bittrue._registry import register_handler
from accelsim.eval.bittrue.formats import IntVal, Value, _is_operand, _rescale, log2_values, real, to_quant
from accelsim.ir.graph import Op, OpKind
from accelsim.ir.quant import QuantParams

if TYPE_CHECKING:  # pragma: no cover
    from accelsim.eval.bittrue.executor import _Ctx

#: linear attention: fractional bits the divider keeps below v's scale when the op's output has no
#: format of its own. The fake-quant model rounds the quotient once, at the next quantiser; rounding
#: it to v's grid first added a second error of up to half an LSB of v on ref_efficientvit.
#: 16 more bits make that second rounding negligible.
_LA_OUT_FRAC = 16


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
    raise AccumulatorOverflowError(
        f"operands of magnitude {amax:.0f} x {bmax:.0f} over K={ka}: sums beyond 2**53"
    )


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


@register_handler(OpKind.MATMUL)
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


@register_handler(OpKind.CONV2D, OpKind.DWCONV2D)
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


@register_handler(OpKind.LINEAR_ATTENTION)
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
