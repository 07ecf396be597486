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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import mul
from typing import Any, TypeVar

import numpy as np

from accelsim.config.hardware import BoardPower, HardwareConfig
from accelsim.sim._kernels import ENG_ARRAY
from accelsim.sim._memo import per_value
from accelsim.sim.engines.table import ENGINES, Activity
from accelsim.sim.resources import design_key, engine_resources
from accelsim.sim.schedule import RunResult, Schedule

#: Flip-flops per LUT of published FPGA ViT accelerators [D]: the mean of CoQMoE's ZCU102 (198.2k
#: FF / 156.1k LUT) and U280 (454.1k / 311.6k) and UbiMoE's ZCU102 (142.6k / 123.4k) and U280
#: (385.9k / 316.1k) designs ([Q] the papers' Table 2 as quoted in the research notes) = 1.276.
FF_PER_LUT = (198.2 / 156.1 + 454.1 / 311.6 + 142.6 / 123.4 + 385.9 / 316.1) / 4

X = TypeVar("X", float, np.ndarray)

#: The resource classes with a dynamic coefficient (the keys of an activity mapping).
RESOURCE_CLASSES: tuple[str, ...] = ("dsp", "bram36", "uram", "lut", "ff")


#: The components of :meth:`PowerEstimate.breakdown`, in its order.
COMPONENTS: tuple[str, ...] = (
    "static",
    "ps",
    "platform",
    "dsp",
    "bram",
    "uram",
    "lut",
    "ff",
    "clock",
    "dram",
)


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
        fixed = (self.static_w, self.ps_w, self.platform_w)
        dynamic = (self.dsp_w, self.bram_w, self.uram_w, self.lut_w, self.ff_w, self.clock_w, self.dram_w)
        return dict(zip(COMPONENTS, fixed + dynamic, strict=True))


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
    x = _Scaled.of(power, clock_mhz, counts.dsp, counts.bram36, counts.uram, counts.lut, counts.ff)
    watts = x.watts(act["dsp"], act["bram36"], act["uram"], act["lut"], act["ff"], dram_bytes_per_s)
    return _estimate(x, watts, latency_s, gops, act, counts)


# Private records built once per hardware point: plain slotted classes (a frozen dataclass pays an
# object.__setattr__ per field, a large share of a sweep point's report).
@dataclass(slots=True)
class _Scaled:
    """XPE's sum for given counts less the activities: each class's count x coefficient x clock,
    the clock tree's and the fixed terms' watts."""

    dsp: float
    bram: float
    uram: float
    lut: float
    ff: float
    toggle: float  # busy toggle over the coefficients' toggle
    clock_w: float
    fixed: tuple[float, float, float]  # static, ps, platform
    fixed_w: float  # their sum
    dram_pj_per_bit: float

    @staticmethod
    def of(
        power: BoardPower, f: float, dsp: float, bram36: float, uram: float, lut: float, ff: float
    ) -> _Scaled:
        fixed = (power.device_static_w, power.ps_w if power.ps_included else 0.0, power.platform_w)
        return _Scaled(
            dsp=dsp * power.dsp_uw_per_mhz * 1e-6 * f,
            bram=bram36 * power.bram36_uw_per_mhz * 1e-6 * f,
            uram=uram * power.uram_uw_per_mhz * 1e-6 * f,
            lut=lut * power.lut_nw_per_mhz * 1e-9 * f,
            ff=ff * power.ff_nw_per_mhz * 1e-9 * f,
            toggle=power.busy_toggle / power.toggle_default,
            clock_w=ff * power.clock_nw_per_ff_mhz * 1e-9 * f,
            fixed=fixed,
            fixed_w=fixed[0] + fixed[1] + fixed[2],
            dram_pj_per_bit=power.dram_pj_per_bit,
        )

    def watts(self, a_dsp: X, a_bram: X, a_uram: X, a_lut: X, a_ff: X, dram_bytes_per_s: X) -> tuple[X, ...]:
        """W of the dsp, bram, uram, lut, ff and dram components and the total, at these
        activities: plain arithmetic on floats (one frame) or arrays (one entry per op) alike."""
        t = self.toggle
        dsp = self.dsp * a_dsp * t
        bram = self.bram * a_bram * t
        uram = self.uram * a_uram * t
        lut = self.lut * a_lut * t
        ff = self.ff * a_ff * t
        dram = dram_bytes_per_s * 8 * self.dram_pj_per_bit * 1e-12
        total = self.fixed_w + dsp + bram + uram + lut + ff + self.clock_w + dram
        return dsp, bram, uram, lut, ff, dram, total


def _estimate(
    x: _Scaled,
    watts: tuple[float, ...],
    latency_s: float,
    gops: float,
    activity: dict[str, float],
    counts: ResourceCounts,
) -> PowerEstimate:
    dsp, bram, uram, lut, ff, dram, total = watts
    return PowerEstimate(
        static_w=x.fixed[0],
        ps_w=x.fixed[1],
        platform_w=x.fixed[2],
        dsp_w=dsp,
        bram_w=bram,
        uram_w=uram,
        lut_w=lut,
        ff_w=ff,
        clock_w=x.clock_w,
        dram_w=dram,
        total_w=total,
        energy_mj=total * latency_s * 1e3,
        gops_per_w=gops / total if total > 0 else 0.0,
        activity=activity,
        counts=counts,
    )


#: Positions in an activity vector (:func:`_components`): one per engine code, then these.
_UTIL, _BUFFERS, _DRAM = len(ENGINES), len(ENGINES) + 1, len(ENGINES) + 2


def _position(activity: Activity, code: int) -> int:
    return code if activity == "busy" else {"utilisation": _UTIL, "buffers": _BUFFERS}[activity]


# Where each count of a resource class takes its activity from: every engine by the table's power
# columns, after the extras (the epilogues' DSPs switch with the array's drain, the control LUTs
# with the DRAM channel).
_DSP_AT = (ENG_ARRAY, *(_position(e.dsp_activity, e.code) for e in ENGINES))
_BRAM_AT = tuple(_position(e.bram_activity, e.code) for e in ENGINES)
_LUT_AT = (_DRAM, *(_position(e.lut_activity, e.code) for e in ENGINES))


@dataclass(slots=True)
class _Terms:
    """One resource class's counts and the activity position of each (the nonzero ones, in the
    order the sum is taken: a zero count adds an exact 0.0), and their total ``n``."""

    counts: tuple[float, ...]
    at: tuple[int, ...]
    n: float

    @staticmethod
    def of(counts: tuple[float, ...], at: tuple[int, ...]) -> _Terms:
        return _Terms(tuple(compress(counts, counts)), tuple(compress(at, counts)), sum(counts))

    def activity(self, act: list[X]) -> X | float:
        """The count-weighted activity (0 without a count)."""
        if self.n > 0:
            return sum(map(mul, self.counts, map(act.__getitem__, self.at))) / self.n
        return 0.0


@dataclass(slots=True)
class _PowerModel:
    """What of the power of one design does not depend on the frame: the counted resources of
    each class with their activity positions, the flip-flops' two parts, and XPE's sum for them
    less the activities."""

    dsp: _Terms
    bram: _Terms
    lut: _Terms
    ff_lut: float  # the flip-flops of the LUTs (n_lut x FF_PER_LUT)
    epilogue_ff: float
    n_ff: float
    uram: float
    scaled: _Scaled
    double_buffer: bool
    clock_mhz: float
    dsps: int  # the array's
    #: :func:`model_frame_watts` of this design (:func:`_frame_code`)
    frame_watts: Callable[..., tuple[dict[str, float], float, float, float]] | None = None


def power_key(hw: HardwareConfig) -> tuple[object, ...]:
    """The values of everything :func:`_power_model` reads of ``hw`` (its memo's key)."""
    return design_key(hw), hw.clock_mhz


@per_value(power_key)
def _power_model(hw: HardwareConfig) -> _PowerModel:
    """The design's resources by the engine table's activity columns (the module doc)."""
    r = engine_resources(hw)
    epi = r.epilogue
    lut = list(r.lut)
    lut[ENG_ARRAY] += epi.lut  # the epilogues switch with the array's drain
    dsp = _Terms.of((float(epi.dsp), *r.dsp), _DSP_AT)
    bram = _Terms.of(r.bram36, _BRAM_AT)
    luts = _Terms.of((float(hw.control_luts), *lut), _LUT_AT)
    ff_lut = luts.n * FF_PER_LUT
    n_ff, uram = ff_lut + float(epi.ff), float(r.uram)
    m = _PowerModel(
        dsp=dsp,
        bram=bram,
        lut=luts,
        ff_lut=ff_lut,
        epilogue_ff=float(epi.ff),
        n_ff=n_ff,
        uram=uram,
        scaled=_Scaled.of(hw.board.power, hw.clock_mhz, dsp.n, bram.n, uram, luts.n, n_ff),
        double_buffer=hw.buffers.double_buffer,
        clock_mhz=hw.clock_mhz,
        dsps=hw.array.dsps,
    )
    m.frame_watts = _frame_code(m)
    return m


#: per structure of a design's power sum (:func:`_frame_code`), the compiled maker of its frame
#: function: a design's constants go in as the maker's argument, so a sweep compiles once per
#: structure (a handful), not once per design (~0.5 ms each)
_FRAME_MAKERS: dict[tuple[Any, ...], Callable[[tuple[Any, ...]], Callable[..., Any]]] = {}


def _frame_code(m: _PowerModel) -> Callable[..., tuple[dict[str, float], float, float, float]]:
    """:func:`model_frame_watts` for the design of ``m`` as straight-line code: :func:`_frame`'s
    and :func:`_components`' arithmetic on floats with this design's positions and switches
    written in and its counts and coefficients bound (a sweep's report computes it per point, and
    the general code's loops, sums over maps and calls took ~8 us of it). Each operation is the
    one the general code does, in its order, so the two agree to the last bit
    (``tests/sim/test_power.py``, the report pins): a sum over a class's counts is the left-to-right
    sum the builtin ``sum`` takes (its start, 0, adds nothing: every product is >= 0)."""
    classes = (("dsp", m.dsp), ("bram", m.bram), ("lut", m.lut))
    structure = (
        tuple(terms.at if terms.n > 0 else None for _, terms in classes),
        m.double_buffer,
        m.n_ff > 0,
        bool(m.uram),
    )
    x = m.scaled
    consts: list[Any] = [m.clock_mhz, m.dsps]
    for _, terms in classes:
        if terms.n > 0:
            consts += [*terms.counts, terms.n]
    consts += [m.ff_lut, m.epilogue_ff, m.n_ff] if m.n_ff > 0 else []
    consts += [
        x.toggle,
        x.dsp,
        x.bram,
        x.uram,
        x.lut,
        x.ff,
        x.dram_pj_per_bit,
        x.fixed_w,
        x.clock_w,
        *x.fixed,
    ]
    make = _FRAME_MAKERS.get(structure) or _frame_maker(m, structure)
    return make(tuple(consts))


def _frame_maker(
    m: _PowerModel, structure: tuple[Any, ...]
) -> Callable[[tuple[Any, ...]], Callable[..., Any]]:
    """Compile the maker of :func:`_frame_code`'s function for designs of ``m``'s structure: its
    constants are unpacked, in :func:`_frame_code`'s order, into the closure of the function."""
    names = ["clock_mhz", "dsps"]
    body = [
        "    def frame(total_cycles, busy, dram_busy_cycles, dram_bytes, array_dsp_cycles, macs):",
        "        total = float(total_cycles)",
        "        latency_s = total / (clock_mhz * 1e6)",
        *(f"        a{e} = min(busy[{e}] / total, 1.0)" for e in range(len(ENGINES))),
        "        dram_busy = min(dram_busy_cycles / total, 1.0)",
        f"        a{_UTIL} = min(array_dsp_cycles / (total * dsps), 1.0)",
        f"        a{_BUFFERS} = (a{ENG_ARRAY} + dram_busy) / 2"
        if m.double_buffer
        else f"        a{_BUFFERS} = min(a{ENG_ARRAY} + dram_busy, 1.0)",
        f"        a{_DRAM} = dram_busy",
    ]
    for cls, terms in (("dsp", m.dsp), ("bram", m.bram), ("lut", m.lut)):
        if terms.n > 0:
            counts = [f"{cls}_{i}" for i in range(len(terms.counts))]
            names += [*counts, f"n_{cls}"]
            s = " + ".join(f"{c} * a{p}" for c, p in zip(counts, terms.at, strict=True))
            body.append(f"        x_{cls} = ({s}) / n_{cls}")
        else:
            body.append(f"        x_{cls} = 0.0")
    if m.n_ff > 0:
        names += ["ff_lut", "epi_ff", "n_ff"]
        body.append(f"        x_ff = (ff_lut * x_lut + epi_ff * a{ENG_ARRAY}) / n_ff")
    else:
        body.append("        x_ff = 0.0")
    names += ["toggle", "s_dsp", "s_bram", "s_uram", "s_lut", "s_ff", "pj", "fixed_w", "clock_w"]
    names += [f"fixed_{i}" for i in range(len(m.scaled.fixed))]
    breakdown = ", ".join(
        f"{name!r}: {value}"
        for name, value in zip(
            COMPONENTS,
            (
                *(f"fixed_{i}" for i in range(len(m.scaled.fixed))),
                "dsp",
                "bram",
                "uram",
                "lut",
                "ff",
                "clock_w",
                "dram",
            ),
            strict=True,
        )
    )
    body += [
        f"        x_uram = a{_BUFFERS}" if m.uram else "        x_uram = 0.0",
        # _Scaled.watts
        "        dsp = s_dsp * x_dsp * toggle",
        "        bram = s_bram * x_bram * toggle",
        "        uram = s_uram * x_uram * toggle",
        "        lut = s_lut * x_lut * toggle",
        "        ff = s_ff * x_ff * toggle",
        "        dram = dram_bytes / latency_s * 8 * pj * 1e-12",
        "        total_w = fixed_w + dsp + bram + uram + lut + ff + clock_w + dram",
        # model_frame_watts
        f"        breakdown = {{{breakdown}}}",
        "        gops = 2 * macs / latency_s / 1e9",
        "        return breakdown, total_w, total_w * latency_s * 1e3, gops / total_w if total_w > 0 else 0.0",
        "    return frame",
    ]
    src = f"def make(k):\n    {', '.join(names)}, = k\n" + "\n".join(body) + "\n"
    env: dict[str, Any] = {}
    exec(src, env)  # the source: names and operators only, the values come in as ``k``
    _FRAME_MAKERS[structure] = env["make"]
    return env["make"]


def power_model(hw: HardwareConfig) -> _PowerModel:
    """What of ``hw``'s power does not depend on the frame (remembered by value), for
    :func:`model_frame_watts`."""
    return _power_model(hw)


def _components(
    m: _PowerModel, act: list[X], dram_bytes_per_s: X
) -> tuple[tuple[X | float, ...], tuple[X, ...]]:
    """The class activities (:data:`RESOURCE_CLASSES`' order) and :meth:`_Scaled.watts` from the
    activity vector: per engine code its busy fraction, then the array's utilisation, its
    buffers' activity and the DRAM channel's busy fraction. Plain arithmetic on floats (one frame)
    or arrays (one entry per op: the layer table) alike, in the order XPE's sum is taken, so the
    two agree to the last bit."""
    a_dsp = m.dsp.activity(act)
    a_bram = m.bram.activity(act)
    a_lut = m.lut.activity(act)
    a_ff = (m.ff_lut * a_lut + m.epilogue_ff * act[ENG_ARRAY]) / m.n_ff if m.n_ff > 0 else 0.0
    a_uram = act[_BUFFERS] if m.uram else 0.0
    acts = (a_dsp, a_bram, a_uram, a_lut, a_ff)
    # a class without a count has the activity 0.0 (a float) where the others are arrays
    return acts, m.scaled.watts(*acts, dram_bytes_per_s)  # type: ignore[arg-type]


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
        return _no_frame(hw)
    m, latency_s, acts, watts = _frame(
        _power_model(hw), total_cycles, busy_cycles, dram_busy_cycles, dram_bytes, array_dsp_cycles
    )
    activity = dict(zip(RESOURCE_CLASSES, acts, strict=True))
    counts = ResourceCounts(dsp=m.dsp.n, bram36=m.bram.n, uram=m.uram, lut=m.lut.n, ff=m.n_ff)
    return _estimate(m.scaled, watts, latency_s, 2 * macs / latency_s / 1e9, activity, counts)


def _no_frame(hw: HardwareConfig) -> PowerEstimate:
    """:func:`frame_power` of a frame of no cycles: nothing toggles, no resource counted."""
    return xpe_power(hw.board.power, hw.clock_mhz, ResourceCounts())


def frame_watts(
    hw: HardwareConfig,
    *,
    total_cycles: int,
    busy_cycles: Sequence[float] | np.ndarray,
    dram_busy_cycles: float,
    dram_bytes: float,
    array_dsp_cycles: float,
    macs: int,
) -> tuple[dict[str, float], float, float, float]:
    """:func:`frame_power`'s ``breakdown()``, ``total_w``, ``energy_mj`` and ``gops_per_w``,
    without building the estimate (the report's path: a sweep builds thousands)."""
    if total_cycles <= 0:
        e = _no_frame(hw)
        return e.breakdown(), e.total_w, e.energy_mj, e.gops_per_w
    return model_frame_watts(
        _power_model(hw), total_cycles, busy_cycles, dram_busy_cycles, dram_bytes, array_dsp_cycles, macs
    )


def model_frame_watts(
    m: _PowerModel,
    total_cycles: int,
    busy_cycles: Sequence[float] | np.ndarray,
    dram_busy_cycles: float,
    dram_bytes: float,
    array_dsp_cycles: float,
    macs: int,
) -> tuple[dict[str, float], float, float, float]:
    """:func:`frame_watts` of a frame with ``total_cycles`` > 0 on the design of ``m``
    (:func:`power_model`): the report has the model, and looks nothing up again."""
    if m.frame_watts is not None:
        busy = busy_cycles.tolist() if isinstance(busy_cycles, np.ndarray) else busy_cycles
        return m.frame_watts(total_cycles, busy, dram_busy_cycles, dram_bytes, array_dsp_cycles, macs)
    _, latency_s, _, watts = _frame(
        m, total_cycles, busy_cycles, dram_busy_cycles, dram_bytes, array_dsp_cycles
    )
    dsp, bram, uram, lut, ff, dram, total_w = watts
    x = m.scaled
    breakdown = dict(zip(COMPONENTS, (*x.fixed, dsp, bram, uram, lut, ff, x.clock_w, dram), strict=True))
    gops = 2 * macs / latency_s / 1e9
    return breakdown, total_w, total_w * latency_s * 1e3, gops / total_w if total_w > 0 else 0.0


def _frame(
    m: _PowerModel,
    total_cycles: int,
    busy_cycles: Sequence[float] | np.ndarray,
    dram_busy_cycles: float,
    dram_bytes: float,
    array_dsp_cycles: float,
) -> tuple[_PowerModel, float, tuple[float, ...], tuple[float, ...]]:
    """The model, the latency (s) and :func:`_components` of one frame."""
    total = float(total_cycles)
    latency_s = total / (m.clock_mhz * 1e6)
    busy = busy_cycles.tolist() if isinstance(busy_cycles, np.ndarray) else busy_cycles
    act = [min(b / total, 1.0) for b in busy]
    array_busy = act[ENG_ARRAY]
    dram_busy = min(dram_busy_cycles / total, 1.0)
    act += [
        min(array_dsp_cycles / (total * m.dsps), 1.0),
        (array_busy + dram_busy) / 2 if m.double_buffer else min(array_busy + dram_busy, 1.0),
        dram_busy,
    ]
    acts, watts = _components(m, act, dram_bytes / latency_s)
    return m, latency_s, acts, watts


def layer_power(
    hw: HardwareConfig,
    *,
    cycles: np.ndarray,
    engine: np.ndarray,
    busy_cycles: np.ndarray,
    dram_busy_cycles: np.ndarray,
    dram_bytes: np.ndarray,
    array_dsp_cycles: np.ndarray,
) -> np.ndarray:
    """:func:`frame_power`'s ``total_w`` of each of several ops run alone (array code over all of
    them, equal to the last bit to one :func:`frame_power` call per op).

    Args:
        hw: the design.
        cycles: per op, the cycles it takes (> 0).
        engine: per op, the engine code it runs on (>= 0).
        busy_cycles: per op, the cycles its engine computes.
        dram_busy_cycles, dram_bytes, array_dsp_cycles: per op, as :func:`frame_power`'s.
    """
    m = _power_model(hw)
    total = cycles.astype(np.float64)
    latency_s = total / (hw.clock_mhz * 1e6)
    busy = np.minimum(busy_cycles / total, 1.0)
    zero = np.zeros_like(total)
    act = [np.where(engine == code, busy, zero) for code in range(len(ENGINES))]
    array_busy = act[ENG_ARRAY]
    dram_busy = np.minimum(dram_busy_cycles / total, 1.0)
    both = array_busy + dram_busy
    act += [
        np.minimum(array_dsp_cycles / (total * hw.array.dsps), 1.0),
        both / 2 if m.double_buffer else np.minimum(both, 1.0),
        dram_busy,
    ]
    return np.asarray(_components(m, act, dram_bytes / latency_s)[1][-1], dtype=np.float64)


__all__ = [
    "COMPONENTS",
    "FF_PER_LUT",
    "RESOURCE_CLASSES",
    "PowerEstimate",
    "ResourceCounts",
    "estimate_power",
    "frame_power",
    "frame_watts",
    "layer_power",
    "xpe_power",
]
