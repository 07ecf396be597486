"""Hand-built graphs with the IR's attribute conventions, no torch needed (tests, benchmarks, the
search's synthetic evaluator).

:func:`vit_graph` builds the op sequence of a timm ``VisionTransformer`` (DeiT): patch-embed conv,
class token, position embedding, ``depth`` pre-norm blocks (LN, qkv, per-head QK^T, softmax, AV,
proj, residual, LN, fc1, GELU, fc2, residual), final LN and head. The simulator's tests and
benchmarks use it so they run without lowering a real model (no torch).

Building blocks for the special units (each adds ops to a graph, inputs are graph inputs):
:func:`add_softmax_attention` (QK^T -> softmax -> AV per head), :func:`add_linear_attention`
(one fused ReLU linear attention), :func:`add_mbconv` (depthwise -> activation -> pointwise).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from accelsim.ir.graph import Graph, Op, OpKind, Tensor

#: (embed_dim, depth, heads) of the DeiT family (Touvron et al., arXiv:2012.12877, Table 1).
DEIT_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
}


def vit_graph(
    size: str | tuple[int, int, int] = "tiny",
    img_size: int = 224,
    patch: int = 16,
    num_classes: int = 1000,
    bits: int = 8,
    mlp_ratio: int = 4,
    *,
    head_dim: int | None = None,
    hidden: int | None = None,
    bits_for: Callable[[str], tuple[int, int]] | None = None,
    token_keep: tuple[Sequence[int], float | Sequence[float]] | None = None,
    lowrank: tuple[Sequence[str], float] | None = None,
    name: str | None = None,
    class_token: bool = True,
) -> Graph:
    """A DeiT/ViT graph: ``size`` is ``tiny|small|base`` or ``(embed_dim, depth, heads)``.

    The keyword options shape it the way compression does (the search's synthetic evaluator uses
    them): ``head_dim`` (default ``embed_dim // heads``) and ``hidden`` (default ``mlp_ratio x
    embed_dim``) are kept attention and MLP widths; ``bits_for(op_type)`` gives ``(wbits, abits)``
    per op type (``qkv, proj, fc1, fc2, attn_qk, attn_av, conv, head``; default ``bits`` for all);
    ``token_keep = (blocks, rate)`` keeps ``rate`` (one, or one per block) of the patch tokens
    reaching each of those blocks
    (a ``token_select`` op, as EViT lowers); ``lowrank = (op_types, rank_ratio)`` factorises those
    linears into two thinner ones where that has fewer MACs. ``class_token=False`` drops the
    class token (HG-PIPE's 196-token DeiT; the head then reads token 0, as HG-PIPE's does).

    Raises:
        KeyError: unknown size name.
    """
    dim, depth, heads = DEIT_SIZES[size] if isinstance(size, str) else size
    if name is None:
        name = (
            f"vit_{size}_patch{patch}_{img_size}" if isinstance(size, str) else f"vit_{dim}x{depth}h{heads}"
        )
    g = Graph(name, meta={"synthetic": True})
    grid = img_size // patch
    tokens = grid * grid + int(class_token)
    hd = head_dim if head_dim is not None else dim // heads
    attn = heads * hd
    hidden = hidden if hidden is not None else dim * mlp_ratio

    def bits_of(op_type: str) -> tuple[int, int]:
        return bits_for(op_type) if bits_for is not None else (bits, bits)

    def t(n: str, shape: tuple[int, ...], weight: bool = False, b: int = bits) -> str:
        g.add_tensor(Tensor(n, shape, bits=b, weight=weight))
        return n

    def op(
        n: str, kind: OpKind, ins: tuple[str, ...], outs: tuple[str, ...], macs: int = 0, **attrs: object
    ) -> None:
        g.add_op(Op(n, kind, ins, outs, dict(attrs), macs=macs))

    def dense(n: str, x: str, m: int, k: int, nn: int, op_type: str) -> str:
        wb, ab = bits_of(op_type)
        w, b_ = t(f"{n}.w", (k, nn), True, wb), t(f"{n}.b", (nn,), True, wb)
        y = t(f"{n}.y", (1, m, nn), b=ab)
        op(n, OpKind.MATMUL, (x, w, b_), (y,), m * k * nn, batch=1, M=m, K=k, N=nn, operands="wa", bias=True)
        return y

    def linear(n: str, x: str, m: int, k: int, nn: int, op_type: str) -> str:
        if lowrank is not None and op_type in lowrank[0]:
            r = max(1, round(lowrank[1] * min(k, nn)))
            if r * (k + nn) < k * nn:  # factorising only pays when the rank is low enough
                return dense(f"{n}.v", dense(f"{n}.u", x, m, k, r, op_type), m, r, nn, op_type)
        return dense(n, x, m, k, nn, op_type)

    def layernorm(n: str, x: str) -> str:
        y = t(f"{n}.y", (1, tokens, dim))
        gamma, beta = t(f"{n}.g", (dim,), True), t(f"{n}.b", (dim,), True)
        op(n, OpKind.LAYERNORM, (x, gamma, beta), (y,), rows=tokens, length=dim, eps=1e-6)
        return y

    wb, ab = bits_of("conv")
    img = t("image", (1, 3, img_size, img_size), b=ab)
    pw, pb = t("patch_embed.w", (dim, 3, patch, patch), True, wb), t("patch_embed.b", (dim,), True, wb)
    pe = t("patch_embed.y", (1, dim, grid, grid))
    op(
        "patch_embed", OpKind.CONV2D, (img, pw, pb), (pe,), grid * grid * 3 * patch * patch * dim,
        batch=1, in_ch=3, out_ch=dim, in_h=img_size, in_w=img_size, out_h=grid, out_w=grid,
        kh=patch, kw=patch, stride=[patch, patch], padding=[0, 0], dilation=[1, 1], groups=1, bias=True,
    )  # fmt: skip
    flat = t("patch_embed.flat", (1, grid * grid, dim))
    op("patch_embed.flatten", OpKind.TRANSPOSE, (pe,), (flat,))
    x0 = flat
    if class_token:
        cls_tok = t("cls_token", (1, 1, dim), True)
        x0 = t("tokens", (1, tokens, dim))
        op("cat_cls", OpKind.CONCAT, (cls_tok, flat), (x0,))
    pos = t("pos_embed", (1, tokens, dim), True)
    x = t("pos_drop.y", (1, tokens, dim))
    op("pos_add", OpKind.ELTWISE, (x0, pos), (x,), fn="add", elements=tokens * dim)

    for i in range(depth):
        p = f"blocks.{i}"
        if token_keep is not None and i in token_keep[0]:
            blocks, rates = token_keep
            rate = rates if isinstance(rates, float | int) else rates[list(blocks).index(i)]
            kept = 1 + max(1, round(rate * (tokens - 1)))
            y = t(f"{p}.tokens", (1, kept, dim))
            op(
                f"{p}.select_tokens",
                OpKind.TOKEN_SELECT,
                (x,),
                (y,),
                tokens_in=tokens,
                tokens_out=kept,
                channels=dim,
            )
            x, tokens = y, kept
        h = layernorm(f"{p}.norm1", x)
        qkv = linear(f"{p}.attn.qkv", h, tokens, dim, 3 * attn, "qkv")
        qk_bits, av_bits = bits_of("attn_qk")[1], bits_of("attn_av")[1]
        q, k = (t(f"{p}.attn.{s}", (heads, tokens, hd), b=qk_bits) for s in "qk")
        v = t(f"{p}.attn.v", (heads, tokens, hd), b=av_bits)
        for s, tt in zip("qkv", (q, k, v), strict=True):
            op(f"{p}.attn.split_{s}", OpKind.SLICE, (qkv,), (tt,))
        kt = t(f"{p}.attn.kT", (heads, hd, tokens), b=qk_bits)
        op(f"{p}.attn.k_transpose", OpKind.TRANSPOSE, (k,), (kt,))
        s_ = t(f"{p}.attn.scores", (heads, tokens, tokens))
        op(f"{p}.attn.qk", OpKind.MATMUL, (q, kt), (s_,), heads * tokens * hd * tokens,
           batch=heads, M=tokens, K=hd, N=tokens, operands="aa", bias=False)  # fmt: skip
        pr = t(f"{p}.attn.probs", (heads, tokens, tokens), b=av_bits)
        op(f"{p}.attn.softmax", OpKind.SOFTMAX, (s_,), (pr,), rows=heads * tokens, length=tokens)
        ctx = t(f"{p}.attn.ctx", (heads, tokens, hd))
        op(f"{p}.attn.av", OpKind.MATMUL, (pr, v), (ctx,), heads * tokens * tokens * hd,
           batch=heads, M=tokens, K=tokens, N=hd, operands="aa", bias=False)  # fmt: skip
        merged = t(f"{p}.attn.merged", (1, tokens, attn))
        op(f"{p}.attn.merge_heads", OpKind.TRANSPOSE, (ctx,), (merged,))
        pj = linear(f"{p}.attn.proj", merged, tokens, attn, dim, "proj")
        x1 = t(f"{p}.res1", (1, tokens, dim))
        op(f"{p}.add1", OpKind.ELTWISE, (x, pj), (x1,), fn="add", elements=tokens * dim)
        h2 = layernorm(f"{p}.norm2", x1)
        f1 = linear(f"{p}.mlp.fc1", h2, tokens, dim, hidden, "fc1")
        a = t(f"{p}.mlp.act", (1, tokens, hidden), b=bits_of("fc2")[1])
        op(f"{p}.mlp.gelu", OpKind.ACTIVATION, (f1,), (a,), fn="gelu", elements=tokens * hidden)
        f2 = linear(f"{p}.mlp.fc2", a, tokens, hidden, dim, "fc2")
        x2 = t(f"{p}.res2", (1, tokens, dim))
        op(f"{p}.add2", OpKind.ELTWISE, (x1, f2), (x2,), fn="add", elements=tokens * dim)
        x = x2
    xn = layernorm("norm", x)
    cls_out = t("cls_out", (1, 1, dim))
    op("select_cls", OpKind.SLICE, (xn,), (cls_out,))
    linear("head", cls_out, 1, dim, num_classes, "head")
    return g.validate()


def _t(g: Graph, name: str, shape: tuple[int, ...], weight: bool = False) -> str:
    g.add_tensor(Tensor(name, shape, weight=weight))
    return name


def add_softmax_attention(g: Graph, p: str, heads: int, tokens: int, hd: int, src: str | None = None) -> str:
    """QK^T -> softmax -> AV on ``heads`` heads (q, k^T, v are graph inputs unless ``src``)."""
    q = src or _t(g, f"{p}.q", (heads, tokens, hd))
    kt = _t(g, f"{p}.kT", (heads, hd, tokens))
    v = _t(g, f"{p}.v", (heads, tokens, hd))
    s = _t(g, f"{p}.s", (heads, tokens, tokens))
    g.add_op(Op(f"{p}.qk", OpKind.MATMUL, (q, kt), (s,),
                {"batch": heads, "M": tokens, "K": hd, "N": tokens, "operands": "aa"},
                macs=heads * tokens * hd * tokens))  # fmt: skip
    pr = _t(g, f"{p}.p", (heads, tokens, tokens))
    g.add_op(Op(f"{p}.softmax", OpKind.SOFTMAX, (s,), (pr,), {"rows": heads * tokens, "length": tokens}))
    o = _t(g, f"{p}.o", (heads, tokens, hd))
    g.add_op(Op(f"{p}.av", OpKind.MATMUL, (pr, v), (o,),
                {"batch": heads, "M": tokens, "K": tokens, "N": hd, "operands": "aa"},
                macs=heads * tokens * tokens * hd))  # fmt: skip
    return o


def add_linear_attention(g: Graph, p: str, heads: int, tokens: int, hd: int, batch: int = 1) -> str:
    """One fused ReLU linear attention on graph inputs q, k, v of shape (batch, heads, tokens, hd)."""
    shape = (batch, heads, tokens, hd)
    q, k, v = (_t(g, f"{p}.{n}", shape) for n in "qkv")
    o = _t(g, f"{p}.o", shape)
    attrs = {"batch": batch, "heads": heads, "tokens": tokens, "head_dim": hd, "kernel": "relu", "eps": 1e-5}
    g.add_op(Op(f"{p}.la", OpKind.LINEAR_ATTENTION, (q, k, v), (o,), attrs,
                macs=2 * batch * heads * tokens * hd * (hd + 1)))  # fmt: skip
    return o


def dw_attrs(ch: int, hw: int, k: int = 3, stride: int = 1) -> dict[str, object]:
    out = (hw + 2 * (k // 2) - k) // stride + 1
    return {"batch": 1, "in_ch": ch, "out_ch": ch, "in_h": hw, "in_w": hw, "out_h": out, "out_w": out,
            "kh": k, "kw": k, "stride": [stride, stride], "padding": [k // 2, k // 2], "dilation": [1, 1],
            "groups": ch, "bias": False}  # fmt: skip


def add_mbconv(g: Graph, p: str, ch: int, hw: int, out_ch: int, act: bool = True, stride: int = 1) -> str:
    """depthwise 3x3 -> [hardswish ->] pointwise 1x1 on a graph input of (1, ch, hw, hw)."""
    x = _t(g, f"{p}.x", (1, ch, hw, hw))
    a = dw_attrs(ch, hw, 3, stride)
    oh = int(a["out_h"])  # type: ignore[call-overload]
    wd = _t(g, f"{p}.dw.w", (ch, 1, 3, 3), True)
    d = _t(g, f"{p}.dw.y", (1, ch, oh, oh))
    g.add_op(Op(f"{p}.dw", OpKind.DWCONV2D, (x, wd), (d,), a, macs=ch * oh * oh * 9))
    if act:
        h = _t(g, f"{p}.act.y", (1, ch, oh, oh))
        g.add_op(Op(f"{p}.act", OpKind.ACTIVATION, (d,), (h,), {"fn": "hardswish", "elements": ch * oh * oh}))
        d = h
    wp = _t(g, f"{p}.pw.w", (out_ch, ch, 1, 1), True)
    y = _t(g, f"{p}.pw.y", (1, out_ch, oh, oh))
    pw = {"batch": 1, "in_ch": ch, "out_ch": out_ch, "in_h": oh, "in_w": oh, "out_h": oh, "out_w": oh,
          "kh": 1, "kw": 1, "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1, "bias": False}  # fmt: skip
    g.add_op(Op(f"{p}.pw", OpKind.CONV2D, (d, wp), (y,), pw, macs=oh * oh * ch * out_ch))
    return y
