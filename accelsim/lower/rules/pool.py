"""Reductions and resampling: ``mean``/``sum`` over axes, average and max pooling, interpolation.

All become ``pool`` ops with ``fn`` and ``elements`` = input elements read (an interpolation
reads ``taps`` inputs per output: 16 bicubic, 4 bilinear, 1 nearest). None is a MAC in
``torch.utils.flop_counter``'s sense, so none carries MACs.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import fx

from accelsim.ir import OpKind
from accelsim.lower._registry import register_lowering
from accelsim.lower.context import LoweringContext, numel, pair

aten = torch.ops.aten

_REDUCE_FN: dict[Any, str] = {
    aten.mean.dim: "mean",
    aten.mean.default: "mean",
    aten.sum.dim_IntList: "sum",
    aten.sum.default: "sum",
    aten.amax.default: "max",
    aten.amin.default: "min",
    aten.adaptive_avg_pool2d.default: "avg",
    aten._adaptive_avg_pool2d.default: "avg",
    aten.adaptive_max_pool2d.default: "max",
}

_TAPS: dict[Any, tuple[str, int]] = {
    aten.upsample_bicubic2d.vec: ("bicubic", 16),
    aten.upsample_bicubic2d.default: ("bicubic", 16),
    aten.upsample_bilinear2d.vec: ("bilinear", 4),
    aten.upsample_bilinear2d.default: ("bilinear", 4),
    aten.upsample_nearest2d.vec: ("nearest", 1),
    aten.upsample_nearest2d.default: ("nearest", 1),
}


@register_lowering(*_REDUCE_FN)
def lower_reduce(node: fx.Node, ctx: LoweringContext) -> Any:
    x = node.args[0]
    assert isinstance(x, fx.Node)
    attrs = {"fn": _REDUCE_FN[node.target], "elements": numel(ctx.shape(x))}
    keep = 1 if node.target is aten.adaptive_max_pool2d.default else None
    return ctx.emit(OpKind.POOL, [x], attrs, keep_outputs=keep)


@register_lowering(aten.avg_pool2d.default, aten.max_pool2d.default, aten.max_pool2d_with_indices.default)
def lower_pool2d(node: fx.Node, ctx: LoweringContext) -> Any:
    x = node.args[0]
    assert isinstance(x, fx.Node)
    kernel = pair(node.args[1])
    out_shape = ctx.meta(node)[0].shape if isinstance(ctx.meta(node), list | tuple) else ctx.shape(node)
    fn = "avg" if node.target is aten.avg_pool2d.default else "max"
    attrs = {"fn": fn, "elements": numel(out_shape) * math.prod(kernel), "kernel": kernel}
    return ctx.emit(OpKind.POOL, [x], attrs, keep_outputs=1)


@register_lowering(*_TAPS)
def lower_upsample(node: fx.Node, ctx: LoweringContext) -> Any:
    x = node.args[0]
    assert isinstance(x, fx.Node)
    fn, taps = _TAPS[node.target]
    attrs = {"fn": fn, "elements": numel(ctx.shape(node)) * taps}
    return ctx.emit(OpKind.POOL, [x], attrs)
