"""Run the real SCALE-Sim v3 on the reference configs and topologies; record its numbers.

Runs under the isolated venv made by ``setup.sh`` (SCALE-Sim pins ``numpy<2.3``), never under
accelsim's interpreter, and imports nothing from accelsim::

    benchmarks/.venv-scalesim/bin/python benchmarks/scalesim/run_reference.py

Every (config, layer) pair is simulated on its own (a one-layer topology file) so that the wall
time of each layer is measured separately. Results are appended to the JSON file after every layer,
so a killed run resumes where it stopped (pairs already present are skipped).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.metadata
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from scalesim.scale_sim import scalesim

ROOT = Path(__file__).resolve().parents[2]
REF_DIR = ROOT / "tests" / "data" / "scalesim" / "reference"
# topology file -> SCALE-Sim input type ("gemm" rows are "name, M, N, K,"; "conv" rows are layers)
TOPOLOGIES = {"deit_tiny_gemm.csv": "gemm", "odd_gemm.csv": "gemm", "deit_tiny_conv.csv": "conv"}


def _layer_lines(path: Path) -> tuple[str, list[str]]:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    return lines[0], lines[1:]


def _run_one(cfg: Path, header: str, row: str, gemm: bool) -> tuple[list[dict[str, str]], float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        topo = Path(tmp) / "layer.csv"
        topo.write_text(header + "\n" + row + "\n")
        # SCALE-Sim prints a banner and progress on stdout even with verbose=False; keep ours clean.
        with contextlib.redirect_stdout(io.StringIO()):
            t0, cpu0 = time.perf_counter(), time.process_time()
            sim = scalesim(
                save_disk_space=True,  # no per-cycle trace CSVs: we only want the reports
                verbose=False,
                config=str(cfg),
                topology=str(topo),
                layout=str(topo),  # a layout file must exist; custom layouts are off in our cfgs
                input_type_gemm=gemm,
            )
            sim.run_scale(top_path=tmp)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        report = Path(tmp) / sim.config.get_run_name() / "COMPUTE_REPORT.csv"
        with report.open() as f:
            rows = [
                {k.strip(): v.strip() for k, v in r.items() if k and k.strip()} for r in csv.DictReader(f)
            ]
        names = [str(a[0]) for a in sim.topo.topo_arrays]
    for r, name in zip(rows, names, strict=True):
        r["name"] = name
    return rows, wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REF_DIR.parent / "reference.json")
    ap.add_argument("--configs", nargs="*", help="config stems to run (default: all *.cfg)")
    ap.add_argument("--layers", nargs="*", help="layer names to run (default: every row of every topology)")
    ap.add_argument(
        "--topologies", nargs="*", choices=sorted(TOPOLOGIES), help="topology files to run (default: all)"
    )
    args = ap.parse_args(argv)

    out: dict = {"runs": []}
    if args.out.exists():
        out = json.loads(args.out.read_text())
    out["scalesim_version"] = importlib.metadata.version("scalesim")
    out["numpy_version"] = importlib.metadata.version("numpy")
    out["python"] = platform.python_version()
    out["machine"] = f"{platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()}".strip()
    out["command"] = "benchmarks/.venv-scalesim/bin/python benchmarks/scalesim/run_reference.py"
    done = {(r["config"], r["topology"], r["row"]) for r in out["runs"]}

    cfgs = sorted(REF_DIR.glob("*.cfg"))
    if args.configs:
        cfgs = [c for c in cfgs if c.stem in set(args.configs)]
    for cfg in cfgs:
        for topo_name, kind in TOPOLOGIES.items():
            if args.topologies and topo_name not in args.topologies:
                continue
            header, rows = _layer_lines(REF_DIR / topo_name)
            for row in rows:
                key = (cfg.name, topo_name, row)
                if key in done or (args.layers and row.split(",")[0].strip() not in set(args.layers)):
                    continue
                reports, wall, cpu = _run_one(cfg, header, row, kind == "gemm")
                out["runs"].append(
                    {
                        "config": cfg.name,
                        "topology": topo_name,
                        "row": row,
                        "wall_s": round(wall, 4),
                        "cpu_s": round(cpu, 4),  # unlike wall_s, not inflated by other jobs
                        "layers": [
                            {
                                "name": r["name"],
                                "total_cycles_incl_prefetch": int(r["Total Cycles (incl. prefetch)"]),
                                "compute_cycles": int(r["Total Cycles"]),
                                "stall_cycles": int(r["Stall Cycles"]),
                                "overall_util_pct": float(r["Overall Util %"]),
                                "mapping_efficiency_pct": float(r["Mapping Efficiency %"]),
                                "compute_util_pct": float(r["Compute Util %"]),
                            }
                            for r in reports
                        ],
                    }
                )
                args.out.write_text(json.dumps(out, indent=1) + "\n")
                print(f"{cfg.stem:12s} {topo_name:20s} {row.split(',')[0]:12s} {wall:8.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
