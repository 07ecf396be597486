"""Reductions and resampling: ``mean``/``sum`` over axes, vector norms, average and max pooling,
interpolation.

All become ``pool`` ops with ``fn`` and ``elements`` = input elements read (an interpolation
reads ``taps`` inputs per output: 16 bicubic, 4 bilinear, 1 nearest). None is a MAC in
``torch.utils.flop_counter``'s sense, so none carries MACs.

A vector norm (``fn="norm"``, ``ord`` p) is one sweep of the vector unit: ``|x|^p`` accumulated
along ``dim``, then one root per output. It is what ``F.normalize`` computes before its divide:
the L2-normalised queries and keys of cosine attention (SwinV2, Liu et al., CVPR 2022, Eq. 2;
timm ``swin_transformer_v2.py`` ``WindowAttention``) and of cross-covariance attention (XCiT,
El-Nouby et al., NeurIPS 2021; timm ``xcit.py`` ``XCA``, EdgeNeXt's ``XCA`` likewise).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import fx

from accelsim.ir import OpKind
from accelsim.lower._registry import register_lowering
from accelsim.lower.context import LoweringContext, bind, numel, pair

aten = torch.ops.aten

_REDUCE_FN: dict[Any, str] = {
    aten.mean.dim: "mean",
    aten.mean.default: "mean",
    aten.sum.dim_IntList: "sum",
    aten.sum.default: "sum",
    aten.amax.default: "max",
    aten.amin.default: "min",
    aten.max.dim: "max",  # (values, indices): VOLO's head keeps the values of its token max
    aten.min.dim: "min",
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
    keep = 1 if node.target in (aten.adaptive_max_pool2d.default, aten.max.dim, aten.min.dim) else None
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


@register_lowering(aten.linalg_vector_norm.default)
def lower_vector_norm(node: fx.Node, ctx: LoweringContext) -> Any:
    a = bind(node)
    x = a["self"]
    order = float(a["ord"])
    dims = a["dim"]
    rank = len(ctx.shape(x))
    attrs: dict[str, Any] = {
        "fn": "norm",
        # JSON has no infinity: the max-norm is spelled out, like to_json_safe does for args
        "ord": order if math.isfinite(order) else str(order),
        "elements": numel(ctx.shape(x)),
        "dim": None if dims is None else sorted(int(d) % rank for d in dims),
        "keepdim": bool(a["keepdim"]),
    }
    return ctx.emit(OpKind.POOL, [x], attrs)


@register_lowering(aten.avg_pool1d.default)
def lower_avg_pool1d(node: fx.Node, ctx: LoweringContext) -> Any:
    """Average pooling along the last axis (Next-ViT's ``E_MHSA`` reduces its keys and values
    with ``nn.AvgPool1d``, timm ``nextvit.py``)."""
    a = bind(node)
    kernel = int(a["kernel_size"][0])
    attrs = {"fn": "avg", "elements": numel(ctx.shape(node)) * kernel, "kernel": [kernel]}
    return ctx.emit(OpKind.POOL, [a["self"]], attrs)
