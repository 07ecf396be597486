"""Speed of the co-design search: hardware points per second in the inner loop, trials per minute end to end.

Usage (from the repository root)::

    python3 benchmarks/bench_search.py                   # inner loop + synthetic end-to-end search
    python3 benchmarks/bench_search.py --parts           # + the search path's parts timed apart
    python3 benchmarks/bench_search.py --space workloads/search_small.yaml --trials 6   # + a real space

Inner loop: one compression point's Graph (the DeiT-Small op sequence of ``accelsim.ir.builders``)
simulated on hardware points sampled from a ZCU102 space (array shape, dataflow, buffers, clock,
vector lanes, DRAM bandwidth), through the search's own path (knobs applied to the base config,
validated, simulated, each report made the search's result; all timed) and through a bare
``simulate_many`` on pre-built configs, each validated alone and then the search path's own (whose
points share their sections); the ratios are the search's overhead. All on one core
(``ACCELSIM_WORKERS=1``). End to end: a search with the analytic compression model and the real
simulator (no torch), then optionally a real space (compress + accuracy + lower + simulate).
All figures come from this run on this machine.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from accelsim._gc import collector_paused
from accelsim.config.hardware import HardwareConfig
from accelsim.config.search import SearchSpace
from accelsim.ir import Graph
from accelsim.ir.builders import vit_graph
from accelsim.search import search
from accelsim.search.objective import (
    _report_result,
    accelsim_base_hardware,
    accelsim_simulate,
    validate_points,
)
from accelsim.search.space import apply_knobs_many, sample_hardware
from accelsim.sim import compile_graph, simulate_many
from accelsim.testing import SyntheticEvaluator

HW_KNOBS = {
    "array.rows": [8, 16, 24, 32, 48, 64],
    "array.cols": [8, 16, 32, 48, 64],
    "array.dataflow": ["ws", "os", "is"],
    "buffers.input_kib": [64, 128, 256, 512],
    "buffers.weight_kib": [64, 128, 256, 512],
    "clock_mhz": {"low": 150.0, "high": 300.0, "step": 25.0},
    "units.vector.lanes": [16, 32, 64],
    "dram.bandwidth_gbs": [9.6, 19.2],
}


def _sweep(n_points: int) -> tuple[Graph, dict[str, Any], list[dict[str, Any]]]:
    """The inner loop's graph, the base config the search applies knobs to, and its points; warm."""
    space = SearchSpace.model_validate(
        {
            "workload": "synthetic",
            "hardware": {"base": "zcu102", "knobs": HW_KNOBS},
            "hw_points_per_trial": n_points,
        }
    )
    graph = vit_graph("small")
    base = accelsim_base_hardware("zcu102")
    points = sample_hardware(space, np.random.default_rng(0))
    accelsim_simulate(graph, apply_knobs_many(base, points[:2]))  # numba cache load, graph flattening
    return graph, base, points


def bench_inner(n_points: int) -> None:
    graph, base, points = _sweep(n_points)
    configs = apply_knobs_many(base, points)
    ga = compile_graph(graph)

    def fresh() -> None:
        # each timing maps afresh: the mappings one path remembers would flatter the other; and
        # starts with no garbage left by the other (the search path pauses the collector)
        if hasattr(ga, "plans"):
            ga.plans.clear()
        gc.collect()

    # CPU time (this process), best of 7, the paths in turns: the machine is shared
    t_search = t_bare = t_shared = float("inf")
    for _ in range(7):
        fresh()
        t0 = time.process_time()
        results = accelsim_simulate(graph, apply_knobs_many(base, points))  # as the search does
        t_search = min(t_search, time.process_time() - t0)
        # new config objects each time, as the search path validates: the answers remembered per
        # config object (its sections' numbers, its design's) would flatter a repeat on the same ones
        hws = [HardwareConfig.model_validate(c) for c in configs]
        fresh()
        t0 = time.process_time()
        simulate_many(ga, hws)  # inline (ACCELSIM_WORKERS=1), the collector paused as in the search
        t_bare = min(t_bare, time.process_time() - t0)
        # the configs the search path simulates: its points share the section objects of equal
        # values, which are numbered once (a sweep made by ``model_copy`` of one config shares them too)
        shared = [hw for _, hw in validate_points(apply_knobs_many(base, points))]
        fresh()
        t0 = time.process_time()
        simulate_many(ga, shared)
        t_shared = min(t_shared, time.process_time() - t0)

    fits = sum(r.fits for r in results)
    print(
        f"inner loop: DeiT-Small graph ({graph.total_macs / 1e9:.2f} GMACs), {len(configs)} ZCU102 hardware points "
        f"(CPU time, best of 7; load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"  search path (apply knobs + validate + simulate + record): {len(configs) / t_search:,.0f} points/s"
    )
    print(
        f"  bare simulate on pre-built configs, each validated alone: {len(configs) / t_bare:,.0f} points/s"
    )
    print(
        f"  bare simulate on the search path's validated configs:     {len(configs) / t_shared:,.0f} points/s"
    )
    print(
        f"  search-path overhead: {t_search / t_bare:.2f}x the bare simulator on configs validated alone, "
        f"{t_search / t_shared:.2f}x on its own configs (knobs, validation, records alone); "
        f"{fits}/{len(configs)} fit the board"
    )


def bench_parts(n_points: int) -> None:
    """The search path's own work per point, each part timed apart (CPU, best of 7, collector off)."""
    graph, base, points = _sweep(n_points)
    ga = compile_graph(graph)

    def best(fn: Any) -> float:
        t = float("inf")
        for _ in range(7):
            if hasattr(ga, "plans"):
                ga.plans.clear()
            gc.collect()
            with collector_paused():
                t0 = time.process_time()
                fn()
                t = min(t, time.process_time() - t0)
        return t / len(points) * 1e6

    configs = apply_knobs_many(base, points)
    hws = [hw for _, hw in validate_points(configs)]
    reports = simulate_many(ga, hws)
    parts = {
        "knobs (apply_knobs_many)": best(lambda: apply_knobs_many(base, points)),
        "validation (validate_points)": best(lambda: validate_points(configs)),
        "simulation (simulate_many)": best(lambda: simulate_many(ga, hws)),
        "records (_report_result)": best(lambda: [_report_result(r) for r in reports]),
    }
    print(
        f"search path by part, {len(points)} points (CPU us a point; load average {os.getloadavg()[0]:.1f})"
    )
    for name, us in parts.items():
        print(f"  {name:30s} {us:7.1f}")


def bench_end_to_end(trials: int) -> None:
    space = SearchSpace.model_validate(
        {
            "name": "bench",
            "workload": "synthetic",
            "compression": {
                "knobs": {
                    "quant.wbits": [4, 8],
                    "quant.abits": [8, 16],
                    "prune.heads_keep": [0.34, 0.67, 1.0],
                    "prune.mlp_keep": {"low": 0.25, "high": 1.0, "step": 0.25},
                    "tokens.keep_rate": [0.5, 0.7, 1.0],
                }
            },
            "hardware": {"base": "zcu102", "knobs": HW_KNOBS},
            "hw_points_per_trial": 32,
            "population_size": 8,
        }
    )
    ev = SyntheticEvaluator(depth=12, embed_dim=192, heads=3, hardware="zcu102")
    with tempfile.TemporaryDirectory() as tmp:
        search(space, trials=1, out=None, evaluator=ev, progress=False)  # warm
        t0 = time.perf_counter()
        study = search(space, trials=trials, out=Path(tmp), evaluator=ev, progress=False)
        dt = time.perf_counter() - t0
    n_designs = sum(
        len(t.user_attrs["designs"]["hardware"]) for t in study.trials if "designs" in t.user_attrs
    )
    print(
        f"end to end (analytic compression, real simulator, SQLite, outputs): {trials} trials x 32 hw points"
    )
    print(f"  {trials / dt * 60:,.0f} trials/min, {n_designs / dt:,.0f} design points/s ({dt:.1f} s)")


def bench_space(path: str, trials: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        study = search(path, trials=trials, out=Path(tmp), progress=False)
        dt = time.perf_counter() - t0
    n = len(study.trials)
    print(
        f"end to end on {path}: {trials} trials ({n} asked) in {dt:.1f} s = {trials / dt * 60:.1f} trials/min"
    )


def main() -> None:
    # one core for both paths of the inner loop: its ratio is the search path's per-point overhead
    # (simulate_many would otherwise fork a process per core for the search path's 1,000 points)
    os.environ["ACCELSIM_WORKERS"] = "1"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1000, help="hardware points of the inner-loop sweep")
    ap.add_argument("--trials", type=int, default=24, help="trials of the end-to-end searches")
    ap.add_argument("--space", help="also time a real search space YAML")
    ap.add_argument("--parts", action="store_true", help="also time the search path's parts apart")
    args = ap.parse_args()
    bench_inner(args.points)
    if args.parts:
        bench_parts(args.points)
    bench_end_to_end(args.trials)
    if args.space:
        bench_space(args.space, args.trials)


if __name__ == "__main__":
    main()
