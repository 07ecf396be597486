"""Normalisations: ``layer_norm``, ``softmax``, and BatchNorm that could not be folded into a conv.

Attributes follow ``accelsim/ir/graph.py``: ``rows`` independent rows of ``length`` elements
(the normalised axis), and ``eps``. A BatchNorm normalises per channel: ``length`` is the channel
count and ``rows`` the elements per channel.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import fx

from accelsim.ir import OpKind
from accelsim.lower._registry import register_lowering
from accelsim.lower.context import LoweringContext, bind, numel

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
