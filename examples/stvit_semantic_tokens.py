"""STViT semantic tokens on the reference DeiT and on DeiT-Small: MACs, zcu102 cycles, accuracy.

    PYTHONPATH=. python3 examples/stvit_semantic_tokens.py            # ~2 min on one core

For S in {4, 8} semantic tokens from block k in {1, 2} of the shipped reference DeiT (digits, 16
patch tokens), the lowered graph's MACs, the cycles of ``hw_configs/zcu102.yaml`` (the graph
lowered at INT8 as ``accelsim simulate --workload`` does), and the test accuracy without and with
the brief fine-tuning of ``workloads/ref_deit_semantic8.yaml`` (five epochs of logit distillation
from the uncompressed model; the uncompressed model gets the same fine-tuning as the baseline
row). Then DeiT-Small at 224 px (random weights: MACs and cycles only) with the paper's setting,
S = 16 from block 4 (Chang et al., CVPR 2023: 4 blocks on 196 tokens, a 2-block STGM, 6 blocks on
16 tokens). Cycles come from the simulator's current timing model.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from accelsim.config.compression import CompressionRecipe
from accelsim.config.hardware import HardwareConfig
from accelsim.config.workload import Workload
from accelsim.eval import compress_workload, load_data, load_model
from accelsim.lower import lower
from accelsim.models import WORKLOADS_DIR
from accelsim.sim import simulate

FINE_TUNE = {"epochs": 5, "lr": 5e-4}  # workloads/ref_deit_semantic8.yaml


def _cycles(model: torch.nn.Module, shape: tuple[int, ...], hw: HardwareConfig) -> tuple[int, int]:
    graph = lower(model, shape, wbits=8, abits=8)
    return graph.total_macs, simulate(graph, hw).total_cycles


def reference_rows(hw: HardwareConfig) -> list[dict[str, Any]]:
    workload = Workload.load(WORKLOADS_DIR / "ref_deit_fp32.yaml")
    model = load_model(workload)
    data = load_data(workload, model)
    points: list[tuple[str, dict[str, Any] | None]] = [("baseline (17 tokens)", None)]
    points += [
        (f"S={s} from block {k}", {"method": "semantic", "tokens": s, "at": k})
        for s in (4, 8)
        for k in (1, 2)
    ]
    rows = []
    for name, tokens in points:
        row: dict[str, Any] = {"point": name}
        for tag, recipe in (("acc", {}), ("acc_ft", {"distill": FINE_TUNE})):
            if tokens is not None:
                recipe = {"tokens": tokens, **recipe}
            cw = compress_workload(
                workload, recipe=CompressionRecipe.model_validate(recipe), model=model, data=data
            )
            assert cw.accuracy is not None
            row[tag] = cw.accuracy.top1
            if tag == "acc":
                row["macs"], row["cycles"] = _cycles(cw.model, tuple(cw.example.shape), hw)
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hw = HardwareConfig.load(args.hw)

    print(f"reference DeiT (ref_deit, digits 360 test images), {args.hw}, INT8 graph")
    print(f"{'point':<22} {'MMACs':>8} {'cycles':>8} {'top-1':>7} {'top-1 ft':>9}")
    ref = reference_rows(hw)
    for r in ref:
        print(
            f"{r['point']:<22} {r['macs'] / 1e6:8.3f} {r['cycles']:8d} "
            f"{100 * r['acc']:6.2f}% {100 * r['acc_ft']:8.2f}%"
        )
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
