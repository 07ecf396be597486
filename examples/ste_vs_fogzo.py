"""STE vs FOGZO quantisation-aware fine-tuning of the reference DeiT, over several seeds, at equal
iterations and at equal compute.

    PYTHONPATH=. python3 examples/ste_vs_fogzo.py                    # 3 seeds, ~15 min on one core
    PYTHONPATH=. python3 examples/ste_vs_fogzo.py --seeds 5 --wbits 2 --abits 4
    PYTHONPATH=. python3 examples/ste_vs_fogzo.py --cosine            # the estimate's cosine to STE, 1 min

The shipped reference DeiT (``workloads/checkpoints/ref_deit.pt``) is quantised once (default
W3A4, MSE-calibrated clipping, the classifier at 8 bits), then fine-tuned on the digits train split
by :mod:`accelsim.compress.qat` with the straight-through estimator and with FOGZO (Yang & Aamodt,
NeurIPS 2025, arXiv:2510.23926: ``n = 1`` probe direction, ``beta`` decayed linearly from 1 to
``--beta-min``), once per seed (the seed draws the batch order and FOGZO's directions), and measured
on the 360-image test split: top-1, and the fidelity to the FP32 model (top-1 agreement, KL),
which move where top-1 is saturated. Compute is counted in forward-pass equivalents: an STE step is
a forward and a backward (about 3), a FOGZO step adds two forwards for its probe. The equal-compute
row gives STE the epochs that cost what FOGZO's do.

What it can show: whether FOGZO's estimate changes the fine-tuned model beyond the seed-to-seed
spread on this small task. What it cannot: the paper's setting (quantisation-aware *pre*-training
of DeiT on ImageNet-100 for many epochs, where it reports +1-8 points); here a few epochs of
fine-tuning start from a PTQ model already close to FP32.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch
from torch.utils.data import DataLoader

from accelsim.compress import compress
from accelsim.compress.qat import train_qat
from accelsim.config.compression import CompressionRecipe, QATConfig
from accelsim.config.workload import Workload
from accelsim.eval import load_data, load_model
from accelsim.eval.accuracy import predict
from accelsim.eval.fidelity import fidelity
from accelsim.models import WORKLOADS_DIR

#: forward-pass equivalents of one step: forward + backward (~2 forwards) ...
STE_COST = 3


def fogzo_cost(samples: int) -> int:
    """... and FOGZO's probes: two forwards per direction."""
    return STE_COST + 2 * samples


def cosine_to_ste(ptq: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor], samples: int) -> None:
    """Print the cosine between FOGZO's estimate and the STE gradient of the quantised weights on
    one batch, for several ``beta`` (five draws each: mean ± sd)."""
    from accelsim.compress.qat import _fogzo_step, _loss, _quantised_weights

    x, y = batch
    weights = [w for w, _ in _quantised_weights(ptq)]

    def ste() -> list[torch.Tensor]:
        ptq.zero_grad(set_to_none=True)
        _loss(ptq, x, y).backward()
        return [w.grad.clone() for w in weights]  # type: ignore[union-attr]

    def cos(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
        dot = sum(float((u * v).sum()) for u, v in zip(a, b, strict=True))
        na = sum(float((u**2).sum()) for u in a) ** 0.5
        nb = sum(float((v**2).sum()) for v in b) ** 0.5
        return dot / (na * nb)

    g0 = ste()
    d = sum(w.numel() for w in weights)
    print(f"cosine of FOGZO's estimate (n={samples}) to the STE gradient, {d:,} quantised weights, one batch")
    print("| beta | (1 - beta) d | cosine to STE (5 draws) |")
    print("|---|---|---|")
    for beta in (1.0, 1 - 1e-7, 1 - 1e-6, 1 - 1e-5):
        vals = []
        for seed in range(5):
            ste()
            _fogzo_step(
                ptq,
                x,
                y,
                QATConfig(method="fogzo", fogzo_samples=samples),
                beta,
                torch.Generator().manual_seed(seed),
            )
            vals.append(cos([w.grad for w in weights], g0))  # type: ignore[misc]
        print(f"| {beta:.7f} | {(1 - beta) * d:.2f} | {_spread(vals, '.3f')} |")


def _spread(values: list[float], fmt: str) -> str:
    mean = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{format(mean, fmt)} ± {format(sd, fmt)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wbits", type=int, default=3)
    ap.add_argument("--abits", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3, help="FOGZO's epochs (and STE's at equal iterations)")
    ap.add_argument("--samples", type=int, default=1, help="FOGZO's probe directions per step")
    ap.add_argument("--beta-min", type=float, default=QATConfig().fogzo_beta_min)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cosine", action="store_true", help="only the estimate's cosine to STE, then exit")
    args = ap.parse_args()
    torch.set_num_threads(1)  # small models on a shared machine: one thread is the fast one
    workload = Workload.load(WORKLOADS_DIR / "ref_deit_fp32.yaml")
    model = load_model(workload)
    data = load_data(workload, model)
    bs = workload.dataset.batch_size
    calib, test = data.loaders(bs)
    fp32_logits, labels = predict(model, test)
    quant = {
        "wbits": args.wbits,
        "abits": args.abits,
        "calibrator": "mse",
        "per_op": {"head": {"wbits": 8, "abits": 8}},
    }
    ptq = compress(model, CompressionRecipe.model_validate({"quant": quant}), calib_data=calib)
    if args.cosine:
        cosine_to_ste(ptq, next(iter(data.loaders(bs, shuffle_train=True)[0])), args.samples)
        return
    ste_equal = round(args.epochs * fogzo_cost(args.samples) / STE_COST)
    common = {"lr": args.lr}
    rows = [
        ("none (PTQ)", None, 0),
        ("STE", QATConfig(epochs=args.epochs, method="ste", **common), STE_COST),
        ("FOGZO", QATConfig(epochs=args.epochs, method="fogzo", fogzo_samples=args.samples,
                            fogzo_beta_min=args.beta_min, **common), fogzo_cost(args.samples)),
        ("STE, equal compute", QATConfig(epochs=ste_equal, method="ste", **common), STE_COST),
    ]  # fmt: skip
    steps_per_epoch = len(calib)
    print(
        f"ref_deit W{args.wbits}A{args.abits}, {steps_per_epoch} steps per epoch, lr {args.lr}, "
        f"FOGZO n={args.samples} beta 1 -> {args.beta_min}, seeds 0..{args.seeds - 1}, "
        f"{len(labels)} test images"
    )
    # wall time on a shared machine follows its load: forward equivalents are the compute measure
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    print(
        "| QAT | epochs | forward equivalents | wall s (mean) | top-1 | agreement with FP32 | KL to FP32 (nats) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, cfg, cost in rows:
        top1, agree, kl, wall = [], [], [], []
        for seed in range(args.seeds if cfg is not None else 1):
            m = copy.deepcopy(ptq)
            t = time.perf_counter()
            if cfg is not None:
                torch.manual_seed(seed)
                order = torch.Generator().manual_seed(seed)
                train = DataLoader(data.train, batch_size=bs, shuffle=True, generator=order)
                train_qat(m, train, cfg, seed=seed)
            wall.append(time.perf_counter() - t)
            logits, _ = predict(m, test)
            fid = fidelity(fp32_logits.numpy(), logits.numpy())
            top1.append(float((logits.argmax(1) == labels).float().mean()))
            agree.append(fid.agreement)
            kl.append(fid.kl_div)
        epochs = cfg.epochs if cfg else 0
        print(
            f"| {label} | {epochs} | {epochs * steps_per_epoch * cost:,} | {statistics.mean(wall):.0f} | "
            f"{_spread([100 * v for v in top1], '.2f')}% | {_spread([100 * v for v in agree], '.2f')}% | "
            f"{_spread(kl, '.4f')} |",
            flush=True,
        )
    print(f"(mean ± standard deviation over {args.seeds} seeds; PTQ has no seed)")


if __name__ == "__main__":
    main()
