"""Matrix products: ``linear``, ``matmul``, ``mm``, ``bmm``, ``addmm``, ``baddbmm``.

Each becomes one ``matmul`` op ``C[batch, M, N] = A[batch, M, K] @ B[batch, K, N]`` with
``operands`` ``"wa"`` when one operand is a weight (a constant) and ``"aa"`` when both are
activations (the two attention matmuls). A weight shared across a batch (``x @ W`` with ``x`` of
shape ``(B, T, K)``) flattens the batch into ``M``, which is how a systolic array runs it.
MACs = ``batch * M * K * N``, which is what ``torch.utils.flop_counter`` counts (FLOPs / 2).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import fx

from accelsim.errors import UnsupportedOpError
from accelsim.ir import OpKind
from accelsim.lower._registry import register_lowering
from accelsim.lower.context import LoweringContext, bind

aten = torch.ops.aten


def gemm_attrs(
    sa: list[int], sb: list[int], a_w: bool, b_w: bool, *, bias: bool, where: str
) -> dict[str, Any]:
    """Attributes of ``A @ B`` (torch.matmul broadcasting) for operand shapes ``sa``, ``sb``;
    ``a_w``/``b_w``: the operand is a weight (a constant). MACs are ``batch * M * K * N``."""
    sa, sb = list(sa), list(sb)
    if len(sa) == 1:
        sa = [1, *sa]
    if len(sb) == 1:
        sb = [*sb, 1]
    k = sa[-1]
    if sb[-2] != k:
        raise ValueError(f"{where}: inner dimensions differ ({sa} @ {sb})")
    batch_a, batch_b = sa[:-2], sb[:-2]
    attrs: dict[str, Any]
    if b_w and not a_w and math.prod(batch_b) == 1:
        # One weight matrix for every row of the activation: flatten the batch into M.
        attrs = {"batch": 1, "M": math.prod(sa[:-1]), "K": k, "N": sb[-1], "operands": "wa"}
    elif a_w and not b_w and math.prod(batch_a) == 1:
        # W @ x: run as (x^T W^T); the weight is still the stationary operand.
        attrs = {"batch": 1, "M": math.prod(batch_b) * sb[-1], "K": k, "N": sa[-2], "operands": "wa"}
        attrs["weight_side"] = "A"
    else:
        batch = math.prod(torch.broadcast_shapes(tuple(batch_a), tuple(batch_b)))
        operands = "wa" if (a_w or b_w) else "aa"
        attrs = {"batch": batch, "M": sa[-2], "K": k, "N": sb[-1], "operands": operands}
        if a_w:
            attrs["weight_side"] = "A"
    attrs["bias"] = bias
    return attrs


def gemm_macs(attrs: dict[str, Any]) -> int:
    return int(attrs["batch"] * attrs["M"] * attrs["K"] * attrs["N"])


def _gemm(
    ctx: LoweringContext, node: fx.Node, a: fx.Node, b: fx.Node, inputs: list[fx.Node], *, bias: bool
) -> Any:
    """Emit ``a @ b`` (torch.matmul broadcasting rules) as one matmul op."""
    attrs = gemm_attrs(
        list(ctx.shape(a)),
        list(ctx.shape(b)),
        ctx.is_const(a),
        ctx.is_const(b),
        bias=bias,
        where=ctx.where(node),
    )
    return ctx.emit(OpKind.MATMUL, inputs, attrs, macs=gemm_macs(attrs))


@register_lowering(aten.linear.default)
def lower_linear(node: fx.Node, ctx: LoweringContext) -> Any:
    """``y = x @ W^T + b``: W is stored ``(N, K)`` as in torch; ``weight_layout`` says so."""
    a = bind(node)
    x, w, b = a["input"], a["weight"], a["bias"]
    sx, sw = ctx.shape(x), ctx.shape(w)
    k, n = sw[-1], sw[0] if len(sw) == 2 else 1
    w_const = ctx.is_const(w)
    m = math.prod(sx[:-1])
    attrs = {
        "batch": 1,
        "M": m,
        "K": k,
        "N": n,
        "operands": "wa" if w_const else "aa",
        "bias": b is not None,
        "weight_layout": "NK",
    }
    inputs = [x, w] + ([b] if b is not None else [])
    return ctx.emit(OpKind.MATMUL, inputs, attrs, macs=m * k * n)


@register_lowering(aten.matmul.default, aten.mm.default, aten.bmm.default)
def lower_matmul(node: fx.Node, ctx: LoweringContext) -> Any:
    a, b = node.args[0], node.args[1]
    assert isinstance(a, fx.Node) and isinstance(b, fx.Node)
    return _gemm(ctx, node, a, b, [a, b], bias=False)


@register_lowering(aten.addmm.default, aten.baddbmm.default)
def lower_addmm(node: fx.Node, ctx: LoweringContext) -> Any:
    """``beta * bias + alpha * (a @ b)``."""
    args = bind(node)
    bias, a, b = args["self"], args[_second(node)], args[_third(node)]
    return _gemm(ctx, node, a, b, [a, b, bias], bias=True)


def _second(node: fx.Node) -> str:
    return "mat1" if node.target is aten.addmm.default else "batch1"


def _third(node: fx.Node) -> str:
    return "mat2" if node.target is aten.addmm.default else "batch2"


@register_lowering(aten.scaled_dot_product_attention.default)
def lower_sdpa(node: fx.Node, ctx: LoweringContext) -> Any:
    """Fused attention, decomposed so that it looks like timm's unfused path:
    ``transpose(k) -> matmul (aa) -> mul(scale) [-> add(mask)] -> softmax -> matmul (aa)``.

    MACs ``B*h*L*S*(E + Ev)``, as the flop counter counts ``scaled_dot_product_attention``.
    Boolean masks, ``is_causal`` and grouped-query attention have no rule (yet).
    """
    a = bind(node)
    q, k, v, mask = a["query"], a["key"], a["value"], a["attn_mask"]
    if a["is_causal"] or a.get("enable_gqa") or (mask is not None and ctx.meta(mask).dtype == torch.bool):
        raise UnsupportedOpError(
            f"scaled_dot_product_attention with a boolean mask, is_causal or enable_gqa has no rule: {ctx.where(node)}"
        )
    sq, sk, sv = ctx.shape(q), ctx.shape(k), ctx.shape(v)
    e, s_len, l_len = sq[-1], sk[-2], sq[-2]
    scale = float(a["scale"]) if a["scale"] is not None else 1.0 / math.sqrt(e)
    batch_shape = tuple(torch.broadcast_shapes(sq[:-2], sk[:-2]))
    batch = math.prod(batch_shape)
    qn, kn, vn = ctx.tensor(q), ctx.tensor(k), ctx.tensor(v)
    kt = ctx.emit_inner(
        "k_t", OpKind.TRANSPOSE, [kn], (*sk[:-2], e, s_len), {}, target="aten.transpose.int",
        args=[{"input": 0}, -2, -1],
    )  # fmt: skip
    scores_shape = (*batch_shape, l_len, s_len)
    mm = {"batch": batch, "M": l_len, "K": e, "N": s_len, "operands": "aa", "bias": False}
    scores = ctx.emit_inner(
        "scores", OpKind.MATMUL, [qn, kt], scores_shape, mm, macs=batch * l_len * e * s_len,
        target="aten.matmul.default", args=[{"input": 0}, {"input": 1}],
    )  # fmt: skip
    elements = math.prod(scores_shape)
    scaled = ctx.emit_inner(
        "scaled", OpKind.ELTWISE, [scores], scores_shape, {"fn": "mul", "elements": elements, "scalar": scale},
        target="aten.mul.Tensor", args=[{"input": 0}, scale],
    )  # fmt: skip
    if mask is not None:
        masked_shape = tuple(torch.broadcast_shapes(scores_shape, ctx.shape(mask)))
        scaled = ctx.emit_inner(
            "masked", OpKind.ELTWISE, [scaled, ctx.tensor(mask)], masked_shape,
            {"fn": "add", "elements": math.prod(masked_shape)}, target="aten.add.Tensor",
            args=[{"input": 0}, {"input": 1}],
        )  # fmt: skip
        scores_shape = masked_shape
    probs = ctx.emit_inner(
        "probs", OpKind.SOFTMAX, [scaled], scores_shape,
        {"rows": math.prod(scores_shape[:-1]), "length": s_len, "dim": len(scores_shape) - 1},
        target="aten.softmax.int", args=[{"input": 0}, -1],
    )  # fmt: skip
    batch = math.prod(scores_shape[:-2])
    attrs = {"batch": batch, "M": l_len, "K": s_len, "N": sv[-1], "operands": "aa", "bias": False}
    return ctx.emit(
        OpKind.MATMUL, [q, k, v], attrs, macs=batch * l_len * s_len * sv[-1], input_names=[probs, vn],
        target="aten.matmul.default", args=[{"input": 0}, {"input": 1}], kwargs={},
    )  # fmt: skip
