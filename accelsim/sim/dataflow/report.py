"""Resources and the report of a dataflow design: :func:`simulate_dataflow` is the family's
``simulate``.

Resource terms are estimates from each stage's structure (no synthesis), labelled where they are
set: LUT multipliers by operand bits as FINN's MVAU estimate shapes them (finn
``custom_op/fpgadataflow/matrixvectoractivation.py``, ``lut_estimation``: a ``(2 ceil((W+A)/6) - 1)
(W+A)``-LUT multiplier, an adder tree of ``(W+A)(2 CIP - 1)`` LUTs per output lane, an
accumulator of its bits), DSP multipliers by the board's packing table, weights in BRAM36 / URAM /
LUTRAM by bits and port width, FIFOs in SRLs up to 64 deep, else BRAM36, URAM from 4,096 deep.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from accelsim.config.dataflow import StageConfig
from accelsim.config.hardware import HardwareConfig, select_packing
from accelsim.errors import ConfigError
from accelsim.sim.dataflow.kinds import STAGE_KINDS
from accelsim.sim.dataflow.network import Pipeline, Stage, build_pipeline
from accelsim.sim.dataflow.timing import first_frame, run_events, steady_state
from accelsim.sim.efficiency import gops_per_equivalent_dsp, gops_per_klut

#: LUTs per element lane of a nonlinear stage: a layernorm (rsqrt table, mean/variance adders)
#: and a softmax (exp and reciprocal tables, max and sum) as the overlay's vector and softmax
#: units are costed (:class:`accelsim.config.hardware.VectorUnitConfig`); a map stage (a 64-entry
#: quantisation / GELU table, a copy, a residual add) a small table (estimates).
NONLINEAR_LUT_PER_LANE = {"layernorm": 300, "softmax": 600, "map": 50}
BRAM36_BITS = 36 * 1024
URAM_BITS = 288 * 1024
PORT_BITS = 72
#: one LUT6 as 64 x 1 distributed RAM; one SRL32 per bit per 32 entries
LUTRAM_BITS = 64
SRL_DEPTH = 32
#: FIFOs this deep or less are SRLs; from URAM_FIFO_DEPTH on they go to UltraRAM
SRL_MAX_DEPTH = 64
URAM_FIFO_DEPTH = 4096


@dataclass(frozen=True)
class StageResources:
    dsp: int = 0
    lut: int = 0
    multiplier_lut: int = 0
    bram36: int = 0
    uram: int = 0


def _memory(bits: int, width: int, where: str) -> StageResources:
    if where == "bram":
        return StageResources(bram36=max(math.ceil(bits / BRAM36_BITS), math.ceil(width / PORT_BITS)))
    if where == "uram":
        return StageResources(uram=max(math.ceil(bits / URAM_BITS), math.ceil(width / PORT_BITS)))
    if where == "lutram":
        return StageResources(lut=math.ceil(bits / LUTRAM_BITS))
    return StageResources()


def stage_resources(st: Stage, hw: HardwareConfig) -> StageResources:
    """DSP / LUT / BRAM36 / URAM of one stage's engine (its input FIFOs are :func:`fifo_resources`)."""
    return config_resources(st.config, hw, st.name)


def config_resources(c: StageConfig, hw: HardwareConfig, name: str = "") -> StageResources:
    """:func:`stage_resources` of a stage config (no loop nest built: the allocator's path)."""
    kind = STAGE_KINDS[c.kind]
    lanes = kind.lanes(c)
    if kind.role == "matmul":
        w, a = c.wbits, c.abits
        outs = (c.tp or 1) * (c.cop or 1)
        acc = w + a + math.ceil(math.log2(c.cin or 1))
        tree = (w + a) * (2 * (c.cip or 1) - 1) * outs + acc * outs
        if c.mult == "dsp":
            per = select_packing(hw.packing, w, a, f"stage {name or c.name}").macs
            dsp, mult = math.ceil(lanes / per), 0
        else:
            dsp, mult = 0, lanes * (2 * math.ceil((w + a) / 6) - 1) * (w + a)
        mem = _memory((c.cin or 0) * (c.cout or 0) * w, (c.cip or 1) * (c.cop or 1) * w, c.weights)
        return StageResources(dsp, mult + tree + mem.lut, mult, mem.bram36, mem.uram)
    if kind.role == "nonlinear":
        return StageResources(lut=lanes * NONLINEAR_LUT_PER_LANE[c.kind])
    # data movement: a register and a multiplexer bit per bit of the beat, plus a weight cache's store
    lut = kind.beat_elems(c) * c.abits
    if c.kind == "weight_cache":
        mem = _memory((c.cin or 0) * (c.cout or 0) * c.abits, kind.beat_elems(c) * c.abits, c.weights)
        return StageResources(lut=lut + mem.lut, bram36=mem.bram36, uram=mem.uram)
    return StageResources(lut=lut)


def fifo_resources(depth: int, width: int) -> StageResources:
    """One FIFO of ``depth`` beats of ``width`` bits."""
    if depth <= SRL_MAX_DEPTH:
        return StageResources(lut=width * math.ceil(depth / SRL_DEPTH))
    if depth >= URAM_FIFO_DEPTH:
        return StageResources(uram=math.ceil(depth / URAM_FIFO_DEPTH) * math.ceil(width / PORT_BITS))
    return StageResources(bram36=max(math.ceil(width / PORT_BITS), math.ceil(depth * width / BRAM36_BITS)))


@dataclass(frozen=True)
class StageRow:
    """One stage of the report."""

    name: str
    kind: str
    cycles_per_frame: int
    utilization: float
    latency_cycles: int
    macs: int
    dsp: int
    lut: int
    bram36: int
    uram: int


@dataclass(frozen=True)
class DataflowReport:
    """Result of :func:`simulate_dataflow`. ``timing`` says where the cycles come from:
    ``analytic`` (the default: the interval is the slowest stage's, the first frame's latency
    :func:`~accelsim.sim.dataflow.timing.first_frame`'s closed form) or ``event`` (the event
    kernel's run: interval of the last two frames, frame 0's latency, back-pressure included).
    ``initiation_interval_cycles``: cycles between two frames in steady state; ``fps`` frames back
    to back at the clock; ``latency_cycles``: the first frame, first input in to last output out;
    ``latency_is_lower_bound``: the analytic latency where a FIFO fills in frame 0 (back-pressure
    the closed form leaves out; the event run gives the cycles); GOPS = 2 x MACs x FPS; ``ff_used`` is estimated
    as one flip-flop per LUT (an assumption); ``power_w_estimate`` from the board's coefficients
    at the stages' mean utilisation; ``energy_mj_estimate`` is that power over one frame interval."""

    hardware: str
    board: str
    clock_mhz: float
    initiation_interval_cycles: int
    analytic_ii_cycles: int
    latency_cycles: int
    latency_ms: float
    timing: str
    latency_is_lower_bound: bool
    fps: float
    total_macs: int
    gops: float
    gops_per_dsp: float
    gops_per_klut: float
    gops_per_equivalent_dsp: float
    bottleneck: str
    dsp_used: int
    lut_used: int
    ff_used: int
    bram36_used: int
    uram_used: int
    fits: bool
    overflow: list[str]
    power_w_estimate: float
    gops_per_watt_estimate: float
    energy_mj_estimate: float
    stages: list[StageRow] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "stages"}
        d["stages"] = [asdict(r) for r in self.stages]
        return d

    def table(self, max_stages: int = 12) -> str:
        fit = "yes" if self.fits else "NO (" + "; ".join(self.overflow) + ")"
        bound = ">= " if self.latency_is_lower_bound else ""
        lat = f"{bound}{self.latency_ms:.3f} ms ({bound}{self.latency_cycles:,} cycles)"
        source = (
            "analytic: slowest stage's II, closed-form first frame; --event for the event run"
            if self.timing == "analytic"
            else "event run: II and first frame with back-pressure"
        )
        lines = [
            f"{self.hardware} ({self.board}, dataflow, {self.clock_mhz:g} MHz; {source})",
            f"  II {self.initiation_interval_cycles:,} cycles   {self.fps:,.1f} FPS   first-frame latency {lat}",
            f"  bottleneck {self.bottleneck}   {self.gops:,.1f} GOPS   {self.gops_per_dsp:.2f} GOPS/DSP"
            f"   {self.gops_per_klut:.2f} GOPS/kLUT   {self.gops_per_equivalent_dsp:.3f} GOPS/eq.DSP",
            f"  DSP {self.dsp_used:,}  LUT ~{self.lut_used:,}  BRAM36 {self.bram36_used:,}  URAM {self.uram_used:,}"
            f"   fits: {fit}   power ~{self.power_w_estimate:.1f} W (estimate)",
            f"  {'stage':<24} {'kind':<12} {'cycles/frame':>12} {'util':>6} {'MACs':>12} {'LUT':>8} {'DSP':>5}",
        ]
        for r in sorted(self.stages, key=lambda r: -r.cycles_per_frame)[:max_stages]:
            lines.append(
                f"  {r.name:<24} {r.kind:<12} {r.cycles_per_frame:>12,} {r.utilization:>6.1%} {r.macs:>12,}"
                f" {r.lut:>8,} {r.dsp:>5}"
            )
        return "\n".join(lines)


def power_estimate(hw: HardwareConfig, dsp: int, lut: int, bram36: int, uram: int, mean_util: float) -> float:
    """Watts (estimate) from the board's coefficients: static, plus each resource's dynamic power
    scaled by the stages' mean utilisation, plus the clock tree of one flip-flop per LUT."""
    pw = hw.board.power
    dyn_uw = (
        dsp * pw.dsp_uw_per_mhz
        + bram36 * pw.bram36_uw_per_mhz
        + uram * pw.uram_uw_per_mhz
        + lut * (pw.lut_nw_per_mhz + pw.ff_nw_per_mhz) / 1e3
    ) * mean_util * pw.busy_toggle / pw.toggle_default + lut * pw.clock_nw_per_ff_mhz / 1e3
    return pw.device_static_w + dyn_uw * hw.clock_mhz / 1e6


def simulate_dataflow(hw: HardwareConfig, events: bool = False, frames: int = 3) -> DataflowReport:
    """Time, size and rate the dataflow design ``hw`` (its ``dataflow`` section).

    Args:
        events: run the event kernel (interval and first-frame latency with back-pressure;
            seconds on a whole network); False (default) gives the analytic interval and the
            closed-form first frame (:class:`DataflowReport`'s ``timing``).
        frames: frames of the event run (>= 2; the interval is the last two frames' apart, so 3
            leaves the first frame's fill out of it).

    Raises:
        ConfigError: ``hw`` has no ``dataflow`` section, or a stage the kinds table rejects.
    """
    if hw.dataflow is None:
        raise ConfigError(f"{hw.name}: not a dataflow design (no dataflow: section)")
    return report_pipeline(build_pipeline(hw.dataflow), hw, events=events, frames=frames)


def report_pipeline(p: Pipeline, hw: HardwareConfig, events: bool = False, frames: int = 3) -> DataflowReport:
    """:func:`simulate_dataflow` of an already flattened pipeline."""
    ss = steady_state(p)
    if events:
        run = run_events(p, frames)
        ii, latency, bound = run.ii_cycles, run.latency_cycles, False
    else:
        ff = first_frame(p)
        ii, latency, bound = ss.ii_cycles, ff.latency_cycles, not ff.exact
    res = [stage_resources(s, hw) for s in p.stages]
    fifo = [
        fifo_resources(
            e.depth, p.stages[e.src].kind.beat_elems(p.stages[e.src].config) * p.stages[e.src].config.abits
        )
        for e in p.edges
        if e.src >= 0 and e.dst >= 0
    ]
    tot = {
        k: sum(getattr(r, k) for r in res + fifo) for k in ("dsp", "lut", "multiplier_lut", "bram36", "uram")
    }
    macs = sum(s.kind.macs(s.config) for s in p.stages)
    fps = hw.clock_mhz * 1e6 / ii
    gops = 2 * macs * fps / 1e9
    util = [(int(c) / ii) for c in ss.stage_cycles]
    b = hw.board
    overflow = [
        f"{n}: {used:,} used > {avail:,} on {b.name}"
        for n, used, avail in (
            ("dsp", tot["dsp"], b.dsp),
            ("lut", tot["lut"], b.lut),
            ("bram36", tot["bram36"], b.bram36),
            ("uram", tot["uram"], b.uram),
        )
        if used > avail
    ]
    power = power_estimate(hw, tot["dsp"], tot["lut"], tot["bram36"], tot["uram"], sum(util) / len(util))
    rows = [
        StageRow(
            s.name,
            s.config.kind,
            int(c),
            u,
            s.config.latency,
            s.kind.macs(s.config),
            r.dsp,
            r.lut,
            r.bram36,
            r.uram,
        )
        for s, c, u, r in zip(p.stages, ss.stage_cycles, util, res, strict=True)
    ]
    return DataflowReport(
        hardware=hw.name,
        board=b.name,
        clock_mhz=hw.clock_mhz,
        initiation_interval_cycles=ii,
        analytic_ii_cycles=ss.ii_cycles,
        latency_cycles=latency,
        latency_ms=latency / (hw.clock_mhz * 1e3),
        timing="event" if events else "analytic",
        latency_is_lower_bound=bound,
        fps=fps,
        total_macs=macs,
        gops=gops,
        gops_per_dsp=gops / tot["dsp"] if tot["dsp"] else 0.0,
        gops_per_klut=gops_per_klut(gops, tot["lut"]),
        gops_per_equivalent_dsp=gops_per_equivalent_dsp(gops, tot["dsp"], tot["multiplier_lut"]),
        bottleneck=p.stages[ss.bottleneck].name,
        dsp_used=tot["dsp"],
        lut_used=tot["lut"],
        ff_used=tot["lut"],
        bram36_used=tot["bram36"],
        uram_used=tot["uram"],
        fits=not overflow,
        overflow=overflow,
        power_w_estimate=power,
        gops_per_watt_estimate=gops / power if power else 0.0,
        energy_mj_estimate=power / fps * 1e3,
        stages=rows,
    )


__all__ = [
    "DataflowReport",
    "StageRow",
    "fifo_resources",
    "power_estimate",
    "report_pipeline",
    "simulate_dataflow",
    "stage_resources",
]
