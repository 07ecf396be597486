"""The simulation report: what FPGA accelerator papers report, per design and per layer.

:func:`build_report` turns a :class:`~accelsim.sim.schedule.Schedule` and its
:class:`~accelsim.sim.schedule.RunResult` into a :class:`Report`: plain data, cheap to build (a
search builds thousands). The scalars are computed at once; the per-layer columns are read from
the schedule's and the run's arrays on first use (nothing is run again).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from accelsim._io import strict_json, write_text_atomic
from accelsim.config.hardware import HardwareConfig
from accelsim.sim._kernels import (
    CLS_DWCONV,
    CLS_GEMM,
    CLS_LA_AUX,
    ENG_ARRAY,
    ENG_DWCONV,
    ENG_LINATT,
)
from accelsim.sim._memo import config_values, per_value
from accelsim.sim.efficiency import gops_per_equivalent_dsp, gops_per_klut
from accelsim.sim.engines import systolic
from accelsim.sim.engines.systolic import DATAFLOW_NAMES, DF_TREE, DF_WS
from accelsim.sim.engines.table import ENGINE_NAMES
from accelsim.sim.graph_arrays import GraphArrays
from accelsim.sim.power import frame_watts, layer_power, model_frame_watts, power_key, power_model
from accelsim.sim.resources import Resources, estimate_resources
from accelsim.sim.schedule import RunResult, Schedule

#: What sets an op's time (:class:`LayerRow`'s ``bound``), by code.
BOUND_NAMES = ("compute", "memory", "weight load")
BOUND_COMPUTE, BOUND_MEMORY, BOUND_WEIGHTS = 0, 1, 2

#: Kinds that run badly on the engine they fall back to, and the config section whose unit runs
#: them (:meth:`Report.hints`).
_BETTER_UNIT = {
    ("dwconv2d", "array"): "units.dwconv",
    ("linear_attention", "array"): "units.linear_attention",
}

LAYER_FIELDS = (
    "name",
    "kind",
    "engine",
    "dataflow",
    "macs",
    "cycles",
    "compute_cycles",
    "stall_cycles",
    "bound",
    "utilization",
    "power_w_estimate",
    "energy_uj_estimate",
    "scalesim_mapping_efficiency",
    "scalesim_compute_utilization",
    "dram_load_bytes",
    "dram_store_bytes",
    "start",
    "end",
    "module",
)


@dataclass(frozen=True)
class LayerRow:
    """One op of the graph as it ran.

    ``compute_cycles`` are stall-free; for a GEMM on the array they follow SCALE-Sim's convention
    (index of the last busy cycle, i.e. busy cycles - 1) in both timing modes. ``cycles`` = compute
    + stall cycles on its engine. ``utilization`` = MACs / (``cycles`` x the engine's peak MACs per
    cycle for the op's operand bits), for ops on a MAC engine (array, linear-attention unit,
    depthwise engine). ``scalesim_mapping_efficiency`` and ``scalesim_compute_utilization`` are
    SCALE-Sim's fold averages (GEMMs on the array only). ``dataflow`` is the one the mapper chose
    (array GEMMs). ``start``/``end`` are absolute cycles (``end`` includes its last store);
    ``bound`` says what sets the op's time: ``weight load`` when its weights do (their DRAM
    transfers take longer than its compute, or, for a GEMV-like GEMM on a weight-stationary array,
    fewer rows stream through a fold than the array has, so shifting each fold's weights into the
    PEs is the array's work: the M = 1 classifier), ``memory`` when its other DRAM transfers do,
    ``compute`` otherwise.
    ``power_w_estimate``: the design's power while the op runs alone (:func:`~accelsim.sim.power.frame_power`
    over the op's ``cycles``: its engine busy for its compute cycles, its DRAM traffic, device
    static power included) and ``energy_uj_estimate`` that over its ``cycles``; ops that overlap
    each count the static power, so the column sums to more than the frame's energy. None on a
    virtual board (a SCALE-Sim config: no power model).
    """

    name: str
    kind: str
    engine: str
    dataflow: str
    macs: int
    cycles: int
    compute_cycles: int
    stall_cycles: int
    bound: str
    utilization: float | None
    power_w_estimate: float | None
    energy_uj_estimate: float | None
    scalesim_mapping_efficiency: float | None
    scalesim_compute_utilization: float | None
    dram_load_bytes: int
    dram_store_bytes: int
    start: int
    end: int
    module: str = ""  # the timm module path the op came from (empty for hand-built graphs)


@dataclass(frozen=True, eq=False)
class LayerTable:
    """The per-layer columns (one entry per op, topological order); see :class:`LayerRow`.

    Float columns hold NaN where a value does not apply; ``engine`` and ``dataflow`` are codes
    (-1: none); ``bound`` holds indices into :data:`BOUND_NAMES`.
    """

    names: list[str]
    kinds: list[str]
    modules: list[str]
    engine: np.ndarray
    dataflow: np.ndarray
    macs: np.ndarray
    compute_cycles: np.ndarray
    stall_cycles: np.ndarray
    bound: np.ndarray
    utilization: np.ndarray
    power_w: np.ndarray
    energy_uj: np.ndarray
    scalesim_mapping_efficiency: np.ndarray
    scalesim_compute_utilization: np.ndarray
    dram_load_bytes: np.ndarray
    dram_store_bytes: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def rows(self) -> list[LayerRow]:
        def opt(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        out = []
        for i, name in enumerate(self.names):
            e, df = int(self.engine[i]), int(self.dataflow[i])
            c, st = int(self.compute_cycles[i]), int(self.stall_cycles[i])
            out.append(
                LayerRow(
                    name=name,
                    kind=self.kinds[i],
                    engine=ENGINE_NAMES[e] if e >= 0 else "none",
                    dataflow=DATAFLOW_NAMES[df] if df >= 0 else "",
                    macs=int(self.macs[i]),
                    cycles=c + st,
                    compute_cycles=c,
                    stall_cycles=st,
                    bound=BOUND_NAMES[int(self.bound[i])],
                    utilization=opt(self.utilization[i]),
                    power_w_estimate=opt(self.power_w[i]),
                    energy_uj_estimate=opt(self.energy_uj[i]),
                    scalesim_mapping_efficiency=opt(self.scalesim_mapping_efficiency[i]),
                    scalesim_compute_utilization=opt(self.scalesim_compute_utilization[i]),
                    dram_load_bytes=int(self.dram_load_bytes[i]),
                    dram_store_bytes=int(self.dram_store_bytes[i]),
                    start=int(self.start[i]),
                    end=int(self.end[i]),
                    module=self.modules[i],
                )
            )
        return out


@dataclass(frozen=True, eq=False)
class Report:
    """Result of :func:`accelsim.simulate`. GOPS = 2 x MACs / latency; ``*_estimate`` fields come
    from the board's power coefficients (:mod:`accelsim.sim.power`) and are estimates, not
    measurements: ``power_w_estimate`` is the total, ``energy_mj_estimate`` that over the frame's
    latency, ``power_breakdown_w_estimate`` its components (static, ps, platform, dsp, bram, uram,
    lut, ff, clock, dram).
    ``array_utilization``: DSP-cycles of the array's MACs (MACs on DSPs / products per DSP) over
    ``total_cycles x`` the array's DSPs. ``engine_busy_cycles`` / ``engine_utilization``: cycles each
    engine computed, and that over ``total_cycles`` (engines run concurrently when the config
    overlaps them). ``array`` describes the array (``32x64 ws, pipelined``).
    ``frames``: frames per run (the graph's batch; ``fps`` = ``frames`` / latency, the throughput;
    ``energy_mj_estimate`` is the run's). ``precision``: the MAC ops' operand bits (``W8A8``;
    several, by MAC share, when mixed). ``virtual_board``: the board is a stand-in sized to fit the
    design (a SCALE-Sim config): ``fits`` means nothing then and the power fields are NaN (None in
    JSON)."""

    graph: str
    hardware: str
    board: str
    array: str
    clock_mhz: float
    total_cycles: int
    latency_ms: float
    fps: float
    total_macs: int
    gops: float
    gops_per_dsp: float
    #: GOPS per kLUT and per equivalent DSP (LUT multipliers converted, :mod:`accelsim.sim.efficiency`)
    gops_per_klut: float
    gops_per_equivalent_dsp: float
    dsp_used: int
    bram36_used: int
    uram_used: int
    lut_used: int
    array_utilization: float
    dram_bytes: int
    dram_load_bytes: int
    dram_store_bytes: int
    fits: bool
    overflow: list[str]
    energy_mj_estimate: float
    power_w_estimate: float
    gops_per_watt_estimate: float
    power_breakdown_w_estimate: dict[str, float]
    engine_busy_cycles: dict[str, int]
    engine_utilization: dict[str, float]
    # the arrays the per-layer columns are read from (never run again): built on first use, since
    # a sweep reads only the scalars of most of its reports; or a function that maps and runs the
    # point again (a report built from a worker process's numbers, accelsim.sim.driver)
    _source: tuple[Schedule, RunResult] | Callable[[], tuple[Schedule, RunResult]] = field(
        repr=False, compare=False
    )
    frames: int = 1
    precision: str = ""
    virtual_board: bool = False

    @cached_property
    def layer_table(self) -> LayerTable:
        """The per-layer columns."""
        source = self._source
        return _layer_table(*(source() if callable(source) else source))

    @cached_property
    def layers(self) -> list[LayerRow]:
        """One row per op, in topological order (data-movement ops included, with zero cycles)."""
        return self.layer_table.rows()

    # -- export -----------------------------------------------------------------------------------
    def to_dict(self, layers: bool = True) -> dict[str, Any]:
        """JSON-ready dict: the scalars above, ``engine_busy_cycles`` and (optionally) ``layers``."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("_source", "layer_table", "layers")}
        d["overflow"] = list(self.overflow)
        if self.virtual_board:  # no real board: nothing to fit, no power coefficients
            d["fits"] = None
            for k in ("energy_mj_estimate", "power_w_estimate", "gops_per_watt_estimate"):
                d[k] = None
            d["power_breakdown_w_estimate"] = {}
        if layers:
            d["layers"] = [asdict(r) for r in self.layers]
        return d

    def to_json(self) -> str:
        """The report as strict JSON (a NaN or infinity is null), as ``accelsim simulate --json`` writes it."""
        return strict_json(self.to_dict(), indent=2) + "\n"

    def to_csv(self) -> str:
        """The per-layer rows as CSV (one row per op; empty cells for n/a)."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(LAYER_FIELDS)
        for r in self.layers:
            w.writerow(["" if v is None else v for v in (getattr(r, k) for k in LAYER_FIELDS)])
        return buf.getvalue()

    def save_csv(self, path: str) -> None:
        write_text_atomic(path, self.to_csv())

    def hints(self, min_ops: int = 4, min_share: float = 0.05) -> list[str]:
        """One line per op kind of which at least ``min_ops`` ops, taking ``min_share`` of the
        frame's cycles or more, ran on an engine that suits them badly while a unit for them
        exists (``22 dwconv2d ops on the array (88% of the cycles): a config with units.dwconv
        runs them``); the largest share first."""
        found = []
        for (kind, engine), section in _BETTER_UNIT.items():
            rows = [r for r in self.layers if r.kind == kind and r.engine == engine]
            share = sum(r.cycles for r in rows) / self.total_cycles if self.total_cycles else 0.0
            if len(rows) >= min_ops and share >= min_share:
                line = f"{len(rows)} {kind} ops on the {engine} ({share:.0%} of the cycles): a config with {section} runs them"
                found.append((share, line))
        return [line for _, line in sorted(found, reverse=True)]

    def table(self, max_layers: int = 40) -> str:
        """A readable terminal summary plus the most expensive layers."""
        fit = "yes" if self.fits else "NO (" + "; ".join(self.overflow) + ")"
        per = f"per batch of {self.frames} " if self.frames > 1 else ""
        mode = f" (throughput, batch {self.frames})" if self.frames > 1 else ""
        lines = [
            # the array printed from the config itself: a copied YAML keeps its old ``name``
            f"{self.graph} ({self.precision}) on {self.hardware} ({self.board}, {self.array}, {self.clock_mhz:g} MHz)",
            f"  latency {self.latency_ms:.3f} ms {per}({self.total_cycles:,} cycles)   {self.fps:,.1f} FPS{mode}",
            f"  {self.gops:,.1f} GOPS   {self.gops_per_dsp:.3f} GOPS/DSP   {self.gops_per_klut:.2f} GOPS/kLUT"
            f"   array utilisation {self.array_utilization:.1%}",
        ]
        used = f"  DSP {self.dsp_used:,}  BRAM36 {self.bram36_used:,}  URAM {self.uram_used:,}  LUT ~{self.lut_used:,}"
        if self.virtual_board:
            lines.append(f"{used}   board: none (a virtual board sized to fit: no fit check, no power)")
        else:
            lines.append(f"{used}   fits: {fit}")
        lines.append(
            f"  DRAM {self.dram_bytes / 2**20:.2f} MiB (load {self.dram_load_bytes / 2**20:.2f}, "
            f"store {self.dram_store_bytes / 2**20:.2f})"
        )
        if not self.virtual_board:
            lines.append(
                f"  power ~{self.power_w_estimate:.2f} W, ~{self.energy_mj_estimate / self.frames:.2f} mJ/frame, "
                f"~{self.gops_per_watt_estimate:.1f} GOPS/W (estimate: "
                + ", ".join(f"{k} {v:.2f}" for k, v in self.power_breakdown_w_estimate.items() if v)
                + " W)"
            )
        lines += [
            "  busy cycles: "
            + ", ".join(
                f"{k} {v:,} ({self.engine_utilization[k]:.0%})"
                for k, v in self.engine_busy_cycles.items()
                if v
            ),
        ]
        rows = sorted((r for r in self.layers if r.engine != "none"), key=lambda r: -r.cycles)[:max_layers]
        if rows:
            lines.append(
                f"  {'layer':<18}{'module':<26}{'kind':<11}{'engine':<9}{'df':<4}{'MMACs':>9}{'cycles':>11}"
                f"{'stall':>9}{'bound':>12}{'util':>7}"
            )
            for r in rows:
                util = "" if r.utilization is None else f"{r.utilization:.0%}"
                lines.append(
                    f"  {r.name[:17]:<18}{r.module[-25:]:<26}{r.kind[:10]:<11}{r.engine[:8]:<9}{r.dataflow:<4}"
                    f"{r.macs / 1e6:>9.2f}{r.cycles:>11,}{r.stall_cycles:>9,}{r.bound:>12}{util:>7}"
                )
            n_more = sum(1 for r in self.layers if r.engine != "none") - len(rows)
            if n_more > 0:
                lines.append(f"  ... {n_more} more layers (see --csv/--json)")
        lines += [f"  hint: {h}" for h in self.hints()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _layer_table(schedule: Schedule, result: RunResult) -> LayerTable:
    ga, p, hw, s = schedule.graph, schedule.plan, schedule.hardware, result.arrays
    engine = schedule.engine.copy()
    # ReLU and divide of a linear attention done inside its unit: shown on that unit
    engine[(engine < 0) & (ga.cls == CLS_LA_AUX)] = ENG_LINATT
    gemm = (schedule.engine == ENG_ARRAY) & np.isin(ga.cls, (CLS_GEMM, CLS_DWCONV)) & (ga.shape_id >= 0)
    # SCALE-Sim counts a GEMM's compute cycles as the index of its last busy cycle (busy - 1).
    comp = p.comp - gemm
    n = ga.n_ops
    mapping = np.full(n, np.nan)
    s_util = np.full(n, np.nan)
    idx = np.flatnonzero(gemm & (p.dataflow != DF_TREE))  # SCALE-Sim's figures: systolic arrays only
    if idx.size:
        sid = ga.shape_id[idx]
        pk = schedule.shape_packing[sid]
        ones = np.ones(idx.size, dtype=np.int64)
        # Dims were validated when the graph was compiled: call the kernel directly. SCALE-Sim's
        # fold averages describe one GEMM (batch 1), like its reports.
        _, _, mapping[idx], s_util[idx] = systolic.gemm_timing_kernel(
            ga.M[idx],
            ga.K[idx],
            ga.N[idx],
            ones * hw.array.rows,
            ones * hw.array.cols,
            p.dataflow[idx],
            ones * systolic.TIMING_CODES[hw.array.timing],
            np.ascontiguousarray(pk[:, 0]),
            np.ascontiguousarray(pk[:, 1]),
            np.ascontiguousarray(pk[:, 2]),
        )
    # Peak MACs per cycle of the engine each op ran on (0: not a MAC engine).
    peak = np.zeros(n, dtype=np.float64)
    array_ops = schedule.engine == ENG_ARRAY
    lut_macs = hw.array.lut_macs.macs if hw.array.lut_macs is not None else 0
    peak[array_ops] = hw.array.dsps * p.pack[array_ops] + lut_macs
    la, dw = hw.units.linear_attention, hw.units.dwconv
    if la is not None:
        peak[schedule.engine == ENG_LINATT] = la.macs
    if dw is not None:
        peak[schedule.engine == ENG_DWCONV] = dw.macs
    cycles = p.comp + s.stall
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where((peak > 0) & (cycles > 0) & (ga.macs > 0), ga.macs / (cycles * peak), np.nan)
    power, energy = _layer_power(schedule, result, engine, comp + s.stall)
    return LayerTable(
        names=ga.names,
        kinds=ga.kinds,
        modules=ga.modules,
        engine=engine,
        dataflow=p.dataflow,
        macs=ga.macs,
        compute_cycles=comp,
        stall_cycles=s.stall,
        bound=_bounds(schedule, result),
        utilization=util,
        power_w=power,
        energy_uj=energy,
        scalesim_mapping_efficiency=mapping,
        scalesim_compute_utilization=s_util,
        dram_load_bytes=s.load_bytes,
        dram_store_bytes=s.store_bytes,
        start=s.start,
        end=s.finish,
    )


def _bounds(schedule: Schedule, result: RunResult) -> np.ndarray:
    """``BOUND_*`` per op (see :class:`LayerRow`'s ``bound``)."""
    ga, p, s, rows = schedule.graph, schedule.plan, result.arrays, schedule.hardware.array.rows
    n = ga.n_ops
    per_input_op = np.repeat(np.arange(n), np.diff(ga.in_ptr))
    weight_bytes = np.bincount(per_input_op, weights=ga.in_bytes * ga.in_weight, minlength=n)
    moved = s.load_bytes + s.store_bytes
    weights_moved = np.minimum(weight_bytes, s.load_bytes)
    bound = np.full(n, BOUND_COMPUTE, dtype=np.int64)
    dram = s.dram_cycles > p.comp
    bound[dram] = np.where(2 * weights_moved[dram] >= moved[dram], BOUND_WEIGHTS, BOUND_MEMORY)
    # GEMV-like GEMMs on a weight-stationary array: fewer (packed) rows stream through a fold than
    # the array has, so each fold waits for its weights to shift in (engines/systolic.py)
    gemv = (schedule.engine == ENG_ARRAY) & (p.dataflow == DF_WS) & (ga.b_weight > 0) & (ga.shape_id >= 0)
    for i in np.flatnonzero(gemv & ~dram):
        pm, pk, pn = schedule.shape_packing[ga.shape_id[i]]
        p_stream = systolic.packed_dims(DF_WS, int(pm), int(pk), int(pn))[2]
        if -(-int(ga.M[i]) // p_stream) < rows:
            bound[i] = BOUND_WEIGHTS
    return bound


def _layer_power(
    schedule: Schedule, result: RunResult, engine: np.ndarray, cycles: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per op, the design's power (W) while the op runs alone over its ``cycles`` (the row's), and
    that energy (uJ); NaN for ops without cycles and on a virtual board."""
    ga, hw, s = schedule.graph, schedule.hardware, result.arrays
    n = ga.n_ops
    power, energy = np.full(n, np.nan), np.full(n, np.nan)
    if hw.board.virtual:
        return power, energy
    dsp_cycles = (schedule.engine == ENG_ARRAY) * ga.macs * schedule.dsp_share / schedule.plan.pack
    idx = np.flatnonzero((cycles > 0) & (engine >= 0))
    power[idx] = layer_power(
        hw,
        cycles=cycles[idx],
        engine=engine[idx],
        busy_cycles=schedule.plan.comp[idx],
        dram_busy_cycles=s.dram_cycles[idx],
        dram_bytes=s.load_bytes[idx] + s.store_bytes[idx],
        array_dsp_cycles=dsp_cycles[idx],
    )
    energy[idx] = power[idx] * cycles[idx] / hw.clock_mhz  # W x us = uJ
    return power, energy


def graph_frames(meta: dict[str, Any]) -> int:
    """Frames one run of a graph computes: the batch of its lowered input (1 for hand-built graphs)."""
    shape = meta.get("input_shape")
    if isinstance(shape, list | tuple) and shape and isinstance(shape[0], int) and shape[0] > 0:
        return int(shape[0])
    return 1


def _precision(ga: GraphArrays) -> str:
    """``W8A8``, or the operand bits of the MAC ops by MAC share (``W8A8 + W4A4``): the graph's,
    computed once per graph."""
    return ga.memo.get(_PRECISION_KEY, lambda: _mac_bits(ga))


_PRECISION_KEY = ("report.precision",)


def _mac_bits(ga: GraphArrays) -> str:
    share: dict[str, int] = {}
    for i in np.flatnonzero(ga.macs > 0):
        key = f"W{int(ga.wbits[i])}A{int(ga.abits[i])}"
        share[key] = share.get(key, 0) + int(ga.macs[i])
    return " + ".join(sorted(share, key=lambda k: -share[k])) or "no MACs"


class _Design(NamedTuple):
    """What a report takes of a design that no frame changes (remembered by value, as the power
    model is: a sweep's points are new config objects, equal in most of what is here)."""

    res: Resources
    board: str
    array: str
    virtual: bool
    dsps: int  # the array's
    multiplier_luts: int  # the LUTs of its LUT multipliers
    power: Any  # :func:`~accelsim.sim.power.power_model`, None on a virtual board


def _design_key(hw: HardwareConfig) -> tuple[object, ...]:
    return power_key(hw), config_values(hw).array  # the array label: its dataflows and timing


@per_value(_design_key)
def _design(hw: HardwareConfig) -> _Design:
    res = estimate_resources(hw)
    a = hw.array
    virtual = hw.board.virtual
    return _Design(
        res=res,
        board=hw.board.name,
        array=f"{a.rows}x{a.cols} {a.dataflow_label}, {a.timing}",
        virtual=virtual,
        dsps=a.dsps,
        multiplier_luts=a.lut_macs.macs * a.lut_macs.lut_per_mac if a.lut_macs is not None else 0,
        power=None if virtual else power_model(hw),
    )


def build_report(schedule: Schedule, result: RunResult, frames: int = 1) -> Report:
    """The :class:`Report` of a schedule and its run; ``frames``: how many frames the run computes
    (a graph lowered with batch N: :func:`graph_frames` of its meta)."""
    ga, hw, s = schedule.graph, schedule.hardware, result.arrays
    d = _design(hw)
    res = d.res
    overflow = list(res.overflow)
    if schedule.buffer_overflow:
        overflow.append(schedule.buffer_overflow)
    total = int(s.total_cycles)
    latency_s = total / (hw.clock_mhz * 1e6)
    macs = ga.total_macs
    gops = 2 * macs / latency_s / 1e9 if total else 0.0
    dsp_cycles = schedule.array_dsp_cycles()
    util = dsp_cycles / (total * d.dsps) if total else 0.0
    load, store = int(s.load_total), int(s.store_total)
    busy: list[int] = s.busy.tolist()
    nan = float("nan")
    if d.virtual:  # no power coefficients: nothing to estimate
        watts: dict[str, float] = {}
        power_w = energy_mj = gops_per_w = nan
    elif total > 0:
        watts, power_w, energy_mj, gops_per_w = model_frame_watts(
            d.power, total, busy, float(s.dram_cycles_total), load + store, dsp_cycles, macs
        )
    else:
        watts, power_w, energy_mj, gops_per_w = frame_watts(
            hw,
            total_cycles=total,
            busy_cycles=busy,
            dram_busy_cycles=float(s.dram_cycles_total),
            dram_bytes=load + store,
            array_dsp_cycles=dsp_cycles,
            macs=macs,
        )
    # the frozen dataclass's __init__ sets each of its 34 fields through object.__setattr__ (~6 us);
    # the same dict in field order (to_dict's order) is the same Report (tests/sim/test_report.py)
    report = object.__new__(Report)
    report.__dict__.update(
        graph=ga.name,
        hardware=hw.name,
        board=d.board,
        array=d.array,
        clock_mhz=hw.clock_mhz,
        total_cycles=total,
        latency_ms=latency_s * 1e3,
        fps=frames / latency_s if total else 0.0,
        total_macs=macs,
        gops=gops,
        gops_per_dsp=gops / res.dsp if res.dsp else 0.0,
        gops_per_klut=gops_per_klut(gops, res.lut),
        gops_per_equivalent_dsp=gops_per_equivalent_dsp(gops, res.dsp, d.multiplier_luts),
        dsp_used=res.dsp,
        bram36_used=res.bram36,
        uram_used=res.uram,
        lut_used=res.lut,
        array_utilization=min(util, 1.0),
        dram_bytes=load + store,
        dram_load_bytes=load,
        dram_store_bytes=store,
        fits=not overflow,
        overflow=overflow,
        energy_mj_estimate=energy_mj,
        power_w_estimate=power_w,
        gops_per_watt_estimate=gops_per_w,
        power_breakdown_w_estimate=watts,
        engine_busy_cycles=dict(zip(ENGINE_NAMES, busy, strict=True)),
        engine_utilization={
            name: b / total if total else 0.0 for name, b in zip(ENGINE_NAMES, busy, strict=True)
        },
        _source=(schedule, result),
        frames=frames,
        precision=_precision(ga),
        virtual_board=d.virtual,
    )
    return report


__all__ = ["BOUND_NAMES", "LAYER_FIELDS", "LayerRow", "LayerTable", "Report", "build_report", "graph_frames"]
