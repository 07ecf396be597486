"""Output fidelity: how far a compressed model's logits are from the uncompressed (FP32) model's.

On a small test set top-1 saturates (the reference models score 95-98% on the 360 digits test
images whatever the recipe), so accuracy alone cannot tell two compression points apart. These
measures compare the logits of the same images, so they move with every change of the outputs:

- :func:`kl_divergence`: the mean over images of KL(p_fp32 || p_compressed) of the softmax outputs
  (nats). KL divergence between the reference and the quantised distribution is what TensorRT's
  entropy calibration minimises (Migacz, "8-bit Inference with TensorRT", GTC 2017), and the KL of
  the model outputs is the layer sensitivity measure of ZeroQ (Cai et al., CVPR 2020,
  arXiv:2001.00281), which ranks layers for mixed precision with it.
- :func:`top1_agreement`: the fraction of images on which the compressed model predicts the FP32
  model's class: a label-free accuracy that still moves where top-1 against the labels saturates.
- :func:`sqnr_db`: the signal-to-quantisation-noise ratio of the logits,
  ``10 log10(sum ||z_fp32||^2 / sum ||z_fp32 - z||^2)``, the measure of the fixed-point analysis of
  Lin et al. (ICML 2016, arXiv:1511.06393), of AIMET's SQNR range setting (Siddegowda et al. 2022,
  arXiv:2201.08442, sec. 4.4) and of PyTorch's Numeric Suite (``torch.ao.ns.fx.utils.compute_sqnr``,
  which compares a float and a quantised model layer by layer, as the bit-true per-layer table does).

Identical logits have zero noise: their SQNR is capped at :data:`SQNR_MAX_DB`, the SQNR of rounding
to float32 (a difference below it is float noise, not compression), which keeps every figure
finite for JSON and for the optimiser.

NumPy only (no torch): the search, the CLI and the bit-true executor all hand in arrays.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: The SQNR of rounding to float32 (24-bit significand: 20 log10 2**24), the most a logit
#: comparison can meaningfully report.
SQNR_MAX_DB = 20.0 * math.log10(2.0**24)


def _pair(ref: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(ref, dtype=np.float64)
    b = np.asarray(out, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"reference logits {a.shape} and compared logits {b.shape} differ in shape")
    return a, b


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def kl_divergence(ref: np.ndarray, out: np.ndarray) -> float:
    """Mean over images (rows) of KL(softmax(ref) || softmax(out)), in nats.

    Examples:
        >>> kl_divergence(np.array([[1.0, 2.0]]), np.array([[1.0, 2.0]]))
        0.0
        >>> round(kl_divergence(np.log([[0.5, 0.5]]), np.log([[0.9, 0.1]])), 6)  # 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1)
        0.510826
    """
    a, b = _pair(ref, out)
    if a.size == 0:
        return 0.0
    lp, lq = _log_softmax(a), _log_softmax(b)
    kl = (np.exp(lp) * (lp - lq)).sum(axis=-1)
    # exact zeros when equal; float noise can make a tiny KL negative, which KL never is
    return float(max(kl.mean(), 0.0))


def top1_agreement(ref: np.ndarray, out: np.ndarray) -> float:
    """Fraction of images (rows) whose argmax class is the same in both."""
    a, b = _pair(ref, out)
    if a.shape[0] == 0:
        return 1.0
    return float((a.argmax(axis=-1) == b.argmax(axis=-1)).mean())


def sqnr_from_energies(signal: float, noise: float) -> float:
    """``10 log10(signal / noise)`` in dB, capped at :data:`SQNR_MAX_DB` (NaN for no signal)."""
    if signal <= 0.0:
        return math.nan
    floor = signal * 10.0 ** (-SQNR_MAX_DB / 10.0)
    return 10.0 * math.log10(signal / max(noise, floor))


def sqnr_db(ref: np.ndarray, out: np.ndarray) -> float:
    """SQNR of ``out`` against ``ref`` over all elements: ``10 log10(sum ref^2 / sum (ref - out)^2)``.

    Examples:
        >>> sqnr_db(np.array([3.0, 4.0]), np.array([3.0, 4.5]))  # 25 / 0.25 = 100: 20 dB
        20.0
    """
    a, b = _pair(ref, out)
    return sqnr_from_energies(float((a * a).sum()), float(((a - b) ** 2).sum()))


@dataclass(frozen=True)
class Fidelity:
    """The compressed model's logits against the FP32 model's on the same images."""

    kl_div: float  # mean KL(p_fp32 || p_compressed), nats
    agreement: float  # top-1 agreement with FP32, in [0, 1]
    sqnr_db: float  # logit SQNR, dB (capped at SQNR_MAX_DB)
    images: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def metrics(self) -> dict[str, float]:
        """The three search metrics by their names in ``METRIC_DIRECTIONS``."""
        return {"kl_div": self.kl_div, "agreement": self.agreement, "sqnr_db": self.sqnr_db}

    def summary(self) -> str:
        return (
            f"top-1 agreement {100 * self.agreement:.2f}%, KL {self.kl_div:.3g} nats, "
            f"logit SQNR {self.sqnr_db:.1f} dB ({self.images} images)"
        )


def fidelity(ref: np.ndarray, out: np.ndarray) -> Fidelity:
    """KL divergence, top-1 agreement and logit SQNR of ``out`` (N x classes) against ``ref``."""
    a, b = _pair(ref, out)
    return Fidelity(
        kl_div=kl_divergence(a, b),
        agreement=top1_agreement(a, b),
        sqnr_db=sqnr_db(a, b),
        images=int(a.shape[0]),
    )


__all__ = [
    "SQNR_MAX_DB",
    "Fidelity",
    "fidelity",
    "kl_divergence",
    "sqnr_db",
    "sqnr_from_energies",
    "top1_agreement",
]
