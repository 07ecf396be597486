"""The Chrome-trace / Perfetto timeline of a schedule: one track per engine and per DRAM channel.

Open the JSON in ui.perfetto.dev (or chrome://tracing). The tiles and transfers come from a run
that recorded them (``run(schedule, record=True)``); :func:`save_trace` runs one if needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from accelsim._io import write_text_atomic
from accelsim.sim.engines.table import ENGINE_NAMES
from accelsim.sim.schedule import RunResult, Schedule, run


def trace_events(schedule: Schedule, result: RunResult) -> list[dict[str, Any]]:
    """Chrome-trace events (``ph: X``, microseconds) of a recorded run."""
    if not result.recorded:
        raise ValueError("trace_events needs a run with record=True")
    rec, ga, hw = result.arrays, schedule.graph, schedule.hardware
    us = 1.0 / hw.clock_mhz
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": 0, "args": {"name": f"{hw.name} | {ga.name}"}}
    ]
    for e, name in enumerate(ENGINE_NAMES):
        events.append({"name": "thread_name", "ph": "M", "pid": 0, "tid": e, "args": {"name": name}})
    n_ch = hw.dram_cfg.channels
    for c in range(n_ch):
        tid = len(ENGINE_NAMES) + c
        events.append({"name": "thread_name", "ph": "M", "pid": 0, "tid": tid, "args": {"name": f"dram{c}"}})
    names = ga.names
    for op, s, e in zip(rec.tile_op, rec.tile_start, rec.tile_end, strict=True):
        events.append(
            {
                "name": names[op],
                "cat": ga.kinds[op],
                "ph": "X",
                "pid": 0,
                "tid": int(schedule.engine[op]),
                "ts": float(s) * us,
                "dur": float(e - s) * us,
            }
        )
    # Addresses interleave over the channels, so every transfer occupies all of them at once.
    for op, st, s, e in zip(rec.xfer_op, rec.xfer_store, rec.xfer_start, rec.xfer_end, strict=True):
        for c in range(n_ch):
            events.append(
                {
                    "name": f"{'store' if st else 'load'} {names[op]}",
                    "cat": "dram",
                    "ph": "X",
                    "pid": 0,
                    "tid": len(ENGINE_NAMES) + c,
                    "ts": float(s) * us,
                    "dur": float(e - s) * us,
                }
            )
    return events


def trace_json(schedule: Schedule, result: RunResult | None = None) -> str:
    """The trace file's text; runs the schedule recording its tiles unless ``result`` recorded them."""
    if result is None or not result.recorded:
        result = run(schedule, record=True)
    return json.dumps({"traceEvents": trace_events(schedule, result), "displayTimeUnit": "ns"})


def save_trace(schedule: Schedule, path: str | Path, result: RunResult | None = None) -> Path:
    """Write the timeline of ``schedule`` to ``path`` (atomically)."""
    return write_text_atomic(path, trace_json(schedule, result))


__all__ = ["save_trace", "trace_events", "trace_json"]
