"""Token reduction with static token counts (hardware needs static shapes).

Two methods, both between the attention and the MLP of the chosen blocks, so the MLP of that block
and every later block see fewer tokens:

- ``evit`` (Liang et al., "Not All Patches are What You Need: Expediting Vision Transformers via
  Token Reorganizations", ICLR 2022): keep the ``k = round(keep_rate * n)`` non-prefix tokens with the
  highest class-token attention (mean over heads), chosen with ``torch.topk`` and gathered with
  ``torch.gather``; prefix tokens (class, distillation, register) always stay. The dropped
  ("inattentive") tokens are optionally fused into one extra token, their attention-weighted average.
- ``tome`` (Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023): bipartite soft matching:
  non-prefix tokens alternate into sets A and B, each A token finds its most similar B token (cosine
  similarity of the attention keys, mean over heads), and the ``r`` best-matched A tokens are averaged
  into their B partners. ``r = n - round(keep_rate * n)`` is static per block; a block can merge at most
  all of A, i.e. ``keep_rate >= 0.5``. Merges are plain means (no size tracking / proportional
  attention), which keeps the graph free of data-dependent weights.

``n`` counts the non-prefix tokens reaching the block; EViT's fused token counts as one of them in
later blocks. The blocks keep their module paths and parameters (only their class changes), so the
state dict is the unreduced model's and per-module-path rules (quantisation by op type) still match.

A third method serves models whose tokens are the positions of a spatial grid, timm ``EfficientVit``
(EfficientViT-MIT), where depthwise convolutions sit between the attentions and a token can only go
if the grid stays a grid:

- ``pool``: before each chosen block, every ``kh x kw`` neighbourhood of tokens is averaged into one
  (the spatial pooling of PiT, Heo et al., "Rethinking Spatial Dimensions of Vision Transformers",
  ICCV 2021, arXiv:2103.16302; with ``kh x kw = 1 x 2`` it is ToMe's bipartite merge with each token's
  partner fixed to its right-hand neighbour). ``keep_rate = 1 / (kh kw)``: 0.5 -> 1x2, 0.25 -> 2x2,
  0.125 -> 2x4. ``at_blocks`` counts the blocks of all stages in order (``stages[s].blocks[j]``). An
  odd side keeps its last token (the pooled side is ``ceil(side / k)``), so later stride-2 stages
  still see a grid.

A fourth method replaces the patch tokens of a ViT by a few learned cluster centres:

- ``semantic`` (STViT: Chang et al., "Making Vision Transformers Efficient from A Token
  Sparsification View", CVPR 2023, arXiv:2303.08685; authors' code github.com/changsn/STViT-R,
  ``models/layers.py`` ``SemanticAttentionBlock`` and ``models/multi_scale.py``): block ``at`` pools
  the patch grid into ``S = h x w`` semantic tokens (``adaptive_max_pool2d`` as the authors' code, or
  average pooling) and, with the next ``stgm_layers - 1`` blocks (the semantic token generation
  module, STGM), refines them: their queries are the prefix and semantic tokens, their keys and
  values the prefix, semantic *and* patch tokens (the patch tokens entering the STGM, unchanged, as
  in the authors' ``Deit.forward``). Every later block runs on the ``prefix + S`` tokens only. The
  STGM blocks keep the block's own weights: the one ``qkv`` projection runs over all ``prefix + S +
  N`` tokens and the queries of the patch tokens are sliced away (``N * C * C`` MACs per STGM block
  a dedicated ``kv`` projection would save; the price of keeping the state dict and the per-op
  quantisation rules of the unreduced model). Choices where the paper leaves them open: the class
  token is a query of the STGM like the semantic tokens; the first STGM block adds its attention
  to the pooled tokens (a residual, which the authors' released Swin runs leave off when training
  from scratch; fine-tuning a trained model keeps the pooled features so); no learned global
  initialisation (their ``use_global``, off in the released runs). The recovery module of STViT-R
  (patch tokens re-queried from the semantic tokens, for dense outputs) is not built: a classifier
  does not need it.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

# timm at module level: the token-reducing block subclasses timm's Block
from timm.layers import Attention
from timm.models.efficientvit_mit import EfficientVit, EfficientVitBlock, ResidualBlock
from timm.models.vision_transformer import Block, VisionTransformer
from torch import Tensor, nn
from torch.nn import functional as F

from accelsim.config.compression import TokenConfig
from accelsim.errors import ConfigError

_EPS = 1e-6


def _maybe_quantize(attn: Attention, quantizer: str, t: Tensor) -> Tensor:
    q = getattr(attn, quantizer, None)
    return q(t) if q is not None else t


def attention_with_scores(attn: Attention, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """timm ``Attention`` forward, unfused, also returning what token reduction needs.

    Returns:
        ``(out, cls_attn, keys)``: the module output ``(B, N, C)``, the attention of token 0 to every
        token averaged over heads ``(B, N)``, and the keys averaged over heads ``(B, N, head_dim)``.
    """
    b, n, _ = x.shape
    gate = attn.gate(x).sigmoid() if attn.gate is not None else None
    qkv = attn.qkv(x).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    # a quantised attention (compress.quantize.QuantAttention) keeps its quantisers here too
    q = _maybe_quantize(attn, "q_quantizer", q * attn.scale)
    k = _maybe_quantize(attn, "k_quantizer", k)
    v = _maybe_quantize(attn, "v_quantizer", v)
    probs = _maybe_quantize(attn, "attn_quantizer", (q @ k.transpose(-2, -1)).softmax(dim=-1))
    out = attn.attn_drop(probs) @ v
    out = out.transpose(1, 2).reshape(b, n, attn.attn_dim)
    out = attn.norm(out)
    if gate is not None:
        out = out * gate
    out = attn.proj_drop(attn.proj(out))
    return out, probs[:, :, 0, :].mean(dim=1), k.mean(dim=1)


def evit_select(x: Tensor, cls_attn: Tensor, num_prefix: int, keep: int, fuse: bool) -> Tensor:
    """Keep the ``keep`` most attended non-prefix tokens (+ the fused rest when ``fuse``)."""
    c = x.shape[-1]
    prefix, rest = x[:, :num_prefix], x[:, num_prefix:]
    score = cls_attn[:, num_prefix:]
    idx = torch.topk(score, keep, dim=1).indices
    kept = torch.gather(rest, 1, idx.unsqueeze(-1).expand(-1, -1, c))
    if not fuse:
        return torch.cat([prefix, kept], dim=1)
    # the weighted sum over the dropped tokens = over all tokens minus over the kept ones: no
    # complement index is needed, so every shape stays static
    w_kept = torch.gather(score, 1, idx)
    num = (score.unsqueeze(-1) * rest).sum(1) - (w_kept.unsqueeze(-1) * kept).sum(1)
    den = (score.sum(1) - w_kept.sum(1)).clamp_min(_EPS).unsqueeze(-1)
    return torch.cat([prefix, kept, (num / den).unsqueeze(1)], dim=1)


def tome_merge(x: Tensor, metric: Tensor, num_prefix: int, r: int) -> Tensor:
    """Merge ``r`` non-prefix tokens into their most similar partners (bipartite soft matching)."""
    c = x.shape[-1]
    prefix, rest = x[:, :num_prefix], x[:, num_prefix:]
    m = metric[:, num_prefix:]
    # cosine similarity; rsqrt of a sum of squares rather than linalg.norm, which lowers to plain ops
    m = m * torch.rsqrt((m * m).sum(dim=-1, keepdim=True).clamp_min(_EPS * _EPS))
    ma, mb = m[:, ::2], m[:, 1::2]
    xa, xb = rest[:, ::2], rest[:, 1::2]
    sim = ma @ mb.transpose(-1, -2)  # (B, |A|, |B|)
    # best partner of each A token (topk(1) rather than max(dim): one selection op for lowering)
    best = torch.topk(sim, 1, dim=-1).values  # (B, |A|, 1)
    order = torch.topk(best.squeeze(-1), ma.shape[1], dim=1).indices  # A tokens, most similar first
    src_idx, unm_idx = order[:, :r], order[:, r:]
    # merging as a matmul with a one-hot (r x |B|) routing matrix instead of scatter_reduce: the
    # same means, built from ops the lowering knows (eq, gather, matmul); an exact tie in
    # similarity would route a token to both partners
    onehot = (sim == best).to(x.dtype)
    route = torch.gather(onehot, 1, src_idx.unsqueeze(-1).expand(-1, -1, onehot.shape[-1]))  # (B, r, |B|)
    src = torch.gather(xa, 1, src_idx.unsqueeze(-1).expand(-1, -1, c))
    counts = 1.0 + route.sum(dim=1).unsqueeze(-1)  # (B, |B|, 1): the B token + what merges into it
    xb = (xb + route.transpose(1, 2) @ src) / counts
    if unm_idx.shape[1] == 0:  # every A token merged (keep_rate 0.5): no empty gather in the graph
        return torch.cat([prefix, xb], dim=1)
    unm = torch.gather(xa, 1, unm_idx.unsqueeze(-1).expand(-1, -1, c))
    return torch.cat([prefix, unm, xb], dim=1)


class TokenReducingBlock(Block):
    """A timm ``Block`` that reduces its tokens between attention and MLP.

    Instances are made by :func:`reduce_tokens` by switching the class of an existing block, so
    the parameters and module paths stay those of the original block.
    """

    token_method: str
    token_count: int  # EViT: tokens kept; ToMe: tokens merged (r)
    num_prefix: int
    fuse_inattentive: bool

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        if attn_mask is not None or is_causal:
            raise NotImplementedError("token reduction does not support attention masks")
        y, cls_attn, keys = attention_with_scores(self.attn, self.norm1(x))  # type: ignore[arg-type]
        x = x + self.drop_path1(self.ls1(y))
        if self.token_method == "evit":
            x = evit_select(x, cls_attn, self.num_prefix, self.token_count, self.fuse_inattentive)
        else:
            x = tome_merge(x, keys, self.num_prefix, self.token_count)
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


def semantic_attention(attn: Attention, x: Tensor, queries: int) -> Tensor:
    """timm ``Attention`` whose first ``queries`` tokens attend to all of ``x`` (the STGM's attention).

    One ``qkv`` projection over all tokens (the module and its quantisers as they are), then the
    queries of the tokens past ``queries`` are dropped.

    Returns:
        ``(B, queries, C)``: the module output for the first ``queries`` tokens.
    """
    b, n, _ = x.shape
    gate = attn.gate(x[:, :queries]).sigmoid() if attn.gate is not None else None
    qkv = attn.qkv(x).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q[:, :, :queries]), attn.k_norm(k)
    q = _maybe_quantize(attn, "q_quantizer", q * attn.scale)
    k = _maybe_quantize(attn, "k_quantizer", k)
    v = _maybe_quantize(attn, "v_quantizer", v)
    probs = _maybe_quantize(attn, "attn_quantizer", (q @ k.transpose(-2, -1)).softmax(dim=-1))
    out = (attn.attn_drop(probs) @ v).transpose(1, 2).reshape(b, queries, attn.attn_dim)
    out = attn.norm(out)
    if gate is not None:
        out = out * gate
    return attn.proj_drop(attn.proj(out))


def semantic_grid(tokens: int, grid: tuple[int, int]) -> tuple[int, int]:
    """The squarest ``(h, w)`` with ``h * w = tokens`` that fits the patch ``grid`` (``h <= w``
    unless only the transpose fits).

    Raises:
        ConfigError: no such factorisation fits the grid.

    Examples:
        >>> semantic_grid(16, (14, 14)), semantic_grid(8, (4, 4)), semantic_grid(4, (4, 4))
        ((4, 4), (2, 4), (2, 2))
    """
    gh, gw = grid
    shapes = [(h, tokens // h) for h in range(1, tokens + 1) if tokens % h == 0]
    fits = [(h, w) for h, w in shapes if h <= gh and w <= gw]
    if not fits:
        raise ConfigError(
            f"tokens.tokens: {tokens} semantic tokens make no h x w grid inside the {gh}x{gw} patch grid"
        )
    return min(fits, key=lambda hw: (abs(hw[0] - hw[1]), hw[0] > hw[1]))


class SemanticTokenBlock(Block):
    """A timm ``Block`` of STViT's semantic token generation module (see the module docstring).

    Made by :func:`reduce_tokens` by switching the class of an existing block. Input: ``prefix +
    N`` tokens (the first STGM block, which pools them) or ``prefix + S + N``; output ``prefix + S +
    N`` (the patch tokens passed on unchanged to the next STGM block) or, from the last one,
    ``prefix + S``.
    """

    num_prefix: int
    semantic_tokens: int
    semantic_grid: tuple[int, int]
    patch_grid: tuple[int, int]
    semantic_pool: str  # "max" | "avg"
    pools: bool  # the first STGM block: pools the patch tokens into the semantic tokens
    drops_patches: bool  # the last STGM block: only prefix + semantic tokens leave it

    def _pool(self, patches: Tensor) -> Tensor:
        b, _, c = patches.shape
        grid = patches.transpose(1, 2).reshape(b, c, *self.patch_grid)
        pool = F.adaptive_max_pool2d if self.semantic_pool == "max" else F.adaptive_avg_pool2d
        return pool(grid, self.semantic_grid).flatten(2).transpose(1, 2)

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        if attn_mask is not None or is_causal:
            raise NotImplementedError("token reduction does not support attention masks")
        p, queries = self.num_prefix, self.num_prefix + self.semantic_tokens
        if self.pools:
            x = torch.cat([x[:, :p], self._pool(x[:, p:]), x[:, p:]], dim=1)
        y = semantic_attention(self.attn, self.norm1(x), queries)  # type: ignore[arg-type]
        t = x[:, :queries] + self.drop_path1(self.ls1(y))
        t = t + self.drop_path2(self.ls2(self.mlp(self.norm2(t))))
        return t if self.drops_patches else torch.cat([t, x[:, queries:]], dim=1)


def _reduce_semantic(model: Any, cfg: TokenConfig) -> nn.Module:
    assert cfg.tokens is not None and cfg.at is not None  # TokenConfig's validator
    depth = len(model.blocks)
    last = cfg.at + cfg.stgm_layers - 1
    if last >= depth:
        raise ConfigError(
            f"tokens.at: the {cfg.stgm_layers}-block semantic token generation from block {cfg.at} "
            f"needs blocks {cfg.at}..{last}; the model has blocks 0..{depth - 1}"
        )
    grid = tuple(int(g) for g in model.patch_embed.grid_size)
    n = grid[0] * grid[1]
    if cfg.tokens >= n:
        raise ConfigError(
            f"tokens.tokens: {cfg.tokens} semantic tokens do not reduce the {n} patch tokens "
            f"({grid[0]}x{grid[1]} grid)"
        )
    shape = semantic_grid(cfg.tokens, grid)  # type: ignore[arg-type]
    work: Any = copy.deepcopy(model)
    for i in range(cfg.at, last + 1):
        blk = work.blocks[i]
        blk.__class__ = SemanticTokenBlock
        blk.num_prefix = int(work.num_prefix_tokens)
        blk.semantic_tokens = cfg.tokens
        blk.semantic_grid = shape
        blk.patch_grid = grid
        blk.semantic_pool = cfg.pool
        blk.pools = i == cfg.at
        blk.drops_patches = i == last
    return work


def pool_kernel(keep_rate: float) -> tuple[int, int]:
    """The ``(kh, kw)`` neighbourhood that ``pool`` averages for ``keep_rate = 1 / (kh kw)``, kh <= kw.

    Raises:
        ConfigError: ``keep_rate`` is not ``1/n`` for a whole ``n``.
    """
    n = round(1.0 / keep_rate)
    if abs(1.0 / n - keep_rate) > 1e-6:
        raise ConfigError(
            f"tokens.keep_rate: 'pool' merges whole neighbourhoods, so keep_rate must be 1/n "
            f"(1, 0.5, 0.333.., 0.25, ...), got {keep_rate}"
        )
    kh = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return kh, n // kh


class _GridPooling:
    """Mixed into an EfficientVit stage block: average ``token_pool`` neighbourhoods, then the block."""

    token_pool: tuple[int, int]

    def forward(self, x: Tensor) -> Tensor:
        kh, kw = self.token_pool
        h, w = x.shape[-2:]
        # adaptive pooling rather than avg_pool2d(ceil_mode=True): the same means on whole
        # neighbourhoods, an odd side keeps its last token, and the bit-true executor knows the op
        x = F.adaptive_avg_pool2d(x, (-(-h // kh), -(-w // kw)))
        return super().forward(x)  # type: ignore[misc]


class TokenPoolingResidualBlock(_GridPooling, ResidualBlock):
    """timm ``ResidualBlock`` (MBConv / downsample) that first pools its input tokens."""


class TokenPoolingEfficientVitBlock(_GridPooling, EfficientVitBlock):
    """timm ``EfficientVitBlock`` (LiteMLA + MBConv) that first pools its input tokens."""


_POOLING_CLASS: dict[type, type] = {
    ResidualBlock: TokenPoolingResidualBlock,
    EfficientVitBlock: TokenPoolingEfficientVitBlock,
}


def _grid_blocks(model: EfficientVit) -> list[Any]:
    return [blk for stage in model.stages for blk in stage.blocks]  # type: ignore[union-attr]


def _reduce_grid_tokens(model: EfficientVit, cfg: TokenConfig) -> nn.Module:
    if cfg.method != "pool":
        raise ConfigError(
            f"tokens.method: {type(model).__name__} keeps its tokens on a spatial grid (convolutions "
            f"between the attentions); use 'pool' (got {cfg.method!r})"
        )
    kernel = pool_kernel(cfg.rate_at(cfg.at_blocks[0]) if cfg.at_blocks else 1.0)
    work: Any = copy.deepcopy(model)
    blocks = _grid_blocks(work)
    for i in sorted(set(cfg.at_blocks)):
        if i >= len(blocks):
            raise ConfigError(
                f"tokens.at_blocks: block {i} does not exist (the model's stages have blocks 0..{len(blocks) - 1})"
            )
        cls = _POOLING_CLASS.get(type(blocks[i]))
        if cls is None:
            raise ConfigError(
                f"tokens.at_blocks: block {i} is {type(blocks[i]).__name__}; "
                "supported: timm ResidualBlock, EfficientVitBlock"
            )
        if kernel != (1, 1):
            blocks[i].__class__ = cls
            blocks[i].token_pool = kernel
    return work


def _check_model(model: nn.Module, cfg: TokenConfig) -> VisionTransformer:
    if not isinstance(model, VisionTransformer):
        raise ConfigError(
            "tokens: token reduction needs a timm VisionTransformer or EfficientVit "
            f"(got {type(model).__name__})"
        )
    if cfg.method == "pool":
        raise ConfigError(
            "tokens.method: 'pool' needs tokens on a spatial grid (timm EfficientVit); "
            "a VisionTransformer takes 'evit', 'tome' or 'semantic'"
        )
    if getattr(model, "dynamic_img_size", False):
        raise ConfigError(
            "tokens: the model has dynamic_img_size=True; static token counts need a fixed size"
        )
    depth = len(model.blocks)
    if cfg.method == "semantic":
        assert cfg.at is not None  # TokenConfig's validator
        chosen = set(range(cfg.at, min(cfg.at + cfg.stgm_layers, depth)))
    else:
        chosen = set(cfg.at_blocks)
        for i in cfg.at_blocks:
            if i >= depth:
                raise ConfigError(
                    f"tokens.at_blocks: block {i} does not exist (the model has blocks 0..{depth - 1})"
                )
    where = "tokens.at" if cfg.method == "semantic" else "tokens.at_blocks"
    for i in sorted(chosen):
        blk = model.blocks[i]
        if type(blk) is not Block or type(blk.attn) is not Attention:
            raise ConfigError(
                f"{where}: block {i} is {type(blk).__name__}; supported: timm Block with Attention"
            )
    if cfg.method == "evit" and model.cls_token is None:
        raise ConfigError("tokens.method: 'evit' ranks tokens by class-token attention; the model has none")
    return model


def token_counts(model: Any) -> list[int]:
    """Tokens entering each block of a (possibly token-reduced) VisionTransformer, computed statically.

    A ``semantic`` STGM block after the first receives ``prefix + S + N`` tokens: its ``prefix + S``
    queries and the ``N`` patch tokens they attend to.
    """
    n = int(model.patch_embed.num_patches) + int(model.num_prefix_tokens)
    counts = []
    for blk in model.blocks:
        counts.append(n)
        if isinstance(blk, SemanticTokenBlock):
            if blk.pools:
                n += blk.semantic_tokens
            if blk.drops_patches:
                n = blk.num_prefix + blk.semantic_tokens
        elif isinstance(blk, TokenReducingBlock):
            if blk.token_method == "evit":
                n = blk.num_prefix + blk.token_count + int(blk.fuse_inattentive)
            else:
                n -= blk.token_count
    return counts


def reduce_tokens(model: nn.Module, cfg: TokenConfig) -> nn.Module:
    """A copy of ``model`` whose blocks ``cfg.at_blocks`` reduce the tokens to static counts.

    Args:
        model: a timm VisionTransformer / DeiT (``evit`` | ``tome`` | ``semantic``) or EfficientVit
            (``pool``); not modified.
        cfg: method, keep rate and blocks.

    Returns:
        A new module; its output shape is unchanged and it exports with ``torch.export``.

    Raises:
        ConfigError: a model of another kind or a method it cannot take, a block index out of range,
            a keep rate that leaves no token, a ToMe keep rate below 0.5 (bipartite matching merges at
            most half the tokens), a ``pool`` keep rate that is not ``1/n``, or semantic tokens that
            do not fit the patch grid or blocks.
    """
    if isinstance(model, EfficientVit):
        return _reduce_grid_tokens(model, cfg)
    _check_model(model, cfg)
    if cfg.method == "semantic":
        return _reduce_semantic(model, cfg)
    work: Any = copy.deepcopy(model)
    prefix = int(work.num_prefix_tokens)
    n = int(work.patch_embed.num_patches)  # non-prefix tokens
    chosen = set(cfg.at_blocks)
    for i, blk in enumerate(work.blocks):
        if i not in chosen:
            continue
        rate = cfg.rate_at(i)
        keep = math.floor(rate * n + 0.5)
        if keep < 1:
            raise ConfigError(
                f"tokens.keep_rate: {rate} keeps 0 of the {n} tokens at block {i}; at least 1 must stay"
            )
        if keep == n:
            continue
        settings: dict[str, Any]
        if cfg.method == "evit":
            settings = {"token_count": keep, "fuse_inattentive": cfg.fuse_inattentive}
            n = keep + int(cfg.fuse_inattentive)
        else:
            r, size_a = n - keep, (n + 1) // 2
            if r > size_a:
                raise ConfigError(
                    f"tokens.keep_rate: ToMe merges at most {size_a} of the {n} tokens at block {i} "
                    f"(keep_rate >= 0.5), got {rate}"
                )
            settings = {"token_count": r, "fuse_inattentive": False}
            n = keep
        blk.__class__ = TokenReducingBlock
        blk.token_method = cfg.method
        blk.num_prefix = prefix
        for k, v in settings.items():
            setattr(blk, k, v)
    return work


__all__ = [
    "SemanticTokenBlock",
    "TokenPoolingEfficientVitBlock",
    "TokenPoolingResidualBlock",
    "TokenReducingBlock",
    "attention_with_scores",
    "evit_select",
    "pool_kernel",
    "reduce_tokens",
    "semantic_attention",
    "semantic_grid",
    "token_counts",
    "tome_merge",
]
