"""Quantisation-aware fine-tuning of a fake-quantised model: STE, or a FOGZO-style estimate.

Both keep the calibrated scales fixed and update the float weights behind the quantisers.

- ``ste``: back-propagation through the clipped straight-through estimator of
  :class:`~accelsim.compress.quantize.FakeQuantizer` (Bengio et al. 2013, arXiv:1308.3432).
- ``fogzo``: following the idea of First-Order-Guided Zeroth-Order gradient descent (Yang & Aamodt,
  NeurIPS 2025, arXiv:2510.23926): the STE gradient is biased, zeroth-order (finite-difference)
  estimates of the *true* quantised loss are unbiased but noisy in high dimension, so the
  zeroth-order probes are taken along directions guided by the STE gradient. Our estimator (our
  reading of the idea, not the paper's code): for ``n = fogzo_samples`` directions
  ``u_i = normalise(mix * g/|g| + (1 - mix) * z_i/|z_i|)`` with ``z_i ~ N(0, I)`` and the STE gradient
  ``g``, the central difference ``d_i = (L(w + s u_i) - L(w - s u_i)) / 2s`` with ``s = sigma * |w|``
  gives the update direction ``mean_i d_i u_i``, rescaled to the STE gradient's norm where the
  probes saw a descent direction (the rounding makes ``L`` piecewise constant, so tiny ``s`` sees 0).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from accelsim._progress import progress
from accelsim.config.compression import QATConfig

log = logging.getLogger(__name__)


def _norm(ts: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of a list of tensors seen as one vector."""
    return torch.sqrt(torch.stack([(t.float() ** 2).sum() for t in ts]).sum())


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if isinstance(out, tuple):
        out = out[0]
    return F.cross_entropy(out, y)


def _fogzo_step(
    model: nn.Module,
    params: list[nn.Parameter],
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: QATConfig,
    g: torch.Generator,
) -> float:
    """Replace ``p.grad`` (the STE gradient) by the FOGZO-style estimate; return the batch loss."""
    grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]
    g_norm = _norm(grads).clamp(min=1e-12)
    w_norm = _norm([p.detach() for p in params])
    step = float(cfg.fogzo_sigma * w_norm)
    est = [torch.zeros_like(p) for p in params]
    with torch.no_grad():
        base = float(_loss(model, x, y))
        for _ in range(cfg.fogzo_samples):
            z = [torch.randn(p.shape, generator=g) for p in params]
            z_norm = _norm(z).clamp(min=1e-12)
            u = [
                cfg.fogzo_mix * gr / g_norm + (1 - cfg.fogzo_mix) * zi / z_norm
                for gr, zi in zip(grads, z, strict=True)
            ]
            u_norm = _norm(u).clamp(min=1e-12)
            u = [ui / u_norm for ui in u]
            for p, ui in zip(params, u, strict=True):
                p.add_(ui, alpha=step)
            up = float(_loss(model, x, y))
            for p, ui in zip(params, u, strict=True):
                p.add_(ui, alpha=-2 * step)
            down = float(_loss(model, x, y))
            for p, ui in zip(params, u, strict=True):
                p.add_(ui, alpha=step)
            d = (up - down) / (2 * step)
            for e, ui in zip(est, u, strict=True):
                e.add_(ui, alpha=d / cfg.fogzo_samples)
    e_norm = _norm(est)
    if float(e_norm) > 0:
        for p, e in zip(params, est, strict=True):
            p.grad = e * (g_norm / e_norm)
    # else: every probe saw a flat loss (rounding plateau): keep the STE gradient
    return base


def train_qat(model: nn.Module, train_data: Iterable[Any], cfg: QATConfig, *, seed: int = 0) -> nn.Module:
    """Fine-tune ``model`` (already quantised and calibrated) in place; returns it in eval mode.

    BatchNorm statistics stay frozen (the model stays in eval mode; the reference models have no
    dropout), as usual when fine-tuning a model whose BatchNorm is folded for the accelerator.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    model.eval()
    for epoch in progress(range(cfg.epochs), f"QAT ({cfg.method})", unit="epoch"):
        total, n = 0.0, 0
        for i, batch in enumerate(train_data):
            if cfg.max_batches is not None and i >= cfg.max_batches:
                break
            x, y = batch[0], batch[1]
            opt.zero_grad(set_to_none=True)
            with torch.enable_grad():
                loss = _loss(model, x, y)
                loss.backward()
            value = float(loss.detach())
            if cfg.method == "fogzo":
                value = _fogzo_step(model, params, x, y, cfg, g)
            opt.step()
            total, n = total + value, n + 1
        log.info("QAT (%s) epoch %d/%d: loss %.4f", cfg.method, epoch + 1, cfg.epochs, total / max(n, 1))
    opt.zero_grad(set_to_none=True)
    return model.eval()


__all__ = ["train_qat"]
