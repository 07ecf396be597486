"""Softmax attention versus softmax-free linear attention on the same FPGA board.

    python examples/softmax_vs_linear_attention.py [OUT_DIR] [--sizes 224 320 416 512]

Lowers EfficientViT-B1 (ReLU linear attention, depthwise convs) and DeiT-Small (softmax
attention) with ``accelsim.lower`` and simulates both on two ZCU102 designs:
``zcu102_trio`` (a Trio-ViT-class accelerator: matrix engine + depthwise engine +
linear-attention unit) and ``zcu102_softmax`` (a classic softmax DeiT accelerator). Prints FPS,
GOPS/DSP and per-engine busy time, then plots latency against image size and the attention
part's cycles against tokens (log-log: slope 1 for linear, 2 for softmax attention) to
``OUT_DIR/softmax_vs_linear_attention.png``. Lowered graphs are cached in ``OUT_DIR/graphs``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import accelsim
from accelsim.config.hardware import HardwareConfig
from accelsim.ir import Graph, OpKind
from accelsim.sim import Report, simulate

MODELS = {"EfficientViT-B1": "efficientvit_b1", "DeiT-S": "deit_small_patch16_224"}
CONFIGS = ("zcu102_trio", "zcu102_softmax")


def lowered(model: str, img_size: int, cache: Path) -> Graph:
    """``accelsim.lower(model, img_size=...)``, cached as JSON (a saved graph loads without torch)."""
    path = cache / f"{model}_{img_size}.json"
    if path.exists():
        return Graph.load(path)
    g = accelsim.lower(model, img_size=img_size)
    cache.mkdir(parents=True, exist_ok=True)
    g.save(path)
    return g


def attention_ops(graph: Graph) -> set[str]:
    """The token-mixing ops: softmax attention (QK^T, softmax, AV) or fused linear attention."""
    return {
        op.name
        for op in graph.ops()
        if op.kind in (OpKind.SOFTMAX, OpKind.LINEAR_ATTENTION)
        or (op.kind == OpKind.MATMUL and op.attrs.get("operands") == "aa")
    }


def attention_cycles(report: Report, names: set[str]) -> int:
    """Compute cycles of the attention ops (a linear attention's ReLU/divide rows included)."""
    return sum(r.compute_cycles for r in report.layers if r.name.split("/")[0] in names)


def tokens_of(graph: Graph) -> int:
    """Tokens the attention of the first block sees (linear attention: its largest token count)."""
    t = [int(op.attrs["tokens"]) for op in graph.ops() if op.kind == OpKind.LINEAR_ATTENTION]
    t += [int(op.attrs["length"]) for op in graph.ops() if op.kind == OpKind.SOFTMAX]
    return max(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", type=Path, default=Path("out"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 320, 416, 512])
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    cache = args.out_dir / "graphs"
    hws = {c: HardwareConfig.load(c) for c in CONFIGS}

    print(
        f"{'model':<16}{'design':<16}{'FPS':>8}{'GOPS':>8}{'GOPS/DSP':>10}{'DSP':>6}   per-engine busy ms (utilisation)"
    )
    for label, model in MODELS.items():
        g = lowered(model, 224, cache)
        for c, hw in hws.items():
            r = simulate(g, hw)
            busy = ", ".join(
                f"{e} {v / hw.clock_mhz / 1e3:.2f} ({r.engine_utilization[e]:.0%})"
                for e, v in r.engine_busy_cycles.items()
                if v
            )
            print(
                f"{label:<16}{c:<16}{r.fps:>8.1f}{r.gops:>8.1f}{r.gops_per_dsp:>10.3f}{r.dsp_used:>6}   {busy}"
            )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_lat, ax_att) = plt.subplots(1, 2, figsize=(11, 4.2))
    print(f"\nlatency (ms) against image size {args.sizes}; attention slope d log(cycles) / d log(tokens)")
    for label, model in MODELS.items():
        graphs = [lowered(model, s, cache) for s in args.sizes]
        names = [attention_ops(g) for g in graphs]
        tokens = [tokens_of(g) for g in graphs]
        for c, hw in hws.items():
            reports = [simulate(g, hw) for g in graphs]
            lat = [r.latency_ms for r in reports]
            att = [attention_cycles(r, n) for r, n in zip(reports, names, strict=True)]
            slope = float(np.polyfit(np.log(tokens), np.log(att), 1)[0])
            style = "-" if c == "zcu102_trio" else "--"
            ax_lat.plot(args.sizes, lat, style, marker="o", label=f"{label} on {c}")
            ax_att.loglog(tokens, att, style, marker="o", label=f"{label} on {c} (slope {slope:.2f})")
            print(f"  {label:<16}{c:<16}" + " ".join(f"{x:8.2f}" for x in lat) + f"   slope {slope:.2f}")
    ax_lat.set(
        xlabel="image size (px)", ylabel="latency per frame (ms)", title="End to end, ZCU102 @ 200 MHz"
    )
    ax_att.set(xlabel="tokens per attention", ylabel="attention compute cycles",
               title="Attention: linear vs quadratic")  # fmt: skip
    for ax in (ax_lat, ax_att):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = args.out_dir / "softmax_vs_linear_attention.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
