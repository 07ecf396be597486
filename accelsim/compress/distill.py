"""Knowledge distillation: a short, seeded fine-tune of a compressed student from its teacher.

The ground-truth cross-entropy (weight ``1 - alpha``) is mixed with one teacher loss (weight
``alpha``):

- logit KD (Hinton et al., "Distilling the Knowledge in a Neural Network", arXiv:1503.02531):
  ``T^2 * KL(softmax(t / T) || softmax(s / T))`` -- the ``T^2`` keeps the gradient scale
  independent of the temperature (``kind: soft``);
- DeiT's distillation through the distillation token (Touvron et al., "Training data-efficient
  image transformers & distillation through attention", ICML 2021, Sec. 4): the class head learns
  the labels, the distillation head the teacher: its ``argmax`` (``kind: hard``; with ``alpha =
  0.5`` DeiT's ``1/2 CE(cls, y) + 1/2 CE(dist, y_teacher)``) or its softened distribution
  (``kind: soft``). At inference timm averages the two heads.
- ``kind: none``: no teacher; a distillation head learns the labels like the class head (the
  baseline of DeiT-LT's code, ``losses.py`` ``distillation_type == 'none'``).

DeiT-LT (Rangwani et al., "DeiT-LT: Distillation Strikes Back for Vision Transformer Training on
Long-Tailed Datasets", CVPR 2024, arXiv:2404.02900; authors' code github.com/val-iisc/DeiT-LT,
``losses.py`` and ``main.py``) adds two things, both options here: the teacher (a CNN trained on
the long-tailed data) sees strongly augmented, out-of-distribution images (``augment: strong``
or ``cutmix``, :mod:`accelsim.compress.augment`), and the distillation loss is re-weighted by class-balanced
weights from a chosen epoch on (``class_balance``; :func:`class_balanced_weights`). For ``hard``
that is the weighted cross-entropy of the authors' code; for ``soft`` each image's KL term is
weighted by the weight of the teacher's class (the authors' code instead scales the teacher's
log-probabilities), so both read as "a tail-class target counts more". With CutMix the class head
learns the two labels mixed by area, the distillation head the teacher's answer on the mixed image.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from accelsim._progress import progress
from accelsim.config.compression import DistillConfig
from accelsim.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def kd_loss(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float, weight: Tensor | None = None
) -> Tensor:
    """``T^2 * KL(softmax(t/T) || softmax(s/T))``, averaged over the batch (``weight``: per image,
    a weighted mean ``sum(w_i KL_i) / sum(w_i)``, as ``F.cross_entropy`` weighs classes)."""
    t = temperature
    log_p = F.log_softmax(student_logits / t, dim=-1)
    log_q = F.log_softmax(teacher_logits / t, dim=-1)
    if weight is None:
        return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True) * (t * t)
    per_image = F.kl_div(log_p, log_q, reduction="none", log_target=True).sum(-1)
    return (weight * per_image).sum() / weight.sum() * (t * t)


def class_balanced_weights(counts: Sequence[int] | Tensor, beta: float) -> Tensor:
    """Per-class loss weights ``(1 - beta) / (1 - beta ** n_c)``, normalised to sum to the number of
    classes (Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019; the
    normalisation of DeiT-LT's ``main.py``). A class without images weighs 0; ``beta = 0`` gives
    every present class the same weight.

    Examples:
        >>> class_balanced_weights([1, 1], 0.5).tolist()
        [1.0, 1.0]
    """
    n = torch.as_tensor(counts, dtype=torch.float64)
    present = n > 0
    raw = torch.zeros_like(n)
    raw[present] = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), n[present]))
    return (raw / raw.sum() * len(n)).to(torch.float32)


def _label_counts(batches: Iterable[Any], num_classes: int) -> Tensor:
    counts = torch.zeros(num_classes, dtype=torch.int64)
    for batch in batches:
        counts += torch.bincount(batch[1], minlength=num_classes)[:num_classes]
    return counts


def _augment(x: Tensor, how: str, g: torch.Generator) -> tuple[Tensor, Tensor | None, float]:
    from accelsim.compress.augment import random_shift, strong_augment

    if how == "shift":
        return random_shift(x, max(1, x.shape[-1] // 16), g), None, 1.0
    if how == "strong":
        return strong_augment(x, g)
    if how == "cutmix":
        return strong_augment(x, g, cutmix_prob=0.5)
    return x, None, 1.0


def _lr_lambda(cfg: DistillConfig, steps_per_epoch: int) -> Any:
    total = cfg.epochs * steps_per_epoch
    warmup = cfg.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if cfg.schedule == "constant":
            return 1.0
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))

    return factor


def _mean_logits(out: Tensor | tuple[Tensor, ...]) -> Tensor:
    """A model's logits; DeiT's (class, distillation) pair in training mode is averaged as at inference."""
    return torch.stack(out).mean(0) if isinstance(out, tuple) else out


def _has_dist_head(model: nn.Module) -> bool:
    return isinstance(getattr(model, "head_dist", None), nn.Module) and hasattr(
        model, "set_distilled_training"
    )


def distill(
    student: nn.Module, teacher: nn.Module | None, train_data: Iterable[Any], cfg: DistillConfig
) -> nn.Module:
    """Fine-tune a copy of ``student`` towards ``teacher`` on ``train_data``.

    Args:
        student: the compressed model (not modified).
        teacher: the teacher (not modified; run in eval mode without gradients, on the same
            augmented images as the student); unused, and may be None, with ``kind: none``.
        train_data: ``(images, labels)`` batches, iterated ``cfg.epochs`` times.
        cfg: epochs, learning rate (AdamW) and schedule, loss kind and mix, temperature,
            distillation token, augmentation, class balance, seed.

    Returns:
        The fine-tuned copy, in the train/eval mode ``student`` was in.

    Raises:
        ConfigError: ``use_dist_token`` on a student without a distillation head, or no teacher
            for a ``soft``/``hard`` loss.
        DataError: ``train_data`` yields no batch.
    """
    use_dist = cfg.use_dist_token
    kind = cfg.loss_kind
    if use_dist and not _has_dist_head(student):
        raise ConfigError(
            f"distill.use_dist_token: {type(student).__name__} has no distillation token/head "
            "(a DeiT *_distilled_* model has); use false"
        )
    if teacher is None and kind != "none":
        raise ConfigError(f"distill.kind: {kind!r} distillation needs a teacher (got None)")
    batches: Iterable[Any] = train_data
    if (cfg.epochs > 1 or cfg.class_balance is not None) and iter(train_data) is train_data:
        batches = list(train_data)  # a one-shot iterator: keep it for the next epochs
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    work: Any = copy.deepcopy(student)
    teacher_was_training = teacher.training if teacher is not None else False
    student_was_training = student.training
    if teacher is not None:
        teacher.eval()
    balance: Tensor | None = None
    if cfg.class_balance is not None:
        classes = int(getattr(work, "num_classes", 0)) or int(max(int(b[1].max()) for b in batches)) + 1
        balance = class_balanced_weights(_label_counts(batches, classes), cfg.class_balance.beta)
        log.info("distill: class-balanced weights %s", [round(w, 3) for w in balance.tolist()])
    opt = torch.optim.AdamW(
        [p for p in work.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    sched: Any = None
    if cfg.schedule != "constant":
        per_epoch = sum(1 for _ in batches) if cfg.max_batches is None else cfg.max_batches
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, max(per_epoch, 1)))
    work.train()
    if use_dist:
        work.set_distilled_training(True)
    try:
        for epoch in progress(range(cfg.epochs), "distill", unit="epoch"):
            weight = balance if balance is not None and epoch >= cfg.class_balance.from_epoch else None  # type: ignore[union-attr]
            total = 0.0
            n = 0
            for b, batch in enumerate(batches):
                if cfg.max_batches is not None and b >= cfg.max_batches:
                    break
                loss = _loss(work, teacher, batch[0], batch[1], cfg, kind, use_dist, weight, g)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                total += float(loss.detach())
                n += 1
            if n == 0:
                raise DataError("distill: train_data yielded no batch")
            log.info("distill epoch %d: mean loss %.4f over %d batches", epoch, total / n, n)
    finally:
        if use_dist:
            work.set_distilled_training(False)
        if teacher is not None:
            teacher.train(teacher_was_training)
    work.train(student_was_training)
    work.zero_grad(set_to_none=True)
    return work


def _loss(
    work: Any,
    teacher: nn.Module | None,
    x: Tensor,
    y: Tensor,
    cfg: DistillConfig,
    kind: str,
    use_dist: bool,
    weight: Tensor | None,
    g: torch.Generator,
) -> Tensor:
    """One batch's loss (see the module docstring)."""
    x, perm, lam = _augment(x, cfg.augment, g)

    def ce(logits: Tensor) -> Tensor:
        loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        if perm is None:
            return loss
        return lam * loss + (1 - lam) * F.cross_entropy(logits, y[perm], label_smoothing=cfg.label_smoothing)

    out = work(x)
    cls_logits, dist_logits = out if use_dist else (_mean_logits(out), None)
    if kind == "none":
        if dist_logits is None:
            return ce(cls_logits)
        return (1 - cfg.alpha) * ce(cls_logits) + cfg.alpha * ce(dist_logits)
    assert teacher is not None
    with torch.no_grad():
        t_logits = _mean_logits(teacher(x))
    student = dist_logits if dist_logits is not None else cls_logits
    target = t_logits.argmax(dim=-1)
    if kind == "hard":
        teach = F.cross_entropy(student, target, weight=weight)
    else:
        teach = kd_loss(student, t_logits, cfg.temperature, None if weight is None else weight[target])
    return (1 - cfg.alpha) * ce(cls_logits) + cfg.alpha * teach


__all__ = ["class_balanced_weights", "distill", "kd_loss"]
