"""FOGZO's estimator (Yang & Aamodt, arXiv:2510.23926) against its expectation, and QAT end to end.

On a quadratic the central difference is exact, so ``E[G] = E[v v^T] grad L`` with
``E[v v^T] = beta g^ g^T + (1 - beta) I`` (grid units) holds exactly, not to first order.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from accelsim.compress.qat import _fogzo_step, fogzo_beta, fogzo_estimate, train_qat
from accelsim.compress.quantize import quantize_model
from accelsim.config.compression import QATConfig, QuantConfig

pytestmark = pytest.mark.usefixtures("one_thread")

D = 6
_g = torch.Generator().manual_seed(1)
A = torch.randn(D, D, generator=_g, dtype=torch.float64)
A = A @ A.T / D + torch.eye(D, dtype=torch.float64)
B = torch.randn(D, generator=_g, dtype=torch.float64)
#: one quantisation step per coordinate, far from 1, so that the grid-unit mapping is exercised
ALPHA = torch.tensor([0.5, 2.0, 0.1, 1.0, 3.0, 0.25], dtype=torch.float64)


def _quadratic(w: torch.Tensor) -> float:
    return float(0.5 * w @ A @ w + B @ w)


def _grad(w: torch.Tensor) -> torch.Tensor:
    return A @ w + B


def _mean_estimate(w: torch.Tensor, guide: torch.Tensor, beta: float, n: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    total = torch.zeros_like(w)
    for _ in range(n):
        (e,) = fogzo_estimate(
            lambda: _quadratic(w), [w], [guide], [ALPHA], beta=beta, samples=1, generator=gen
        )
        total += e
    return total / n


W0 = torch.linspace(-1, 1, D, dtype=torch.float64)


def test_beta_zero_is_unbiased() -> None:
    """beta = 0 is n-SPSA with unit-variance directions: the mean estimate is the true gradient."""
    w = W0.clone()
    mean = _mean_estimate(w, torch.zeros(D, dtype=torch.float64), 0.0, 4000)
    true = _grad(W0)
    assert torch.equal(w, W0)  # the probes put the weights back
    # compared in grid units, where the noise is isotropic: a draw spreads ~|grad| per coordinate,
    # so 4000 draws leave ~sqrt(D / 4000) = 4% of |grad| in all
    assert float(((mean - true) * ALPHA).norm() / (true * ALPHA).norm()) < 0.12


def test_mixed_expectation_matches_the_paper() -> None:
    """E[G] = beta g^ g^T grad + (1 - beta) grad in grid units, for a wrong-ish guide."""
    guide = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    beta = 0.5
    mean = _mean_estimate(W0.clone(), guide, beta, 4000)
    gz = _grad(W0) * ALPHA  # the loss's gradient in grid units z = w / alpha
    ghat = guide * ALPHA / (guide * ALPHA).norm()
    expect_z = beta * ghat * (ghat @ gz) + (1 - beta) * gz
    assert float((mean * ALPHA - expect_z).norm() / expect_z.norm()) < 0.12
    # and it is not the guide's direction alone (the unbiased part is there)
    cos = float(mean @ guide / (mean.norm() * guide.norm()))
    assert cos < 0.95


def test_beta_one_with_the_true_direction_is_exact() -> None:
    """With beta = 1 and a guide along the true gradient (grid units), every draw is the gradient."""
    gen = torch.Generator().manual_seed(0)
    true = _grad(W0)
    guide = true * 3.0  # any positive multiple: only its direction counts
    w = W0.clone()
    for _ in range(5):
        (e,) = fogzo_estimate(
            lambda: _quadratic(w), [w], [guide], [ALPHA], beta=1.0, samples=1, generator=gen
        )
        # the guide in grid units is alpha * guide; the estimate maps back by 1/alpha: exact when
        # alpha * guide is parallel to alpha * grad, i.e. always here
        assert torch.allclose(e, true, rtol=1e-9, atol=1e-12)


def test_beta_one_suppresses_a_wrong_guide() -> None:
    """A guide orthogonal (grid units) to the true gradient gets no weight: the estimate is 0."""
    gz = _grad(W0) * ALPHA
    other = torch.randn(D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ortho_z = other - gz * (other @ gz) / (gz @ gz)
    guide = ortho_z / ALPHA
    w = W0.clone()
    (e,) = fogzo_estimate(
        lambda: _quadratic(w), [w], [guide], [ALPHA], beta=1.0, samples=1,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert float(e.norm()) < 1e-9 * float(_grad(W0).norm())


def test_beta_schedule_is_linear_from_one() -> None:
    assert [fogzo_beta(s, 5, 0.9) for s in range(5)] == pytest.approx([1.0, 0.975, 0.95, 0.925, 0.9])
    assert fogzo_beta(0, 1, 0.9) == 0.9


def _tiny_qat_setup() -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    q = quantize_model(m, QuantConfig(wbits=3, abits=4), calib_data=[(x, y)])
    return q, [(x[:32], y[:32]), (x[32:], y[32:])]


def _cos(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    dot = sum(float((x * y).sum()) for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(float((x**2).sum()) for x in a))
    nb = math.sqrt(sum(float((y**2).sum()) for y in b))
    return dot / (na * nb)


def test_fogzo_step_on_a_quantised_model() -> None:
    """On a 3-bit model: beta = 1 keeps the STE direction (cos +-1, sign from the true loss), the
    unquantised biases keep their STE gradient, and beta < 1 leaves the STE direction."""
    q, data = _tiny_qat_setup()
    x, y = data[0]
    F.cross_entropy(q(x), y).backward()
    weights = [q[0].weight, q[2].weight]
    ste = [w.grad.clone() for w in weights]  # type: ignore[union-attr]
    bias_ste = q[0].bias.grad.clone()  # type: ignore[union-attr]
    before = [w.detach().clone() for w in weights]
    _fogzo_step(q, x, y, QATConfig(method="fogzo"), 1.0, torch.Generator().manual_seed(0))
    new = [w.grad for w in weights]
    assert all(torch.equal(w, b) for w, b in zip(weights, before, strict=True))
    assert torch.equal(q[0].bias.grad, bias_ste)  # type: ignore[arg-type]
    assert abs(_cos(new, ste)) == pytest.approx(1.0, abs=1e-5)  # type: ignore[arg-type]
    for w, g in zip(weights, ste, strict=True):
        w.grad = g.clone()
    _fogzo_step(q, x, y, QATConfig(method="fogzo"), 0.5, torch.Generator().manual_seed(0))
    assert abs(_cos([w.grad for w in weights], ste)) < 0.99  # type: ignore[misc]


def test_qat_fogzo_trains_and_keeps_scales() -> None:
    q, data = _tiny_qat_setup()
    w0 = q[0].weight.detach().clone()
    s0 = q[0].weight_quantizer.scale.clone()
    train_qat(q, data, QATConfig(epochs=2, lr=1e-2, method="fogzo", fogzo_beta_min=0.9))
    assert not torch.equal(q[0].weight, w0)
    assert torch.equal(q[0].weight_quantizer.scale, s0)
    assert not q.training
