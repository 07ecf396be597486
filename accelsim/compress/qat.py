"""Quantisation-aware fine-tuning of a fake-quantised model: STE, or FOGZO.

Both keep the calibrated scales fixed and update the float weights behind the quantisers.

- ``ste``: back-propagation through the clipped straight-through estimator of
  :class:`~accelsim.compress.quantize.FakeQuantizer` (Bengio et al. 2013, arXiv:1308.3432).
- ``fogzo``: First-Order-Guided Zeroth-Order gradient descent (Yang & Aamodt, "Improving the
  Straight-Through Estimator with Zeroth-Order Information", NeurIPS 2025, arXiv:2510.23926). What
  we read: the arXiv abstract and the paper's method as summarised in public paper notes
  (en.papernotes.org, NeurIPS2025/optimization); the authors' code (github.com/1733116199/fogzo)
  could not be fetched here, so constants below come from the paper, not from that code. Per step,
  after the STE backward gives ``g``:

  - for ``i = 1..n`` (``fogzo_samples``; the paper uses ``n = 1`` on deep networks) draw a sign
    ``s_i`` (+-1 with probability 1/2) and ``u_i`` of identity covariance, and mix
    ``v_i = sqrt(beta) s_i g/|g| + sqrt(1 - beta) u_i``;
  - ``G = 1/n sum_i (L(theta + eps v_i) - L(theta - eps v_i)) / (2 eps) v_i``, used as the
    gradient unscaled (``L`` is the true quantised loss);
  - ``u`` and ``eps`` come from the smoothing the STE implies: the identity STE of ``round`` is the
    derivative of ``round`` averaged over a uniform perturbation of one grid step, i.e.
    ``u ~ U(-sqrt 3, sqrt 3)`` (unit variance) and ``eps = alpha / (2 sqrt 3)`` with the
    quantiser's scale ``alpha`` (the paper's table for the identity STE);
  - ``beta`` decays linearly from 1 at the first step to ``fogzo_beta_min`` at the last.

  Expectation (first-order Taylor, exact for a quadratic): ``E[G] = beta g^ g^T grad L +
  (1 - beta) grad L``: the STE's direction where it agrees with the true slope, an unbiased part,
  and nothing along ``g^`` where the STE is wrong (``g^T grad L = 0``).

  Our choices, labelled: the scale ``alpha`` is per output channel here, so we work in each
  weight's grid units ``z = w / alpha`` (one ``eps`` for every coordinate, ``g^`` is the STE
  gradient in those units, ``alpha * g`` normalised) and map ``G`` back by ``1 / alpha`` (chain
  rule; the paper's formula when ``alpha`` is shared). Only weights behind a weight quantiser get
  FOGZO; other parameters (biases, norms), which are not quantised, keep their back-propagated
  gradient. ``fogzo_beta_min``'s default puts ``(1 - beta) d``, the random part's squared norm,
  near 0.5 for the reference DeiT's 468,778 quantised weights (the paper tunes it close to 1).

An earlier variant here normalised ``u`` to unit length, fixed the mix at 0.5 and rescaled the
result to the STE norm; its zeroth-order term was ``(1 - mix)^2 / d`` of the unbiased gradient (2e-6
for ref_deit), i.e. STE plus isotropic noise, so it was dropped rather than kept as an option.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from accelsim._progress import progress
from accelsim.config.compression import QATConfig

log = logging.getLogger(__name__)

#: the identity STE's smoothing half-width in grid steps: U(-sqrt 3, sqrt 3) * 1/(2 sqrt 3) = U(-1/2, 1/2)
EPS_IDENTITY_STE = 1.0 / (2.0 * math.sqrt(3.0))


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if isinstance(out, tuple):
        out = out[0]
    return F.cross_entropy(out, y)


def fogzo_beta(step: int, total_steps: int, beta_min: float) -> float:
    """The paper's linear schedule: 1 at step 0, ``beta_min`` at the last step.

    Examples:
        >>> fogzo_beta(0, 5, 0.5), fogzo_beta(4, 5, 0.5), fogzo_beta(2, 5, 0.5)
        (1.0, 0.5, 0.75)
    """
    if total_steps <= 1:
        return beta_min
    t = min(step, total_steps - 1) / (total_steps - 1)
    return 1.0 - t * (1.0 - beta_min)


def fogzo_estimate(
    loss_fn: Callable[[], float],
    params: Sequence[torch.Tensor],
    ste_grads: Sequence[torch.Tensor],
    scales: Sequence[torch.Tensor],
    *,
    beta: float,
    samples: int,
    generator: torch.Generator,
    eps: float = EPS_IDENTITY_STE,
) -> list[torch.Tensor]:
    """FOGZO's gradient estimate of ``params`` (see the module docstring), in their own units.

    Args:
        loss_fn: the true (quantised) loss at the current values of ``params``; the estimate moves
            ``params`` in place to ``theta +- eps alpha v`` and puts them back.
        params: the tensors estimated (modified in place during the call, restored after).
        ste_grads: the STE gradient of each, the guide.
        scales: each tensor's quantisation step ``alpha``, broadcastable to it.
        beta: trust in the STE direction, 0 (n-SPSA) .. 1 (the STE direction only).
        samples: ``n``, the directions averaged.
        generator: the random source of ``s`` and ``u``.
        eps: the finite-difference step in grid units.
    """
    # grid units z = w / alpha: the STE gradient there is alpha * g
    gz = [g * a for g, a in zip(ste_grads, scales, strict=True)]
    g_norm = math.sqrt(sum(float((t.double() ** 2).sum()) for t in gz))
    g_hat = [t / g_norm for t in gz] if g_norm > 0 else [torch.zeros_like(t) for t in gz]
    sb, su = math.sqrt(beta), math.sqrt(max(1.0 - beta, 0.0))
    est = [torch.zeros_like(p) for p in params]
    # restored from a copy, not by subtracting the step again: rounding would drift them
    orig = [p.detach().clone() for p in params]
    with torch.no_grad():
        for _ in range(samples):
            s = 1.0 if torch.rand((), generator=generator) < 0.5 else -1.0
            v = [
                sb * s * gh + su * math.sqrt(3.0) * (2 * torch.rand(p.shape, generator=generator) - 1)
                for gh, p in zip(g_hat, params, strict=True)
            ]
            step = [eps * vi * a for vi, a in zip(v, scales, strict=True)]
            for p, w, d in zip(params, orig, step, strict=True):
                p.copy_(w + d)
            up = loss_fn()
            for p, w, d in zip(params, orig, step, strict=True):
                p.copy_(w - d)
            down = loss_fn()
            slope = (up - down) / (2 * eps)
            for e, vi, a in zip(est, v, scales, strict=True):
                e.add_(vi / a, alpha=slope / samples)
        for p, w in zip(params, orig, strict=True):
            p.copy_(w)
    return est


def _quantised_weights(model: nn.Module) -> list[tuple[nn.Parameter, torch.Tensor]]:
    """Each weight behind a weight quantiser, with its scale shaped to broadcast over it."""
    out = []
    for m in model.modules():
        wq = getattr(m, "weight_quantizer", None)
        w = getattr(m, "weight", None)
        if wq is None or not isinstance(w, nn.Parameter) or not w.requires_grad:
            continue
        scale = wq.scale.detach().to(w.dtype)
        if scale.dim() > 0:  # per output channel
            scale = scale.reshape(-1, *([1] * (w.dim() - 1)))
        out.append((w, scale))
    return out


def _fogzo_step(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: QATConfig,
    beta: float,
    g: torch.Generator,
) -> None:
    """Replace the STE ``.grad`` of every quantised weight by FOGZO's estimate."""
    weights = _quantised_weights(model)
    if not weights:
        return
    params = [w for w, _ in weights]
    grads = [w.grad.detach().clone() if w.grad is not None else torch.zeros_like(w) for w in params]
    est = fogzo_estimate(
        lambda: float(_loss(model, x, y)),
        params,
        grads,
        [s for _, s in weights],
        beta=beta,
        samples=cfg.fogzo_samples,
        generator=g,
    )
    for w, e in zip(params, est, strict=True):
        w.grad = e


def _steps(train_data: Iterable[Any], cfg: QATConfig) -> int | None:
    try:
        per_epoch = len(train_data)  # type: ignore[arg-type]
    except TypeError:
        return None
    if cfg.max_batches is not None:
        per_epoch = min(per_epoch, cfg.max_batches)
    return cfg.epochs * per_epoch


def train_qat(model: nn.Module, train_data: Iterable[Any], cfg: QATConfig, *, seed: int = 0) -> nn.Module:
    """Fine-tune ``model`` (already quantised and calibrated) in place; returns it in eval mode.

    BatchNorm statistics stay frozen (the model stays in eval mode; the reference models have no
    dropout), as usual when fine-tuning a model whose BatchNorm is folded for the accelerator.
    FOGZO's ``beta`` schedule needs the number of steps: with a ``train_data`` that has no length
    it stays at ``fogzo_beta_min``.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    total = _steps(train_data, cfg)
    model.eval()
    step = 0
    for epoch in progress(range(cfg.epochs), f"QAT ({cfg.method})", unit="epoch"):
        loss_sum, n = 0.0, 0
        for i, batch in enumerate(train_data):
            if cfg.max_batches is not None and i >= cfg.max_batches:
                break
            x, y = batch[0], batch[1]
            opt.zero_grad(set_to_none=True)
            with torch.enable_grad():
                loss = _loss(model, x, y)
                loss.backward()
            if cfg.method == "fogzo":
                beta = fogzo_beta(step, total, cfg.fogzo_beta_min) if total else cfg.fogzo_beta_min
                _fogzo_step(model, x, y, cfg, beta, g)
            opt.step()
            loss_sum, n, step = loss_sum + float(loss.detach()), n + 1, step + 1
        log.info("QAT (%s) epoch %d/%d: loss %.4f", cfg.method, epoch + 1, cfg.epochs, loss_sum / max(n, 1))
    opt.zero_grad(set_to_none=True)
    return model.eval()


__all__ = ["EPS_IDENTITY_STE", "fogzo_beta", "fogzo_estimate", "train_qat"]
