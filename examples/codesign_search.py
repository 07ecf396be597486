"""Co-design search on a shipped reference model: compression x hardware on a ZCU102, Pareto front out.

Run from the repository root (10-15 min on 2 cores: each of search_small's nine compression points
is timed on DeiT-Tiny at 224 px, lowered once and cached)::

    python3 examples/codesign_search.py                       # workloads/search_small.yaml, 12 trials
    python3 examples/codesign_search.py --trials 24 --backend ray
    python3 examples/codesign_search.py --space workloads/search_deit_zcu102.yaml --out runs/deit

Kill it at any time and run the same command again: the search resumes from ``OUT/study.db``
without losing or repeating a completed trial, and compression points already evaluated come from
``OUT/cache/``. The same as ``accelsim search --space ... --trials ... --out ...``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from accelsim.config.search import SearchSpace
from accelsim.search import search
from accelsim.search.outputs import best_per_objective, collect_designs, pareto_front

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default=str(ROOT / "workloads" / "search_small.yaml"))
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--out", default="runs/codesign_example")
    ap.add_argument("--backend", choices=["local", "ray"], default="local")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    space = SearchSpace.load(args.space)
    study = search(space, trials=args.trials, out=args.out, backend=args.backend, seed=args.seed)

    # The study is a plain Optuna study: every design point is in its trials' user attributes.
    designs = collect_designs(study)
    front = pareto_front(designs, space.objectives)
    print(f"{len(study.trials)} trials, {len(designs)} design points, {len(front)} on the Pareto front")
    header = f"{'design':<10}" + "".join(f"{o:>14}" for o in space.objectives) + "  compression | hardware"
    print(header)
    for d in front:
        values = "".join(f"{d.metrics[o]:>14.4g}" for o in space.objectives)
        comp = ", ".join(f"{k}={v}" for k, v in d.compression.items())
        hw = ", ".join(f"{k}={v}" for k, v in d.hardware.items())
        print(f"{d.name:<10}{values}  {comp} | {hw}")
    for objective, d in best_per_objective(front, space.objectives).items():
        print(f"best {objective}: {d.name}")
    print(f"results in {args.out}/: pareto.csv, pareto.json, pareto.png, designs.csv, report.md")


if __name__ == "__main__":
    main()
