"""Training-time image augmentation for fine-tuning, distillation and the reference checkpoints.

Images are normalised (the offline data: mean = std = 0.5, so the background is -1). Every draw
comes from the ``torch.Generator`` passed in, so a seeded run is repeated exactly.

- ``shift``: each image moved by up to ``max_px`` pixels (what ``workloads/train_reference.py``
  trains the reference checkpoints with);
- ``strong``: a random affine map per image (rotation up to 10 degrees, scale 0.9-1.1,
  translation up to 6% of the side): views the shift-trained CNN teachers were not trained on
  (their accuracy on them drops, e.g. ``ref_cnn_lt100`` from 90% to 84% on the test split), the
  out-of-distribution views DeiT-LT distils on (Rangwani et al., CVPR 2024, arXiv:2404.02900,
  Sec. 4.1), scaled down from DeiT's RandAugment + Mixup/CutMix to 32-px digits;
- ``cutmix``: ``strong`` and, on half the batches, CutMix (Yun et al., ICCV 2019,
  arXiv:1905.04899): a random box of every image replaced by the same box of another image of the
  batch, the labels mixed by the box's area. On the 339-image long-tailed digits split it costs
  every training scheme accuracy within a 120-epoch budget (DeiT-LT trains 1,200 CIFAR epochs),
  so the shipped workloads use ``strong``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: The normalised value of a black (empty) pixel of the offline data.
BACKGROUND = -1.0


def random_shift(x: Tensor, max_px: int, g: torch.Generator) -> Tensor:
    """Shift each image by up to ``max_px`` pixels (zero padding is the normalised background, -1)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_px,) * 4, value=BACKGROUND)
    dx = torch.randint(0, 2 * max_px + 1, (n,), generator=g)
    dy = torch.randint(0, 2 * max_px + 1, (n,), generator=g)
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def random_affine(
    x: Tensor,
    g: torch.Generator,
    *,
    degrees: float = 10.0,
    scale: tuple[float, float] = (0.9, 1.1),
    translate: float = 0.06,
) -> Tensor:
    """Rotate (up to ``degrees``), scale and translate (up to ``translate`` of the side) each image."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(degrees)
    s = scale[0] + torch.rand(n, generator=g) * (scale[1] - scale[0])
    t = (torch.rand(n, 2, generator=g) * 2 - 1) * (2 * translate)  # grid units: the side is 2
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grid_sample pads with 0: sample the image offset so that the background is 0 there
    out = F.grid_sample(x - BACKGROUND, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + BACKGROUND


def cutmix(x: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor, float]:
    """CutMix with the box area drawn uniformly (Beta(1, 1), as DeiT's ``cutmix_alpha = 1``).

    Returns:
        ``(images, perm, lam)``: image ``i`` holds a box of image ``perm[i]``; ``lam`` is the share
        of each image that stayed its own (the box as clipped by the border).
    """
    n, _, h, w = x.shape
    lam = float(torch.rand(1, generator=g))
    perm = torch.randperm(n, generator=g)
    cut = math.sqrt(1.0 - lam)
    bh, bw = round(h * cut), round(w * cut)
    cy, cx = int(torch.randint(0, h, (1,), generator=g)), int(torch.randint(0, w, (1,), generator=g))
    y0, y1 = max(cy - bh // 2, 0), min(cy + bh - bh // 2, h)
    x0, x1 = max(cx - bw // 2, 0), min(cx + bw - bw // 2, w)
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    lam = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
    return out, perm, lam


def strong_augment(
    x: Tensor, g: torch.Generator, cutmix_prob: float = 0.0
) -> tuple[Tensor, Tensor | None, float]:
    """``random_affine`` on every image, then CutMix on a ``cutmix_prob`` share of the batches.

    Returns:
        ``(images, perm, lam)``; ``perm`` is None (``lam`` 1) when the batch was not mixed.
    """
    x = random_affine(x, g)
    if cutmix_prob > 0 and float(torch.rand(1, generator=g)) < cutmix_prob:
        return cutmix(x, g)
    return x, None, 1.0


__all__ = ["BACKGROUND", "cutmix", "random_affine", "random_shift", "strong_augment"]
