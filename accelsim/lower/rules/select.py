"""Data-dependent selection: top-k token pruning and gathers.

Token reduction keeps the top-k tokens: ``topk`` over the scores, then ``gather`` /
``index_select`` / advanced indexing of the ``(B, N, C)`` tokens with the indices. Both steps
become ``token_select`` ops (``batch, tokens_in, tokens_out, channels``; ``fn`` ``topk`` for the
selection, ``gather`` for the copy); a gather that is not along the token axis of a
``(B, N, C)`` tensor is a ``gather`` movement op.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from accelsim.ir import OpKind
from accelsim.lower._registry import register_lowering
from accelsim.lower.context import LoweringContext, bind, numel

aten = torch.ops.aten


@register_lowering(aten.topk.default)
def lower_topk(node: fx.Node, ctx: LoweringContext) -> Any:
    a = bind(node)
    x = a["self"]
    shape = ctx.shape(x)
    dim = int(a["dim"]) % len(shape)
    attrs = {
        "fn": "topk",
        "batch": numel(shape) // shape[dim],
        "tokens_in": shape[dim],
        "tokens_out": int(a["k"]),
        "channels": 1,
    }
    return ctx.emit(OpKind.TOKEN_SELECT, [x], attrs)


def _token_select(ctx: LoweringContext, x: fx.Node, index: list[fx.Node], node: fx.Node) -> Any:
    sx, so = ctx.shape(x), ctx.shape(node)
    attrs = {"fn": "gather", "batch": sx[0], "tokens_in": sx[1], "tokens_out": so[1], "channels": sx[2]}
    return ctx.emit(OpKind.TOKEN_SELECT, [x, *index], attrs)


def _is_token_axis(shape: tuple[int, ...], out: tuple[int, ...], dim: int) -> bool:
    """A selection along axis 1 of ``(B, N, C)`` that keeps ``B`` and ``C``."""
    return len(shape) == 3 and len(out) == 3 and dim % 3 == 1 and out[0] == shape[0] and out[2] == shape[2]


@register_lowering(aten.gather.default, aten.index_select.default, aten.take_along_dim.default)
def lower_gather(node: fx.Node, ctx: LoweringContext) -> Any:
    a = bind(node)
    x, index = a["self"], a["index"] if "index" in a else a["indices"]
    dim = int(a["dim"]) if a.get("dim") is not None else -1
    if _is_token_axis(ctx.shape(x), ctx.shape(node), dim):
        return _token_select(ctx, x, [index], node)
    return ctx.emit(OpKind.GATHER, [x, index])


@register_lowering(aten.index.Tensor)
def lower_index(node: fx.Node, ctx: LoweringContext) -> Any:
    """``x[i0, i1, ...]`` with index tensors; ``x[batch_idx, token_idx]`` is a token select."""
    x, indices = node.args[0], list(node.args[1])  # type: ignore[arg-type]
    assert isinstance(x, fx.Node)
    idx = [i for i in indices if isinstance(i, fx.Node)]
    if len(indices) == 2 and len(idx) == 2 and _is_token_axis(ctx.shape(x), ctx.shape(node), 1):
        return _token_select(ctx, x, idx, node)
    return ctx.emit(OpKind.GATHER, [x, *idx])
