"""Element-wise ops: activations (one tensor in) and arithmetic (``eltwise``: add, sub, mul, div...).

``elements`` is the output element count; a scalar operand is kept in ``attrs["scalar"]``; a
tensor operand that is a constant (a layer scale, a position embedding, an attention mask)
becomes a weight input. In-place variants (``relu_``) lower like their functional forms.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from accelsim.ir import OpKind
from accelsim.lower._registry import register_lowering
from accelsim.lower.context import LoweringContext, numel

aten = torch.ops.aten

_ACTIVATIONS = [
    aten.gelu.default, aten.gelu_.default, aten.relu.default, aten.relu_.default, aten.relu6.default,
    aten.hardswish.default, aten.hardswish_.default, aten.silu.default, aten.silu_.default,
    aten.sigmoid.default, aten.sigmoid_.default, aten.tanh.default, aten.tanh_.default,
    aten.hardsigmoid.default, aten.hardsigmoid_.default, aten.hardtanh.default, aten.hardtanh_.default,
    aten.leaky_relu.default, aten.leaky_relu_.default, aten.elu.default, aten.elu_.default,
    aten.softplus.default, aten.mish.default, aten.mish_.default, aten.exp.default, aten.log.default,
    aten.sqrt.default, aten.rsqrt.default, aten.erf.default, aten.abs.default, aten.neg.default,
    aten.reciprocal.default, aten.square.default, aten.round.default, aten.floor.default,
    aten.ceil.default, aten.sign.default, aten.clamp.default, aten.clamp_.default, aten.clamp.Tensor,
    aten.clamp_min.default, aten.clamp_max.default, aten.clip.default,
    aten.pow.Tensor_Scalar,
]  # fmt: skip

_ELTWISE = [
    aten.add.Tensor, aten.add_.Tensor, aten.add.Scalar, aten.sub.Tensor, aten.sub_.Tensor,
    aten.sub.Scalar, aten.rsub.Scalar, aten.rsub.Tensor, aten.mul.Tensor, aten.mul_.Tensor,
    aten.mul.Scalar, aten.div.Tensor, aten.div_.Tensor, aten.div.Scalar, aten.div.Tensor_mode,
    aten.maximum.default, aten.minimum.default, aten.pow.Tensor_Tensor, aten.where.self,
    aten.masked_fill.Scalar, aten.masked_fill.Tensor, aten.eq.Tensor, aten.eq.Scalar,
    aten.ne.Tensor, aten.ne.Scalar, aten.lt.Tensor, aten.lt.Scalar, aten.gt.Tensor,
    aten.gt.Scalar, aten.le.Tensor, aten.le.Scalar, aten.ge.Tensor, aten.ge.Scalar,
]  # fmt: skip


def fn_name(target: Any) -> str:
    """``aten.relu_.default`` -> ``relu``: the op's base name, in-place underscore dropped."""
    return str(target.overloadpacket.__name__).rstrip("_")


@register_lowering(*_ACTIVATIONS)
def lower_activation(node: fx.Node, ctx: LoweringContext) -> Any:
    inputs = [a for a in node.args if isinstance(a, fx.Node)]
    attrs = {"fn": fn_name(node.target), "elements": numel(ctx.shape(node))}
    return ctx.emit(OpKind.ACTIVATION, inputs, attrs)


@register_lowering(*_ELTWISE)
def lower_eltwise(node: fx.Node, ctx: LoweringContext) -> Any:
    inputs = [a for a in node.args if isinstance(a, fx.Node)]
    scalars = [a for a in node.args if isinstance(a, int | float) and not isinstance(a, bool)]
    attrs: dict[str, Any] = {"fn": fn_name(node.target), "elements": numel(ctx.shape(node))}
    if scalars and len(inputs) < 2:
        attrs["scalar"] = scalars[0]
    return ctx.emit(OpKind.ELTWISE, inputs, attrs)
