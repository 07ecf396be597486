"""Published FPGA ViT accelerators, predicted against their papers: one row per published figure.

Usage (from the repository root)::

    python3 benchmarks/published.py                      # every config in hw_configs/published/
    python3 benchmarks/published.py --only efficientvit_fpga huang_tcas1 --detail

For each figure in a config's ``reference:`` section the script simulates the figure's model
(timm, random weights: timing needs only shapes; lowered once and cached in ``--cache``), prints the
prediction, predicted / published, and the assumption of the config whose alternatives move the
prediction most (with the prediction at that alternative). ``pinned`` designs are held to within
15% (the fidelity goal), and every power figure to within 25%; the others are not pinned by their
papers, and the row says how far the stated assumptions are from the figure. ``--detail`` adds per-engine utilisation and power.
Every number comes from this run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from accelsim.config.hardware import HardwareConfig
from accelsim.published import FigureCheck, check_design, published_designs

ROOT = Path(__file__).resolve().parents[1]
UNITS = {
    "latency_ms": "ms",
    "fps": "FPS",
    "gops": "GOPS",
    "best_layer_gops": "GOPS",
    "gops_per_dsp": "GOPS/DSP",
    "power_w": "W",
    "gops_per_watt": "GOPS/W",
}


def _fmt(value: float) -> str:
    return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"


def _row(c: FigureCheck) -> str:
    f = c.figure
    ms = c.most_sensitive
    goal = {True: f"yes ({c.goal:.0%})", False: f"**no** ({c.goal:.0%})", None: "not pinned"}[c.meets_goal]
    sensitive = f"{ms.label} -> {_fmt(ms.predicted)} ({ms.predicted / f.value:.2f})" if ms else "-"
    design = c.design.split(".")[0]
    return (
        f"| {design} | {f.model} | {f.metric} | {_fmt(f.value)} {UNITS[f.metric]} [{f.label}] "
        f"| {_fmt(c.predicted)} | {c.ratio:.2f} | {goal} | {sensitive} |"
    )


def _detail(c: FigureCheck) -> str:
    r = c.report
    engines = ", ".join(f"{k} {v:.1%}" for k, v in r.engine_utilization.items() if v > 0)
    return (
        f"  {c.design} on {c.figure.model}: {r.latency_ms:.3f} ms, {r.fps:.1f} FPS, {r.gops:.1f} GOPS, "
        f"{r.gops_per_dsp:.3f} GOPS/DSP ({r.dsp_used} DSPs), array {r.array_utilization:.1%}; "
        f"engines busy: {engines}; {r.power_w_estimate:.2f} W, {r.gops_per_watt_estimate:.1f} GOPS/W"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="config names in hw_configs/published/ (default: all)")
    ap.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "out" / "published-graphs")
    ap.add_argument("--detail", action="store_true", help="per-engine utilisation and power per row")
    args = ap.parse_args()
    names = published_designs()
    if args.only:
        names = [n for n in names if n.removeprefix("published/") in args.only]
    print(
        "| design | model | metric | published | predicted | ratio | within goal | "
        "assumption that moves it most -> prediction (ratio) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    details: dict[tuple[str, str, str], str] = {}
    silent = []
    t0 = time.perf_counter()
    for name in names:
        hw = HardwareConfig.load(name)
        checks = check_design(hw, cache_dir=args.cache)
        if not checks:
            silent.append(name)
        for c in checks:
            print(_row(c), flush=True)
            key = (c.design, c.figure.model, repr(c.figure.compression))
            details.setdefault(key, _detail(c))
    if silent:
        print(f"\nno absolute figure to compare with: {', '.join(silent)}")
    if args.detail:
        print()
        print("\n".join(details.values()))
    print(f"\n({time.perf_counter() - t0:.1f} s; ratio = predicted / published)")


if __name__ == "__main__":
    main()
