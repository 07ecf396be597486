"""Error table of the fast timing model, per layer and in total, as peers publish theirs.

Usage (from the repository root)::

    python3 benchmarks/bench_error_table.py                       # DeiT-Tiny's GEMMs, 16x16 and 32x64
    python3 benchmarks/bench_error_table.py --arrays 16x16 --dataflows ws os
    python3 benchmarks/bench_error_table.py --arrays 32x64 --unpacked --rtl   # and the RTL, both packings

Every GEMM layer of DeiT-Tiny (224 px, 197 tokens, INT8 with two products per DSP48E2 along N,
WP486: the default design's packing) runs through the fast formula
(``gemm_timing(..., "pipelined")``, what the simulator adds up per op) and the PE-level model
(``pe_gemm``: registers stepped cycle by cycle, the real product checked against numpy) on each
array and dataflow. A batched op (attention's QK^T and AV, 3 heads) is run head by head through
both, as the PE model takes one GEMM (the fast model's batched formula streams the heads back to
back, a few hundred cycles fewer per op than head by head). The table gives each layer's stall-free
compute cycles in both and the relative error; the total weights each layer by how often DeiT-Tiny
runs it (12 blocks). The simulator may run a layer on a sub-array with balanced folds where that
is faster (``mapped_busy_cycles``): its column "sim" is what the simulator charges, checked
against the PE model run on that sub-array plus the rows and columns of skew the operands pass
through (the only term not stepped register by register). ``--unpacked`` adds the same table with one
product per DSP.

``--rtl`` adds the Verilog arrays of ``accelsim/sim/reference/rtl/`` (Verilator through cocotb, the
harness of ``tests/sim/rtl/``): every layer's GEMM (one head of a batched op) runs through the RTL of
the whole array, whose own counter gives its last MAC cycle, and its product is checked against numpy.
The build is the one ``tests/sim/rtl/test_rtl_array.py`` caches for 32x64 (``.pytest_cache``), so
after the tests it costs nothing; another array size builds its own (minutes).

For context, peers' figures: ONNXim, 0.23% mean absolute error against Gemmini's RTL; PyTorchSim,
11.5% against TPUv3 (their papers). Those include memory; this table is the compute timing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np

from accelsim.sim.engines.systolic import (
    DATAFLOW_CODES,
    TIMING_CODES,
    Packing,
    gemm_timing,
    mapped_busy_cycles,
    packed_dims,
    spatio_temporal_dims,
)
from accelsim.sim.reference.pe import pe_gemm

ROOT = Path(__file__).resolve().parents[1]
#: the RTL build cache of tests/sim/rtl/test_rtl_array.py (pytest's cache directory)
RTL_CACHE = ROOT / ".pytest_cache" / "d" / "accelsim-rtl"

#: (name, M, K, N, GEMMs per op, ops per frame) of DeiT-Tiny (embed 192, 3 heads of 64, MLP 768)
DEIT_TINY = [
    ("patch_embed (conv 16x16/16)", 196, 768, 192, 1, 1),
    ("attn.qkv", 197, 192, 576, 1, 12),
    ("attn q@k^T (per head)", 197, 64, 197, 3, 12),
    ("attn p@v (per head)", 197, 197, 64, 3, 12),
    ("attn.proj", 197, 192, 192, 1, 12),
    ("mlp.fc1", 197, 192, 768, 1, 12),
    ("mlp.fc2", 197, 768, 192, 1, 12),
    ("head", 1, 192, 1000, 1, 1),
]


def _rtl_cycles(
    rows: int, cols: int, dataflows: list[str], packings: list[Packing], rng: np.random.Generator
) -> dict[tuple[Packing, str, str], int]:
    """The RTL's last MAC cycle of every layer's GEMM, by (packing, dataflow, layer name); exits with
    status 1 if the RTL's product differs from numpy or it never finishes."""
    sys.path.insert(0, str(ROOT / "tests" / "sim" / "rtl"))
    import rtl_harness as rtl  # the RTL harness lives with its tests

    if (missing := rtl.missing_tools()) is not None:
        raise SystemExit(missing)
    specs = {rtl.array_spec(df, rows, cols, p) for df in dataflows for p in packings}
    max_dim = max(max(m, k, n) for _, m, k, n, _, _ in DEIT_TINY)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # cocotb's runner prints every command it runs
        build = rtl.build(sorted(specs, key=lambda s: s.name), RTL_CACHE, max_dim=max_dim)
    print(f"RTL build ({build.directory.name}): {time.perf_counter() - t0:.1f} s")
    keys, cases = [], []
    for p in packings:
        for df in dataflows:
            for name, m, k, n, _, _ in DEIT_TINY:
                a, b = rng.integers(-128, 128, (m, k)), rng.integers(-128, 128, (k, n))
                keys.append((p, df, name))
                cases.append(rtl.GemmCase(a, b, rows, cols, df, p))
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        results = rtl.run(build, cases, build.directory.parent / "error-table-work")
    print(f"RTL simulation of {len(cases)} GEMMs: {time.perf_counter() - t0:.1f} s")
    for (p, df, name), case, res in zip(keys, cases, results, strict=True):
        if res.timed_out or not np.array_equal(res.product, case.a @ case.b):
            raise SystemExit(f"{name} ({df}, {p}): the RTL's product is wrong or it never finished")
    return {key: res.last_mac_cycle for key, res in zip(keys, results, strict=True)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arrays", nargs="+", default=["16x16", "32x64"])
    ap.add_argument("--dataflows", nargs="+", default=["ws", "os", "is"])
    ap.add_argument("--unpacked", action="store_true", help="also one product per DSP")
    ap.add_argument("--rtl", action="store_true", help="add the RTL column (needs Verilator and cocotb)")
    args = ap.parse_args()
    packings = [Packing(n=2)] + ([Packing()] if args.unpacked else [])
    rng = np.random.default_rng(0)
    worst = 0.0
    for arr in args.arrays:
        rows, cols = (int(x) for x in arr.split("x"))
        rtl_cycles = _rtl_cycles(rows, cols, args.dataflows, packings, rng) if args.rtl else {}
        for pack, df in ((p, d) for p in packings for d in args.dataflows):
            what = "INT8 x2 per DSP (n = 2)" if pack.macs == 2 else "one product per DSP"
            print(f"\n{rows}x{cols} {df}, pipelined, {what}")
            print(
                f"{'layer':30s} {'M':>4s} {'K':>4s} {'N':>5s} {'fast':>9s} {'PE model':>9s} {'error':>8s}"
                f" {'sim':>9s} {'PE sub':>9s} {'error':>8s}  sub-array"
                + (f" {'RTL':>9s} {'error':>8s}" if rtl_cycles else "")
            )
            tot_fast = tot_pe = tot_sim = tot_sub = tot_rtl = 0
            errs = []
            code = DATAFLOW_CODES[df]
            t0 = time.perf_counter()
            for name, m, k, n, per_op, count in DEIT_TINY:
                a = rng.integers(-128, 128, (m, k))
                b = rng.integers(-128, 128, (k, n))
                prod, last = pe_gemm(a, b, rows, cols, df, "pipelined", pack)
                if not np.array_equal(prod, a @ b):
                    print(f"{name}: the PE model's product is wrong")
                    return 1
                fast = gemm_timing(m, k, n, rows, cols, df, "pipelined", pack).compute_cycles
                rtl = rtl_cycles.get((pack, df, name), -1)
                err = (fast - last) / last
                # the simulator's charge and the sub-array it picked (fewest rows/columns for its folds)
                busy, fr, fc = mapped_busy_cycles(
                    m, k, n, 1, rows, cols, code, TIMING_CODES["pipelined"], pack.m, pack.k, pack.n
                )
                sr, sc, _ = spatio_temporal_dims(m, k, n, code)
                p_r, p_c, _ = packed_dims(code, pack.m, pack.k, pack.n)
                r, c = -(-sr // (fr * p_r)), -(-sc // (fc * p_c))
                if busy - 1 == fast:  # the whole array (no sub-array is faster)
                    r, c = rows, cols
                sub = last
                if (r, c) != (rows, cols):
                    sub = pe_gemm(a, b, r, c, df, "pipelined", pack)[1] + (rows - r) + (cols - c)
                sim = busy - 1
                err_sim = (sim - sub) / sub
                errs.append(abs(err))
                worst = max(worst, abs(err), abs(err_sim))
                tot_fast += (fast + 1) * per_op * count
                tot_pe += (last + 1) * per_op * count
                tot_sim += (sim + 1) * per_op * count
                tot_sub += (sub + 1) * per_op * count
                rtl_col = ""
                if rtl_cycles:
                    err_rtl = (fast - rtl) / rtl
                    worst = max(worst, abs(err_rtl))
                    tot_rtl += (rtl + 1) * per_op * count
                    rtl_col = f" {rtl:9d} {100 * err_rtl:7.3f}%"
                print(
                    f"{name:30s} {m:4d} {k:4d} {n:5d} {fast:9d} {last:9d} {100 * err:7.3f}%"
                    f" {sim:9d} {sub:9d} {100 * err_sim:7.3f}%  {r}x{c}{rtl_col}"
                )
            rtl_tot = f" RTL {tot_rtl:d} {100 * (tot_fast - tot_rtl) / tot_rtl:7.3f}%" if rtl_cycles else ""
            print(
                f"{'total (busy cycles, x count)':30s} {'':16s} {tot_fast:9d} {tot_pe:9d} "
                f"{100 * (tot_fast - tot_pe) / tot_pe:7.3f}% {tot_sim:9d} {tot_sub:9d} "
                f"{100 * (tot_sim - tot_sub) / tot_sub:7.3f}%{rtl_tot}   mean |error| per layer "
                f"{100 * float(np.mean(errs)):.3f}%   (PE model {time.perf_counter() - t0:.1f} s)"
            )
    print(f"\nlargest per-layer |error|: {100 * worst:.3f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
