"""Train the reference checkpoints shipped in ``workloads/checkpoints/`` (seeded, minutes on 2 CPU cores).

    nice python3 workloads/train_reference.py                  # every model, teachers first
    nice python3 workloads/train_reference.py --model ref_deit --epochs 60

For each model it writes ``checkpoints/<name>.pt`` (float16 state dict) and ``checkpoints/<name>.json``
with the test accuracy measured on the float16 checkpoint loaded back as float32 (the exact model
a workload evaluates), the data split, the recipe of the run and the library versions.
Recipe: AdamW, cosine learning rate with warm-up, label smoothing 0.1, random +-2 pixel shifts
(the DeiT recipe, arXiv:2012.12877, scaled down; no mixup/cutmix on 1.4k images).

- ``ref_deit_distilled`` learns by DeiT's hard distillation through its distillation token from
  the shipped ``ref_cnn`` (``1/2 CE(cls, y) + 1/2 CE(dist, argmax teacher)``, the teacher on the
  same shifted images; label smoothing on the class head only, as DeiT);
- ``ref_cnn_lt10`` / ``ref_cnn_lt100`` train on the long-tailed train split of that imbalance
  (:func:`accelsim.eval.datasets.long_tail_indices`), the last fifth of the epochs with
  class-balanced weights on the cross-entropy (deferred re-weighting, Cao et al., NeurIPS 2019,
  arXiv:1906.07413; DeiT-LT's teachers are trained for the tail too, with PaCo + SAM, which we
  leave out). Their JSON also records the head / mid / tail accuracy (classes 0-2, 3-6, 7-9).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F

from accelsim.compress.augment import random_shift
from accelsim.compress.distill import class_balanced_weights
from accelsim.eval.accuracy import class_group_accuracy, count_params, measure_accuracy, predict
from accelsim.eval.datasets import SPLIT_SEED, load_splits
from accelsim.models import create_reference_model, load_checkpoint, reference_spec

#: the checkpoints next to this script: the checkout it runs from, not the one accelsim was
#: installed from (``accelsim.models.CHECKPOINT_DIR`` follows the installed package)
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"

_TRAIN = {"lr": 2e-3, "weight_decay": 0.05, "batch_size": 64}
DEFAULTS: dict[str, dict] = {
    "ref_deit": {"epochs": 30, **_TRAIN},
    "ref_efficientvit": {"epochs": 25, "lr": 4e-3, "weight_decay": 0.05, "batch_size": 64},
    "ref_cnn": {"epochs": 30, **_TRAIN},
    # about the optimiser steps of the balanced runs (the long-tailed splits are 2.5x / 4x smaller)
    "ref_cnn_lt10": {"epochs": 75, **_TRAIN, "imbalance": 10.0, "drw_from": 60},
    "ref_cnn_lt100": {"epochs": 120, **_TRAIN, "imbalance": 100.0, "drw_from": 96},
    "ref_deit_distilled": {"epochs": 30, **_TRAIN, "teacher": "ref_cnn"},
}
#: The class beta of the deferred re-weighting (DeiT-LT's ``--beta`` default).
CB_BETA = 0.9999


def train(
    name: str,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
    out_dir: Path,
    imbalance: float | None = None,
    drw_from: int | None = None,
    teacher: str | None = None,
) -> dict:
    torch.manual_seed(seed)
    np.random.seed(seed)
    spec = reference_spec(name)
    data = load_splits("digits", img_size=spec.img_size, imbalance=imbalance)
    model = create_reference_model(name)
    teacher_model = None
    if teacher is not None:
        teacher_model = create_reference_model(teacher, checkpoint=out_dir / f"{teacher}.pt").eval()
        model.set_distilled_training(True)  # type: ignore[operator]
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    x_train, y_train = data.train.tensors  # type: ignore[attr-defined]
    steps_per_epoch = math.ceil(len(y_train) / batch_size)
    total = epochs * steps_per_epoch
    warmup = min(steps_per_epoch * 2, max(total // 4, 1))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            (s + 1) / warmup
            if s < warmup
            else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(total - warmup, 1)))
        ),
    )
    g = torch.Generator().manual_seed(seed)
    shift = max(1, spec.img_size // 16)
    weights = None
    if drw_from is not None:
        weights = class_balanced_weights(torch.bincount(y_train, minlength=spec.num_classes), CB_BETA)
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(y_train), generator=g)
        running = 0.0
        w = weights if drw_from is not None and epoch >= drw_from else None
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            x = random_shift(x_train[idx], shift, g)
            if teacher_model is None:
                loss = F.cross_entropy(model(x), y_train[idx], label_smoothing=0.1, weight=w)
            else:
                with torch.no_grad():
                    hard = teacher_model(x).argmax(-1)
                cls, dist = model(x)
                loss = 0.5 * F.cross_entropy(cls, y_train[idx], label_smoothing=0.1) + 0.5 * F.cross_entropy(
                    dist, hard
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach())
        if epoch % 10 == 9 or epoch == epochs - 1:
            _, test = data.loaders(256)
            acc = measure_accuracy(model, test)
            print(
                f"{name} epoch {epoch + 1}/{epochs} loss {running / steps_per_epoch:.3f} test top1 {acc.top1:.4f}"
            )
    train_s = time.time() - t0
    if teacher_model is not None:
        model.set_distilled_training(False)  # type: ignore[operator]

    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / f"{name}.pt"
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save(state, ckpt)
    # the recorded accuracy is that of the shipped float16 file, loaded back as float32
    reloaded = load_checkpoint(create_reference_model(name), ckpt).eval()
    _, test = data.loaders(256)
    acc = measure_accuracy(reloaded, test)
    extra: dict = {}
    if imbalance is not None:
        extra = {"imbalance": imbalance, "drw_from_epoch": drw_from, "cb_beta": CB_BETA}
        extra["class_counts"] = torch.bincount(y_train, minlength=spec.num_classes).tolist()
        extra["head_mid_tail"] = class_group_accuracy(*predict(reloaded, test))
    if teacher is not None:
        extra["teacher"] = teacher
        extra["distillation"] = "DeiT hard, distillation token, alpha 0.5"
    record = {
        "model": name,
        "accuracy": acc.top1,
        "top5": acc.top5,
        "correct": acc.correct1,
        "test_images": acc.images,
        "dataset": data.description,
        "split_seed": SPLIT_SEED,
        "img_size": spec.img_size,
        "num_classes": spec.num_classes,
        "params": count_params(reloaded),
        "epochs": epochs,
        "lr": lr,
        "weight_decay": weight_decay,
        "batch_size": batch_size,
        "seed": seed,
        **extra,
        "train_seconds": round(train_s, 1),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
        "checkpoint_bytes": ckpt.stat().st_size,
    }
    (out_dir / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return record


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(DEFAULTS), action="append", help="default: all, teachers first")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=CHECKPOINTS, help=f"default: {CHECKPOINTS}")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    # sorted: every ref_cnn* teacher comes before the ref_deit* students
    for name in args.model or sorted(DEFAULTS):
        hp = dict(DEFAULTS[name])
        if args.epochs is not None:
            hp["epochs"] = args.epochs
        train(name, seed=args.seed, out_dir=args.out, **hp)


if __name__ == "__main__":
    main()
