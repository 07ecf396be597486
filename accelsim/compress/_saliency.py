"""Per-unit saliency of prunable structures (heads, neurons, channels).

A *unit* is one prunable structure (an attention head, an MLP hidden neuron, an embedding
channel). Its weights are scattered over several tensors; a :class:`ParamSlice` says where: along
dimension ``dim`` of ``getattr(module, attr)``, unit ``u`` owns the indices ``index[u]``.

Criteria (per unit, over all weights ``w`` of the unit, ``g`` = dLoss/dw on one calibration batch):

- ``magnitude``: the L1 or L2 norm of the unit's weights;
- ``taylor``: ``sum |w * g|`` (first-order Taylor estimate of the loss change, Molchanov et al.,
  "Importance Estimation for Neural Network Pruning", CVPR 2019), averaged over batches;
- ``hessian``: ``(sum w * g)^2``, the Fisher (Gauss-Newton) approximation of the second-order
  loss change of removing the whole group, averaged over batches -- the Hessian-aware structural
  saliency of NViT (Yang et al., "Global Vision Transformer Pruning with Hessian-Aware Saliency",
  CVPR 2023, arXiv:2110.04869, Sec. 3.2).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class ParamSlice:
    """Unit ``u`` owns ``getattr(module, attr).index_select(dim, index[u])``."""

    module: nn.Module
    attr: str
    dim: int
    index: Tensor  # (units, per_unit) int64

    def tensor(self) -> Tensor | None:
        t = getattr(self.module, self.attr, None)
        return t if isinstance(t, Tensor) else None

    def gather(self, t: Tensor) -> Tensor:
        """``t``'s entries per unit, as a ``(units, -1)`` matrix."""
        units, per = self.index.shape
        picked = t.movedim(self.dim, 0).index_select(0, self.index.reshape(-1).to(t.device))
        return picked.reshape(units, per, -1).reshape(units, -1)


def _unit_params(slices: Sequence[ParamSlice]) -> list[tuple[ParamSlice, nn.Parameter]]:
    out = []
    for s in slices:
        t = s.tensor()
        if isinstance(t, nn.Parameter):
            out.append((s, t))
    return out


def magnitude_saliency(slices: Sequence[ParamSlice], units: int, norm: str = "l2") -> Tensor:
    """L1 or L2 norm of each unit's weights (float64, shape ``(units,)``)."""
    acc = torch.zeros(units, dtype=torch.float64)
    for s, p in _unit_params(slices):
        w = s.gather(p.detach()).double()
        acc += w.abs().sum(1) if norm == "l1" else w.pow(2).sum(1)
    return acc if norm == "l1" else acc.sqrt()


def wg_sums(slices: Sequence[ParamSlice], units: int) -> tuple[Tensor, Tensor]:
    """``(sum w*g, sum |w*g|)`` per unit from the ``.grad`` currently held by the parameters."""
    signed = torch.zeros(units, dtype=torch.float64)
    absolute = torch.zeros(units, dtype=torch.float64)
    for s, p in _unit_params(slices):
        if p.grad is None:
            continue
        wg = s.gather(p.detach()).double() * s.gather(p.grad.detach()).double()
        signed += wg.sum(1)
        absolute += wg.abs().sum(1)
    return signed, absolute


def gradient_saliency(
    model: nn.Module,
    sites: Sequence[tuple[Sequence[ParamSlice], int]],
    batches: Iterable[tuple[Tensor, Tensor]],
    criterion: str,
) -> list[Tensor]:
    """Taylor or Hessian saliency of every site from per-batch gradients of the cross-entropy loss.

    Args:
        model: the model whose parameters the slices point into (gradients are taken in eval mode,
            so dropout does not make the score random; ``.grad`` is cleared afterwards).
        sites: ``(slices, units)`` per prunable site.
        batches: ``(images, labels)`` calibration batches.
        criterion: ``"taylor"`` or ``"hessian"``.

    Returns:
        One float64 ``(units,)`` tensor per site: the batch mean of ``sum|w g|`` or ``(sum w g)^2``.
    """
    totals = [torch.zeros(units, dtype=torch.float64) for _, units in sites]
    was_training = model.training
    model.eval()
    n = 0
    try:
        for x, y in batches:
            model.zero_grad(set_to_none=True)
            out = model(x)
            if isinstance(out, tuple):  # DeiT distilled heads in training mode
                out = sum(out) / len(out)
            loss = nn.functional.cross_entropy(out, y)
            loss.backward()
            for k, (slices, units) in enumerate(sites):
                signed, absolute = wg_sums(slices, units)
                totals[k] += signed.pow(2) if criterion == "hessian" else absolute
            n += 1
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    if n == 0:
        raise ValueError("no calibration batches")
    return [t / n for t in totals]
