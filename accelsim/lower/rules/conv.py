"""2-D convolutions (``conv2d``, ``convolution``), with a following eval-mode BatchNorm folded in.

A convolution is ``dwconv2d`` when ``groups == in_ch == out_ch`` (> 1), else ``conv2d`` with its
``groups``. MACs = ``batch * out_ch * out_h * out_w * (in_ch / groups) * kh * kw`` (what
``torch.utils.flop_counter`` counts as FLOPs / 2).

BatchNorm folding (as in EfficientViT's ConvNormAct): when a convolution's only user is an
inference BatchNorm with constant statistics, ``w' = w * g / sqrt(var + eps)`` and
``b' = (b - mean) * g / sqrt(var + eps) + beta`` become new weight tensors and the BatchNorm
disappears (the conv op writes the BatchNorm's output).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from accelsim.errors import UnsupportedOpError
from accelsim.ir import OpKind
from accelsim.lower._registry import register_lowering
from accelsim.lower.context import Act, Const, LoweringContext, bind, pair

aten = torch.ops.aten

#: inference BatchNorm ops and the index of (weight, bias, mean, var, eps) in their arguments
_BN_TARGETS: dict[Any, tuple[int, int, int, int, int]] = {
    aten.batch_norm.default: (1, 2, 3, 4, 7),
    aten._native_batch_norm_legit_no_training.default: (1, 2, 3, 4, 6),
}


def _foldable_bn(node: fx.Node, ctx: LoweringContext) -> fx.Node | None:
    """The BatchNorm that is ``node``'s only user, if it can be folded into it."""
    users = list(node.users)
    if len(users) != 1 or users[0].target not in _BN_TARGETS:
        return None
    bn = users[0]
    if bn.args[0] is not node or ctx.quantizer_of(bn) is not None:
        return None
    if bn.target is aten.batch_norm.default and bn.args[5]:  # training-mode statistics
        return None
    iw, ib, im, iv, _ = _BN_TARGETS[bn.target]
    for i in (iw, ib, im, iv):
        arg = bn.args[i]
        if arg is not None and not ctx.is_const(arg):
            return None
    return bn if bn.args[im] is not None and bn.args[iv] is not None else None


def _fold(ctx: LoweringContext, node: fx.Node, w: fx.Node, b: Any, bn: fx.Node) -> tuple[Const, Const]:
    iw, ib, im, iv, ie = _BN_TARGETS[bn.target]
    weight = ctx.value(w)
    wv = weight.value
    mean, var, eps = ctx.const(bn.args[im]), ctx.const(bn.args[iv]), float(bn.args[ie])  # type: ignore[arg-type]
    gamma = ctx.const(bn.args[iw]) if bn.args[iw] is not None else torch.ones_like(mean)
    beta = ctx.const(bn.args[ib]) if bn.args[ib] is not None else torch.zeros_like(mean)
    bias = ctx.const(b) if b is not None else torch.zeros_like(mean)
    scale = gamma / torch.sqrt(var + eps)
    w_folded = wv * scale.reshape(-1, *([1] * (wv.dim() - 1)))
    b_folded = (bias - mean) * scale + beta
    path, _ = ctx.module_of(node)
    return (
        Const(w_folded, f"{weight.name}:bn_folded"),
        Const(b_folded, f"{path or node.name}.bias:bn_folded"),
    )


def _conv(
    node: fx.Node,
    ctx: LoweringContext,
    x: fx.Node,
    w: fx.Node,
    b: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
) -> Any:
    sx, sw = ctx.shape(x), ctx.shape(w)
    if len(sx) != 4 or len(sw) != 4:
        raise UnsupportedOpError(f"only 2-D convolutions lower (input {list(sx)}): {ctx.where(node)}")
    so = ctx.shape(node)
    kh, kw = sw[2], sw[3]
    dil = pair(dilation)
    if isinstance(padding, str):  # conv2d.padding: 'same' pads the extra row/col at the end
        pad = [0, 0] if padding == "valid" else [dil[0] * (kh - 1) // 2, dil[1] * (kw - 1) // 2]
    else:
        pad = pair(padding)
    in_ch, out_ch = sx[1], sw[0]
    depthwise = groups > 1 and groups == in_ch == out_ch
    attrs: dict[str, Any] = {
        "batch": sx[0],
        "in_ch": in_ch,
        "out_ch": out_ch,
        "in_h": sx[2],
        "in_w": sx[3],
        "out_h": so[2],
        "out_w": so[3],
        "kh": kh,
        "kw": kw,
        "stride": pair(stride),
        "padding": pad,
        "dilation": dil,
        "groups": int(groups),
    }
    macs = sx[0] * out_ch * so[2] * so[3] * (in_ch // groups) * kh * kw
    kind = OpKind.DWCONV2D if depthwise else OpKind.CONV2D
    bn = _foldable_bn(node, ctx) if ctx.is_const(w) and (b is None or ctx.is_const(b)) else None
    if bn is None:
        attrs["bias"] = b is not None
        inputs = [x, w] + ([b] if b is not None else [])
        return ctx.emit(kind, inputs, attrs, macs=macs)
    wf, bf = _fold(ctx, node, w, b, bn)
    attrs["bias"] = True
    attrs["folded_bn"] = ctx.module_of(bn)[0]
    names = [ctx.tensor(x), ctx.materialize(wf), ctx.materialize(bf)]
    pad_arg: Any = padding if isinstance(padding, str) else pad
    args = [{"input": 0}, {"input": 1}, {"input": 2}, pair(stride), pad_arg, dil, int(groups)]
    target = "aten.conv2d.padding" if isinstance(padding, str) else "aten.conv2d.default"
    out = ctx.emit(kind, [x], attrs, macs=macs, input_names=names, args=args, kwargs={}, target=target)
    ctx.preset[bn] = out if bn.target is aten.batch_norm.default else [out, None, None]
    assert isinstance(out, Act)
    return out


@register_lowering(aten.conv2d.default, aten.conv2d.padding)
def lower_conv2d(node: fx.Node, ctx: LoweringContext) -> Any:
    a = bind(node)
    return _conv(
        node, ctx, a["input"], a["weight"], a["bias"], a["stride"], a["padding"], a["dilation"], a["groups"]
    )


@register_lowering(aten.convolution.default, aten._convolution.default)
def lower_convolution(node: fx.Node, ctx: LoweringContext) -> Any:
    a = bind(node)
    if a["transposed"]:
        raise UnsupportedOpError(f"transposed convolution has no lowering rule: {ctx.where(node)}")
    return _conv(
        node, ctx, a["input"], a["weight"], a["bias"], a["stride"], a["padding"], a["dilation"], a["groups"]
    )
