"""Speed and fidelity of the bit-true executor on the shipped reference models, from one run.

    python3 benchmarks/bench_bittrue.py [--model ref_deit|ref_efficientvit|all] [--recipe w8a8] [--batch 256]

For each model: the W8A8 fake-quant model (calibrated on the train split as ``accelsim eval``
does) is lowered with its weights and the whole test split runs through it twice, bit-true
(``run_bittrue`` with the default integer units, and with float units) and in torch
(fake-quant). Printed: images/s of each, the bit-true/torch speed ratio, top-1 of both, their
top-1 agreement and the largest logit difference. Without a shipped checkpoint the randomly
initialised model is used (and said so): its speed is the same, its accuracies mean nothing.
The load average is printed too: a shared machine slows every figure.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def bench(name: str, recipe: str, batch: int) -> None:
    import torch

    from accelsim.compress import compress
    from accelsim.config.arithmetic import ArithmeticConfig
    from accelsim.config.workload import Workload
    from accelsim.eval import load_data, load_model
    from accelsim.eval.bittrue import BittrueStats, run_bittrue
    from accelsim.lower import lower
    from accelsim.models import WORKLOADS_DIR, create_reference_model, reference_spec

    wl = Workload.load(WORKLOADS_DIR / f"{name}_{recipe}.yaml")
    pretrained = reference_spec(name).checkpoint.is_file()
    torch.manual_seed(0)
    model = load_model(wl) if pretrained else create_reference_model(name)
    data = load_data(wl, model)
    calib, test = data.loaders(wl.dataset.batch_size)
    torch.manual_seed(0)
    qm = compress(model, wl.compression, calib_data=calib, teacher=model, train_data=calib)
    xs = np.concatenate([x.numpy() for x, _ in test])
    ys = np.concatenate([y.numpy() for _, y in test])
    t0 = time.perf_counter()
    graph = lower(qm, (1, *xs.shape[1:]), keep_constants=True)
    t_lower = time.perf_counter() - t0
    run_bittrue(graph, xs[:2], ArithmeticConfig())  # warm: numba kernels load from the cache

    with torch.no_grad():
        qm(torch.from_numpy(xs[:batch]))
        t0 = time.perf_counter()
        fq = torch.cat([qm(torch.from_numpy(xs[i : i + batch])) for i in range(0, len(xs), batch)]).numpy()
        t_torch = time.perf_counter() - t0
    print(
        f"{name} {recipe} ({'shipped checkpoint' if pretrained else 'RANDOM weights: accuracies meaningless'}), "
        f"{len(xs)} test images {xs.shape[1:]}, graph {len(graph)} ops (lowered in {t_lower:.1f} s)"
    )
    print(
        f"  torch fake-quant   {len(xs) / t_torch:8.1f} images/s   top-1 {100 * (fq.argmax(1) == ys).mean():.2f}%"
    )
    for label, arith in (
        ("bit-true int units", ArithmeticConfig()),
        ("bit-true float units", ArithmeticConfig.float_units()),
    ):
        stats = BittrueStats()
        t0 = time.perf_counter()
        bt = run_bittrue(graph, xs, arith, batch, stats=stats)
        dt = time.perf_counter() - t0
        agree = (bt.argmax(1) == fq.argmax(1)).mean()
        print(
            f"  {label:<20} {len(xs) / dt:8.1f} images/s   top-1 {100 * (bt.argmax(1) == ys).mean():.2f}%   "
            f"agreement {100 * agree:.2f}%   max |logit diff| {np.abs(bt - fq).max():.4f}   "
            f"speed vs torch x{t_torch / dt:.2f}   ({len(stats.integer_ops)} ops in integers)"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="all", choices=["all", "ref_deit", "ref_efficientvit"])
    p.add_argument("--recipe", default="w8a8")
    p.add_argument("--batch", type=int, default=256)
    args = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for name in ["ref_deit", "ref_efficientvit"] if args.model == "all" else [args.model]:
        bench(name, args.recipe, args.batch)


if __name__ == "__main__":
    main()
