"""Element-wise ops: activations (one tensor in) and arithmetic (``eltwise``: add, sub, mul, div...).

``elements`` is the output element count; a scalar operand is kept in ``attrs["scalar"]``; a
tensor operand that is a constant (a layer scale, a position embedding, an attention mask)
becomes a weight input. In-place variants (``relu_``) lower like their functional forms.

``addcmul(x, t1, t2, value)`` = ``x + value * t1 * t2`` lowers as torch decomposes it
(``torch/_refs/__init__.py`` ``addcmul``): ``mul`` (and a ``mul`` by ``value`` unless 1), then
``add``, ops the executor runs. ResMLP's ``Affine`` (timm ``mlp_mixer.py``) and the global
response norm of ConvNeXt-V2 / CSATv2 (timm ``layers/grn.py``) use it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from accelsim.ir import OpKind
from accelsim.lower._registry import register_lowering
from accelsim.lower.context import Decomposition, LoweringContext, bind, numel

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


@register_lowering(aten.addcmul.default)
def lower_addcmul(node: fx.Node, ctx: LoweringContext) -> Any:
    a = bind(node)
    x, t1, t2, value = a["self"], a["tensor1"], a["tensor2"], a["value"]
    d = Decomposition(ctx)
    shape = tuple(torch.broadcast_shapes(ctx.shape(t1), ctx.shape(t2)))
    prod = d.add(
        "mul", OpKind.ELTWISE, [ctx.tensor(t1), ctx.tensor(t2)], shape, {"fn": "mul", "elements": numel(shape)},
        target="aten.mul.Tensor", args=[{"input": 0}, {"input": 1}],
    )  # fmt: skip
    if value != 1:
        prod = d.add(
            "scaled", OpKind.ELTWISE, [prod], shape, {"fn": "mul", "elements": numel(shape), "scalar": value},
            target="aten.mul.Tensor", args=[{"input": 0}, value],
        )  # fmt: skip
    out = ctx.shape(node)
    total = d.add(
        "add", OpKind.ELTWISE, [ctx.tensor(x), prod], out, {"fn": "add", "elements": numel(out)},
        target="aten.add.Tensor", args=[{"input": 0}, {"input": 1}],
    )  # fmt: skip
    return d.finish(total)
