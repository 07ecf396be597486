"""Convolutions: 2-D (``conv2d``, ``convolution``), with a following eval-mode BatchNorm folded in;
1-D and 3-D as 2-D ones; transposed 2-D as a matmul and an overlap-add (``col2im``).

A convolution is ``dwconv2d`` when ``groups == in_ch == out_ch`` (> 1), else ``conv2d`` with its
``groups``. MACs = ``batch * out_ch * out_h * out_w * (in_ch / groups) * kh * kw`` (what
``torch.utils.flop_counter`` counts as FLOPs / 2).

BatchNorm folding (as in EfficientViT's ConvNormAct): when a convolution's only user is an
inference BatchNorm with constant statistics, ``w' = w * g / sqrt(var + eps)`` and
``b' = (b - mean) * g / sqrt(var + eps) + beta`` become new weight tensors and the BatchNorm
disappears (the conv op writes the BatchNorm's output).

Other ranks become the 2-D convolution the array already runs, between reshapes, so the simulator
and the bit-true executor see nothing new:

- ``conv1d`` (CoaT's and EfficientViM's 1-D convolutions over tokens): the length is the width
  of a height-1 image, the kernel ``(O, C/g, 1, k)``.
- ``conv3d`` whose kernel is 1 along depth or along width, with stride 1 and no padding there
  (the lambda layer's ``(r, r, 1)`` position lambdas, timm ``lambda_layer.py``): that axis is
  independent and folds into the batch. Other 3-D kernels are refused.
- ``conv_transpose2d`` (LowFormer's upsampling): each input pixel times the weight,
  ``(N*H*W, C_in) @ (C_in, C_out*kh*kw)``, then the ``kh*kw`` partial outputs overlap-added
  into place (``col2im``): the direct form, whose MACs are ``N*H*W*C_in*C_out*kh*kw``, what
  torch's flop counter counts (zero-insertion followed by a convolution would count
  ``stride**2`` times more, most of them by zero). Groups other than 1 are refused.
- ``col2im`` (``nn.Fold``: VOLO's outlook attention sums overlapping windows back into the
  image) is that overlap-add alone: an ``eltwise`` add per input element, no MACs (torch's flop
  counter counts none either).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from accelsim.errors import UnsupportedOpError
from accelsim.ir import OpKind
from accelsim.lower._registry import register_lowering
from accelsim.lower.context import Act, Const, Decomposition, LoweringContext, Step, bind, numel, pair

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
    rank = len(ctx.shape(a["input"]))
    args = (
        node,
        ctx,
        a["input"],
        a["weight"],
        a["bias"],
        a["stride"],
        a["padding"],
        a["dilation"],
        a["groups"],
    )
    if a["transposed"]:
        if rank != 4:
            raise UnsupportedOpError(f"transposed convolution of rank {rank} has no rule: {ctx.where(node)}")
        return _conv_transpose2d(*args)
    if rank == 3:
        return _conv1d(*args)
    if rank == 5:
        return _conv3d(*args)
    return _conv(
        node, ctx, a["input"], a["weight"], a["bias"], a["stride"], a["padding"], a["dilation"], a["groups"]
    )


def _ints(v: Any, n: int) -> list[int]:
    """``n`` ints from an int or a 1- or n-element sequence."""
    if isinstance(v, int):
        return [v] * n
    v = [int(x) for x in v]
    return v * n if len(v) == 1 else v[:n]


def _const_weight(ctx: LoweringContext, node: fx.Node, w: fx.Node) -> Const:
    value = ctx.value(w)
    if not isinstance(value, Const):
        raise UnsupportedOpError(
            f"a convolution with an activation as its weight has no rule: {ctx.where(node)}"
        )
    return value


def _reshape(d: Decomposition, suffix: str, x: str | Step, shape: list[int]) -> Step:
    return d.add(
        suffix, OpKind.RESHAPE, [x], shape, {}, target="aten.reshape.default", args=[{"input": 0}, shape]
    )


def _permute(d: Decomposition, suffix: str, x: str | Step, perm: list[int]) -> Step:
    shape = [d.shape(x)[i] for i in perm]
    return d.add(
        suffix, OpKind.TRANSPOSE, [x], shape, {}, target="aten.permute.default", args=[{"input": 0}, perm]
    )


def _conv2d_step(
    d: Decomposition,
    x: str | Step,
    weight: str,
    bias: str | None,
    wshape: tuple[int, ...],
    out_shape: list[int],
    stride: list[int],
    padding: list[int] | str,
    pad_pair: list[int],
    dilation: list[int],
    groups: int,
) -> Step:
    """Plan one 2-D convolution (attributes as :func:`_conv` writes them)."""
    n, c, h, w = d.shape(x)
    o, kh, kw = wshape[0], wshape[2], wshape[3]
    attrs: dict[str, Any] = {
        "batch": n, "in_ch": c, "out_ch": o, "in_h": h, "in_w": w, "out_h": out_shape[2],
        "out_w": out_shape[3], "kh": kh, "kw": kw, "stride": stride, "padding": pad_pair,
        "dilation": dilation, "groups": int(groups), "bias": bias is not None,
    }  # fmt: skip
    macs = n * o * out_shape[2] * out_shape[3] * (c // groups) * kh * kw
    kind = OpKind.DWCONV2D if groups > 1 and groups == c == o else OpKind.CONV2D
    inputs: list[str | Step] = [x, weight] + ([bias] if bias is not None else [])
    args = [
        {"input": 0},
        {"input": 1},
        {"input": 2} if bias is not None else None,
        stride,
        padding,
        dilation,
        groups,
    ]
    target = "aten.conv2d.padding" if isinstance(padding, str) else "aten.conv2d.default"
    return d.add("conv2d", kind, inputs, out_shape, attrs, target=target, args=args, macs=macs)


def _bias_name(ctx: LoweringContext, b: Any) -> str | None:
    return None if b is None else ctx.tensor(b)


def _conv1d(node: fx.Node, ctx: LoweringContext, x: fx.Node, w: fx.Node, b: Any, stride: Any, padding: Any,
            dilation: Any, groups: int) -> Any:  # fmt: skip
    (n, c, length), so = ctx.shape(x), ctx.shape(node)
    wc = _const_weight(ctx, node, w)
    o, cg, k = wc.value.shape
    s, dil = _ints(stride, 1)[0], _ints(dilation, 1)[0]
    if isinstance(padding, str):
        pad_arg: list[int] | str = padding
        p = 0 if padding == "valid" else dil * (k - 1) // 2
    else:
        p = _ints(padding, 1)[0]
        pad_arg = [0, p]
    d = Decomposition(ctx)
    x2 = _reshape(d, "as_2d", ctx.tensor(x), [n, c, 1, length])
    w2 = ctx.materialize(Const(wc.value.reshape(o, cg, 1, k), f"{wc.name}:as_2d"))
    y = _conv2d_step(
        d,
        x2,
        w2,
        _bias_name(ctx, b),
        (o, cg, 1, k),
        [n, o, 1, so[2]],
        [1, s],
        pad_arg,
        [0, p],
        [1, dil],
        groups,
    )
    return d.finish(_reshape(d, "from_2d", y, list(so)))


def _conv3d(node: fx.Node, ctx: LoweringContext, x: fx.Node, w: fx.Node, b: Any, stride: Any, padding: Any,
            dilation: Any, groups: int) -> Any:  # fmt: skip
    so = ctx.shape(node)
    wc = _const_weight(ctx, node, w)
    ks = list(wc.value.shape[2:])
    st, dil = _ints(stride, 3), _ints(dilation, 3)
    if isinstance(padding, str):
        raise UnsupportedOpError(f"conv3d with padding={padding!r} has no rule: {ctx.where(node)}")
    pad = _ints(padding, 3)
    folded = next((a for a in (4, 2) if ks[a - 2] == 1 and st[a - 2] == 1 and pad[a - 2] == 0), None)
    if folded is None:
        raise UnsupportedOpError(
            f"conv3d with kernel {ks} has no rule (a kernel of 1 along depth or width, stride 1 and no padding "
            f"there, lowers as a 2-D convolution): {ctx.where(node)}"
        )
    plane = [a for a in (2, 3, 4) if a != folded]
    perm = [0, folded, 1, *plane]
    inverse = [perm.index(i) for i in range(5)]
    d = Decomposition(ctx)
    xt = _permute(d, "fold_axis", ctx.tensor(x), perm)
    n, f, c, h, wd = d.shape(xt)
    x2 = _reshape(d, "as_2d", xt, [n * f, c, h, wd])
    o = so[1]
    w2v = wc.value.squeeze(folded)
    w2 = ctx.materialize(Const(w2v, f"{wc.name}:as_2d"))
    oh, ow = so[plane[0]], so[plane[1]]
    y = _conv2d_step(
        d, x2, w2, _bias_name(ctx, b), tuple(w2v.shape), [n * f, o, oh, ow], [st[p - 2] for p in plane],
        [pad[p - 2] for p in plane], [pad[p - 2] for p in plane], [dil[p - 2] for p in plane], groups,
    )  # fmt: skip
    y5 = _reshape(d, "unfold_axis", y, [n, f, o, oh, ow])
    return d.finish(_permute(d, "restore_axes", y5, inverse))


def _col2im_attrs(elements: int) -> dict[str, Any]:
    return {"fn": "col2im", "elements": elements}


def _conv_transpose2d(node: fx.Node, ctx: LoweringContext, x: fx.Node, w: fx.Node, b: Any, stride: Any,
                      padding: Any, dilation: Any, groups: int) -> Any:  # fmt: skip
    if groups != 1:
        raise UnsupportedOpError(
            f"grouped transposed convolution (groups={groups}) has no rule: {ctx.where(node)}"
        )
    (n, cin, h, wd), so = ctx.shape(x), ctx.shape(node)
    wc = _const_weight(ctx, node, w)
    _, cout, kh, kw = wc.value.shape
    d = Decomposition(ctx)
    xt = _permute(d, "pixels", ctx.tensor(x), [0, 2, 3, 1])
    rows = _reshape(d, "rows", xt, [n * h * wd, cin])
    wm = ctx.materialize(Const(wc.value.reshape(cin, cout * kh * kw), f"{wc.name}:as_matrix"))
    m, k_, n_ = n * h * wd, cin, cout * kh * kw
    attrs = {"batch": 1, "M": m, "K": k_, "N": n_, "operands": "wa", "bias": False}
    prod = d.add(
        "matmul", OpKind.MATMUL, [rows, wm], [m, n_], attrs, target="aten.mm.default",
        args=[{"input": 0}, {"input": 1}], macs=m * k_ * n_,
    )  # fmt: skip
    cols = _permute(d, "columns", _reshape(d, "per_image", prod, [n, h * wd, n_]), [0, 2, 1])
    args = [{"input": 0}, list(so[2:]), [kh, kw], _ints(dilation, 2), _ints(padding, 2), _ints(stride, 2)]
    y: Step = d.add(
        "col2im", OpKind.ELTWISE, [cols], list(so), _col2im_attrs(n * n_ * h * wd), target="aten.col2im.default",
        args=args,
    )  # fmt: skip
    if b is not None:
        bv = ctx.value(b)
        bias = (
            ctx.materialize(Const(bv.value.reshape(cout, 1, 1), f"{bv.name}:per_channel"))
            if isinstance(bv, Const)
            else _reshape(d, "bias_view", ctx.tensor(b), [cout, 1, 1])
        )
        y = d.add(
            "bias", OpKind.ELTWISE, [y, bias], list(so), {"fn": "add", "elements": numel(so)},
            target="aten.add.Tensor", args=[{"input": 0}, {"input": 1}],
        )  # fmt: skip
    return d.finish(y)


@register_lowering(aten.conv1d.default, aten.conv1d.padding)
def lower_conv1d(node: fx.Node, ctx: LoweringContext) -> Any:
    a = bind(node)
    return _conv1d(
        node, ctx, a["input"], a["weight"], a["bias"], a["stride"], a["padding"], a["dilation"], a["groups"]
    )


@register_lowering(aten.conv3d.default, aten.conv3d.padding)
def lower_conv3d(node: fx.Node, ctx: LoweringContext) -> Any:
    a = bind(node)
    return _conv3d(
        node, ctx, a["input"], a["weight"], a["bias"], a["stride"], a["padding"], a["dilation"], a["groups"]
    )


@register_lowering(aten.conv_transpose2d.input)
def lower_conv_transpose2d(node: fx.Node, ctx: LoweringContext) -> Any:
    a = bind(node)  # output_padding: col2im's output size (the node's) carries it
    return _conv_transpose2d(
        node, ctx, a["input"], a["weight"], a["bias"], a["stride"], a["padding"], a["dilation"], a["groups"]
    )


@register_lowering(aten.col2im.default)
def lower_col2im(node: fx.Node, ctx: LoweringContext) -> Any:
    x = node.args[0]
    assert isinstance(x, fx.Node)
    return ctx.emit(OpKind.ELTWISE, [x], _col2im_attrs(numel(ctx.shape(x))))
