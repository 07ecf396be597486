"""Speed of the dataflow family: analytic design points per second, the event run of HG-PIPE's
whole network, and the allocator on DeiT-Tiny's MLP and attention stages.

    PYTHONPATH=$PWD python3 benchmarks/bench_dataflow.py

Prints counts measured in one run (targets: >= 20,000 analytic points/s, allocation <= 1 s).
"""

from __future__ import annotations

import time

import numpy as np

from accelsim.config.dataflow import StageConfig
from accelsim.config.hardware import HardwareConfig
from accelsim.sim.dataflow.allocate import Budget, allocate_block, pipeline_ii
from accelsim.sim.dataflow.network import Pipeline, build_pipeline
from accelsim.sim.dataflow.timing import TripTable, run_events


def _points(table: TripTable, p: Pipeline, what: str) -> None:
    rng = np.random.default_rng(0)
    base = {f: np.asarray([getattr(s.config, f) or 1 for s in p.stages]) for f in ("cip", "cop", "cp")}
    # design points: every cip / cop / cp halved or kept at random (halving keeps the divisions
    # exact wherever the value is even)
    points = [
        {f: np.where((v % 2 == 0) & (rng.random(v.size) < 0.5), v // 2, v) for f, v in base.items()}
        for _ in range(256)
    ]
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        table.stage_cycles(**points[n % len(points)]).max()
        n += 1
    print(
        f"analytic design points, {what} ({len(p.stages)} stages, closed-form trips): "
        f"{n / (time.perf_counter() - t0):,.0f} points/s"
    )


def main() -> None:
    hw = HardwareConfig.load("published/hg_pipe")
    assert hw.dataflow is not None
    cfg = hw.dataflow
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        pipeline_ii(cfg)
        n += 1
    print(f"analytic interval from the config (4 block types, {sum(len(b.stages) for b in cfg.blocks.values())} "
          f"stages, loop nests built): {n / (time.perf_counter() - t0):,.0f} points/s")  # fmt: skip
    p = build_pipeline(cfg)
    _points(TripTable.of(p), p, "whole network")
    # the blocks once each: the 85 stages whose parallelism a search chooses (blocks repeat)
    once = cfg.model_copy(update={"network": tuple({e.block: e for e in cfg.network}.values())})
    p1 = build_pipeline(once)
    _points(TripTable.of(p1), p1, "one block of each type")
    p = build_pipeline(cfg)
    run_events(p, 2)  # compile / load the cached kernel
    t0 = time.perf_counter()
    r = run_events(p, 2)
    dt = time.perf_counter() - t0
    events = int(p.arrays["ev_iter"].size) * 2
    print(f"event run, whole network ({len(p.stages)} stages), 2 frames: {dt:.2f} s, {events / dt / 1e6:.1f} M events/s, "
          f"latency {r.latency_cycles:,} cycles")  # fmt: skip
    kw = {"inputs": ["@in"], "wbits": 3, "abits": 3, "t": 196, "tp": 2}
    stages = [
        StageConfig.model_validate({**kw, "name": "ln", "kind": "layernorm", "c": 192, "cp": 1}),
        *(
            StageConfig.model_validate(
                {**kw, "name": n, "kind": "matmul", "cin": 192, "cip": 1, "cout": 192, "cop": 1}
            )
            for n in ("q", "k", "v", "o")
        ),
        StageConfig.model_validate({**kw, "name": "sm", "kind": "softmax", "c": 196, "cp": 1}),
        StageConfig.model_validate(
            {**kw, "name": "m1", "kind": "matmul", "cin": 192, "cip": 1, "cout": 768, "cop": 1}
        ),
        StageConfig.model_validate(
            {**kw, "name": "m2", "kind": "matmul", "cin": 768, "cip": 1, "cout": 192, "cop": 1}
        ),
    ]
    t0 = time.perf_counter()
    out = allocate_block(stages, hw, Budget(lut=669_000 // 12, dsp=0, bram36=80, uram=3))
    dt = time.perf_counter() - t0
    print(
        f"allocator, one DeiT-Tiny block ({len(stages)} stages) at 1/12 of HG-PIPE's LUTs: {dt * 1e3:.0f} ms; "
        + ", ".join(f"{s.name} cip{s.cip} cop{s.cop} cp{s.cp}" for s in out)
    )


if __name__ == "__main__":
    main()
