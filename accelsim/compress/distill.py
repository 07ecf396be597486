"""Knowledge distillation: a short, seeded fine-tune of a compressed student from its teacher.

Two losses, mixed by ``alpha`` with the ground-truth cross-entropy (weight ``1 - alpha``):

- logit KD (Hinton et al., "Distilling the Knowledge in a Neural Network", arXiv:1503.02531):
  ``T^2 * KL(softmax(t / T) || softmax(s / T))`` -- the ``T^2`` keeps the gradient scale
  independent of the temperature;
- DeiT's hard-label distillation through the distillation token (Touvron et al., "Training
  data-efficient image transformers & distillation through attention", ICML 2021, Sec. 4):
  the class head learns the labels, the distillation head learns ``argmax`` of the teacher.
  With ``alpha = 0.5`` this is DeiT's ``1/2 CE(cls, y) + 1/2 CE(dist, y_teacher)``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from accelsim.config.compression import DistillConfig
from accelsim.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """``T^2 * KL(softmax(t/T) || softmax(s/T))``, averaged over the batch."""
    t = temperature
    log_p = F.log_softmax(student_logits / t, dim=-1)
    log_q = F.log_softmax(teacher_logits / t, dim=-1)
    return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True) * (t * t)


def _mean_logits(out: Tensor | tuple[Tensor, ...]) -> Tensor:
    """A model's logits; DeiT's (class, distillation) pair in training mode is averaged as at inference."""
    return torch.stack(out).mean(0) if isinstance(out, tuple) else out


def _has_dist_head(model: nn.Module) -> bool:
    return isinstance(getattr(model, "head_dist", None), nn.Module) and hasattr(
        model, "set_distilled_training"
    )


def distill(
    student: nn.Module, teacher: nn.Module, train_data: Iterable[Any], cfg: DistillConfig
) -> nn.Module:
    """Fine-tune a copy of ``student`` towards ``teacher`` on ``train_data``.

    Args:
        student: the compressed model (not modified).
        teacher: the uncompressed model (not modified; run in eval mode without gradients).
        train_data: ``(images, labels)`` batches, iterated ``cfg.epochs`` times.
        cfg: epochs, learning rate (AdamW), temperature, loss mix, distillation token, seed.

    Returns:
        The fine-tuned copy, in the train/eval mode ``student`` was in.

    Raises:
        ConfigError: ``use_dist_token`` on a student without a distillation head.
        DataError: ``train_data`` yields no batch.
    """
    use_dist = cfg.use_dist_token
    if use_dist and not _has_dist_head(student):
        raise ConfigError(
            f"distill.use_dist_token: {type(student).__name__} has no distillation token/head "
            "(a DeiT *_distilled_* model has); use false"
        )
    batches: Iterable[Any] = train_data
    if cfg.epochs > 1 and iter(train_data) is train_data:  # a one-shot iterator: keep it for the next epochs
        batches = list(train_data)
    torch.manual_seed(cfg.seed)
    work: Any = copy.deepcopy(student)
    teacher_was_training = teacher.training
    student_was_training = student.training
    teacher.eval()
    opt = torch.optim.AdamW(
        [p for p in work.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    work.train()
    if use_dist:
        work.set_distilled_training(True)
    try:
        for epoch in range(cfg.epochs):
            total = 0.0
            n = 0
            for b, batch in enumerate(batches):
                if cfg.max_batches is not None and b >= cfg.max_batches:
                    break
                x, y = batch[0], batch[1]
                with torch.no_grad():
                    t_out = teacher(x)
                    t_logits = _mean_logits(t_out)
                out = work(x)
                if use_dist:
                    cls_logits, dist_logits = out
                    soft = F.cross_entropy(dist_logits, t_logits.argmax(dim=-1))
                    loss = (1 - cfg.alpha) * F.cross_entropy(cls_logits, y) + cfg.alpha * soft
                else:
                    logits = _mean_logits(out)
                    loss = (1 - cfg.alpha) * F.cross_entropy(logits, y) + cfg.alpha * kd_loss(
                        logits, t_logits, cfg.temperature
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach())
                n += 1
            if n == 0:
                raise DataError("distill: train_data yielded no batch")
            log.info("distill epoch %d: mean loss %.4f over %d batches", epoch, total / n, n)
    finally:
        if use_dist:
            work.set_distilled_training(False)
        teacher.train(teacher_was_training)
    work.train(student_was_training)
    work.zero_grad(set_to_none=True)
    return work


__all__ = ["distill", "kd_loss"]
