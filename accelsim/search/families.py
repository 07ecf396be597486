"""Both architecture families in one search: a hardware point whose ``family.kind`` is ``dataflow``
is a layer-pipelined design the allocator sizes from the trial's lowered model, on the base
config's board and clock, within ``family.budget`` of the board (see
:class:`accelsim.config.dataflow.FamilyChoice`); ``overlay`` points are the base config as ever.

The ``family`` section rides in the hardware point's dict beside the overlay config's fields, so
the knobs are ordinary dotted paths (``family.kind``, ``family.budget``); it is split off before
the rest is validated as a :class:`~accelsim.config.hardware.HardwareConfig`.

A dataflow point's figures are the allocator's analytic plan: the interval is the slowest
engine's, ``latency_ms`` is NaN (the plan has no stream wiring to time a first frame on), power
is the dataflow report's estimate at the engines' mean utilisation, and the resources (and the
allocator's budget) include one input FIFO of ``family.fifo_depth`` per engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from accelsim.config._base import validate_config
from accelsim.config.dataflow import FamilyChoice
from accelsim.errors import AccelsimError
from accelsim.ir import Graph

#: the key of the family section in a hardware point
FAMILY = "family"


def split(config: Mapping[str, Any]) -> tuple[FamilyChoice | None, dict[str, Any]]:
    """The point's family choice (None: no family section) and the rest of its config.

    Raises:
        ConfigError: a family field out of range (named).
    """
    rest = dict(config)
    section = rest.pop(FAMILY, None)
    if section is None:
        return None, rest
    return validate_config(FamilyChoice, dict(section), "hardware point family"), rest


def simulate_points(
    graph: Graph,
    configs: Sequence[Mapping[str, Any]],
    overlay: Callable[[Graph, Sequence[Mapping[str, Any]]], list[Any]],
) -> list[Any]:
    """Results of every point in order: dataflow points allocated here, the others by ``overlay``
    (the overlay simulation of a batch, :func:`accelsim.search.objective.accelsim_simulate`)."""
    from accelsim.search.objective import HardwareResult, _unfit

    out: list[Any] = [None] * len(configs)
    overlay_at: list[int] = []
    overlay_cfgs: list[dict[str, Any]] = []
    for i, cfg in enumerate(configs):
        try:
            family, rest = split(cfg)
        except AccelsimError as e:
            out[i] = _unfit(f"{type(e).__name__}: {e}")
            continue
        if family is None or family.kind == "overlay":
            overlay_at.append(i)
            overlay_cfgs.append(rest)
            continue
        try:
            metrics, fits, why = dataflow_metrics(graph, rest, family)
            out[i] = HardwareResult(metrics, fits, why)
        except AccelsimError as e:
            out[i] = _unfit(f"{type(e).__name__}: {e}")
    for i, r in zip(overlay_at, overlay(graph, overlay_cfgs) if overlay_cfgs else [], strict=True):
        out[i] = r
    return out


def dataflow_metrics(
    graph: Graph, config: Mapping[str, Any], family: FamilyChoice
) -> tuple[dict[str, float], bool, str]:
    """The search's hardware metrics of the dataflow design the allocator sizes for ``graph``
    (module docstring), whether it fits the board, and why not."""
    from accelsim.config.hardware import HardwareConfig
    from accelsim.sim.dataflow.allocate import Budget, allocate, trip_cycles
    from accelsim.sim.dataflow.kinds import STAGE_KINDS
    from accelsim.sim.dataflow.report import power_estimate

    hw = validate_config(HardwareConfig, dict(config), "hardware point")
    b = hw.board
    f = family.budget
    budget = Budget(int(b.lut * f), int(b.dsp * f), int(b.bram36 * f), int(b.uram * f))
    a = allocate(
        graph, hw, budget, wbits=None, abits=None, tp=family.tp, restart_cycles=family.restart_cycles,
        fifo_depth=family.fifo_depth,
    )  # fmt: skip
    stages = [s for u in a.units for s in u]
    lut, bram, uram = a.lut, a.bram36, a.uram
    macs = sum(STAGE_KINDS[s.kind].macs(s) for s in stages)
    gops = 2 * macs * a.fps / 1e9
    mean_util = sum(trip_cycles(s) + family.restart_cycles for s in stages) / len(stages) / a.ii_cycles
    power = power_estimate(hw, a.dsp, lut, bram, uram, mean_util)
    over = [
        f"{n}: {used:,} used > {avail:,} on {b.name}"
        for n, used, avail in (
            ("dsp", a.dsp, b.dsp),
            ("lut", lut, b.lut),
            ("bram36", bram, b.bram36),
            ("uram", uram, b.uram),
        )
        if used > avail
    ]
    if not a.fits:
        over.append(f"the least parallel design exceeds {f:g} of {b.name}'s resources")
    metrics = {
        "fps": a.fps,
        "gops": gops,
        "gops_per_dsp": gops / a.dsp if a.dsp else 0.0,
        "latency_ms": math.nan,
        "dsp_used": float(a.dsp),
        "bram36_used": float(bram),
        "energy_mj": power / a.fps * 1e3,
        "power_w": power,
        "gops_per_watt": gops / power if power else 0.0,
    }
    return metrics, not over, "; ".join(over)


__all__ = ["FAMILY", "dataflow_metrics", "simulate_points", "split"]
