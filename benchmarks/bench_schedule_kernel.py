"""The schedule kernel alone: CPU time of ``run_schedule`` per hardware point, and its events.

    python3 benchmarks/bench_schedule_kernel.py [--graph-dir DIR] [--points 1000] [--rounds 5]

The programs (one :class:`~accelsim.sim._schedule_kernel.TileProgram` per point of
``bench_sim.sweep_points`` on DeiT-Small, and DeiT-Base on the default ZCU102 design) are built
first; then only the kernel is timed, best of ``--rounds``, in CPU time of this thread
(``time.thread_time``), so other jobs on a shared machine disturb it less than wall time. To
compare two versions of the kernel, run this script from each checkout in turns: numba
dispatches a second module's ``TileProgram`` class slowly, so two kernels in one process do not
time fairly.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sim import _graph, sweep_points

from accelsim.config.hardware import HardwareConfig
from accelsim.sim import compile_graph, map_graph
from accelsim.sim._schedule_kernel import run_schedule


def _time(calls: list[tuple], rounds: int) -> float:  # type: ignore[type-arg]
    """Best CPU seconds per call over ``rounds`` passes over ``calls``."""
    best = float("inf")
    for _ in range(rounds):
        t = time.thread_time()
        for prog, dram, overlap in calls:
            run_schedule(prog, dram, overlap, False)
        best = min(best, (time.thread_time() - t) / len(calls))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph-dir", type=Path, default=None)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    hw = HardwareConfig.load("zcu102")
    for name, size, points in (
        ("deit_small", "small", sweep_points(hw, args.points)),
        ("deit_base", "base", [hw]),
    ):
        ga = compile_graph(_graph(args.graph_dir, name, size))
        schedules = [map_graph(ga, p) for p in points]
        calls = [(tuple(s.program()), tuple(s.dram()), bool(s.hardware.overlap)) for s in schedules]
        calls = calls * max(1, 1000 // len(calls))
        _time(calls[:5], 1)  # compile or load the cached kernel
        per_call = _time(calls, args.rounds)
        tiles = sum(s.n_tiles for s in schedules) / len(schedules)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"{ga.name}: {len(schedules)} hardware point(s), {tiles:,.0f} tiles per point: run_schedule "
              f"{per_call * 1e6:.1f} us per point ({per_call / tiles * 1e9:.1f} ns per tile), CPU time; load {load:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
