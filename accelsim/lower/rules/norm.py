"""Normalisations: ``layer_norm``, ``rms_norm``, ``group_norm``, ``softmax``, and BatchNorm that could not be
folded into a conv.

Attributes follow ``accelsim/ir/graph.py``: ``rows`` independent rows of ``length`` elements
(the normalised axis), and ``eps``. A BatchNorm normalises per channel: ``length`` is the channel
count and ``rows`` the elements per channel.

A GroupNorm of ``G`` groups over ``(N, C, *spatial)`` is a layer norm of each group's
``C / G * prod(spatial)`` elements followed by a per-channel affine, which is how torch itself
decomposes it (``native_group_norm`` in ``torch/_decomp/decompositions.py``): it lowers to
``reshape (N, G, L) -> layernorm (rows N*G, length L, no affine) -> reshape back -> mul(weight)
-> add(bias)``. Every piece is an op the vector unit, the simulator and the bit-true executor
already run by its own semantics (the executor's layernorm normalises the last axis, exactly the
group here). PoolFormer and MobileViTv2 use ``G = 1`` (timm ``layers/norm.py`` ``GroupNorm1``).
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import fx

from accelsim.errors import UnsupportedOpError
from accelsim.ir import OpKind
from accelsim.lower._registry import register_lowering
from accelsim.lower.context import Const, Decomposition, LoweringContext, Step, bind, numel

aten = torch.ops.aten


def _present(*args: Any) -> list[fx.Node]:
    return [a for a in args if isinstance(a, fx.Node)]


@register_lowering(aten.layer_norm.default, aten.native_layer_norm.default)
def lower_layer_norm(node: fx.Node, ctx: LoweringContext) -> Any:
    a = bind(node)
    x = a["input"]
    length = math.prod(a["normalized_shape"])
    attrs = {"rows": numel(ctx.shape(x)) // length, "length": length, "eps": float(a["eps"])}
    inputs = _present(x, a["weight"], a["bias"])
    return ctx.emit(OpKind.LAYERNORM, inputs, attrs, keep_outputs=1)


@register_lowering(aten.rms_norm.default)
def lower_rms_norm(node: fx.Node, ctx: LoweringContext) -> Any:
    """RMSNorm (AIMv2): ``x / sqrt(mean(x^2) + eps) * weight``, a layer norm without the mean
    (``norm: rms`` on the op); ``eps`` None is torch's: the input dtype's machine epsilon."""
    a = bind(node)
    x = a["input"]
    length = math.prod(a["normalized_shape"])
    eps = a["eps"] if a["eps"] is not None else torch.finfo(ctx.meta(x).dtype).eps
    attrs = {"rows": numel(ctx.shape(x)) // length, "length": length, "eps": float(eps), "norm": "rms"}
    return ctx.emit(OpKind.LAYERNORM, _present(x, a["weight"]), attrs)


@register_lowering(aten.softmax.int, aten._softmax.default, aten._safe_softmax.default)
def lower_softmax(node: fx.Node, ctx: LoweringContext) -> Any:
    x = node.args[0]
    assert isinstance(x, fx.Node)
    shape = ctx.shape(x)
    dim = int(cast(int, node.args[1])) % len(shape)
    attrs = {"rows": numel(shape) // shape[dim], "length": shape[dim], "dim": dim}
    return ctx.emit(OpKind.SOFTMAX, [x], attrs)


@register_lowering(aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default)
def lower_batch_norm(node: fx.Node, ctx: LoweringContext) -> Any:
    a = bind(node)
    x = a["input"]
    shape = ctx.shape(x)
    channels = shape[1] if len(shape) > 1 else shape[0]
    attrs = {"rows": numel(shape) // channels, "length": channels, "eps": float(a["eps"])}
    inputs = _present(x, a["weight"], a["bias"], a["running_mean"], a["running_var"])
    return ctx.emit(OpKind.BATCHNORM, inputs, attrs, keep_outputs=1)


@register_lowering(aten.group_norm.default)
def lower_group_norm(node: fx.Node, ctx: LoweringContext) -> Any:
    a = bind(node)
    x, groups, eps = a["input"], int(a["num_groups"]), float(a["eps"])
    shape = ctx.shape(x)
    if len(shape) < 2 or shape[1] % groups:
        raise UnsupportedOpError(f"group_norm of {groups} groups over shape {list(shape)}: {ctx.where(node)}")
    n, c = shape[0], shape[1]
    length = numel(shape) // (n * groups)
    d = Decomposition(ctx)
    xg = d.add(
        "groups", OpKind.RESHAPE, [ctx.tensor(x)], (n, groups, length), {}, target="aten.reshape.default",
        args=[{"input": 0}, [n, groups, length]],
    )  # fmt: skip
    normed = d.add(
        "norm", OpKind.LAYERNORM, [xg], (n, groups, length),
        {"rows": n * groups, "length": length, "eps": eps, "groups": groups},
        target="aten.layer_norm.default", args=[{"input": 0}, [length], None, None, eps],
    )  # fmt: skip
    y: Step = d.add(
        "ungroup", OpKind.RESHAPE, [normed], shape, {}, target="aten.reshape.default",
        args=[{"input": 0}, list(shape)],
    )  # fmt: skip
    for role, fn in (("weight", "mul"), ("bias", "add")):
        if a[role] is None:
            continue
        param = _per_channel(ctx, d, a[role], c, len(shape), role)
        y = d.add(
            role, OpKind.ELTWISE, [y, param], shape, {"fn": fn, "elements": numel(shape)},
            target=f"aten.{fn}.Tensor", args=[{"input": 0}, {"input": 1}],
        )  # fmt: skip
    return d.finish(y)


def _per_channel(
    ctx: LoweringContext, d: Decomposition, arg: fx.Node, c: int, rank: int, role: str
) -> str | Step:
    """A ``(C,)`` affine parameter viewed as ``(C, 1, ..., 1)`` so that it broadcasts over space."""
    view = [c] + [1] * (rank - 2)
    value = ctx.value(arg)
    if isinstance(value, Const):  # a parameter: the view is folded, the weight stays C values
        return ctx.materialize(Const(value.value.reshape(view), f"{value.name}:per_channel"))
    return d.add(
        f"{role}_view", OpKind.RESHAPE, [ctx.tensor(arg)], view, {}, target="aten.reshape.default",
        args=[{"input": 0}, view],
    )  # fmt: skip
