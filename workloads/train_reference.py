"""Train the reference checkpoints shipped in ``workloads/checkpoints/`` (seeded, minutes on 2 CPU cores).

    nice python3 workloads/train_reference.py                  # both models
    nice python3 workloads/train_reference.py --model ref_deit --epochs 60

For each model it writes ``checkpoints/<name>.pt`` (float16 state dict) and ``checkpoints/<name>.json``
with the test accuracy measured on the float16 checkpoint loaded back as float32 (the exact model
a workload evaluates), the data split, the recipe of the run and the library versions.
Recipe: AdamW, cosine learning rate with warm-up, label smoothing 0.1, random +-2 pixel shifts
(the DeiT recipe, arXiv:2012.12877, scaled down; no mixup/cutmix on 1.4k images).
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

from accelsim.eval.accuracy import count_params, measure_accuracy
from accelsim.eval.datasets import SPLIT_SEED, load_splits
from accelsim.eval.models import CHECKPOINT_DIR, create_reference_model, load_checkpoint, reference_spec

DEFAULTS = {
    "ref_deit": {"epochs": 30, "lr": 2e-3, "weight_decay": 0.05, "batch_size": 64},
    "ref_efficientvit": {"epochs": 25, "lr": 4e-3, "weight_decay": 0.05, "batch_size": 64},
}


def random_shift(x: torch.Tensor, max_px: int, g: torch.Generator) -> torch.Tensor:
    """Shift each image by up to ``max_px`` pixels (zero padding is the normalised background, -1)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_px,) * 4, value=-1.0)
    dx = torch.randint(0, 2 * max_px + 1, (n,), generator=g)
    dy = torch.randint(0, 2 * max_px + 1, (n,), generator=g)
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


def train(
    name: str, epochs: int, lr: float, weight_decay: float, batch_size: int, seed: int, out_dir: Path
) -> dict:
    torch.manual_seed(seed)
    np.random.seed(seed)
    spec = reference_spec(name)
    data = load_splits("digits", img_size=spec.img_size)
    model = create_reference_model(name)
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
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(y_train), generator=g)
        running = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            x = random_shift(x_train[idx], shift, g)
            loss = F.cross_entropy(model(x), y_train[idx], label_smoothing=0.1)
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

    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = out_dir / f"{name}.pt"
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save(state, ckpt)
    # the recorded accuracy is that of the shipped float16 file, loaded back as float32
    reloaded = load_checkpoint(create_reference_model(name), ckpt).eval()
    _, test = data.loaders(256)
    acc = measure_accuracy(reloaded, test)
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
    p.add_argument("--model", choices=sorted(DEFAULTS), action="append", help="default: all")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=CHECKPOINT_DIR)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.model or sorted(DEFAULTS):
        hp = dict(DEFAULTS[name])
        if args.epochs is not None:
            hp["epochs"] = args.epochs
        train(name, seed=args.seed, out_dir=args.out, **hp)


if __name__ == "__main__":
    main()
