"""The NumPy semantics of the ATen ops that are not MAC ops or units: data movement, reductions,
pooling, top-k and resizing, each run from the arguments lowering recorded, as torch defines it.

Shapes come from the graph (the leading batch dimension scaled to the run's batch), so a recorded
``view(1, 65, 96)`` also runs on a batch of 256. Data movement moves per-tensor integer codes as
codes; everything else computes on real values. Hand-made graphs (ops without an ATen target)
have rules by kind here too, from the IR's attrs alone.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from accelsim.errors import GraphFormatError, UnsupportedOpError
from accelsim.eval.bittrue._registry import aten_args, register_handler
from accelsim.eval.bittrue.formats import IntVal, Value, _arr, real
from accelsim.ir.graph import MOVEMENT_KINDS, Op, OpKind

if TYPE_CHECKING:  # pragma: no cover
    from accelsim.eval.bittrue.executor import _Ctx


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


@register_handler(
    "aten.view.default", "aten.reshape.default", "aten._unsafe_view.default", "aten.flatten.using_ints",
    "aten.unflatten.int", "aten.squeeze.dim", "aten.squeeze.dims", "aten.squeeze.default",
    "aten.unsqueeze.default", "aten.expand.default", "aten.view_as.default", "aten.reshape_as.default",
    "aten.expand_as.default",
)  # fmt: skip
def _a_reshape(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    shape = ctx.shape_of(op.outputs[0])
    x = vals[0]
    size = (x.q if isinstance(x, IntVal) else np.asarray(x)).size
    if math.prod(shape) != size:  # expand
        return [_moved(x, lambda a: np.broadcast_to(a.reshape(a.shape), shape))]
    return [_moved(x, lambda a: a.reshape(shape))]


@register_handler(
    "aten.permute.default",
    "aten.transpose.int",
    "aten.t.default",
    "aten.swapaxes.default",
    "aten.movedim.int",
)
def _a_permute(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    args, kw = aten_args(op, vals)
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


@register_handler("aten.cat.default", "aten.concat.default", "aten.stack.default", "aten.hstack.default")
def _a_cat(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    args, kw = aten_args(op, vals)
    tensors, dim = _bound(args, kw, ("tensors", "dim"), (0,))
    return _concat(op, tensors, dim)


def _concat(op: Op, tensors: list[Value], dim: int) -> list[Value]:
    """``cat`` (or ``stack``/``hstack``, by ``op.target``) of ``tensors``: codes stay codes when all
    share one per-tensor format."""
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


@register_handler(
    "aten.slice.Tensor", "aten.select.int", "aten.narrow.default", "aten.split.Tensor",
    "aten.split_with_sizes.default", "aten.chunk.default", "aten.unbind.int", "aten.tensor_split.sections",
)  # fmt: skip
def _a_slice(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    args, kw = aten_args(op, vals)
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


@register_handler(
    "aten.pad.default",
    "aten.constant_pad_nd.default",
    "aten.reflection_pad2d.default",
    "aten.replication_pad2d.default",
)
def _a_pad(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    args, kw = aten_args(op, vals)
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


@register_handler(
    "aten.roll.default",
    "aten.flip.default",
    "aten.repeat.default",
    "aten.tile.default",
    "aten.repeat_interleave.self_int",
)
def _a_reindex(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    args, kw = aten_args(op, vals)
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


@register_handler(
    "aten.gather.default", "aten.take_along_dim.default", "aten.index_select.default", "aten.index.Tensor"
)
def _a_gather(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    args, kw = aten_args(op, vals)
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


@register_handler("aten.topk.default")
def _a_topk(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    """Top-k along ``dim``; ties keep the lower index (a stable sort)."""
    args, kw = aten_args(op, vals)
    x, k, dim, largest, _ = _bound(args, kw, ("self", "k", "dim", "largest", "sorted"), (-1, True, True))
    a = real(x)
    d = int(dim) % a.ndim
    order = np.argsort(-a if largest else a, axis=d, kind="stable")
    idx = np.take(order, np.arange(int(k)), axis=d)
    return [np.take_along_axis(a, idx, axis=d), idx.astype(np.int64)][: len(op.outputs)]


@register_handler(
    "aten.mean.dim", "aten.mean.default", "aten.sum.dim_IntList", "aten.sum.default", "aten.amax.default",
    "aten.amin.default",
)  # fmt: skip
def _a_reduce(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    args, kw = aten_args(op, vals)
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


@register_handler("aten.linalg_vector_norm.default")
def _a_vector_norm(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    """``(sum |x|^p)^(1/p)`` over ``dim`` (all axes when None), in float: the executor has no
    integer square root, so this op is recorded among the float ops. ``ord`` is a number, or
    ``"inf"``/``"-inf"`` (max / min of ``|x|``); 0 counts the non-zeros."""
    ctx.stats.float_ops.add(op.name)
    x = np.abs(real(vals[0]).astype(np.float64))
    dims = op.attrs.get("dim")
    axes = None if dims is None else tuple(int(d) for d in dims)
    keep = bool(op.attrs.get("keepdim", False))
    order = op.attrs.get("ord", 2.0)
    if order == "inf":
        out = x.max(axis=axes, keepdims=keep)
    elif order == "-inf":
        out = x.min(axis=axes, keepdims=keep)
    elif float(order) == 0.0:
        out = (x != 0).sum(axis=axes, keepdims=keep).astype(np.float64)
    else:
        p = float(order)
        out = (x**p).sum(axis=axes, keepdims=keep) ** (1.0 / p)
    return [np.asarray(out, dtype=np.float32).reshape(ctx.shape_of(op.outputs[0]))]


def _adaptive_bounds(n_in: int, n_out: int) -> list[tuple[int, int]]:
    """torch's adaptive pooling windows: ``[floor(i n / m), ceil((i + 1) n / m))``."""
    return [((i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)) for i in range(n_out)]


@register_handler(
    "aten.adaptive_avg_pool2d.default",
    "aten._adaptive_avg_pool2d.default",
    "aten.adaptive_max_pool2d.default",
)
def _a_adaptive(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    x = real(vals[0])
    oh, ow = ctx.shape_of(op.outputs[0])[-2:]
    red = np.max if "max" in op.target else np.mean
    out = np.empty((*x.shape[:-2], oh, ow), np.float32)
    for i, (h0, h1) in enumerate(_adaptive_bounds(x.shape[-2], oh)):
        for j, (w0, w1) in enumerate(_adaptive_bounds(x.shape[-1], ow)):
            out[..., i, j] = red(x[..., h0:h1, w0:w1].astype(np.float64), axis=(-1, -2))
    return [out][: len(op.outputs)]


@register_handler(
    "aten.avg_pool2d.default", "aten.max_pool2d.default", "aten.max_pool2d_with_indices.default"
)
def _a_pool2d(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    args, kw = aten_args(op, vals)
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


@register_handler("aten.upsample_nearest2d.vec", "aten.upsample_nearest2d.default")
def _a_nearest(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
    oh, ow = ctx.shape_of(op.outputs[0])[-2:]

    def up(a: np.ndarray) -> np.ndarray:
        hi = np.floor(np.arange(oh) * (a.shape[-2] / oh)).astype(np.int64)
        wi = np.floor(np.arange(ow) * (a.shape[-1] / ow)).astype(np.int64)
        return a[..., hi, :][..., wi]

    return [_moved(vals[0], up)]


@register_handler(OpKind.POOL)
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


@register_handler(OpKind.TOKEN_SELECT)
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
        return _a_reshape(ctx, op, vals)
    if op.kind == OpKind.TRANSPOSE:
        perm = [int(d) % nd for d in at.get("perm", list(range(nd))[::-1])]
        return [_moved(x, lambda a: a.transpose(perm))]
    if op.kind == OpKind.CONCAT:
        return _concat(op, vals, int(at.get("dim", 0)))
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
    register_handler(_k)(_fallback_movement)
