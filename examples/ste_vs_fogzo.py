"""STE vs FOGZO quantisation-aware fine-tuning of the reference DeiT, at equal iterations and at
equal compute.

    PYTHONPATH=. python3 examples/ste_vs_fogzo.py                    # ~5 min on one core
    PYTHONPATH=. python3 examples/ste_vs_fogzo.py --wbits 2 --abits 4

The shipped reference DeiT (``workloads/ref_deit.pt``) is quantised (default W3A4, MSE-calibrated
clipping, the classifier at 8 bits) and fine-tuned on the digits train split by
:mod:`accelsim.compress.qat` with the straight-through estimator and with the FOGZO-style
estimate (``fogzo_samples`` = 1, the paper's setting on deep networks), then measured on the test
split. Compute is counted in forward-pass equivalents: an STE step is a forward and a backward
(about 3), a FOGZO step adds ``2 n + 1`` forwards for its probes. The equal-compute row gives STE
the epochs that cost what FOGZO's do. Our FOGZO follows the idea of Yang & Aamodt (NeurIPS 2025,
arXiv:2510.23926) with a fixed mixing weight; the paper's own rule for it (a weight that decays
over training) could not be read here, so that part is not the paper's.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from accelsim.config.compression import CompressionRecipe
from accelsim.config.workload import Workload
from accelsim.eval import compress_workload, load_data, load_model
from accelsim.eval.accuracy import predict
from accelsim.models import WORKLOADS_DIR

#: forward-pass equivalents of one step: forward + backward (~2 forwards) ...
STE_COST = 3
#: ... and FOGZO's probes: a base forward and two per direction


def fogzo_cost(samples: int) -> int:
    return STE_COST + 1 + 2 * samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wbits", type=int, default=3)
    ap.add_argument("--abits", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3, help="FOGZO's epochs (and STE's at equal iterations)")
    ap.add_argument("--samples", type=int, default=1, help="FOGZO's probe directions per step")
    ap.add_argument("--lr", type=float, default=1e-4)
    args = ap.parse_args()
    workload = Workload.load(WORKLOADS_DIR / "ref_deit_fp32.yaml")
    model = load_model(workload)
    data = load_data(workload, model)
    train, test = data.loaders(workload.dataset.batch_size)
    fp32_top1 = predict(model, test)[0].argmax(1)
    quant = {
        "wbits": args.wbits,
        "abits": args.abits,
        "calibrator": "mse",
        "per_op": {"head": {"wbits": 8, "abits": 8}},
    }
    ste_equal = round(args.epochs * fogzo_cost(args.samples) / STE_COST)
    rows = [
        ("none (PTQ)", None, 0),
        ("STE", {"epochs": args.epochs, "lr": args.lr, "method": "ste"}, STE_COST),
        ("FOGZO", {"epochs": args.epochs, "lr": args.lr, "method": "fogzo", "fogzo_samples": args.samples},
         fogzo_cost(args.samples)),
        ("STE, equal compute", {"epochs": ste_equal, "lr": args.lr, "method": "ste"}, STE_COST),
    ]  # fmt: skip
    steps_per_epoch = len(train)
    print(f"ref_deit W{args.wbits}A{args.abits}, {steps_per_epoch} steps per epoch, lr {args.lr}")
    # wall time on a shared machine follows its load: forward equivalents are the compute measure
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    print("| QAT | epochs | steps | forward equivalents | wall s | top-1 | agreement with FP32 |")
    print("|---|---|---|---|---|---|---|")
    for label, qat, cost in rows:
        recipe = CompressionRecipe.model_validate({"quant": {**quant, "qat": qat}})
        torch.manual_seed(0)
        t = time.perf_counter()
        cw = compress_workload(workload, recipe=recipe, model=model, data=data)
        wall = time.perf_counter() - t
        assert cw.accuracy is not None
        agree = float((predict(cw.model, test)[0].argmax(1) == fp32_top1).float().mean())
        epochs = qat["epochs"] if qat else 0
        steps = epochs * steps_per_epoch
        print(
            f"| {label} | {epochs} | {steps} | {steps * cost:,} | {wall:.1f} | {cw.accuracy.top1:.2%} | {agree:.2%} |"
        )


if __name__ == "__main__":
    main()
