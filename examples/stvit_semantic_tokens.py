"""STViT semantic tokens on the reference DeiT and on DeiT-Small: MACs, zcu102 cycles, accuracy.

    PYTHONPATH=. python3 examples/stvit_semantic_tokens.py            # ~5 min on one core (3 seeds)

For S in {4, 8} semantic tokens from block k in {1, 2} of the shipped reference DeiT (digits, 16
patch tokens), the lowered graph's MACs, the cycles of ``hw_configs/zcu102.yaml`` (the graph
lowered at INT8 as ``accelsim simulate --workload`` does), and the test accuracy without and with
the brief fine-tuning of ``workloads/ref_deit_semantic8.yaml`` (five epochs of logit distillation
from the uncompressed model; the uncompressed model gets the same fine-tuning as the baseline
row), over ``--seeds`` fine-tuning seeds (mean ± spread), with the fidelity to the uncompressed
FP32 model (top-1 agreement, KL of the outputs) beside top-1, which saturates on 360 digits. Then
DeiT-Small at 224 px (random weights: MACs and cycles only) with the paper's setting,
S = 16 from block 4 (Chang et al., CVPR 2023: 4 blocks on 196 tokens, a 2-block STGM, 6 blocks on
16 tokens). Cycles come from the simulator's current timing model.

What it shows: how much of the reference model's agreement with its FP32 self the semantic tokens
keep, before and after a few seconds of distillation, and what they save in MACs and cycles. What it
does not: that STViT "keeps accuracy" in the paper's sense (ImageNet, full training); on a 16-token
32-px proxy the cycles are dominated by fixed per-layer costs, so DeiT-Small's rows are the timing
that matters.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import torch
from torch.utils.data import DataLoader

from accelsim.compress import compress
from accelsim.config.compression import CompressionRecipe
from accelsim.config.hardware import HardwareConfig
from accelsim.config.workload import Workload
from accelsim.eval import compress_workload, load_data, load_model
from accelsim.eval.accuracy import predict
from accelsim.eval.fidelity import fidelity
from accelsim.lower import lower
from accelsim.models import WORKLOADS_DIR
from accelsim.sim import simulate

FINE_TUNE = {"epochs": 5, "lr": 5e-4}  # workloads/ref_deit_semantic8.yaml


def _cycles(model: torch.nn.Module, shape: tuple[int, ...], hw: HardwareConfig) -> tuple[int, int]:
    graph = lower(model, shape, wbits=8, abits=8)
    return graph.total_macs, simulate(graph, hw).total_cycles


def _spread(values: list[float], scale: float = 100.0, fmt: str = ".2f") -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{format(scale * statistics.mean(values), fmt)}±{format(scale * sd, fmt)}"


def reference_rows(hw: HardwareConfig, seeds: list[int]) -> list[dict[str, Any]]:
    workload = Workload.load(WORKLOADS_DIR / "ref_deit_fp32.yaml")
    model = load_model(workload)
    data = load_data(workload, model)
    bs = workload.dataset.batch_size
    calib, test = data.loaders(bs)
    fp32_logits, labels = predict(model, test)
    points: list[tuple[str, dict[str, Any] | None]] = [("baseline (17 tokens)", None)]
    points += [
        (f"S={s} from block {k}", {"method": "semantic", "tokens": s, "at": k})
        for s in (4, 8)
        for k in (1, 2)
    ]
    rows = []
    for name, tokens in points:
        row: dict[str, Any] = {"point": name, "ft": {"top1": [], "agreement": [], "kl": []}}
        base = {} if tokens is None else {"tokens": tokens}
        cw = compress_workload(
            workload, recipe=CompressionRecipe.model_validate(base), model=model, data=data
        )
        assert cw.accuracy is not None and cw.fidelity is not None
        row["top1"], row["agreement"], row["kl"] = cw.accuracy.top1, cw.fidelity.agreement, cw.fidelity.kl_div
        row["macs"], row["cycles"] = _cycles(cw.model, tuple(cw.example.shape), hw)
        for seed in seeds:
            # the seed draws the fine-tuning's batch order (the workload's loader has one fixed order)
            recipe = CompressionRecipe.model_validate({**base, "distill": {**FINE_TUNE, "seed": seed}})
            order = DataLoader(
                data.train, batch_size=bs, shuffle=True, generator=torch.Generator().manual_seed(seed)
            )
            torch.manual_seed(seed)
            tuned = compress(model, recipe, calib_data=calib, teacher=model, train_data=order)
            logits, _ = predict(tuned, test)
            fid = fidelity(fp32_logits.numpy(), logits.numpy())
            row["ft"]["top1"].append(float((logits.argmax(1) == labels).float().mean()))
            row["ft"]["agreement"].append(fid.agreement)
            row["ft"]["kl"].append(fid.kl_div)
        rows.append(row)
    return rows


def deit_small_rows(hw: HardwareConfig) -> list[dict[str, Any]]:
    import timm

    from accelsim.compress.tokens import reduce_tokens
    from accelsim.config.compression import TokenConfig

    with torch.device("meta"):
        model = timm.create_model("deit_small_patch16_224", pretrained=False).eval()
    rows = []
    for name, cfg in (
        ("baseline (197 tokens)", None),
        ("S=16 from block 4", TokenConfig(method="semantic", tokens=16, at=4)),
    ):
        m = model if cfg is None else reduce_tokens(model, cfg)
        macs, cycles = _cycles(m, (1, 3, 224, 224), hw)
        rows.append({"point": name, "macs": macs, "cycles": cycles})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", default="zcu102")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hw = HardwareConfig.load(args.hw)

    print(
        f"reference DeiT (ref_deit, digits 360 test images), {args.hw}, INT8 graph; fine-tuned: seeds {args.seeds}"
    )
    print(
        "| point | MMACs | cycles | top-1 | agreement | KL (nats) | top-1 ft | agreement ft | KL ft (nats) |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in reference_rows(hw, args.seeds):
        ft = r["ft"]
        print(
            f"| {r['point']} | {r['macs'] / 1e6:.3f} | {r['cycles']} | {100 * r['top1']:.2f}% | "
            f"{100 * r['agreement']:.2f}% | {r['kl']:.4f} | {_spread(ft['top1'])}% | "
            f"{_spread(ft['agreement'])}% | {_spread(ft['kl'], 1.0, '.4f')} |",
            flush=True,
        )
    print("(fine-tuned: mean ± standard deviation over the seeds; the baseline is fine-tuned the same way)")
    print(f"\ndeit_small_patch16_224 at 224 px, {args.hw}, INT8 graph")
    print(f"{'point':<22} {'GMACs':>8} {'cycles':>10} {'vs base':>8}")
    small = deit_small_rows(hw)
    for r in small:
        print(
            f"{r['point']:<22} {r['macs'] / 1e9:8.3f} {r['cycles']:10d} "
            f"{r['cycles'] / small[0]['cycles']:7.2f}x"
        )


if __name__ == "__main__":
    main()
