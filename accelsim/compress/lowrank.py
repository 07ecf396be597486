"""Low-rank factorisation of Linear (and 1x1 convolution) layers by truncated SVD.

``W (out x in) = U S V^T`` is cut to rank ``r = round(rank_ratio * min(out, in))`` and split evenly:
``down = sqrt(S_r) V_r^T`` (r x in, no bias) and ``up = U_r sqrt(S_r)`` (out x r, the original bias).
By Eckart-Young the product is the best rank-r approximation in Frobenius norm, with error
``sqrt(sum_{i>r} s_i^2)``. The MACs per token drop from ``out*in`` to ``r*(out+in)``; a layer where
that is not smaller is left dense (factorising it would cost more, not less).

Targets are op types (the names of :data:`accelsim.config.compression.OP_TYPES`), matched by the
module's own name: ``qkv``, ``proj``, ``fc1``, ``fc2``, ``head`` (the classifier: ``head``,
``head_dist``, or the last Linear of a classifier head), ``linear`` (any other Linear) and ``conv``
(1x1 convolutions with ``groups == 1``; EfficientViT's qkv/proj/point-wise convs are in their own
types when named ``qkv``/``proj``).
"""

from __future__ import annotations

import copy
import logging
import math

import torch
from torch import Tensor, nn

from accelsim.config.compression import LowRankConfig
from accelsim.errors import ConfigError

log = logging.getLogger(__name__)

#: op types with a weight matrix this module can factorise
FACTORISABLE = ("qkv", "proj", "fc1", "fc2", "head", "linear", "conv")


class LowRankLinear(nn.Module):
    """``up(down(x))``: a rank-``rank`` stand-in for a Linear of the same in/out features."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool) -> None:
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.down = nn.Linear(in_features, rank, bias=False)
        self.up = nn.Linear(rank, out_features, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.up(self.down(x))


class LowRankConv1x1(nn.Module):
    """Two 1x1 convolutions through ``rank`` channels standing in for one 1x1 convolution."""

    def __init__(self, conv: nn.Conv2d, rank: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.rank = conv.in_channels, conv.out_channels, rank
        stride = (int(conv.stride[0]), int(conv.stride[1]))
        self.down = nn.Conv2d(conv.in_channels, rank, 1, stride=stride, bias=False)
        self.up = nn.Conv2d(rank, conv.out_channels, 1, bias=conv.bias is not None)

    def forward(self, x: Tensor) -> Tensor:
        return self.up(self.down(x))


def svd_factors(weight: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """``(up, down)`` with ``up @ down`` the best rank-``rank`` approximation of ``weight``."""
    u, s, vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()
    up = (u[:, :rank] * root).to(weight.dtype)
    down = (root.unsqueeze(1) * vh[:rank]).to(weight.dtype)
    return up, down


def op_type_of(name: str, module: nn.Module, classifier_names: set[str]) -> str | None:
    """The op type of a Linear / 1x1 conv by its module path, or None for other modules."""
    leaf = name.rsplit(".", 1)[-1]
    if isinstance(module, nn.Linear):
        if name in classifier_names or leaf in ("head", "head_dist"):
            return "head"
        return leaf if leaf in ("qkv", "proj", "fc1", "fc2") else "linear"
    if isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1:
        # EfficientViT wraps convs in ConvNormAct: the op is named by the wrapper (.../qkv/conv)
        parent = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else ""
        return parent if parent in ("qkv", "proj") else "conv"
    return None


def _classifier_names(model: nn.Module) -> set[str]:
    """Paths of the classifier Linear layers (timm: ``get_classifier()``)."""
    get = getattr(model, "get_classifier", None)
    if get is None:
        return set()
    found = get()
    ids = {id(m) for m in (found if isinstance(found, tuple) else (found,)) if isinstance(m, nn.Module)}
    return {n for n, m in model.named_modules() if id(m) in ids}


def factorize_lowrank(model: nn.Module, cfg: LowRankConfig) -> nn.Module:
    """A copy of ``model`` whose targeted layers are replaced by two thinner layers (truncated SVD).

    Args:
        model: any torch module (not modified).
        cfg: rank ratio and target op types.

    Returns:
        A new module; factorised layers are :class:`LowRankLinear` / :class:`LowRankConv1x1` at the
        original path (their halves at ``<path>.down`` and ``<path>.up``).

    Raises:
        ConfigError: a target without a weight matrix, or no layer of the targeted types.
    """
    bad = [t for t in cfg.targets if t not in FACTORISABLE]
    if bad:
        raise ConfigError(
            f"lowrank.targets: {bad[0]!r} has no weight matrix to factorise (allowed: {', '.join(FACTORISABLE)})"
        )
    work = copy.deepcopy(model)
    classifiers = _classifier_names(work)
    targets = set(cfg.targets)
    matched = 0
    replaced = 0
    for name, mod in list(work.named_modules()):
        kind = op_type_of(name, mod, classifiers)
        if kind is None or kind not in targets:
            continue
        matched += 1
        w = mod.weight.reshape(mod.weight.shape[0], -1)
        out_f, in_f = w.shape
        rank = max(1, math.floor(cfg.rank_ratio * min(out_f, in_f) + 0.5))
        if rank * (out_f + in_f) >= out_f * in_f:
            log.info("lowrank: %s (%dx%d) left dense: rank %d saves no MACs", name, out_f, in_f, rank)
            continue
        up, down = svd_factors(w, rank)
        new: nn.Module
        if isinstance(mod, nn.Linear):
            new = LowRankLinear(in_f, out_f, rank, bias=mod.bias is not None)
        else:
            new = LowRankConv1x1(mod, rank)
        with torch.no_grad():
            new.down.weight.copy_(down.reshape(new.down.weight.shape))
            new.up.weight.copy_(up.reshape(new.up.weight.shape))
            if mod.bias is not None and new.up.bias is not None:
                new.up.bias.copy_(mod.bias)
        new.to(device=mod.weight.device)
        parent_name, _, leaf = name.rpartition(".")
        parent = work.get_submodule(parent_name) if parent_name else work
        setattr(parent, leaf, new)
        replaced += 1
    if matched == 0:
        raise ConfigError(f"lowrank.targets: no layer of type {sorted(targets)} in {type(model).__name__}")
    log.info("lowrank: factorised %d of %d targeted layers", replaced, matched)
    return work


__all__ = [
    "FACTORISABLE",
    "LowRankConv1x1",
    "LowRankLinear",
    "factorize_lowrank",
    "op_type_of",
    "svd_factors",
]
