"""Data movement (no MACs) and shape-only no-ops, which are elided.

Views and reshapes become ``reshape``; axis permutations ``transpose``; ``cat``/``stack``
``concat``; slicing and splitting ``slice`` (one op with one output per piece); padding ``pad``;
re-indexing (``roll``, ``flip``, ``repeat``, indexing by a constant index, and the sliding
windows of ``nn.Unfold``/``Tensor.unfold``: TNT's pixel patches, HaloNet's halo blocks)
``gather``.
Aliases, copies, dtype casts and eval-mode dropout are elided: the node's value is its input.

``copy_(dst, src)`` writes ``src`` over all of ``dst``: later readers of ``dst`` see ``src`` (the
node's value; an ``expand`` when it broadcasts). MViTv2 writes its relative-position sum back
over the attention logits this way (timm ``mvitv2.py`` ``cal_rel_pos_type``). A copy into a
slice of another tensor (a slice assignment: MViTv2 with a class token writes
``attn[:, :, 1:, 1:]``) builds the tensor anew: per sliced axis, the parts before and after the
slice and the written part concatenated back (``slice`` and ``concat`` ops, no MACs), and later
readers of the tensor see the new one. Copies into other views (``select``, strided slices) and
copies whose old value is still read through a view after them are refused.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from accelsim.errors import UnsupportedOpError
from accelsim.ir import OpKind
from accelsim.lower._registry import register_lowering
from accelsim.lower.context import Act, LoweringContext, bind

aten = torch.ops.aten


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    """Tensor arguments in order, looking into lists (``cat``'s tensors)."""
    out: list[fx.Node] = []
    for a in (*node.args, *node.kwargs.values()):
        if isinstance(a, fx.Node) and isinstance(a.meta.get("val"), torch.Tensor):
            out.append(a)
        elif isinstance(a, list | tuple):
            out.extend(x for x in a if isinstance(x, fx.Node) and isinstance(x.meta.get("val"), torch.Tensor))
    return out


#: Ops that are the identity when the output shape equals the input shape.
_IDENTITY_WHEN_SAME_SHAPE = {
    aten.view.default, aten.reshape.default, aten._unsafe_view.default, aten.flatten.using_ints,
    aten.unflatten.int, aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default, aten.expand.default,
    aten.view_as.default, aten.reshape_as.default, aten.expand_as.default, aten.slice.Tensor,
    aten.narrow.default, aten.pad.default, aten.constant_pad_nd.default,
}  # fmt: skip


def _movement(kind: OpKind) -> Any:
    def rule(node: fx.Node, ctx: LoweringContext) -> Any:
        inputs = _tensor_args(node)
        if node.target in _IDENTITY_WHEN_SAME_SHAPE and ctx.shape(inputs[0]) == ctx.shape(node):
            return ctx.value(inputs[0])  # e.g. Swin's zero padding and un-padding at 224 px
        return ctx.emit(kind, inputs)

    rule.__name__ = rule.__qualname__ = f"lower_{kind.value}"
    return rule


register_lowering(
    aten.view.default, aten.reshape.default, aten._unsafe_view.default, aten.flatten.using_ints,
    aten.unflatten.int, aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default,
    aten.unsqueeze.default, aten.expand.default, aten.view_as.default, aten.reshape_as.default,
    aten.expand_as.default,
)(_movement(OpKind.RESHAPE))  # fmt: skip
register_lowering(
    aten.permute.default, aten.transpose.int, aten.t.default, aten.swapaxes.default,
    aten.movedim.int, aten.pixel_shuffle.default, aten.pixel_unshuffle.default,
)(_movement(OpKind.TRANSPOSE))  # fmt: skip
register_lowering(aten.cat.default, aten.stack.default, aten.concat.default, aten.hstack.default)(
    _movement(OpKind.CONCAT)
)
register_lowering(
    aten.slice.Tensor, aten.select.int, aten.narrow.default, aten.split.Tensor,
    aten.split_with_sizes.default, aten.chunk.default, aten.unbind.int, aten.tensor_split.sections,
)(_movement(OpKind.SLICE))  # fmt: skip
register_lowering(
    aten.pad.default, aten.constant_pad_nd.default, aten.reflection_pad2d.default,
    aten.replication_pad2d.default,
)(_movement(OpKind.PAD))  # fmt: skip
register_lowering(
    aten.roll.default, aten.flip.default, aten.repeat.default, aten.tile.default,
    aten.repeat_interleave.self_int, aten.im2col.default, aten.unfold.default,
)(_movement(OpKind.GATHER))  # fmt: skip


@register_lowering(
    aten.clone.default, aten.contiguous.default, aten.alias.default, aten.detach.default,
    aten.detach_.default, aten.lift_fresh_copy.default, aten.dropout.default, aten.dropout_.default,
    aten.feature_dropout.default, aten.alpha_dropout.default, aten.to.dtype, aten.to.dtype_layout,
    aten.to.device, aten._to_copy.default, aten.type_as.default, aten.native_dropout.default,
)  # fmt: skip
def lower_elided(node: fx.Node, ctx: LoweringContext) -> Any:
    """Shape-only no-ops in an inference graph: the value is the first tensor argument."""
    value = ctx.value(_tensor_args(node)[0])
    if node.target is aten.native_dropout.default:  # returns (output, mask)
        return [value, None]
    return value


@register_lowering(aten.sym_size.int, aten.sym_numel.default)
def lower_sym_size(node: fx.Node, ctx: LoweringContext) -> Any:
    """Shapes are static: the size export recorded."""
    return int(node.meta["val"])


def _is_view(node: fx.Node) -> bool:
    """The node's result aliases its input (``Tensor(a) -> Tensor(a)`` in the ATen schema)."""
    schema = getattr(node.target, "_schema", None)
    if node.op != "call_function" or schema is None or not schema.returns:
        return False
    alias = schema.returns[0].alias_info
    return alias is not None and not alias.is_write


def _views_read_after(dst: fx.Node, copy: fx.Node) -> list[fx.Node]:
    """Views of ``dst`` that something reads after ``copy`` has overwritten ``dst``."""
    order = {n: i for i, n in enumerate(copy.graph.nodes)}
    late, stack = [], [u for u in dst.users if u is not copy and _is_view(u)]
    while stack:
        view = stack.pop()
        for u in view.users:
            if _is_view(u):
                stack.append(u)
            elif order[u] > order[copy]:
                late.append(view)
    return late


def _slice_chain(dst: fx.Node) -> tuple[fx.Node, list[tuple[int, int, int]]] | None:
    """``(base, [(dim, start, end), ...] outermost first)`` when ``dst`` is unit-step slices of a
    tensor that is not itself a view; None otherwise."""
    chain: list[tuple[int, int, int]] = []
    v = dst
    while v.op == "call_function" and v.target is aten.slice.Tensor:
        base = v.args[0]
        assert isinstance(base, fx.Node)
        a = bind(v)
        if a["step"] != 1:
            return None
        dim = int(a["dim"]) % base.meta["val"].dim()
        size = int(base.meta["val"].shape[dim])
        # slice bounds as Python's: negatives count from the end, out-of-range ones clamp
        lo, hi, _ = slice(a["start"], a["end"]).indices(size)
        hi = max(lo, hi)
        chain.append((dim, lo, hi))
        v = base
    if not chain or v.op != "call_function" or _is_view(v):
        return None
    return v, chain[::-1]


def _write_slices(
    ctx: LoweringContext,
    name: str,
    shape: tuple[int, ...],
    chain: list[tuple[int, int, int]],
    src: str,
    tag: str,
) -> str:
    """The tensor ``name`` with ``src`` written over the slices ``chain``: a graph tensor name."""
    if not chain:
        return src
    dim, lo, hi = chain[0]
    inner_shape = tuple(hi - lo if i == dim else d for i, d in enumerate(shape))

    def piece(a: int, b: int, label: str) -> str:
        out = tuple(b - a if i == dim else d for i, d in enumerate(shape))
        return ctx.emit_inner(
            f"{tag}{label}", OpKind.SLICE, [name], out, {}, target="aten.slice.Tensor",
            args=[{"input": 0}, dim, a, b],
        )  # fmt: skip

    middle = _write_slices(
        ctx, piece(lo, hi, "mid") if chain[1:] else name, inner_shape, chain[1:], src, tag + "in_"
    )
    parts = (
        ([piece(0, lo, "head")] if lo > 0 else [])
        + [middle]
        + ([piece(hi, shape[dim], "tail")] if hi < shape[dim] else [])
    )
    if len(parts) == 1:
        return middle
    return ctx.emit_inner(
        f"{tag}written", OpKind.CONCAT, parts, shape, {}, target="aten.cat.default",
        args=[[{"input": i} for i in range(len(parts))], dim],
    )  # fmt: skip


def _copy_into_slice(node: fx.Node, ctx: LoweringContext, dst: fx.Node, src: fx.Node) -> Any:
    found = _slice_chain(dst)
    if found is None or not isinstance(ctx.value(found[0]), Act) or _views_read_after(found[0], node):
        raise UnsupportedOpError(
            f"in-place copy into {dst.name!r}, a view of another tensor or an input, has no rule (a unit-step "
            f"slice of a computed tensor, not read through another view afterwards, lowers): {ctx.where(node)}"
        )
    base, chain = found
    value = ctx.value(src)
    if ctx.shape(src) != ctx.shape(dst):
        value = ctx.emit(
            OpKind.RESHAPE, [src], args=[src, list(ctx.shape(dst))], target="aten.expand.default"
        )
        src_name = value.name
    else:
        src_name = ctx.tensor(src)
    written = _write_slices(ctx, ctx.tensor(base), ctx.shape(base), chain, src_name, "")
    ctx.env[base] = Act(written)  # readers of the base after the copy see the written tensor
    return value


@register_lowering(aten.copy_.default)
def lower_copy_(node: fx.Node, ctx: LoweringContext) -> Any:
    dst, src = node.args[0], node.args[1]
    assert isinstance(dst, fx.Node) and isinstance(src, fx.Node)
    if _is_view(dst):
        return _copy_into_slice(node, ctx, dst, src)
    if dst.op != "call_function":
        raise UnsupportedOpError(
            f"in-place copy into {dst.name!r}, a view of another tensor or an input (a slice assignment), "
            f"has no rule: {ctx.where(node)}"
        )
    late = _views_read_after(dst, node)
    if late:
        raise UnsupportedOpError(
            f"in-place copy over {dst.name!r} while its view {late[0].name!r} is read after it has no rule: "
            f"{ctx.where(node)}"
        )
    if ctx.shape(src) == ctx.shape(node):
        value = ctx.value(src)
    else:
        value = ctx.emit(
            OpKind.RESHAPE, [src], args=[src, list(ctx.shape(node))], target="aten.expand.default"
        )
    ctx.env[dst] = value  # readers of dst after the copy see what was written
    return value
