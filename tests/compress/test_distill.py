"""Distillation: the KD loss and class-balanced weights by hand, recovery of a damaged student on real
digits, DeiT's token (hard, soft, none), deferred re-weighting."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from timm.models.deit import VisionTransformerDistilled
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from accelsim.compress.distill import class_balanced_weights, distill, kd_loss
from accelsim.compress.prune import prune_model
from accelsim.config.compression import DistillConfig, PruneConfig
from accelsim.errors import ConfigError, DataError
from accelsim.eval.datasets import load_digits_splits

ARGS = dict(img_size=8, patch_size=2, in_chans=1, embed_dim=32, depth=2, num_heads=4, num_classes=10)


def accuracy(model: nn.Module, data: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(x).argmax(-1) == y).sum()) for x, y in data)
    return hits / sum(len(y) for _, y in data)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits() -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[tuple[torch.Tensor, torch.Tensor]]]:
    """scikit-learn digits at 8x8, 1 channel: 1,437 train / 360 test images, in batches of 64."""
    train, test = load_digits_splits(img_size=8, in_chans=1).loaders(64, shuffle_train=True)
    return [(x, y) for x, y in train], [(x, y) for x, y in test]


def _train(model: nn.Module, data: list[tuple[torch.Tensor, torch.Tensor]], epochs: int) -> nn.Module:
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        for x, y in data:
            out = model(x)
            out = sum(out) / 2 if isinstance(out, tuple) else out
            opt.zero_grad()
            nn.functional.cross_entropy(out, y).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def teacher(digits: tuple[list, list]) -> VisionTransformer:
    torch.manual_seed(0)
    return _train(VisionTransformer(**ARGS), digits[0], epochs=12)  # type: ignore[arg-type]


def test_kd_loss_matches_hand_computation() -> None:
    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]])
    # T = 1: q = (3/4, 1/4), p = (1/2, 1/2): KL = 3/4 ln(3/2) + 1/4 ln(1/2)
    assert float(kd_loss(s, t, 1.0)) == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5), rel=1e-6)
    # T = 2: q = (sqrt3, 1) / (sqrt3 + 1); times T^2 = 4
    q0 = math.sqrt(3) / (math.sqrt(3) + 1)
    expected = 4 * (q0 * math.log(2 * q0) + (1 - q0) * math.log(2 * (1 - q0)))
    assert float(kd_loss(s, t, 2.0)) == pytest.approx(expected, rel=1e-6)
    assert float(kd_loss(t, t, 3.0)) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.slow
def test_distillation_recovers_a_pruned_students_accuracy(
    digits: tuple[list, list], teacher: nn.Module
) -> None:
    train, test = digits
    acc_teacher = accuracy(teacher, test)
    damaged = prune_model(teacher, PruneConfig(heads_keep=0.25, mlp_keep=0.25, embed_keep=0.5))
    acc_damaged = accuracy(damaged, test)
    cfg = DistillConfig(epochs=3, lr=2e-3, temperature=4.0, alpha=0.7, seed=0)
    student = distill(damaged, teacher, train, cfg)
    acc_student = accuracy(student, test)
    assert acc_teacher > 0.8  # sanity: a real teacher (measured 0.87-0.89)
    assert acc_damaged < acc_teacher - 0.2  # the cut really hurts
    assert acc_student > acc_damaged + 0.2  # and distillation brings most of it back
    # seeded: the same run gives the same weights; the damaged input is untouched
    again = distill(damaged, teacher, train, cfg)
    assert all(
        torch.equal(a, b)
        for a, b in zip(student.state_dict().values(), again.state_dict().values(), strict=True)
    )
    assert accuracy(damaged, test) == acc_damaged


def _distilled_copy(teacher: nn.Module) -> VisionTransformerDistilled:
    """A DeiT-distilled student with the teacher's weights and a fresh distillation token and head."""
    torch.manual_seed(1)
    student = VisionTransformerDistilled(**ARGS).eval()  # type: ignore[arg-type]
    state = {k: v for k, v in teacher.state_dict().items() if k != "pos_embed"}
    pos = teacher.pos_embed.detach()  # (1, 1 + patches, C) -> (1, 2 + patches, C): dist token at cls's
    state["pos_embed"] = torch.cat([pos[:, :1], pos[:, :1], pos[:, 1:]], dim=1)
    missing, unexpected = student.load_state_dict(state, strict=False)
    assert sorted(missing) == ["dist_token", "head_dist.bias", "head_dist.weight"] and not unexpected
    return student


@pytest.mark.slow
def test_deit_distillation_token_learns_the_teachers_hard_labels(
    digits: tuple[list, list], teacher: nn.Module
) -> None:
    train, _ = digits
    student = _distilled_copy(teacher)
    x = torch.cat([b[0] for b in train[:4]])
    with torch.no_grad():
        hard = teacher(x).argmax(-1)

    def dist_head_loss(m: nn.Module) -> float:
        m.set_distilled_training(True)
        m.train()
        with torch.no_grad():
            _, dist_out = m(x)
        m.set_distilled_training(False)
        m.eval()
        return float(nn.functional.cross_entropy(dist_out, hard))

    before = dist_head_loss(student)
    # alpha = 1: only the distillation head's loss, on the teacher's argmax (DeiT hard distillation)
    out = distill(student, teacher, train, DistillConfig(epochs=1, lr=2e-3, alpha=1.0, use_dist_token=True))
    assert out.distilled_training is False and not out.training  # restored for inference
    after = dist_head_loss(out)
    assert after < 0.5 * before
    assert out(x).shape == (len(x), 10)


def test_bad_distillation_inputs(teacher: nn.Module) -> None:
    with pytest.raises(ConfigError, match=r"distill\.use_dist_token: VisionTransformer has no distillation"):
        distill(copy.deepcopy(teacher), teacher, [], DistillConfig(use_dist_token=True))
    with pytest.raises(DataError, match=r"distill: train_data yielded no batch"):
        distill(copy.deepcopy(teacher), teacher, [], DistillConfig())


# -- DeiT soft/none, class balance and deferred re-weighting (DeiT-LT) ---------------------------------


def test_class_balanced_weights_by_hand() -> None:
    # beta 0.9, counts 100 / 10 / 1: (1 - b) / (1 - b^n) = 0.1 / (1 - 0.9^100), 0.1 / (1 - 0.9^10),
    # 0.1 / 0.1, normalised to sum to 3
    raw = [0.1 / (1 - 0.9**100), 0.1 / (1 - 0.9**10), 1.0]
    expected = [3 * r / sum(raw) for r in raw]
    assert class_balanced_weights([100, 10, 1], 0.9).tolist() == pytest.approx(expected, rel=1e-6)
    # beta 0 weighs every present class the same; a class without images weighs nothing
    assert class_balanced_weights([100, 10, 1], 0.0).tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert class_balanced_weights([5, 0, 5], 0.5).tolist() == pytest.approx([1.5, 0.0, 1.5])
    # DeiT-LT's beta = 0.9999 is close to inverse frequency for small classes
    w = class_balanced_weights([139, 13], 0.9999)
    assert float(w[1] / w[0]) == pytest.approx((1 - 0.9999**139) / (1 - 0.9999**13), rel=1e-6)
    assert 10.0 < float(w[1] / w[0]) < 10.7


def test_weighted_kd_loss_by_hand() -> None:
    s = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    kl0 = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)  # image 0 as in the test above; image 1: 0
    assert float(kd_loss(s, t, 1.0, torch.tensor([1.0, 3.0]))) == pytest.approx(kl0 / 4, rel=1e-6)
    assert float(kd_loss(s, t, 1.0, torch.tensor([1.0, 1.0]))) == pytest.approx(float(kd_loss(s, t, 1.0)))


def _tiny_distilled(seed: int = 1) -> VisionTransformerDistilled:
    torch.manual_seed(seed)
    return VisionTransformerDistilled(**ARGS).eval()  # type: ignore[arg-type]


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_deferred_reweighting_starts_at_its_epoch(digits: tuple[list, list], teacher: nn.Module) -> None:
    train = digits[0][:2]
    student = _tiny_distilled()
    base = {"epochs": 2, "lr": 2e-3, "use_dist_token": True, "kind": "hard", "alpha": 1.0}
    plain = distill(student, teacher, train, DistillConfig(**base))
    late = distill(student, teacher, train, DistillConfig(**base, class_balance={"from_epoch": 2}))
    early = distill(student, teacher, train, DistillConfig(**base, class_balance={"from_epoch": 1}))
    assert _same_weights(plain, late)  # never switched on within two epochs
    assert not _same_weights(plain, early)


@pytest.mark.slow
def test_soft_distillation_token_learns_the_teachers_distribution(
    digits: tuple[list, list], teacher: nn.Module
) -> None:
    train, _ = digits
    student = _distilled_copy(teacher)
    x = torch.cat([b[0] for b in train[:4]])
    with torch.no_grad():
        t_logits = teacher(x)

    def dist_kl(m: nn.Module) -> float:
        m.set_distilled_training(True)
        m.train()
        with torch.no_grad():
            _, dist_out = m(x)
        m.set_distilled_training(False)
        m.eval()
        return float(kd_loss(dist_out, t_logits, 2.0))

    before = dist_kl(student)
    cfg = DistillConfig(epochs=1, lr=2e-3, alpha=1.0, use_dist_token=True, kind="soft", temperature=2.0)
    after = dist_kl(distill(student, teacher, train, cfg))
    assert after < 0.5 * before


@pytest.mark.slow
def test_kind_none_trains_the_distillation_head_on_the_labels_without_a_teacher(
    digits: tuple[list, list], teacher: nn.Module
) -> None:
    train = digits[0]
    student = _distilled_copy(teacher)  # trained features, a fresh distillation head
    x, y = torch.cat([b[0] for b in train[:4]]), torch.cat([b[1] for b in train[:4]])

    def dist_ce(m: nn.Module) -> float:
        m.set_distilled_training(True)
        m.train()
        with torch.no_grad():
            _, dist_out = m(x)
        m.set_distilled_training(False)
        m.eval()
        return float(nn.functional.cross_entropy(dist_out, y))

    cfg = DistillConfig(epochs=1, lr=2e-3, alpha=1.0, use_dist_token=True, kind="none")
    assert dist_ce(distill(student, None, train, cfg)) < 0.5 * dist_ce(student)


def test_distillation_config_errors(teacher: nn.Module) -> None:
    from accelsim.config._base import validate_config

    with pytest.raises(ConfigError, match=r"distill\.kind: 'hard' distillation needs a teacher"):
        distill(_tiny_distilled(), None, [], DistillConfig(use_dist_token=True))
    with pytest.raises(ConfigError, match=r"class_balance: re-weights the distillation loss; kind 'none'"):
        validate_config(DistillConfig, {"kind": "none", "class_balance": {}})
    with pytest.raises(ConfigError, match=r"warmup_epochs: 3 must be below epochs \(3\)"):
        validate_config(DistillConfig, {"epochs": 3, "warmup_epochs": 3})
    with pytest.raises(ConfigError, match=r"augment: Input should be 'none', 'shift', 'strong' or 'cutmix'"):
        validate_config(DistillConfig, {"augment": "randaugment"})
