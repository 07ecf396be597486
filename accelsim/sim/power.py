"""FPGA power and energy per frame, estimated the way Xilinx's power estimators work.

XPE (UG440) and PDM (UG1556) add device static power to a dynamic power per used resource: count x
coefficient x clock x (toggle rate / the default 12.5 %), the toggle scaled by the enable rate of
blocks with a clock enable. This module does the same with the board's
:class:`~accelsim.config.hardware.BoardPower` coefficients (sources and labels in the board YAMLs),
and takes the activity from the simulation instead of the estimator's default:

- **DSP**: the array's slices by the array utilisation (DSP-cycles of its MACs over
  ``total_cycles x`` its DSPs: an unmapped or idle PE has no operand toggling), each unit's
  slices by its busy fraction (a reconfigurable unit that assists the array's GEMMs is not marked
  busy by the schedule then, so its share of those GEMMs is missing: optimistic).
- **BRAM36/URAM**: the array's buffers by the array's busy fraction, their other half by the DRAM
  channel's when double buffered (one half feeds the array while DMA fills the other), the sum of
  the two (at most 1) when not. Busy fraction, not bytes over port width, because every block of
  a buffer is enabled on each access: Vivado's default splits a deep memory into blocks side by
  side for timing, and only ``RAM_DECOMP = "power"`` address-decodes them so that one block works
  per access (UG912, RAM_DECOMP); the ports are sized to feed the array edge every cycle it
  computes (:mod:`accelsim.sim.resources`). A unit's private BRAM by the unit's busy fraction.
- **LUT/FF**: by the busy fraction of the engine they belong to (``array.lut_per_pe`` per PE and
  the LUT multipliers with the array, the units' LUTs with each unit); ``control_luts`` (DMA, AXI interconnect) by the DRAM
  channel's busy fraction. FFs are not in the resource model (they never bind: an UltraScale+ CLB
  has 16 flip-flops per 8 LUTs, UG574); :data:`FF_PER_LUT` estimates them, plus the epilogues'
  pipeline registers counted as built (:func:`~accelsim.sim.resources.epilogue_resources`).
- **Epilogues**: their DSPs, LUTs and registers work on every result the array drains, so they
  switch with the array's busy fraction (their LUTs are counted with the array's).
- **Clock tree**: every flip-flop's clock, every cycle (no clock gating modelled).
- **DRAM**: bytes moved x 8 x the board's pJ per bit, over the frame's latency.

The processing system (Zynq PS8) and a card's platform (Alveo shell) are fixed terms, counted as
the board says. DSP operand width (UG440: x 0.86 for 18x18, x 0.8 for 12x12 against the 27x18
default) is not modelled: packed INT8 fills the 27x18 multiplier. An estimate, not a measurement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from accelsim.config.hardware import BoardPower, HardwareConfig
from accelsim.sim._kernels import ENG_ARRAY
from accelsim.sim.engines.table import ENGINE_NAMES
from accelsim.sim.engines.units import registered_units
from accelsim.sim.resources import epilogue_resources, estimate_resources, per_config
from accelsim.sim.schedule import RunResult, Schedule

#: Flip-flops per LUT of published FPGA ViT accelerators [D]: the mean of CoQMoE's ZCU102 (198.2k
#: FF / 156.1k LUT) and U280 (454.1k / 311.6k) and UbiMoE's ZCU102 (142.6k / 123.4k) and U280
#: (385.9k / 316.1k) designs ([Q] the papers' Table 2 as quoted in the research notes) = 1.276.
FF_PER_LUT = (198.2 / 156.1 + 454.1 / 311.6 + 142.6 / 123.4 + 385.9 / 316.1) / 4

#: The resource classes with a dynamic coefficient (the keys of an activity mapping).
RESOURCE_CLASSES: tuple[str, ...] = ("dsp", "bram36", "uram", "lut", "ff")


@dataclass(frozen=True)
class ResourceCounts:
    """What the power model counts: DSP slices, BRAM36 and URAM288 blocks, LUTs and flip-flops."""

    dsp: float = 0.0
    bram36: float = 0.0
    uram: float = 0.0
    lut: float = 0.0
    ff: float = 0.0


@dataclass(frozen=True)
class PowerEstimate:
    """Power of a design in W, by component, and what it makes of one frame.

    ``static_w`` is the device's (programmable logic, processing system and in-package memory);
    ``ps_w`` the processing system's dynamic power and ``platform_w`` a card's shell, both fixed;
    ``dsp_w`` ... ``clock_w`` the dynamic power of the resources; ``dram_w`` the off-chip memory's.
    ``energy_mj`` = ``total_w`` x the frame's latency and ``gops_per_w`` = GOPS / ``total_w`` (0
    without a frame). ``activity``: per resource class, the count-weighted fraction of cycles at
    the busy toggle rate (1.0 everywhere is the estimator's default); ``counts``: what was counted.
    """

    static_w: float
    ps_w: float
    platform_w: float
    dsp_w: float
    bram_w: float
    uram_w: float
    lut_w: float
    ff_w: float
    clock_w: float
    dram_w: float
    total_w: float
    energy_mj: float
    gops_per_w: float
    activity: dict[str, float] = field(default_factory=dict)
    counts: ResourceCounts = ResourceCounts()

    def breakdown(self) -> dict[str, float]:
        """W per component, summing to ``total_w`` (the report's JSON)."""
        return {
            "static": self.static_w,
            "ps": self.ps_w,
            "platform": self.platform_w,
            "dsp": self.dsp_w,
            "bram": self.bram_w,
            "uram": self.uram_w,
            "lut": self.lut_w,
            "ff": self.ff_w,
            "clock": self.clock_w,
            "dram": self.dram_w,
        }


def xpe_power(
    power: BoardPower,
    clock_mhz: float,
    counts: ResourceCounts,
    activity: Mapping[str, float] | None = None,
    *,
    dram_bytes_per_s: float = 0.0,
    latency_s: float = 0.0,
    gops: float = 0.0,
) -> PowerEstimate:
    """XPE's sum for resource counts at a clock: static + fixed terms + per-resource dynamic + DRAM.

    Args:
        power: the board's coefficients.
        clock_mhz: the clock of every counted resource.
        counts: the resources used.
        activity: per class of :data:`RESOURCE_CLASSES`, the fraction of cycles it switches at
            ``power.busy_toggle``; a missing class is 1.0 (the estimator's default, as in a
            vectorless Vivado estimate). The clock tree always switches.
        dram_bytes_per_s: off-chip traffic.
        latency_s, gops: of one frame, for ``energy_mj`` and ``gops_per_w`` (0: not computed).

    Raises:
        ValueError: an activity outside [0, 1] or for an unknown class.

    Examples:
        >>> from accelsim.config.hardware import get_board
        >>> p = xpe_power(get_board("zcu102").power, 200.0, ResourceCounts(dsp=1000))
        >>> round(p.dsp_w, 3)  # 1000 x 4.4 uW/MHz x 200 MHz
        0.88
    """
    act = {k: 1.0 for k in RESOURCE_CLASSES}
    for k, v in (activity or {}).items():
        if k not in act:
            raise ValueError(f"activity for unknown resource class {k!r} (known: {', '.join(act)})")
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"activity[{k!r}] = {v} is outside [0, 1]")
        act[k] = float(v)
    toggle = power.busy_toggle / power.toggle_default
    f = clock_mhz
    dsp = counts.dsp * power.dsp_uw_per_mhz * 1e-6 * f * act["dsp"] * toggle
    bram = counts.bram36 * power.bram36_uw_per_mhz * 1e-6 * f * act["bram36"] * toggle
    uram = counts.uram * power.uram_uw_per_mhz * 1e-6 * f * act["uram"] * toggle
    lut = counts.lut * power.lut_nw_per_mhz * 1e-9 * f * act["lut"] * toggle
    ff = counts.ff * power.ff_nw_per_mhz * 1e-9 * f * act["ff"] * toggle
    clock = counts.ff * power.clock_nw_per_ff_mhz * 1e-9 * f
    dram = dram_bytes_per_s * 8 * power.dram_pj_per_bit * 1e-12
    static = power.device_static_w
    ps = power.ps_w if power.ps_included else 0.0
    total = static + ps + power.platform_w + dsp + bram + uram + lut + ff + clock + dram
    return PowerEstimate(
        static_w=static,
        ps_w=ps,
        platform_w=power.platform_w,
        dsp_w=dsp,
        bram_w=bram,
        uram_w=uram,
        lut_w=lut,
        ff_w=ff,
        clock_w=clock,
        dram_w=dram,
        total_w=total,
        energy_mj=total * latency_s * 1e3,
        gops_per_w=gops / total if total > 0 else 0.0,
        activity=act,
        counts=counts,
    )


@dataclass(frozen=True)
class _DesignCounts:
    """A design's resources by the engine whose activity drives them (index: engine code)."""

    dsp: tuple[float, ...]
    bram36: tuple[float, ...]  # the array's entry: its input, weight and output buffers
    lut: tuple[float, ...]
    uram: float  # the array's buffers
    control_lut: float  # DMA, AXI interconnect, controller
    epilogue_dsp: float  # requantisation multipliers in the drain path
    epilogue_ff: float  # the epilogues' pipeline registers


@per_config
def _design_counts(hw: HardwareConfig) -> _DesignCounts:
    res = estimate_resources(hw)
    n = len(ENGINE_NAMES)
    dsp, bram, lut = [0.0] * n, [0.0] * n, [0.0] * n
    for unit in registered_units():
        if unit.present(hw):
            u = unit.resources(hw)
            dsp[unit.code], bram[unit.code], lut[unit.code] = u.dsp, u.bram36, u.lut
    dsp[ENG_ARRAY] = hw.array.dsps
    bram[ENG_ARRAY] = res.bram36 - sum(bram)
    lut[ENG_ARRAY] = res.lut - hw.control_luts - sum(lut)
    epi = epilogue_resources(hw)
    return _DesignCounts(
        tuple(dsp),
        tuple(bram),
        tuple(lut),
        float(res.uram),
        float(hw.control_luts),
        float(epi.dsp),
        float(epi.ff),
    )


def _weighted(counts: tuple[float, ...], activity: list[float]) -> tuple[float, float]:
    """(total count, count-weighted activity)."""
    n = sum(counts)
    return n, (sum(c * a for c, a in zip(counts, activity, strict=True)) / n if n > 0 else 0.0)


def estimate_power(schedule: Schedule, result: RunResult) -> PowerEstimate:
    """The power of ``schedule``'s design running the frame ``result`` timed (see the module doc)."""
    s = result.arrays
    return frame_power(
        schedule.hardware,
        total_cycles=result.total_cycles,
        busy_cycles=s.busy,
        dram_busy_cycles=float(s.dram_cycles.sum()),
        dram_bytes=float(s.load_bytes.sum() + s.store_bytes.sum()),
        array_dsp_cycles=schedule.array_dsp_cycles(),
        macs=schedule.graph.total_macs,
    )


def frame_power(
    hw: HardwareConfig,
    *,
    total_cycles: int,
    busy_cycles: Sequence[float] | np.ndarray,
    dram_busy_cycles: float,
    dram_bytes: float,
    array_dsp_cycles: float,
    macs: int,
) -> PowerEstimate:
    """:func:`estimate_power` from a run's totals (what the report has computed already).

    Args:
        hw: the design.
        total_cycles: of the frame.
        busy_cycles: per engine code, the cycles it computed.
        dram_busy_cycles: cycles the DRAM channel(s) transferred.
        dram_bytes: loaded plus stored.
        array_dsp_cycles: DSP-cycles of the array's MACs (MACs / products per DSP, summed).
        macs: of the frame (for GOPS/W).
    """
    if total_cycles <= 0:
        return xpe_power(hw.board.power, hw.clock_mhz, ResourceCounts())
    total = float(total_cycles)
    latency_s = total / (hw.clock_mhz * 1e6)
    c = _design_counts(hw)
    busy = [min(float(b) / total, 1.0) for b in busy_cycles]
    util = min(array_dsp_cycles / (total * c.dsp[ENG_ARRAY]), 1.0)
    dram_busy = min(dram_busy_cycles / total, 1.0)
    array_busy = busy[ENG_ARRAY]
    buffers = (array_busy + dram_busy) / 2 if hw.buffers.double_buffer else min(array_busy + dram_busy, 1.0)
    n_dsp, a_dsp = _weighted((c.epilogue_dsp, *c.dsp), [array_busy, util, *busy[1:]])
    n_bram, a_bram = _weighted(c.bram36, [buffers, *busy[1:]])
    n_lut, a_lut = _weighted((c.control_lut, *c.lut), [dram_busy, *busy])
    n_ff, a_ff = _weighted((n_lut * FF_PER_LUT, c.epilogue_ff), [a_lut, array_busy])
    counts = ResourceCounts(dsp=n_dsp, bram36=n_bram, uram=c.uram, lut=n_lut, ff=n_ff)
    activity = {"dsp": a_dsp, "bram36": a_bram, "uram": buffers if c.uram else 0.0, "lut": a_lut, "ff": a_ff}
    return xpe_power(
        hw.board.power,
        hw.clock_mhz,
        counts,
        activity,
        dram_bytes_per_s=dram_bytes / latency_s,
        latency_s=latency_s,
        gops=2 * macs / latency_s / 1e9,
    )


__all__ = [
    "FF_PER_LUT",
    "RESOURCE_CLASSES",
    "PowerEstimate",
    "ResourceCounts",
    "estimate_power",
    "frame_power",
    "xpe_power",
]
