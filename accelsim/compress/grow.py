"""Growing a small trained ViT into a wider and deeper one: Mango and the bert2BERT partial mapping.

Mango (Pan et al., "Reusing Pretrained Models by Multi-linear Operators for Efficient Training",
NeurIPS 2023, arXiv:2310.10699, Sec. 3-4): the weight matrices of every block of the small model,
``W_Q, W_K, W_V, W_O`` and the MLP's ``W_in``/``W_out`` cut into ``D x D`` pieces, are stacked
into one tensor ``M1[b, o, i, l]`` (``B`` pieces x output width x input width x layers). The target
tensor ``M2`` is ``M1`` times one linear operator over all four modes at once, so each target
weight is a linear combination of *all* source weights. The operator is too large to store, so it
is a tensor-ring matrix product operator of four cores (ring rank ``R``)::

    M2[b2, o2, i2, l2] = sum  S_B[r1, b1, b2, r2] S_O[r2, o1, o2, r3] S_I[r3, i1, i2, r4]
                               S_L[r4, l1, l2, r1] M1[b1, o1, i1, l1]

(the sum runs over the ring indices ``r1..r4`` and the source indices). The cores are trained for a
few steps on the task loss with the source weights fixed, the target weights materialised, and the
target trained as usual. We found no public code of the authors'; what follows is our reading of
the paper, with these choices where it leaves them open:

- pieces and layout: torch's ``[out, in]`` layout; the MLP matrices are cut along the hidden
  dimension into ``mlp_ratio`` pieces of ``D x D``, so ``B = 4 + 2 * mlp_ratio`` (12 for DeiT);
- the per-block vectors (biases, LayerNorm weights and biases, also cut into pieces of ``D``) and
  the embedding-side tensors (patch embedding, class token, position embedding, final norm,
  classifier) are mapped by the width and depth cores traced over the ring,
  ``A_O = sum_r S_O[r, :, :, r]`` (``A_I`` for the classifier's input, ``A_L`` across layers): linear
  in all source tensors of their kind, with no mixing between a bias and a LayerNorm weight; the
  classifier bias is copied;
- initialisation: the ``r = 0`` ring slice of every core is the bert2BERT partial mapping below and
  the other slices are ``N(0, init_noise^2)``, so the operator starts at the baseline it is
  compared with and training can only move away from it where the loss says so; rank 1 is the
  default (the cores are then a Kronecker-factored operator);
- widths grow by whole heads (the head dimension is kept), so attention scaling is unchanged.

bert2BERT's partial mapping (Chen et al., "bert2BERT: Towards Reusable Pretrained Language Models",
ACL 2022): width by its function-preserving initialisation (Net2Net's unit copying: target unit
``c`` copies source unit ``c mod D``; the weights reading a copied unit are divided by its number
of copies), depth by stacking the source blocks (target block ``l`` is source block ``l mod L``,
StackBERT). Growing the width alone this way is exactly function-preserving when the target width
is a multiple of the source width (every unit then has the same number of copies, so LayerNorm
sees the same mean and variance); the advanced knowledge initialisation (AKI) is not built.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from accelsim.config.compression import GrowConfig
from accelsim.errors import ConfigError, DataError

log = logging.getLogger(__name__)

_VECTORS = ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "attn.proj.bias", "mlp.fc2.bias")


@dataclass(frozen=True)
class GrowthShape:
    """The dimensions of a growth: source and target width and depth, head size, MLP ratio."""

    width: int
    depth: int
    target_width: int
    target_depth: int
    head_dim: int
    mlp_ratio: int

    @property
    def pieces(self) -> int:
        """``B``: Q, K, V, O and the ``mlp_ratio`` pieces of each MLP matrix."""
        return 4 + 2 * self.mlp_ratio

    @property
    def vectors(self) -> int:
        """Vectors of width ``D`` per block: qkv bias (3), fc1 bias (``mlp_ratio``) and ``_VECTORS``."""
        return 3 + self.mlp_ratio + len(_VECTORS)


class MangoOperator(nn.Module):
    """The four tensor-ring cores of Mango's growth operator (see the module docstring).

    Attributes:
        s_b: ``(R, B, B, R)``, mixing the weight pieces (Q, K, V, O, MLP pieces).
        s_o: ``(R, D1, D2, R)``, the output width.
        s_i: ``(R, D1, D2, R)``, the input width.
        s_l: ``(R, L1, L2, R)``, the layers.
    """

    def __init__(self, shape: GrowthShape, rank: int = 1, init_noise: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        self.shape = shape
        g = torch.Generator().manual_seed(seed)
        out_map, in_map, depth_map = partial_mapping(shape)

        def core(init: Tensor) -> nn.Parameter:
            c = torch.randn(rank, *init.shape, rank, generator=g) * init_noise
            c[0, :, :, 0] = init
            return nn.Parameter(c)

        self.s_b = core(torch.eye(shape.pieces))
        self.s_o = core(out_map)
        self.s_i = core(in_map)
        self.s_l = core(depth_map)

    @property
    def rank(self) -> int:
        return int(self.s_b.shape[0])

    def grow_matrices(self, m1: Tensor) -> Tensor:
        """``M1 (B, D1, D1, L1) -> M2 (B, D2, D2, L2)``: the tensor-ring contraction."""
        return torch.einsum("abcd,paeq,qbfr,rcgs,sdhp->efgh", m1, self.s_b, self.s_o, self.s_i, self.s_l)

    def traced(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(A_O, A_I, A_L)``: the width-out, width-in and depth cores traced over the ring."""
        return (
            torch.einsum("rabr->ab", self.s_o),
            torch.einsum("rabr->ab", self.s_i),
            torch.einsum("rabr->ab", self.s_l),
        )


def partial_mapping(shape: GrowthShape) -> tuple[Tensor, Tensor, Tensor]:
    """bert2BERT's maps as matrices: ``(out (D1, D2), in (D1, D2), depth (L1, L2))``.

    ``out[c1, c2] = 1`` where target unit ``c2`` copies ``c1 = c2 mod D1``; ``in`` is the same
    divided by the copies of ``c1``; ``depth[l1, l2] = 1`` where ``l1 = l2 mod L1``.
    """
    d1, d2, l1, l2 = shape.width, shape.target_width, shape.depth, shape.target_depth
    src = torch.arange(d2) % d1
    out = torch.zeros(d1, d2)
    out[src, torch.arange(d2)] = 1.0
    copies = out.sum(1, keepdim=True)
    depth = torch.zeros(l1, l2)
    depth[torch.arange(l2) % l1, torch.arange(l2)] = 1.0
    return out, out / copies, depth


def growth_shape(model: nn.Module, cfg: GrowConfig) -> GrowthShape:
    """The dimensions of growing ``model`` by ``cfg``.

    Raises:
        ConfigError: not a supported ViT, a target narrower or shallower than the model, or a width
            that is not a whole number of heads.
    """
    if type(model) is not VisionTransformer:
        raise ConfigError(f"grow: needs a timm VisionTransformer (got {type(model).__name__})")
    m: Any = model
    blk = m.blocks[0]
    width, depth = int(m.embed_dim), len(m.blocks)
    heads = int(blk.attn.num_heads)
    head_dim = width // heads
    hidden = int(blk.mlp.fc1.out_features)
    if hidden % width:
        raise ConfigError(f"grow: the MLP hidden width {hidden} is not a multiple of the width {width}")
    if m.num_reg_tokens or m.has_class_token is False or not isinstance(m.fc_norm, nn.Identity):
        raise ConfigError("grow: supported are ViTs with a class token, no register tokens and no fc_norm")
    if cfg.embed_dim < width or cfg.embed_dim % head_dim:
        raise ConfigError(
            f"grow.embed_dim: must be at least the model's width {width} and a multiple of its head "
            f"size {head_dim} (got {cfg.embed_dim})"
        )
    if cfg.depth < depth:
        raise ConfigError(f"grow.depth: must be at least the model's depth {depth} (got {cfg.depth})")
    return GrowthShape(width, depth, cfg.embed_dim, cfg.depth, head_dim, hidden // width)


def build_target(model: nn.Module, shape: GrowthShape) -> VisionTransformer:
    """A randomly initialised timm VisionTransformer like ``model`` at the target width and depth."""
    m: Any = model
    blk = m.blocks[0]
    target = VisionTransformer(
        img_size=tuple(m.patch_embed.img_size),
        patch_size=tuple(m.patch_embed.patch_size),
        in_chans=int(m.patch_embed.proj.in_channels),
        num_classes=int(m.num_classes),
        global_pool=m.global_pool,
        embed_dim=shape.target_width,
        depth=shape.target_depth,
        num_heads=shape.target_width // shape.head_dim,
        mlp_ratio=float(shape.mlp_ratio),
        qkv_bias=blk.attn.qkv.bias is not None,
        class_token=True,
        no_embed_class=bool(m.no_embed_class),
        pre_norm=not isinstance(m.norm_pre, nn.Identity),
    )
    target.pretrained_cfg = copy.deepcopy(getattr(model, "pretrained_cfg", {}))  # type: ignore[assignment]
    if [k for k in target.state_dict() if not k.startswith("blocks.")] != [
        k for k in model.state_dict() if not k.startswith("blocks.")
    ]:
        raise ConfigError("grow: the model has parts a grown VisionTransformer cannot rebuild")
    return target.eval()


def _stack(model: nn.Module, shape: GrowthShape) -> tuple[Tensor, Tensor]:
    """``(M1 (B, D, D, L), V1 (Bv, D, L))`` of the source blocks (see the module docstring)."""
    d, r = shape.width, shape.mlp_ratio
    mats, vecs = [], []
    for blk in model.blocks:  # type: ignore[union-attr]
        p = dict(blk.named_parameters())
        qkv, fc1, fc2 = p["attn.qkv.weight"], p["mlp.fc1.weight"], p["mlp.fc2.weight"]
        pieces = [qkv[k * d : (k + 1) * d] for k in range(3)] + [p["attn.proj.weight"]]
        pieces += [fc1[k * d : (k + 1) * d] for k in range(r)] + [
            fc2[:, k * d : (k + 1) * d] for k in range(r)
        ]
        mats.append(torch.stack(pieces))
        qkv_b = p.get("attn.qkv.bias")
        qkv_b = qkv_b if qkv_b is not None else torch.zeros(3 * d)
        vec = [qkv_b[k * d : (k + 1) * d] for k in range(3)] + [
            p["mlp.fc1.bias"][k * d : (k + 1) * d] for k in range(r)
        ]
        vecs.append(torch.stack(vec + [p[name] for name in _VECTORS]))
    return torch.stack(mats, -1), torch.stack(vecs, -1)


def grown_parameters(model: nn.Module, op: MangoOperator) -> dict[str, Tensor]:
    """The target's parameters as functions of ``model``'s and the operator's (differentiable in the
    operator; ``model``'s own gradients are not needed)."""
    shape = op.shape
    d2, r = shape.target_width, shape.mlp_ratio
    src = {k: v.detach() for k, v in model.named_parameters()}
    m1, v1 = _stack(model, shape)
    m2 = op.grow_matrices(m1.detach())
    a_o, a_i, a_l = op.traced()
    v2 = torch.einsum("vol,op,lq->vpq", v1.detach(), a_o, a_l)
    out: dict[str, Tensor] = {
        "cls_token": src["cls_token"] @ a_o,
        "pos_embed": src["pos_embed"] @ a_o,
        "patch_embed.proj.weight": torch.einsum("ochw,op->pchw", src["patch_embed.proj.weight"], a_o),
        "patch_embed.proj.bias": src["patch_embed.proj.bias"] @ a_o,
        "norm.weight": src["norm.weight"] @ a_o,
        "norm.bias": src["norm.bias"] @ a_o,
        "head.weight": src["head.weight"] @ a_i,
        "head.bias": src["head.bias"],
    }
    has_qkv_bias = "blocks.0.attn.qkv.bias" in src
    for layer in range(shape.target_depth):
        w, v, pre = m2[..., layer], v2[..., layer], f"blocks.{layer}."
        out[pre + "attn.qkv.weight"] = w[0:3].reshape(3 * d2, d2)
        out[pre + "attn.proj.weight"] = w[3]
        out[pre + "mlp.fc1.weight"] = w[4 : 4 + r].reshape(r * d2, d2)
        out[pre + "mlp.fc2.weight"] = w[4 + r :].permute(1, 0, 2).reshape(d2, r * d2)
        if has_qkv_bias:
            out[pre + "attn.qkv.bias"] = v[0:3].reshape(3 * d2)
        out[pre + "mlp.fc1.bias"] = v[3 : 3 + r].reshape(r * d2)
        for k, name in enumerate(_VECTORS):
            out[pre + name] = v[3 + r + k]
    return out


def _load(target: nn.Module, params: dict[str, Tensor]) -> nn.Module:
    with torch.no_grad():
        target.load_state_dict({k: v.detach().clone() for k, v in params.items()}, strict=True)
    return target


def _cycle(batches: Iterable[Any]) -> Iterator[Any]:
    cached = list(batches)
    if not cached:
        raise DataError("grow: train_data yielded no batch")
    while True:
        yield from cached


def train_operator(
    model: nn.Module, target: nn.Module, op: MangoOperator, train_data: Iterable[Any], steps: int, lr: float
) -> list[float]:
    """Fit the operator's cores for ``steps`` steps of cross-entropy of the grown model (Adam); the
    source weights stay fixed. Returns the loss of every step."""
    from torch.func import functional_call

    from accelsim.compress.augment import random_shift

    opt = torch.optim.Adam(op.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    target.train()
    losses = []
    for _, batch in zip(range(steps), _cycle(train_data), strict=False):
        x, y = batch[0], batch[1]
        x = random_shift(x, max(1, x.shape[-1] // 16), g)
        logits = functional_call(target, grown_parameters(model, op), (x,))
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    target.eval()
    return losses


def grow_model(model: nn.Module, cfg: GrowConfig, train_data: Iterable[Any] | None = None) -> nn.Module:
    """A wider and deeper copy of the ViT ``model`` initialised from its weights.

    Args:
        model: a timm VisionTransformer (not modified).
        cfg: target width and depth, method, operator rank and training.
        train_data: ``(images, labels)`` batches for the Mango operator (cycled for
            ``cfg.operator_steps`` steps); not needed by ``bert2bert`` or zero steps.

    Returns:
        The grown model (a timm VisionTransformer), in eval mode.

    Raises:
        ConfigError: not a supported ViT, a target narrower or shallower than the model, a width
            that is not a whole number of heads, or Mango operator steps without ``train_data``.
    """
    shape = growth_shape(model, cfg)
    target = build_target(model, shape)
    torch.manual_seed(cfg.seed)
    rank, noise = (cfg.rank, cfg.init_noise) if cfg.method == "mango" else (1, 0.0)
    op = MangoOperator(shape, rank=rank, init_noise=noise, seed=cfg.seed)
    if cfg.method == "mango" and cfg.operator_steps > 0:
        if train_data is None:
            raise ConfigError("grow: the Mango operator trains on train_data (got None)")
        losses = train_operator(model, target, op, train_data, cfg.operator_steps, cfg.operator_lr)
        log.info("grow: operator loss %.4f -> %.4f over %d steps", losses[0], losses[-1], len(losses))
    with torch.no_grad():
        return _load(target, grown_parameters(model, op)).eval()


__all__ = [
    "GrowthShape",
    "MangoOperator",
    "build_target",
    "grow_model",
    "grown_parameters",
    "growth_shape",
    "partial_mapping",
    "train_operator",
]
