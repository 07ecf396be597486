"""accelsim's speed against its peers, all measured in one run: SCALE-Sim, ZigZag and the RTL engines.

Usage (from the repository root)::

    nice -n 10 python3 benchmarks/bench_peers.py                  # all four peers, about 5 minutes
    python3 benchmarks/bench_peers.py --skip zigzag rtl           # a subset
    python3 benchmarks/bench_peers.py --skip scalesim zigzag rtl  # the adder-tree RTL alone

Every peer is run now, on the same machine load as accelsim, and the load average is printed next
to each figure (the development machine is shared, so a figure means little without it). Each
peer's time is given twice: wall, and the CPU time of its process over the same span, which other
jobs on the machine do not inflate. accelsim's is the best of several timed repeats after a warm-up
(``bench_rtl._best_seconds``), so the CPU ratio is the one to quote on a loaded machine:

- **SCALE-Sim 3.0.0** (its own venv, ``benchmarks/scalesim/setup.sh``) on the DeiT-Tiny GEMM list
  (``tests/data/scalesim/reference/deit_tiny_gemm.csv``) under one config, one SCALE-Sim run per
  layer. accelsim's compute cycles must equal SCALE-Sim's on every layer before any ratio is
  printed; then SCALE-Sim's wall and CPU time against ``gemm_timing(..., "scalesim")`` per layer and
  the whole ``accelsim.simulate_scalesim`` (files read, design, memory model and report) on the same
  files: its first call in a warm process (after one call on another config) and its best of
  repeats, each in wall and in CPU time.
- **ZigZag** (``zigzag-dse``, its own venv, see ``benchmarks/zigzag/README.md``) on the same
  GEMMs on a 32x32 array. ZigZag is an analytical cost model whose latency is not SCALE-Sim's
  cycle count (per-layer rather than per-fold fill and drain), so these ratios are **not** at equal
  cycles; both cycle counts are printed.
- **The Verilog arrays** of ``accelsim/sim/reference/rtl/`` simulated by Verilator (as
  ``tests/sim/rtl/`` builds them, optimised, one array per build, so no idle array is simulated):
  an 8x8 array, unpacked, on DeiT-Tiny's attention and projection GEMMs (memories of 200), and
  zcu102's 32x64 array with two INT8 products per DSP (``--rtl-arrays`` picks) on DeiT-Tiny's whole
  GEMM list under ws, is and os (memories of 1000). The RTL's own count of its last MAC cycle must
  equal ``gemm_timing(..., "pipelined", packing)`` and its product numpy's; then the RTL simulation's
  time from start to done (wall and CPU) against ``gemm_timing`` per GEMM and one
  ``gemm_timing_batch`` over the list (wall and CPU), i.e. the speed-up at equal cycles. The first
  run builds the RTL (about 30-45 s an array on two cores, cached in ``benchmarks/out/rtl-build``,
  the 32x64 ones in its ``32x64/``).
- **The adder-tree engine's Verilog** (``tree_gemm.v``, as ``tests/sim/rtl/tree_harness.py`` builds
  and runs it, optimised, one engine per build) at real size: the published ``trio_vit`` (16x4x8)
  and ``heatvit`` (2x64x16) engines on every GEMM the simulator runs for DeiT-Tiny on that design
  (attention's over the 3 heads as one batch). The RTL's last accumulation cycle must equal
  ``adder_tree_busy_cycles`` minus one and the compute cycles ``simulate`` charges the layer, and its
  product numpy's; then the RTL's time from start to done (wall and CPU) against the formula per
  GEMM, and against one whole ``simulate`` of DeiT-Tiny on that design (every op, memory and report).

Exit status 1 if any cycle count or product disagrees, 2 if a peer's tools are missing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from accelsim.sim.engines.systolic import (
    DATAFLOW_CODES,
    Packing,
    adder_tree_busy_cycles,
    gemm_timing,
    gemm_timing_batch,
)
from accelsim.sim.reference.rtl import SOURCES
from accelsim.sim.scalesim.io import read_scalesim_config, read_scalesim_topology

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "tests" / "sim" / "rtl"))
import rtl_harness as rtl  # noqa: E402  (the RTL harness lives with its tests)
import tree_harness as tree  # noqa: E402
from bench_rtl import _best_seconds, _load  # noqa: E402  (one timing rule for every benchmark)

REF_DIR = ROOT / "tests" / "data" / "scalesim" / "reference"
TOPOLOGY = "deit_tiny_gemm.csv"
SCALESIM_PY = BENCH / ".venv-scalesim" / "bin" / "python"
ZIGZAG_PY = BENCH / ".venv-zigzag" / "bin" / "python"
# One ZigZag layer costs 10-30 s here (its loop-order search), so by default a few of them.
ZIGZAG_LAYERS = ("attn_qk", "attn_av", "proj", "head")
# DeiT-Tiny's per-head attention GEMMs and the projection (qkv and fc1 are column blocks of the
# same 197x192x192 shape): the largest that the RTL's memories hold at RTL_MAX_DIM.
RTL_GEMMS = [
    (197, 64, 197, "ws"),
    (197, 64, 197, "os"),
    (197, 197, 64, "is"),
    (197, 197, 64, "os"),
    (197, 192, 192, "ws"),
    (197, 192, 192, "is"),
    (197, 192, 192, "os"),
]
RTL_MAX_DIM = 200
# zcu102's array (32x64 DSPs, two INT8 products per DSP48E2 along N, WP486) on DeiT-Tiny's whole GEMM
# list (TOPOLOGY) under each dataflow; memories for the classifier's N = 1000
RTL_REAL = (32, 64)
RTL_REAL_PACKING = Packing(n=2)
RTL_REAL_MAX_DIM = 1000
# the ratio grows with the cycles (the RTL pays per cycle, the model per call): a subtotal for the big ones
BIG_CYCLES = 100_000
#: the published adder-tree designs and the K their engine's memories hold (ceil(768 / tree) words)
TREE_CONFIGS = {"published/trio_vit": 128, "published/heatvit": 64}
TREE_TB = "tree_timed_tb"  # benchmarks/tree_timed_tb.py: the tests' testbench plus each case's wall time


def _geo(xs: list[float]) -> float:
    return float(np.exp(np.mean(np.log(xs))))


def bench_scalesim(config: str) -> bool:
    """SCALE-Sim on the DeiT-Tiny GEMMs under ``config``, re-measured now; False on a cycle mismatch."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ref.json"
        cmd = [str(SCALESIM_PY), str(BENCH / "scalesim" / "run_reference.py"), "--out", str(out)]
        cmd += ["--configs", config, "--topologies", TOPOLOGY]
        print(f"[{_load()}] SCALE-Sim {config} on {TOPOLOGY}, one run per layer ...", flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        record = json.loads(out.read_text())
    cfg = read_scalesim_config(REF_DIR / f"{config}.cfg")
    layers = {x.name: x for x in read_scalesim_topology(REF_DIR / TOPOLOGY)}
    hw = (cfg.array_rows, cfg.array_cols)
    print(f"[{_load()}] accelsim on the same layers")
    print(f"{'layer':10s} {'cycles':>8s} {'SCALE-Sim wall s':>16s} {'CPU s':>7s} {'gemm_timing us':>15s} "
          f"{'speed-up wall':>14s} {'CPU':>11s}")  # fmt: skip
    tot_ref = tot_cpu = tot_ours = 0.0
    for run in record["runs"]:
        for ref in run["layers"]:
            dims = layers[ref["name"]].gemm_dims()
            cycles = gemm_timing(*dims, *hw, cfg.dataflow, "scalesim").compute_cycles
            if cycles != ref["compute_cycles"]:
                print(
                    f"MISMATCH {config} {ref['name']}: accelsim {cycles} != SCALE-Sim {ref['compute_cycles']}"
                )
                return False
            ours = _best_seconds(partial(gemm_timing, *dims, *hw, cfg.dataflow, "scalesim"))
            wall, cpu = run["wall_s"] / len(run["layers"]), run["cpu_s"] / len(run["layers"])
            tot_ref, tot_cpu, tot_ours = tot_ref + wall, tot_cpu + cpu, tot_ours + ours
            print(
                f"{ref['name']:10s} {cycles:8d} {wall:16.2f} {cpu:7.2f} {ours * 1e6:15.1f} "
                f"{wall / ours:13,.0f}x {cpu / ours:10,.0f}x"
            )
    print(
        f"{'all':10s} {'':8s} {tot_ref:16.2f} {tot_cpu:7.2f} {tot_ours * 1e6:15.1f} "
        f"{tot_ref / tot_ours:13,.0f}x {tot_cpu / tot_ours:10,.0f}x"
    )
    import accelsim

    # A warm process (kernels loaded, as any call but the first finds it), then the first call on
    # these files: nothing of them is remembered, the GEMM timings of this array not yet either.
    warm = next(c for c in ("sa8x8_os", "sa16x16_ws") if c != config)
    accelsim.simulate_scalesim(REF_DIR / f"{warm}.cfg", REF_DIR / TOPOLOGY)
    sim = partial(accelsim.simulate_scalesim, REF_DIR / f"{config}.cfg", REF_DIR / TOPOLOGY)
    w0, c0 = time.perf_counter(), time.thread_time()
    sim()
    first_wall, first_cpu = time.perf_counter() - w0, time.thread_time() - c0
    # one first call is one sample under load: the first calls on the other reference configs too
    others = []
    for cfg_path in sorted(REF_DIR.glob("*.cfg")):
        if cfg_path.stem not in (warm, config):
            c0 = time.thread_time()
            accelsim.simulate_scalesim(cfg_path, REF_DIR / TOPOLOGY)
            others.append(time.thread_time() - c0)
    sim_s = _best_seconds(sim, repeat=5)
    sim_cpu = _best_seconds(sim, repeat=5, clock=time.thread_time)
    print(
        f"accelsim.simulate_scalesim (cfg and csv read, design, mapping, memory model, report): first call in "
        f"a warm process (after one on {warm}) {first_wall * 1e3:.2f} ms wall, {first_cpu * 1e3:.2f} ms CPU "
        f"(first calls on the {len(others)} other reference configs: median {np.median(others) * 1e3:.2f}, "
        f"{min(others) * 1e3:.2f}-{max(others) * 1e3:.2f} ms CPU); best of repeats {sim_s * 1e3:.2f} ms wall, "
        f"{sim_cpu * 1e3:.2f} ms CPU [{_load()}]"
    )
    print(
        f"HEADLINE SCALE-Sim {config}, {len(layers)} DeiT-Tiny GEMMs, equal compute cycles: SCALE-Sim "
        f"{tot_ref:.2f} s wall ({tot_cpu:.2f} s CPU) vs accelsim.simulate_scalesim {sim_s * 1e3:.2f} ms wall "
        f"({sim_cpu * 1e3:.2f} ms CPU) -> {tot_ref / sim_s:,.0f}x wall, {tot_cpu / sim_cpu:,.0f}x CPU "
        f"(CPU over accelsim's wall, the earlier runs' ratio: {tot_cpu / sim_s:,.0f}x); first call "
        f"{tot_ref / first_wall:,.0f}x wall, {tot_cpu / first_cpu:,.0f}x CPU; gemm_timing per layer "
        f"{tot_ref / tot_ours:,.0f}x wall, {tot_cpu / tot_ours:,.0f}x CPU over its wall [{_load()}]"
    )
    return True


def bench_zigzag(dataflow: str, layer_names: list[str]) -> None:
    """ZigZag's wall time on the DeiT-Tiny GEMMs on 32x32 against gemm_timing (cycles differ)."""
    yaml_layers = {
        x["name"]: x for x in yaml.safe_load((BENCH / "zigzag" / "deit_tiny_gemm.yaml").read_text())
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "zz.json"
        cmd = [str(ZIGZAG_PY), str(BENCH / "zigzag" / "run_zigzag.py"), "--dataflows", dataflow]
        cmd += ["--layers", *layer_names, "--out", str(out)]
        print(f"[{_load()}] ZigZag {dataflow} on 32x32, layers {' '.join(layer_names)} ...", flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        rows: list[dict[str, Any]] = json.loads(out.read_text())["results"]
        version = json.loads(out.read_text())["zigzag_version"]
    print(f"[{_load()}] accelsim gemm_timing(..., 'scalesim') on the same layers")
    print(
        f"{'layer':10s} {'ZigZag cyc':>10s} {'accelsim cyc':>12s} {'ZigZag wall s':>13s} {'CPU s':>7s} "
        f"{'accelsim us':>12s} {'speed-up wall':>14s} {'CPU':>10s}"
    )
    tot_ref = tot_cpu = tot_ours = 0.0
    for row in rows:
        M, K, N = yaml_layers[row["name"]]["loop_sizes"]
        call = partial(gemm_timing, M, K, N, 32, 32, dataflow, "scalesim")
        cycles, ours = call().compute_cycles, _best_seconds(call)
        tot_ref, tot_cpu, tot_ours = tot_ref + row["wall_s"], tot_cpu + row["cpu_s"], tot_ours + ours
        print(
            f"{row['name']:10s} {row['latency_total2']:10.0f} {cycles:12d} {row['wall_s']:13.2f} "
            f"{row['cpu_s']:7.2f} {ours * 1e6:12.1f} {row['wall_s'] / ours:13,.0f}x {row['cpu_s'] / ours:9,.0f}x"
        )
    print(
        f"HEADLINE ZigZag {version} {dataflow} 32x32, {len(rows)} DeiT-Tiny GEMMs, NOT equal cycles (ZigZag's "
        f"latency is its own model's): ZigZag {tot_ref:.2f} s wall ({tot_cpu:.2f} s CPU) vs gemm_timing "
        f"{tot_ours * 1e6:.1f} us -> {tot_ref / tot_ours:,.0f}x wall, {tot_cpu / tot_ours:,.0f}x CPU [{_load()}]"
    )


def _rtl_run(cases: list[Any], build_dir: Path, max_dim: int) -> list[Any]:
    """Each case's RTL result; one array per build, so the time measured is one array's alone (the
    testbench also gates idle arrays' clocks; a build of one leaves nothing for that to depend on)."""
    by_spec: dict[Any, list[int]] = {}
    for i, case in enumerate(cases):
        by_spec.setdefault(case.spec, []).append(i)
    results: list[Any] = [None] * len(cases)
    for spec, idx in by_spec.items():
        print(f"[{_load()}] building/reusing the RTL: one {spec.name} array, memories {max_dim}, -Os ...")
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # cocotb's runner prints every command it runs
            build = rtl.build([spec], build_dir, max_dim=max_dim, optimize=True)
        print(f"RTL build {build.directory.name}: {time.perf_counter() - t0:.1f} s")
        print(f"[{_load()}] Verilator simulation of {len(idx)} GEMMs (one simulator run) ...", flush=True)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            done = rtl.run(build, [cases[i] for i in idx], build_dir / f"work-peers-{spec.name}")
        for i, res in zip(idx, done, strict=True):
            results[i] = res
        print(f"RTL simulation: {time.perf_counter() - t0:.1f} s wall in all (operand writes included)")
    return results


def _rtl_compare(label: str, cases: list[Any], results: list[Any]) -> bool:
    """The RTL's cycles and products against the fast model, then its time against ``gemm_timing``
    per GEMM and one ``gemm_timing_batch`` over the list; False if cycles or products disagree."""
    R, C, packing = cases[0].rows, cases[0].cols, cases[0].packing
    print(f"[{_load()}] accelsim gemm_timing(..., 'pipelined', {packing}) on the same GEMMs")
    print(f"{'GEMM (MxKxN)':>14s} {'df':>3s} {'RTL cyc':>8s} {'model cyc':>9s} {'RTL wall s':>10s} "
          f"{'CPU s':>6s} {'model us':>9s} {'CPU us':>7s} {'speed-up wall':>14s} {'CPU':>10s}")  # fmt: skip
    ok, ratios, cycles = True, [], []
    tot = np.zeros(4)  # RTL wall, RTL CPU, model wall, model CPU
    big = np.zeros(4)  # the same over the GEMMs of at least BIG_CYCLES
    for case, res in zip(cases, results, strict=True):
        (M, K), N = case.a.shape, case.b.shape[1]
        call = partial(gemm_timing, M, K, N, R, C, case.dataflow, "pipelined", packing)
        model = call().compute_cycles
        model_s, model_cpu = _best_seconds(call), _best_seconds(call, clock=time.thread_time)
        same = res.last_mac_cycle == model and not res.timed_out
        exact = np.array_equal(res.product, case.a @ case.b)
        ok = ok and same and exact
        cycles.append(model)
        ratios.append(res.sim_cpu_seconds / model_cpu)
        row = (res.sim_seconds, res.sim_cpu_seconds, model_s, model_cpu)
        tot += row
        if model >= BIG_CYCLES:
            big += row
        flag = "" if same and exact else "  <-- DISAGREES" + ("" if exact else " (product)")
        print(
            f"{f'{M}x{K}x{N}':>14s} {case.dataflow:>3s} {res.last_mac_cycle:8d} {model:9d} {res.sim_seconds:10.3f} "
            f"{res.sim_cpu_seconds:6.3f} {model_s * 1e6:9.2f} {model_cpu * 1e6:7.2f} "
            f"{res.sim_seconds / model_s:13,.0f}x {ratios[-1]:9,.0f}x{flag}"
        )
    # the whole list in one call, as a sweep or the mapper asks for it
    dims = np.array([(*c.a.shape, c.b.shape[1], DATAFLOW_CODES[c.dataflow]) for c in cases], dtype=np.int64).T
    batch = partial(gemm_timing_batch, dims[0], dims[1], dims[2], R, C, dims[3], "pipelined", packing)
    if batch()[0].tolist() != cycles:
        print("gemm_timing_batch DISAGREES with gemm_timing")
        ok = False
    if not ok:
        print("RTL and model DISAGREE: no speed-up reported")
        return False
    batch_s, batch_cpu = _best_seconds(batch), _best_seconds(batch, clock=time.thread_time)
    print(
        f"HEADLINE Verilator RTL {R}x{C} {label} (one array per build), {len(cases)} GEMMs, {sum(cycles):,} "
        f"cycles, equal cycles (and exact products): RTL {tot[0]:.2f} s wall ({tot[1]:.2f} s CPU) vs one "
        f"gemm_timing_batch over the list {batch_s * 1e6:.1f} us wall ({batch_cpu * 1e6:.1f} us CPU) -> "
        f"{tot[0] / batch_s:,.0f}x wall, {tot[1] / batch_cpu:,.0f}x CPU; vs gemm_timing per GEMM, summed, "
        f"{tot[2] * 1e6:.1f} us wall ({tot[3] * 1e6:.1f} us CPU) -> {tot[0] / tot[2]:,.0f}x wall, "
        f"{tot[1] / tot[3]:,.0f}x CPU (RTL CPU over the model's wall, the earlier runs' ratio: "
        f"{tot[1] / tot[2]:,.0f}x); per GEMM geometric mean {_geo(ratios):,.0f}x CPU [{_load()}]"
    )
    if big[2]:
        print(
            f"  the GEMMs of at least {BIG_CYCLES:,} cycles: RTL {big[0]:.2f} s wall ({big[1]:.2f} s CPU) vs "
            f"gemm_timing {big[2] * 1e6:.1f} us wall ({big[3] * 1e6:.1f} us CPU) -> {big[0] / big[2]:,.0f}x wall, "
            f"{big[1] / big[3]:,.0f}x CPU (over the model's wall: {big[1] / big[2]:,.0f}x)"
        )
    return True


def bench_rtl(build_dir: Path, seed: int, arrays: list[str]) -> bool:
    """The RTL arrays against gemm_timing at equal cycles; False if cycles or products disagree."""
    ok = True
    if "8x8" in arrays:
        rng = np.random.default_rng(seed)
        cases = [
            rtl.GemmCase(rng.integers(-128, 128, (M, K)), rng.integers(-128, 128, (K, N)), 8, 8, df)
            for M, K, N, df in RTL_GEMMS
        ]
        ok = _rtl_compare("unpacked", cases, _rtl_run(cases, build_dir, RTL_MAX_DIM)) and ok
    if "32x64" in arrays:
        rng = np.random.default_rng(seed)
        cases = []
        for layer in read_scalesim_topology(REF_DIR / TOPOLOGY):
            M, K, N = layer.gemm_dims()
            a, b = rng.integers(-128, 128, (M, K)), rng.integers(-128, 128, (K, N))
            cases += [rtl.GemmCase(a, b, *RTL_REAL, df, RTL_REAL_PACKING) for df in ("ws", "is", "os")]
        # their own cache folder: the harness keeps a folder's four newest builds, and the 8x8 and
        # adder-tree ones live in build_dir
        results = _rtl_run(cases, build_dir / "32x64", RTL_REAL_MAX_DIM)
        ok = _rtl_compare("packed two INT8 products per DSP (zcu102's array)", cases, results) and ok
    return ok


def _tree_gemms(config: str) -> tuple[Any, Any, dict[tuple[int, int, int, int], tuple[int, int]]]:
    """``(graph, hardware, {(batch, M, K, N): (compute cycles, layers)})``: every array op of
    DeiT-Tiny as ``simulate`` charges it on ``config``, and how many layers run each shape."""
    from accelsim.config.hardware import HardwareConfig
    from accelsim.ir.builders import vit_graph
    from accelsim.sim import simulate
    from accelsim.sim.graph_arrays import compile_graph

    g, hw = vit_graph("tiny"), HardwareConfig.load(config)
    ga = compile_graph(g)
    shape_of = {name: ga.shapes[ga.shape_id[i]].tolist() for i, name in enumerate(ga.names)}
    out: dict[tuple[int, int, int, int], tuple[int, int]] = {}
    for row in simulate(g, hw).layers:
        if row.engine == "array":
            m, k, n, _, _, batch, _ = shape_of[row.name]
            cycles, count = out.get((batch, m, k, n), (row.compute_cycles, 0))
            if cycles != row.compute_cycles:
                raise RuntimeError(
                    f"{row.name}: two layers of one shape charged {cycles} and {row.compute_cycles}"
                )
            out[(batch, m, k, n)] = (cycles, count + 1)
    return g, hw, out


def bench_tree(build_dir: Path, seed: int) -> bool:
    """The adder-tree engine's RTL at real size against the fast model; False if anything disagrees."""
    from accelsim.sim import simulate

    ok = True
    for config, max_kf in TREE_CONFIGS.items():
        g, hw, charged = _tree_gemms(config)
        a, pack = hw.array, hw.packing_for(8, 8)
        if (pack.m, pack.k) != (1, 1):
            raise RuntimeError(f"{config}: the RTL packs along N only, the design packs {pack}")
        engine = tree.TreeEngine(a.rows, a.cols, a.tree, pack.n, 1024, max_kf, 1024, 1024)
        rng = np.random.default_rng(seed)
        shapes = sorted(charged)
        cases = [
            tree.TreeCase(rng.integers(-128, 128, (b, m, k)), rng.integers(-128, 128, (b, k, n)), engine)
            for b, m, k, n in shapes
        ]
        print(
            f"[{_load()}] building/reusing the RTL: {config}'s engine {engine.name} alone, -Os ...",
            flush=True,
        )
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            top = tree.top_source([engine])
            built = (
                rtl.build_top(tree.TOPLEVEL, top, SOURCES["tree_gemm"], build_dir, optimize=True),
                (engine,),
            )
        print(f"RTL build {built[0].name}: {time.perf_counter() - t0:.1f} s")
        work = build_dir / f"work-peers-{engine.name}"
        walls_file = work / "walls.txt"
        work.mkdir(parents=True, exist_ok=True)
        walls_file.unlink(missing_ok=True)
        print(f"[{_load()}] Verilator simulation of {len(cases)} GEMMs (one simulator run) ...", flush=True)
        t0 = time.perf_counter()
        tb, tree.TB_MODULE = tree.TB_MODULE, TREE_TB
        try:
            with contextlib.redirect_stdout(io.StringIO()), rtl._environ(ACCELSIM_TREE_WALLS=str(walls_file)):
                results = tree.run(built, cases, work)
        finally:
            tree.TB_MODULE = tb
        walls = [float(x) for x in walls_file.read_text().split()]
        print(
            f"RTL simulation: {time.perf_counter() - t0:.1f} s wall in all (operand loads and dumps included)"
        )
        print(f"[{_load()}] accelsim adder_tree_busy_cycles on the same GEMMs; simulate() on {config}")
        print(f"{'GEMM (bxMxKxN)':>16s} {'layers':>6s} {'RTL cyc':>8s} {'model cyc':>9s} {'RTL wall s':>10s} "
              f"{'CPU s':>6s} {'model us':>9s} {'speed-up wall':>14s} {'CPU':>10s}")  # fmt: skip
        tot = np.zeros(3)  # RTL wall, RTL CPU, formula time over the distinct GEMMs
        per_model = np.zeros(2)  # RTL wall and CPU weighted by the layers that run each GEMM
        for (b, m, k, n), case, res, wall in zip(shapes, cases, results, walls, strict=True):
            cycles, layers = charged[(b, m, k, n)]
            call = partial(adder_tree_busy_cycles, m, k, n, b, a.rows, a.cols, a.tree, 1, 1, pack.n)
            formula = call()[0] - 1  # busy - 1: the last accumulation cycle (GemmTiming.compute_cycles)
            model_s = _best_seconds(call)
            same = not res.timed_out and res.last_out_cycle == formula == cycles
            exact = not res.timed_out and np.array_equal(res.product, case.a @ case.b)
            ok = ok and same and exact
            tot += (wall, res.sim_cpu_seconds, model_s)
            per_model += (wall * layers, res.sim_cpu_seconds * layers)
            flag = "" if same and exact else f"  <-- DISAGREES (formula {formula}, simulate {cycles})"
            print(
                f"{f'{b}x{m}x{k}x{n}':>16s} {layers:6d} {res.last_out_cycle:8d} {cycles:9d} {wall:10.3f} "
                f"{res.sim_cpu_seconds:6.3f} {model_s * 1e6:9.2f} {wall / model_s:13,.0f}x "
                f"{res.sim_cpu_seconds / model_s:9,.0f}x{flag}"
            )
        if not ok:
            print("RTL and model DISAGREE: no speed-up reported")
            return False
        sim = partial(simulate, g, hw)
        sim()  # warm: the kernels' JIT cache
        sim_s = _best_seconds(sim, repeat=3)
        n_cyc = sum(c for c, _ in charged.values())
        all_cyc = sum(c * n for c, n in charged.values())
        print(
            f"HEADLINE Verilator RTL adder-tree {config} ({engine.name}), {len(cases)} distinct DeiT-Tiny GEMMs, "
            f"{n_cyc:,} cycles, equal cycles (and exact products): RTL {tot[0]:.2f} s wall ({tot[1]:.2f} s CPU) vs "
            f"adder_tree_busy_cycles {tot[2] * 1e6:.1f} us -> {tot[0] / tot[2]:,.0f}x wall, {tot[1] / tot[2]:,.0f}x CPU; "
            f"vs one whole simulate() of DeiT-Tiny {sim_s * 1e3:.2f} ms -> {tot[0] / sim_s:,.0f}x wall, "
            f"{tot[1] / sim_s:,.0f}x CPU [{_load()}]"
        )
        print(
            f"  whole model at equal cycles ({all_cyc:,} array cycles over {sum(n for _, n in charged.values())} "
            f"layers; each GEMM's measured RTL time x its layers, not re-simulated): RTL {per_model[0]:.2f} s wall "
            f"({per_model[1]:.2f} s CPU) vs simulate() {sim_s * 1e3:.2f} ms -> {per_model[0] / sim_s:,.0f}x wall, "
            f"{per_model[1] / sim_s:,.0f}x CPU"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip", nargs="*", default=[], choices=("scalesim", "zigzag", "rtl", "tree"))
    ap.add_argument(
        "--scalesim-config", default="sa32x32_is", choices=sorted(c.stem for c in REF_DIR.glob("*.cfg"))
    )
    ap.add_argument("--zigzag-dataflow", default="is", choices=("os", "ws", "is"))
    zz_names = [x["name"] for x in yaml.safe_load((BENCH / "zigzag" / "deit_tiny_gemm.yaml").read_text())]
    ap.add_argument("--zigzag-layers", nargs="*", default=list(ZIGZAG_LAYERS), choices=zz_names)
    ap.add_argument("--build-dir", type=Path, default=BENCH / "out" / "rtl-build")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rtl-arrays", nargs="*", default=["8x8", "32x64"], choices=("8x8", "32x64"))
    args = ap.parse_args(argv)
    wanted = [p for p in ("scalesim", "zigzag", "rtl", "tree") if p not in args.skip]
    missing = {
        "scalesim": None
        if SCALESIM_PY.exists()
        else f"{SCALESIM_PY} missing: run benchmarks/scalesim/setup.sh",
        "zigzag": None if ZIGZAG_PY.exists() else f"{ZIGZAG_PY} missing: see benchmarks/zigzag/README.md",
        "rtl": rtl.missing_tools(),
        "tree": rtl.missing_tools(),
    }
    if errors := [missing[p] for p in wanted if missing[p]]:
        print("\n".join(e for e in errors if e), file=sys.stderr)
        return 2
    print(f"accelsim vs peers, one run; start: {_load()}")
    t0 = time.perf_counter()
    ok = True
    if "scalesim" in wanted:
        print("\n=== SCALE-Sim")
        ok = bench_scalesim(args.scalesim_config) and ok
    if "zigzag" in wanted:
        print("\n=== ZigZag")
        bench_zigzag(args.zigzag_dataflow, args.zigzag_layers)
    if "rtl" in wanted:
        print("\n=== Verilator RTL")
        ok = bench_rtl(args.build_dir, args.seed, args.rtl_arrays) and ok
    if "tree" in wanted:
        print("\n=== Verilator RTL, the adder-tree engine at real size")
        ok = bench_tree(args.build_dir, args.seed) and ok
    print(f"\nall in {time.perf_counter() - t0:.0f} s; end: {_load()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
