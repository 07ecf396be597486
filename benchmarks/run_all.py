"""Run every accelsim benchmark in turn with defaults that finish in about five minutes on 2 cores.

Usage (from the repository root; ``make bench`` runs the first line)::

    python3 benchmarks/run_all.py
    python3 benchmarks/run_all.py --only sim scalesim      # a subset, by step name (see --list)
    python3 benchmarks/run_all.py --zigzag                 # also re-run ZigZag (about 9 minutes)
    python3 benchmarks/run_all.py --peers                  # also bench_peers.py (about 5 minutes)

Steps, each a fresh interpreter so no step warms another's caches:

1. ``lower``: ``accelsim lower`` DeiT-Base and DeiT-Small once into ``--graph-dir`` (reused when
   already there) so ``bench_sim`` times the real lowered graphs, not the synthetic ones.
2. ``sim``: ``bench_sim.py`` (DeiT-Base warm ms/simulate, 1,000 hardware points on DeiT-Small,
   cold start of ``accelsim simulate graph.json`` next to ``python -c pass``).
3. ``scalesim``: ``bench_vs_scalesim.py`` on the DeiT-Tiny GEMM list, re-running SCALE-Sim on one
   config in this run when its venv exists (``benchmarks/scalesim/setup.sh``), else against the
   recorded times.
4. ``search``: ``bench_search.py`` (inner-loop points/s, trials/min end to end), then the wall time
   of ``accelsim search --space workloads/search_small.yaml --trials 6``.
5. ``bittrue``: ``bench_bittrue.py`` (images/s of ref_deit and ref_efficientvit, W8A8).
6. ``zigzag`` (only with ``--zigzag``): ``benchmarks/zigzag/run_zigzag.py`` in its own venv.
7. ``peers`` (only with ``--peers``): ``bench_peers.py``, accelsim against SCALE-Sim, ZigZag and the
   Verilator RTL in one run (needs both venvs and Verilator; its first run builds the RTL).

Every step prints the machine's load average before and after: on a shared machine every figure
slows down, so a figure means little without it. A failing step is reported and the next one still
runs; the exit status is non-zero if any step failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SCALESIM_PY = BENCH / ".venv-scalesim" / "bin" / "python"
ZIGZAG_PY = BENCH / ".venv-zigzag" / "bin" / "python"
# sa32x32_is is the quickest SCALE-Sim config on the DeiT-Tiny GEMMs (about 30 s here), so one
# config can be re-measured inside the five-minute budget.
REMEASURE_CONFIG = "sa32x32_is"
LOWERED = {"deit_base": "deit_base_patch16_224", "deit_small": "deit_small_patch16_224"}


@dataclass
class Step:
    """One benchmark step: a list of commands run in order from the repository root."""

    name: str
    commands: list[list[str]] = field(default_factory=list)
    note: str = ""


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (5-min {five:.2f}) on {os.cpu_count()} cores"


def _accelsim(*args: str) -> list[str]:
    # ``python -m accelsim.cli`` rather than the console script: works without the script on PATH.
    return [sys.executable, "-m", "accelsim.cli", *args]


def build_steps(graph_dir: Path, search_out: Path, zigzag: bool, peers: bool = False) -> list[Step]:
    """The benchmark steps in run order, with the arguments this script uses."""
    lower = Step("lower", note=f"real lowered graphs into {graph_dir}")
    for stem, model in LOWERED.items():
        if not (graph_dir / f"{stem}.json").exists():
            lower.commands.append(_accelsim("lower", model, "-o", str(graph_dir / f"{stem}.json")))
    if not lower.commands:
        lower.note = f"reusing the graphs already in {graph_dir}"

    scalesim = [sys.executable, str(BENCH / "bench_vs_scalesim.py"), "--topology", "deit_tiny_gemm.csv"]
    if SCALESIM_PY.exists():
        scalesim_note = f"SCALE-Sim re-measured now on {REMEASURE_CONFIG}"
        scalesim += ["--remeasure", REMEASURE_CONFIG]
    else:
        scalesim_note = f"{SCALESIM_PY} missing (benchmarks/scalesim/setup.sh): recorded SCALE-Sim times"

    steps = [
        lower,
        Step("sim", [[sys.executable, str(BENCH / "bench_sim.py"), "--graph-dir", str(graph_dir)]]),
        Step("scalesim", [scalesim], scalesim_note),
        Step(
            "search",
            [
                [sys.executable, str(BENCH / "bench_search.py")],
                _accelsim(
                    "search",
                    "--space",
                    "workloads/search_small.yaml",
                    "--trials",
                    "6",
                    "--out",
                    str(search_out),
                ),
            ],
        ),
        Step("bittrue", [[sys.executable, str(BENCH / "bench_bittrue.py")]]),
    ]
    if zigzag:
        if ZIGZAG_PY.exists():
            steps.append(Step("zigzag", [[str(ZIGZAG_PY), str(BENCH / "zigzag" / "run_zigzag.py")]]))
        else:
            steps.append(Step("zigzag", note=f"{ZIGZAG_PY} missing: see benchmarks/zigzag/README.md"))
    if peers:
        steps.append(Step("peers", [[sys.executable, str(BENCH / "bench_peers.py")]]))
    return steps


def run_step(step: Step) -> bool:
    """Run one step's commands, streaming their output; True when every command exited 0."""
    print(f"\n=== {step.name}" + (f": {step.note}" if step.note else ""), flush=True)
    ok = True
    for cmd in step.commands:
        shown = " ".join(str(Path(c).relative_to(ROOT)) if c.startswith(str(ROOT)) else c for c in cmd)
        print(f"$ {shown}\n  [{_load()}]", flush=True)
        t0 = time.perf_counter()
        # Output goes straight to our stdout so a long step shows progress as it runs.
        rc = subprocess.run(cmd, cwd=ROOT).returncode
        dt = time.perf_counter() - t0
        print(f"  [exit {rc}, {dt:.1f} s wall; {_load()}]", flush=True)
        ok = ok and rc == 0
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", metavar="STEP", help="run only these steps (lower always runs)")
    ap.add_argument("--list", action="store_true", help="list the steps and their commands, run nothing")
    ap.add_argument("--zigzag", action="store_true", help="also re-run ZigZag (minutes; needs its venv)")
    ap.add_argument(
        "--peers", action="store_true", help="also run bench_peers.py (minutes; venvs, Verilator)"
    )
    ap.add_argument(
        "--graph-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "accelsim-bench-graphs",
        help="where the lowered DeiT graphs are kept between runs",
    )
    args = ap.parse_args(argv)

    args.graph_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        steps = build_steps(args.graph_dir, Path(tmp) / "search_small", args.zigzag, args.peers)
        names = [s.name for s in steps]
        if args.only:
            unknown = sorted(set(args.only) - set(names))
            if unknown:
                print(f"error: --only {' '.join(unknown)}: unknown step; allowed: {', '.join(names)}")
                return 2
            # bench_sim needs the lowered graphs, so lowering is kept whatever was asked.
            steps = [s for s in steps if s.name in args.only or s.name == "lower"]
        if args.list:
            for s in steps:
                print(f"{s.name}: {s.note}" if s.note else s.name)
                for cmd in s.commands:
                    print("   ", " ".join(cmd))
            return 0

        print(f"accelsim benchmarks, {sys.executable}, {_load()}")
        t0 = time.perf_counter()
        failed = [s.name for s in steps if not run_step(s)]
        print(f"\nall steps in {time.perf_counter() - t0:.0f} s; {_load()}")
    if failed:
        print(f"FAILED steps: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
