"""The fast systolic timing model against the RTL of the same array: identical cycles, and the speed.

Usage (from the repository root; needs Verilator, g++, make and cocotb, see tests/sim/rtl/)::

    python3 benchmarks/bench_rtl.py                      # 8x8 arrays, the GEMM list below
    python3 benchmarks/bench_rtl.py --rows 4 --cols 4

Every GEMM runs through the Verilog arrays of ``accelsim/sim/reference/rtl/`` (Verilator, through
cocotb, one simulator run for the whole list) and through the fast model
(``gemm_timing(..., "pipelined")``) and the PE-level model (``pe_gemm``) in this process. The
script checks that the three cycle counts are identical and the RTL's product is numpy's, then
prints each GEMM's cycles and wall times: the RTL's from ``start`` to ``done`` inside the
simulation (the testbench's operand writes and result reads are not counted), the models' as the
best of several timed repeats after a warm-up call. The first run builds the arrays (about two
minutes on two cores, cached in ``--build-dir`` afterwards). Exit status 1 if anything disagrees.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from accelsim.sim.engines.systolic import gemm_timing
from accelsim.sim.reference.pe import pe_gemm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sim" / "rtl"))
import rtl_harness as rtl  # noqa: E402  (the RTL harness lives with its tests)

# (M, K, N, dataflow): transformer-like layers cut to the RTL memories' 64, one GEMV, and the
# shapes where the pipelined array waits on its loads (T < R) or its drain ports (os, K < R)
GEMMS = [
    (64, 64, 64, "ws"),
    (64, 64, 64, "is"),
    (64, 64, 64, "os"),
    (1, 64, 64, "ws"),
    (49, 48, 64, "ws"),
    (49, 48, 64, "os"),
    (16, 64, 32, "is"),
    (64, 4, 64, "os"),
    (3, 40, 24, "ws"),
]
MAX_DIM = 64


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (5-min {five:.2f}) on {os.cpu_count()} cores"


def _best_seconds(
    fn: Callable[[], object], repeat: int = 5, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Best per-call time of ``fn()`` over ``repeat`` timings of enough calls for ~20 ms each, by
    ``clock`` (wall; ``time.thread_time`` for this thread's CPU time, which other jobs inflate less)."""
    timer = timeit.Timer(fn, timer=clock)
    number, _ = timer.autorange()
    number = max(1, number // 10)
    return min(timer.repeat(repeat=repeat, number=number)) / number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--cols", type=int, default=8)
    parser.add_argument("--build-dir", type=Path, default=ROOT / "benchmarks" / "out" / "rtl-build")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if (missing := rtl.missing_tools()) is not None:
        print(missing, file=sys.stderr)
        return 2
    R, C = args.rows, args.cols
    print(f"before: {_load()}")
    t0 = time.perf_counter()
    specs = [rtl.ArraySpec("ws", R, C), rtl.ArraySpec("os", R, C)]
    with contextlib.redirect_stdout(io.StringIO()):  # cocotb's runner prints every command it runs
        build = rtl.build(specs, args.build_dir, max_dim=MAX_DIM, optimize=True)
    print(f"RTL build ({build.directory.name}, -Os): {time.perf_counter() - t0:.1f} s")

    rng = np.random.default_rng(args.seed)
    cases = []
    for M, K, N, df in GEMMS:
        a, b = rng.integers(-128, 128, (M, K)), rng.integers(-128, 128, (K, N))
        cases.append(rtl.GemmCase(a, b, R, C, df))
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        results = rtl.run(build, cases, args.build_dir / "work")
    print(f"RTL simulation of {len(cases)} GEMMs (one simulator run): {time.perf_counter() - t0:.1f} s wall")

    head = (
        f"{'GEMM (MxKxN)':>14} {'df':>3} {'RTL cyc':>8} {'model cyc':>9} {'PE cyc':>7} "
        f"{'RTL sim ms':>10} {'PE ms':>7} {'model us':>8} {'RTL/model':>10}"
    )
    print(f"\n{R}x{C} array, pipelined timing, cycles = index of the last MAC cycle\n{head}")
    ok = True
    ratios = []
    for case, res in zip(cases, results, strict=True):
        (M, K), N = case.a.shape, case.b.shape[1]
        model = gemm_timing(M, K, N, R, C, case.dataflow, "pipelined").compute_cycles
        pe_prod, pe_cycles = pe_gemm(case.a, case.b, R, C, case.dataflow)  # also warms the JIT
        model_s = _best_seconds(partial(gemm_timing, M, K, N, R, C, case.dataflow, "pipelined"))
        pe_s = _best_seconds(partial(pe_gemm, case.a, case.b, R, C, case.dataflow), repeat=3)
        same = res.last_mac_cycle == model == pe_cycles and not res.timed_out
        exact = np.array_equal(res.product, case.a @ case.b) and np.array_equal(pe_prod, case.a @ case.b)
        ok = ok and same and exact
        ratio = res.sim_seconds / model_s
        ratios.append(ratio)
        flag = "" if same and exact else "  <-- DISAGREES" + ("" if exact else " (product)")
        print(
            f"{f'{M}x{K}x{N}':>14} {case.dataflow:>3} {res.last_mac_cycle:>8} {model:>9} {pe_cycles:>7} "
            f"{res.sim_seconds * 1e3:>10.2f} {pe_s * 1e3:>7.2f} {model_s * 1e6:>8.2f} {ratio:>9,.0f}x{flag}"
        )
    geo = float(np.exp(np.mean(np.log(ratios))))
    print(f"\ncycles identical and products exact on every GEMM: {ok}")
    print(f"RTL simulation / fast model wall time: geometric mean {geo:,.0f}x")
    print(f"after: {_load()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
