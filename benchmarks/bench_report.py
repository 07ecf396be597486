"""The Python cost of one hardware point of a sweep: ``simulate_many`` over fresh config objects,
its schedule-kernel calls timed apart (the rest is the point's Python: mapping, report, glue);
the same points step by step (``map_graph``, ``run`` less its kernel call, ``build_report``, each
timed in turn, as a sweep interleaves them with the kernel); ``map_graph`` and ``build_report``
alone, each over all points in a row (warm caches: less than in turn); and the layer table of
one report. CPU time of this thread, best of ``--reps``.

Every point is a fresh config object, as in a sweep or a search (``HardwareConfig.model_validate``
of a dumped config: every section a new object), and every round starts afresh: the mapping memo
is cleared and the points' ``control_luts`` differ from every earlier round's, so nothing
remembered by value (resources, the power model) carries over (within a round, points that
differ only in DRAM bandwidth share a mapping, and equal designs their resources, as in a sweep). To compare two checkouts, run it on each in turn in the same shell line (``for d in old
new; do PYTHONPATH=$d python3 ...; done``); it prints the load average beside each figure.

    PYTHONPATH=$PWD python3 benchmarks/bench_report.py --graph /tmp/bg/deit_small.json
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from bench_sim import sweep_points  # this folder: the script's, first on sys.path

import accelsim
from accelsim.config.hardware import HardwareConfig
from accelsim.ir import Graph
from accelsim.sim import compile_graph, schedule, simulate, simulate_many
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
    kernel = schedule._RUN
    in_kernel = [0.0]

    def timed_kernel(*a: Any) -> Any:
        t = time.thread_time()
        out = kernel(*a)
        in_kernel[0] += time.thread_time() - t
        return out

    best: dict[str, float] = {}

    def keep(name: str, seconds: float) -> None:
        best[name] = min(best.get(name, float("inf")), seconds)

    n = args.points
    for _ in range(args.reps):
        # fresh configs, and values no round has seen: answers remembered by value (resources, power
        # model) are computed afresh each round as in the first, and the mapping memo starts empty
        base = base.with_changes(control_luts=base.control_luts + 1)
        points = sweep_points(base, n)
        g.plans.clear()
        schedule._RUN, in_kernel[0] = timed_kernel, 0.0
        t = time.thread_time()
        simulate_many(g, points, workers=1)  # thread_time sees this thread only: no worker processes
        total = time.thread_time() - t
        schedule._RUN = kernel
        keep("point", total / n)
        keep("kernel", in_kernel[0] / n)
        keep("python", (total - in_kernel[0]) / n)
        # the same points one by one, each step timed (the kernel apart): where the Python goes
        points = sweep_points(base, n)
        g.plans.clear()
        schedule._RUN, in_kernel[0] = timed_kernel, 0.0
        steps = [0.0, 0.0, 0.0]
        for hw in points:
            t0 = time.thread_time()
            s = map_graph(g, hw)
            t1 = time.thread_time()
            r = run(s)
            t2 = time.thread_time()
            build_report(s, r)
            t3 = time.thread_time()
            steps[0] += t1 - t0
            steps[1] += t2 - t1
            steps[2] += t3 - t2
        schedule._RUN = kernel
        keep("step map", steps[0] / n)
        keep("step run", (steps[1] - in_kernel[0]) / n)
        keep("step report", steps[2] / n)
        points = sweep_points(base, n)
        g.plans.clear()
        t = time.thread_time()
        schedules = [map_graph(g, hw) for hw in points]
        keep("map", (time.thread_time() - t) / n)
        runs = [run(s) for s in schedules]
        t = time.thread_time()
        for s, r in zip(schedules, runs, strict=True):
            build_report(s, r)
        keep("report", (time.thread_time() - t) / n)
        r = simulate(g, base)
        t = time.thread_time()
        _ = r.layer_table
        keep("layers", time.thread_time() - t)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    us = {k: v * 1e6 for k, v in best.items()}
    print(
        f"{Path(accelsim.__file__).parent}: load {load:.1f}  per point {us['point']:.0f} us = kernel "
        f"{us['kernel']:.0f} + Python {us['python']:.0f} ({1 / best['point']:,.0f} points/s)  in turn: "
        f"map_graph {us['step map']:.0f}, run less kernel {us['step run']:.0f}, build_report "
        f"{us['step report']:.0f} us  alone: "
        f"map_graph {us['map']:.0f} us, build_report {us['report']:.0f} us  layer table "
        f"{us['layers'] / 1e3:.2f} ms ({g.n_ops} ops)"
    )


if __name__ == "__main__":
    main()
