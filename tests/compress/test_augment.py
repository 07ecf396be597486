"""Training augmentation: the identity affine map, CutMix's box and label weight, seeded draws."""

from __future__ import annotations

import torch

from accelsim.compress.augment import BACKGROUND, cutmix, random_affine, random_shift, strong_augment


def _images(n: int = 4) -> torch.Tensor:
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_the_identity_affine_map_returns_the_images() -> None:
    x = _images()
    out = random_affine(x, torch.Generator().manual_seed(1), degrees=0.0, scale=(1.0, 1.0), translate=0.0)
    torch.testing.assert_close(out, x, rtol=0, atol=1e-5)


def test_affine_maps_fill_with_the_background() -> None:
    # an empty image stays empty whatever the map (grid_sample's zero padding is shifted to -1)
    empty = torch.full((2, 1, 16, 16), BACKGROUND)
    out = random_affine(empty, torch.Generator().manual_seed(2), degrees=45.0, translate=0.3)
    torch.testing.assert_close(out, empty, rtol=0, atol=1e-6)
    torch.testing.assert_close(random_shift(empty, 2, torch.Generator().manual_seed(2)), empty)


def test_cutmix_pastes_one_box_and_weighs_the_labels_by_its_area() -> None:
    x = torch.arange(4.0).reshape(4, 1, 1, 1).expand(4, 1, 8, 8).clone()  # image i is all i
    out, perm, lam = cutmix(x, torch.Generator().manual_seed(3))
    assert 0.0 < lam < 1.0 and any(int(perm[i]) != i for i in range(4))
    for i in range(4):
        own = (out[i] == i).float().mean().item()
        pasted = (out[i] == perm[i]).float().mean().item()
        if int(perm[i]) != i:
            assert own == lam and pasted == 1 - lam  # the share of the box is 1 - lam
    box = (out != x).any(0)[0]
    rows, cols = box.any(1).nonzero(), box.any(0).nonzero()
    # one axis-aligned rectangle, the same for every image
    assert bool(box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all())
    assert box.float().mean().item() == 1 - lam and sorted(perm.tolist()) == [0, 1, 2, 3]


def test_strong_augmentation_is_seeded_and_mixes_only_when_asked() -> None:
    x = _images()
    a, perm_a, lam_a = strong_augment(x, torch.Generator().manual_seed(4))
    b, _, _ = strong_augment(x, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert perm_a is None and lam_a == 1.0 and a.shape == x.shape and not torch.allclose(a, x)
    mixed = [strong_augment(x, torch.Generator().manual_seed(s), cutmix_prob=1.0)[1] for s in range(3)]
    assert all(p is not None for p in mixed)
