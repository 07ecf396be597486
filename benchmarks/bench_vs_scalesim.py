"""Speed of accelsim's GEMM timing against SCALE-Sim 3.0.0 on the same layers, at identical cycles.

Usage (from the repository root)::

    python3 benchmarks/bench_vs_scalesim.py                      # vs the recorded SCALE-Sim times
    python3 benchmarks/bench_vs_scalesim.py --remeasure sa32x32_os   # re-run SCALE-Sim now, then compare
    python3 benchmarks/bench_vs_scalesim.py --topology deit_tiny_gemm.csv   # only the DeiT-Tiny GEMM list

The recorded wall times are in ``tests/data/scalesim/reference.json`` (written by
``benchmarks/scalesim/run_reference.py``). ``--remeasure`` runs SCALE-Sim again through its own venv
(``benchmarks/scalesim/setup.sh``) on the named configs, so both sides are timed in one session on
the same machine load. Every layer's compute cycles are checked to be identical before any ratio is
printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.sim.engines.systolic import DATAFLOW_CODES, gemm_timing, gemm_timing_batch
from accelsim.sim.scalesim.io import read_scalesim_config, read_scalesim_topology

ROOT = Path(__file__).resolve().parents[1]
REF_DIR = ROOT / "tests" / "data" / "scalesim" / "reference"
RECORD = ROOT / "tests" / "data" / "scalesim" / "reference.json"
VENV_PY = ROOT / "benchmarks" / ".venv-scalesim" / "bin" / "python"


def _remeasure(configs: list[str]) -> dict[str, Any]:
    if not VENV_PY.exists():
        sys.exit(f"{VENV_PY} missing: run benchmarks/scalesim/setup.sh first")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ref.json"
        cmd = [
            str(VENV_PY),
            str(ROOT / "benchmarks/scalesim/run_reference.py"),
            "--out",
            str(out),
            "--configs",
        ]
        subprocess.run([*cmd, *configs], check=True)
        return json.loads(out.read_text())


def _time_per_call(fn: Any, *args: Any, min_total_s: float = 0.05) -> float:
    fn(*args)  # warm (jit cache load)
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn(*args)
        dt = time.perf_counter() - t0
        if dt >= min_total_s:
            return dt / n
        n *= 4


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--remeasure", nargs="*", metavar="CFG", help="re-run SCALE-Sim on these config stems")
    ap.add_argument("--topology", metavar="CSV", help="compare only this topology, e.g. deit_tiny_gemm.csv")
    args = ap.parse_args(argv)
    record = _remeasure(args.remeasure) if args.remeasure else json.loads(RECORD.read_text())
    if args.topology:
        record["runs"] = [r for r in record["runs"] if r["topology"] == args.topology]
        if not record["runs"]:
            sys.exit(f"no recorded runs for --topology {args.topology!r}")
    source = "re-measured now" if args.remeasure else f"recorded in {RECORD.relative_to(ROOT)}"

    per_cfg: dict[str, list[tuple[float, float]]] = defaultdict(list)
    batch_rows: list[tuple[int, int, int, int, int, int]] = []
    for run in record["runs"]:
        cfg = read_scalesim_config(REF_DIR / run["config"])
        layers = {x.name: x for x in read_scalesim_topology(REF_DIR / run["topology"])}
        ours_s = 0.0
        for ref in run["layers"]:
            dims = layers[ref["name"]].gemm_dims()
            hw = (cfg.array_rows, cfg.array_cols)
            t = gemm_timing(*dims, *hw, cfg.dataflow, "scalesim")
            if t.compute_cycles != ref["compute_cycles"]:
                sys.exit(
                    f"MISMATCH {run['config']} {ref['name']}: {t.compute_cycles} != {ref['compute_cycles']}"
                )
            ours_s += _time_per_call(gemm_timing, *dims, *hw, cfg.dataflow, "scalesim")
            batch_rows.append((*dims, *hw, DATAFLOW_CODES[cfg.dataflow]))
        per_cfg[run["config"]].append((run["wall_s"], ours_s))

    print(
        f"SCALE-Sim {record['scalesim_version']} wall times {source}; accelsim gemm_timing warm, one call per layer"
        + (f"; topology {args.topology} only" if args.topology else "")
    )
    print(f"{'config':16s} {'rows':>6s} {'SCALE-Sim s':>12s} {'accelsim us':>12s} {'speed-up':>12s}")
    tot_ref = tot_ours = 0.0
    n_rows = 0
    for name in sorted(per_cfg):
        ref_s = sum(r for r, _ in per_cfg[name])
        ours_s = sum(o for _, o in per_cfg[name])
        tot_ref, tot_ours, n_rows = tot_ref + ref_s, tot_ours + ours_s, n_rows + len(per_cfg[name])
        print(
            f"{name[:-4]:16s} {len(per_cfg[name]):6d} {ref_s:12.2f} {ours_s * 1e6:12.1f} {ref_s / ours_s:12,.0f}x"
        )
    print(f"{'all':16s} {n_rows:6d} {tot_ref:12.2f} {tot_ours * 1e6:12.1f} {tot_ref / tot_ours:12,.0f}x")

    a = np.array(batch_rows, dtype=np.int64).T
    batch_s = _time_per_call(lambda *x: gemm_timing_batch(*x, timing="scalesim"), *a)
    print(f"gemm_timing_batch over all {a.shape[1]} layers in one call: {batch_s * 1e6:.1f} us "
          f"-> {tot_ref / batch_s:,.0f}x")  # fmt: skip

    try:
        import accelsim

        simulate_scalesim = accelsim.simulate_scalesim
    except (ImportError, AttributeError):
        print("accelsim.simulate_scalesim not available yet: full-simulator comparison skipped")
        return 0
    by_pair: dict[tuple[str, str], float] = defaultdict(float)
    for run in record["runs"]:
        by_pair[(run["config"], run["topology"])] += run["wall_s"]
    ref_s = ours_s = 0.0
    for (cfg_name, topo), wall in sorted(by_pair.items()):
        ref_s += wall
        ours_s += _time_per_call(simulate_scalesim, REF_DIR / cfg_name, REF_DIR / topo)
    print(f"accelsim.simulate_scalesim, {len(by_pair)} (config, topology) runs: SCALE-Sim {ref_s:.2f} s, "
          f"accelsim {ours_s * 1e3:.2f} ms -> {ref_s / ours_s:,.0f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
