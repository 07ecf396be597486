"""The schedule kernel alone: CPU time of ``run_schedule`` per hardware point, and its events.

    python3 benchmarks/bench_schedule_kernel.py [--graph-dir DIR] [--points 1000] [--rounds 5]

The programs (one :class:`~accelsim.sim._schedule_kernel.TileProgram` per point of
``bench_sim.sweep_points`` on DeiT-Small, and DeiT-Base on the default ZCU102 design) are built
first; then only the kernel is timed, best of ``--rounds``, in CPU time of this thread
(``time.thread_time``), so other jobs on a shared machine disturb it less than wall time. To
compare two versions of the kernel, run this script from each checkout in turns: numba
dispatches a second module's ``TileProgram`` class slowly, so two kernels in one process do not
time fairly.

The block jump (the kernel skipping repeated transformer blocks) is timed on and off in the same
run, rounds in turns: off is the same kernel given no period (``(0, 0, 0)``). Also printed: the
share of points whose run jumped and the blocks skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from bench_sim import _graph, sweep_points

from accelsim.config.hardware import HardwareConfig
from accelsim.sim import compile_graph, map_graph
from accelsim.sim._schedule_kernel import run_schedule

_NO_JUMP = np.zeros(3, np.int64)


def _time(calls: list[tuple], rounds: int) -> float:  # type: ignore[type-arg]
    """Best CPU seconds per call over ``rounds`` passes over ``calls``."""
    best = float("inf")
    for _ in range(rounds):
        t = time.thread_time()
        for prog, dram, overlap in calls:
            run_schedule(prog, dram, overlap, False)
        best = min(best, (time.thread_time() - t) / len(calls))
    return best


def _skipped(prog: tuple, dram: tuple, overlap: bool) -> int:  # type: ignore[type-arg]
    """Blocks the kernel skipped on this program (the period's fourth entry receives it)."""
    period = np.zeros(4, np.int64)
    period[:3] = prog[-1]
    run_schedule((*prog[:-1], period), dram, overlap, False)
    return int(period[3])


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
        skipped = np.array([_skipped(*c) for c in calls])
        calls = calls * max(1, 1000 // len(calls))
        off = [((*p[:-1], _NO_JUMP), d, o) for p, d, o in calls]
        _time(calls[:5], 1)  # compile or load the cached kernel
        on_s = off_s = float("inf")
        for _ in range(args.rounds):  # in turns, so that a change of load hits both
            on_s = min(on_s, _time(calls, 1))
            off_s = min(off_s, _time(off, 1))
        tiles = sum(s.n_tiles for s in schedules) / len(schedules)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        period = schedules[0].program().period
        print(f"{ga.name}: {len(schedules)} hardware point(s), {tiles:,.0f} tiles per point, period "
              f"(s0, P, B) = {tuple(int(v) for v in period)}: run_schedule {on_s * 1e6:.1f} us per point "
              f"with the block jump, {off_s * 1e6:.1f} us without ({off_s / on_s:.2f}x; "
              f"{off_s / tiles * 1e9:.1f} ns per tile without); jumped on {np.mean(skipped > 0):.1%} of "
              f"points, {skipped.mean():.2f} blocks skipped on average; CPU time; load {load:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
