"""Speed of the dataflow family: analytic design points per second, the event run of HG-PIPE's
whole network against its closed-form first frame, and the allocator on DeiT-Tiny's MLP and attention stages.

    PYTHONPATH=$PWD python3 benchmarks/bench_dataflow.py

Prints counts measured in one run (targets: >= 20,000 analytic points/s, allocation <= 1 s).
"""

from __future__ import annotations

import os
import time

import numpy as np

from accelsim.config.hardware import HardwareConfig
from accelsim.ir.builders import vit_graph
from accelsim.sim.dataflow.allocate import Budget, allocate
from accelsim.sim.dataflow.network import Pipeline, build_pipeline
from accelsim.sim.dataflow.timing import TripTable, first_frame, run_events, steady_state


def _points(table: TripTable, p: Pipeline, what: str) -> None:
    rng = np.random.default_rng(0)
    base = {f: np.asarray([getattr(s.config, f) or 1 for s in p.stages]) for f in ("cip", "cop", "cp")}
    # design points: every cip / cop / cp halved or kept at random (halving keeps the divisions
    # exact wherever the value is even)
    points = [
        {f: np.where((v % 2 == 0) & (rng.random(v.size) < 0.5), v // 2, v) for f, v in base.items()}
        for _ in range(256)
    ]
    table.slowest(**points[0])  # compile / load the cached kernel
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        table.slowest(**points[n % len(points)])
        n += 1
    print(
        f"analytic design points, {what} ({len(p.stages)} stages, closed-form trips): "
        f"{n / (time.perf_counter() - t0):,.0f} points/s (load {os.getloadavg()[0]:.1f})"
    )


def main() -> None:
    hw = HardwareConfig.load("published/hg_pipe")
    assert hw.dataflow is not None
    cfg = hw.dataflow
    t0 = time.perf_counter()
    p = build_pipeline(cfg)
    print(
        f"building the whole network's loop nests ({len(p.stages)} stages): {time.perf_counter() - t0:.2f} s"
    )
    _points(TripTable.of(p), p, "whole network")
    # the blocks once each: the 85 stages whose parallelism a search chooses (blocks repeat)
    once = cfg.model_copy(update={"network": tuple({e.block: e for e in cfg.network}.values())})
    p1 = build_pipeline(once)
    _points(TripTable.of(p1), p1, "one block of each type")
    p = build_pipeline(cfg)
    print("HG-PIPE, predicted (event run, 3 frames, each block alone) vs its RTL (README, Verilator):")
    print("| block | predicted II | RTL II | bottleneck stage |")
    print("|---|---|---|---|")
    for block, rtl in (("patch_embed", 56_449), ("attn", 57_625), ("mlp", 56_449), ("head", 48_001)):
        one = build_pipeline(
            cfg.model_copy(update={"network": (cfg.network[0].model_copy(update={"block": block}),)})
        )
        print(
            f"| {block} | {run_events(one, 3).ii_cycles:,} | {rtl:,} | {one.stages[steady_state(one).bottleneck].name} |"
        )
    run_events(p, 2)  # compile / load the cached kernel
    t0 = time.perf_counter()
    r = run_events(p, 2)
    dt = time.perf_counter() - t0
    events = int(p.arrays["ev_iter"].size) * 2
    fps = hw.clock_mhz * 1e6 / steady_state(p).ii_cycles
    print(f"event run, whole network ({len(p.stages)} stages), 2 frames: {dt:.2f} s, {events / dt / 1e6:.1f} M events/s, "
          f"latency {r.latency_cycles:,} cycles (RTL 816,584: {r.latency_cycles / 816_584 - 1:+.1%}); "
          f"{fps:,.0f} FPS (board 7,118: {fps / 7118 - 1:+.1%})")  # fmt: skip
    t0 = time.perf_counter()
    ff = first_frame(p)
    dt_ff = time.perf_counter() - t0
    print(
        f"first frame in closed form (the CLI's default path), whole network: {dt_ff:.2f} s, latency "
        f"{ff.latency_cycles:,} cycles ({'equal to' if ff.latency_cycles == r.latency_cycles else 'NOT equal to'} "
        f"the event run's; exact: {ff.exact}); {dt / dt_ff:.1f}x faster than the event run (load {os.getloadavg()[0]:.1f})"
    )
    g = vit_graph("tiny", bits=3, class_token=False)
    budget = Budget(lut=669_000, dsp=312, bram36=967, uram=463)  # HG-PIPE's LUT / DSP, the VC1902's RAMs
    allocate(g, hw, budget, wbits=3, abits=3, tp=2, restart_cycles=1)
    t0 = time.perf_counter()
    a = allocate(g, hw, budget, wbits=3, abits=3, tp=2, restart_cycles=1)
    dt = time.perf_counter() - t0
    print(
        f"allocator, DeiT-Tiny W3A3 196 tokens ({sum(len(u) for u in a.units)} engines) at HG-PIPE's budget: "
        f"{dt * 1e3:.0f} ms, {a.steps} steps; II {a.ii_cycles:,} cycles = {a.fps:,.0f} FPS at {hw.clock_mhz:g} MHz "
        f"(bottleneck {a.bottleneck}; LUT {a.lut:,}, DSP {a.dsp}, BRAM36 {a.bram36}); HG-PIPE: II 57,625, 7,118 FPS"
    )


if __name__ == "__main__":
    main()
