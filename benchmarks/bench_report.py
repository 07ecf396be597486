"""The report's cost per hardware point: ``build_report`` over a 1,000-point sweep, the whole
``simulate_many`` point, and the layer table of one report (CPU time, best of ``--reps``).

Every point is a fresh config object, as in a sweep, so the per-config answers (resources, the
power model) are computed once per point as they would be. To compare two checkouts, run it on
each in turn in the same shell line (``for d in old new; do PYTHONPATH=$d python3 ...; done``);
it prints the load average beside each figure.

    PYTHONPATH=$PWD python3 benchmarks/bench_report.py --graph /tmp/bg/deit_small.json
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench_sim import sweep_points  # this folder: the script's, first on sys.path

import accelsim
from accelsim.config.hardware import HardwareConfig
from accelsim.ir import Graph
from accelsim.sim import compile_graph, simulate, simulate_many
from accelsim.sim.mapping import map_graph
from accelsim.sim.report import build_report
from accelsim.sim.schedule import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph", type=Path, required=True, help="a lowered graph (JSON)")
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    g = compile_graph(Graph.load(args.graph))
    base = HardwareConfig.load("zcu102")
    simulate_many(g, sweep_points(base, 50))  # compile and warm the kernels
    report = sweep = layers = float("inf")
    for _ in range(args.reps):
        points = sweep_points(base, args.points)  # fresh configs: per-config memos start empty
        runs = [(s, run(s)) for s in (map_graph(g, hw) for hw in points)]
        t = time.thread_time()
        for s, r in runs:
            build_report(s, r)
        report = min(report, (time.thread_time() - t) / len(runs))
        points = sweep_points(base, args.points)
        t = time.thread_time()
        simulate_many(g, points, workers=1)  # thread_time sees this thread only: no worker processes
        sweep = min(sweep, (time.thread_time() - t) / len(points))
        r = simulate(g, base)
        t = time.thread_time()
        _ = r.layer_table
        layers = min(layers, time.thread_time() - t)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{Path(accelsim.__file__).parent}: load {load:.1f}  build_report {report * 1e6:.0f} us/point  "
        f"simulate_many {sweep * 1e3:.3f} ms/point ({1 / sweep:,.0f} points/s)  "
        f"layer table {layers * 1e3:.2f} ms ({g.n_ops} ops)"
    )


if __name__ == "__main__":
    main()
