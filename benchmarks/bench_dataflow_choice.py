"""Cost of the per-op dataflow choice of a reconfigurable array, as measured figures from one run.

    python3 benchmarks/bench_dataflow_choice.py [--graph-dir DIR] [--points 60] [--base WORKTREE] [--repeat 2]

N hardware points around the ZCU102 design (rows, cols, buffers, bandwidth) on DeiT-Small, each with
one dataflow (``ws``), two (``[ws, os]``) and three (``[ws, os, is]``): CPU ms per ``simulate`` (the
second pass over the points, so the array's per-shape timing is cached as in a sweep) and the schedule
runs the mapper makes per point. ``--base`` runs this same script on another checkout (e.g.
``git worktree add /tmp/base <commit>``) in a fresh interpreter, alternating with this one, and
prints both (the best of ``--repeat`` rounds) and their ratio: before/after under the same load. The
sum of cycles is printed for each (equal with one dataflow; a checkout's choice among several may differ).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DATAFLOWS = (["ws"], ["ws", "os"], ["ws", "os", "is"])


def measure(graph_dir: Path | None, n: int) -> dict[str, dict[str, float]]:
    """Per dataflow list: CPU ms per point, schedule runs per point, the sum of total cycles."""
    import accelsim.sim.mapping as mapping
    from accelsim.config.hardware import HardwareConfig
    from accelsim.ir import Graph
    from accelsim.ir.builders import vit_graph
    from accelsim.sim import compile_graph, simulate

    path = graph_dir / "deit_small.json" if graph_dir is not None else None
    ga = compile_graph(Graph.load(path) if path is not None and path.exists() else vit_graph("small"))
    base = HardwareConfig.load("zcu102")
    runs = [0]
    real_run = mapping.run

    def counted(schedule, *args, **kwargs):  # type: ignore[no-untyped-def]
        runs[0] += 1
        return real_run(schedule, *args, **kwargs)

    mapping.run = counted  # the mapper's own runs (simulate's final run is not counted)
    out = {}
    for dfs in DATAFLOWS:
        points = []
        for j in range(n):
            points.append(
                base.with_changes(
                    **{
                        "array.rows": (8, 16, 24, 32, 48)[j % 5],
                        "array.cols": (16, 32, 48, 64)[j // 5 % 4],
                        "array.dataflow": dfs,
                        "buffers.weight_kib": (64, 128, 256)[j % 3],
                        "buffers.input_kib": (64, 256)[j // 3 % 2],
                        "dram.bandwidth_gbs": (2.4, 4.8, 9.6, 19.2)[j // 7 % 4],
                    }
                )
            )
        for p in points:  # warm: numba, the per-shape timing of each array
            simulate(ga, p)
        if hasattr(ga, "plans"):  # but map every point afresh (a checkout that remembers plans)
            ga.plans.clear()
        runs[0] = 0
        t = time.process_time()
        total = sum(simulate(ga, p).total_cycles for p in points)
        dt = time.process_time() - t
        out["+".join(dfs)] = {"ms": dt / n * 1e3, "runs": runs[0] / n, "cycles": total}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph-dir", type=Path, default=None)
    ap.add_argument("--points", type=int, default=60)
    ap.add_argument("--base", type=Path, default=None, help="another checkout to measure in the same run")
    ap.add_argument("--repeat", type=int, default=2, help="alternating rounds; the best of them is printed")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.json:
        print(json.dumps(measure(args.graph_dir, args.points)))
        return
    here = Path(__file__).resolve().parent.parent
    trees = {"this": here} if args.base is None else {"base": args.base.resolve(), "this": here}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--json", "--points", str(args.points)]
    if args.graph_dir is not None:
        cmd += ["--graph-dir", str(args.graph_dir)]
    res: dict[str, list[dict[str, dict[str, float]]]] = {k: [] for k in trees}
    for _ in range(args.repeat):  # alternate, so both see the same load
        for name, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": str(tree)}
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=tree)
            res[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; {args.points} points on DeiT-Small")
    for dfs in res["this"][0]:
        line = []
        for name in trees:
            ms = min(r[dfs]["ms"] for r in res[name])
            first = res[name][0][dfs]
            line.append(f"{name} {ms:.2f} ms/point, {first['runs']:.2f} runs, cycles {first['cycles']:,}")
        if args.base is not None:
            ratio = min(r[dfs]["ms"] for r in res["base"]) / min(r[dfs]["ms"] for r in res["this"])
            line.append(f"speed-up {ratio:.2f}x")
        print(f"{dfs:>9}: " + "; ".join(line))


if __name__ == "__main__":
    main()
