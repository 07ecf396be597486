"""What the garbage collector costs a DeiT-Small sweep, printed as measured figures from one run.

    python3 benchmarks/bench_sweep_gc.py [--graph-dir DIR] [--points 1000] [--rounds 2]

Each round sweeps fresh hardware points (new config objects: every per-config memo is cold, as in
a search) and then the same points again (warm), once with the collector on and once off, in
turns and in alternating order, so that a change in the machine's load or the round's position
hits both alike. Per point it prints the CPU time (``process_time``), the collections by
generation and the time spent inside them (``gc.callbacks``), and the objects the collector tracks that
each point leaves alive (its report's and, cold, its config's memos).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sim import _graph, sweep_points

from accelsim.config.hardware import HardwareConfig
from accelsim.sim import compile_graph, simulate_many


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph-dir", type=Path, default=None)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    hw = HardwareConfig.load("zcu102")
    small = compile_graph(_graph(args.graph_dir, "deit_small", "small"))
    simulate_many(small, sweep_points(hw, 5))
    counts: dict[int, int] = {}
    spent = [0.0, 0.0]  # time inside collections, start of the current one

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            spent[1] = time.perf_counter()
        else:
            counts[info["generation"]] = counts.get(info["generation"], 0) + 1
            spent[0] += time.perf_counter() - spent[1]

    gc.callbacks.append(on_gc)
    results: dict[tuple[str, bool], list[float]] = {}
    for r in range(args.rounds):
        for enabled in (True, False) if r % 2 == 0 else (False, True):
            points = sweep_points(hw, args.points)
            small.plans.clear()
            for phase in ("cold", "warm"):
                gc.collect()
                n_before = len(gc.get_objects())
                counts.clear()
                spent[0] = 0.0
                (gc.enable if enabled else gc.disable)()
                t = time.process_time()
                reports = simulate_many(small, points, workers=1)  # this process's collector
                dt = (time.process_time() - t) / len(points)
                n_gc, gc_s = dict(sorted(counts.items())), spent[0]
                gc.enable()
                gc.collect()
                left = (len(gc.get_objects()) - n_before) / len(points)
                results.setdefault((phase, enabled), []).append(dt)
                print(
                    f"round {r} {phase} gc {'on ' if enabled else 'off'}: {dt * 1e6:6.0f} us/point CPU; "
                    f"collections {n_gc} taking {gc_s / len(points) * 1e6:.1f} us/point"
                    # a later cold round evicts the previous points' memo entries: its count is net of them
                    + (f"; {left:.1f} tracked objects left per point" if r == 0 or phase == "warm" else "")
                )
                del reports
    for phase in ("cold", "warm"):
        on, off = min(results[phase, True]), min(results[phase, False])
        print(
            f"{phase}: best gc on {on * 1e6:.0f} us/point, off {off * 1e6:.0f} us/point (on/off {on / off:.2f})"
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
