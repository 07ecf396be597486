"""Run ZigZag (zigzag-dse) on the DeiT-Tiny GEMMs, on a 32x32 array per SCALE-Sim dataflow.

Runs under its own venv (``benchmarks/.venv-zigzag``, see ``README.md``) and imports nothing from
accelsim::

    benchmarks/.venv-zigzag/bin/python benchmarks/zigzag/run_zigzag.py
    benchmarks/.venv-zigzag/bin/python benchmarks/zigzag/run_zigzag.py --dataflows is --layers proj --out x.json

Writes ``benchmarks/zigzag/results.json`` (or ``--out``): per dataflow and layer, ZigZag's latency terms and, for
comparison, SCALE-Sim's compute cycles for the same layer from ``tests/data/scalesim/reference.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from zigzag.api import get_hardware_performance_zigzag

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _scalesim_cycles() -> dict[tuple[str, str], int]:
    ref = json.loads((ROOT / "tests/data/scalesim/reference.json").read_text())
    return {
        (run["config"][:-4].split("_")[1], layer["name"]): layer["compute_cycles"]
        for run in ref["runs"]
        if run["config"].startswith("sa32x32_")
        for layer in run["layers"]
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataflows", nargs="*", choices=("os", "ws", "is"), default=["os", "ws", "is"])
    ap.add_argument("--layers", nargs="*", help="layer names of deit_tiny_gemm.yaml (default: all)")
    ap.add_argument("--out", type=Path, default=HERE / "results.json")
    args = ap.parse_args(argv)
    layers: list[dict[str, Any]] = yaml.safe_load((HERE / "deit_tiny_gemm.yaml").read_text())
    if args.layers:
        layers = [x for x in layers if x["name"] in set(args.layers)]
    scalesim = _scalesim_cycles()
    out: dict[str, Any] = {
        "zigzag_version": importlib.metadata.version("zigzag-dse"),
        "command": "benchmarks/.venv-zigzag/bin/python benchmarks/zigzag/run_zigzag.py",
        "accelerator": "benchmarks/zigzag/sa32x32.yaml",
        "results": [],
    }
    logging.disable(logging.CRITICAL)  # zigzag's api calls logging.basicConfig(INFO)
    for df in args.dataflows:
        for layer in layers:
            with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
                t0, cpu0 = time.perf_counter(), time.process_time()
                _, latency, cmes = get_hardware_performance_zigzag(
                    workload=[{**layer, "id": 0}],
                    accelerator=str(HERE / "sa32x32.yaml"),
                    mapping=str(HERE / f"mapping_{df}.yaml"),
                    opt="latency",
                    dump_folder=tmp,
                    loma_show_progress_bar=False,
                )
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            cme = cmes[0][1][0][0]
            row = {
                "dataflow": df,
                "name": layer["name"],
                "M_K_N": layer["loop_sizes"],
                "latency_total2": float(latency),
                "ideal_cycle": float(cme.ideal_cycle),
                "ideal_temporal_cycle": float(cme.ideal_temporal_cycle),
                "stall_slack": float(cme.stall_slack_comb),
                "onloading": float(cme.data_onloading_cycle),
                "offloading": float(cme.data_offloading_cycle),
                "systolic_drain": float(cme.systolic_drain_cycle),
                "mac_spatial_utilization": float(cme.mac_spatial_utilization),
                "scalesim_compute_cycles": scalesim.get((df, layer["name"])),
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),  # unlike wall_s, not inflated by other jobs
            }
            out["results"].append(row)
            print(
                f"{df} {layer['name']:12s} zigzag {row['latency_total2']:10.0f} "
                f"(temporal {row['ideal_temporal_cycle']:8.0f}) scalesim {row['scalesim_compute_cycles']}  {wall:.1f}s",
                flush=True,
            )
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
