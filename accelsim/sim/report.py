"""The simulation report: what FPGA accelerator papers report, per design and per layer.

:func:`build_report` turns a :class:`~accelsim.sim.schedule.Schedule` and its
:class:`~accelsim.sim.schedule.RunResult` into a :class:`Report`: plain data, cheap to build (a
search builds thousands). The scalars are computed at once; the per-layer columns are read from
the schedule's and the run's arrays on first use (nothing is run again).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from accelsim._io import write_text_atomic
from accelsim.sim._kernels import (
    CLS_DWCONV,
    CLS_GEMM,
    CLS_LA_AUX,
    ENG_ARRAY,
    ENG_DWCONV,
    ENG_LINATT,
    ENGINE_NAMES,
)
from accelsim.sim.engines import systolic
from accelsim.sim.engines.systolic import DATAFLOW_NAMES, DF_TREE
from accelsim.sim.power import frame_power
from accelsim.sim.resources import estimate_resources
from accelsim.sim.schedule import RunResult, Schedule

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
    ``bound`` is ``memory`` when the op's DRAM transfers take longer than its compute.
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
    (-1: none).
    """

    names: list[str]
    kinds: list[str]
    modules: list[str]
    engine: np.ndarray
    dataflow: np.ndarray
    macs: np.ndarray
    compute_cycles: np.ndarray
    stall_cycles: np.ndarray
    memory_bound: np.ndarray
    utilization: np.ndarray
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
                    bound="memory" if self.memory_bound[i] else "compute",
                    utilization=opt(self.utilization[i]),
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
    overlaps them). ``array`` describes the array (``32x64 ws, pipelined``)."""

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
    # a sweep reads only the scalars of most of its reports
    _source: tuple[Schedule, RunResult] = field(repr=False, compare=False)

    @cached_property
    def layer_table(self) -> LayerTable:
        """The per-layer columns."""
        return _layer_table(*self._source)

    @cached_property
    def layers(self) -> list[LayerRow]:
        """One row per op, in topological order (data-movement ops included, with zero cycles)."""
        return self.layer_table.rows()

    # -- export -----------------------------------------------------------------------------------
    def to_dict(self, layers: bool = True) -> dict[str, Any]:
        """JSON-ready dict: the scalars above, ``engine_busy_cycles`` and (optionally) ``layers``."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("_source", "layer_table", "layers")}
        d["overflow"] = list(self.overflow)
        if layers:
            d["layers"] = [asdict(r) for r in self.layers]
        return d

    def to_json(self) -> str:
        """The report as strict JSON (no NaN or Infinity)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def to_csv(self) -> str:
        """The per-layer rows as CSV (one row per op; empty cells for n/a)."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(LAYER_FIELDS)
        for r in self.layers:
            w.writerow(["" if v is None else v for v in (getattr(r, k) for k in LAYER_FIELDS)])
        return buf.getvalue()

    def save_json(self, path: str) -> None:
        write_text_atomic(path, self.to_json())

    def save_csv(self, path: str) -> None:
        write_text_atomic(path, self.to_csv())

    def table(self, max_layers: int = 40) -> str:
        """A readable terminal summary plus the most expensive layers."""
        fit = "yes" if self.fits else "NO (" + "; ".join(self.overflow) + ")"
        lines = [
            # the array printed from the config itself: a copied YAML keeps its old ``name``
            f"{self.graph} on {self.hardware} ({self.board}, {self.array}, {self.clock_mhz:g} MHz)",
            f"  latency {self.latency_ms:.3f} ms ({self.total_cycles:,} cycles)   {self.fps:,.1f} FPS",
            f"  {self.gops:,.1f} GOPS   {self.gops_per_dsp:.3f} GOPS/DSP   array utilisation {self.array_utilization:.1%}",
            f"  DSP {self.dsp_used:,}  BRAM36 {self.bram36_used:,}  URAM {self.uram_used:,}  LUT ~{self.lut_used:,}"
            f"   fits: {fit}",
            f"  DRAM {self.dram_bytes / 2**20:.2f} MiB (load {self.dram_load_bytes / 2**20:.2f}, "
            f"store {self.dram_store_bytes / 2**20:.2f})",
            f"  power ~{self.power_w_estimate:.2f} W, ~{self.energy_mj_estimate:.2f} mJ/frame, "
            f"~{self.gops_per_watt_estimate:.1f} GOPS/W (estimate: "
            + ", ".join(f"{k} {v:.2f}" for k, v in self.power_breakdown_w_estimate.items() if v)
            + " W)",
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
                f"{'stall':>9}{'bound':>8}{'util':>7}"
            )
            for r in rows:
                util = "" if r.utilization is None else f"{r.utilization:.0%}"
                lines.append(
                    f"  {r.name[:17]:<18}{r.module[-25:]:<26}{r.kind[:10]:<11}{r.engine[:8]:<9}{r.dataflow:<4}"
                    f"{r.macs / 1e6:>9.2f}{r.cycles:>11,}{r.stall_cycles:>9,}{r.bound:>8}{util:>7}"
                )
            n_more = sum(1 for r in self.layers if r.engine != "none") - len(rows)
            if n_more > 0:
                lines.append(f"  ... {n_more} more layers (see --csv/--json)")
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
    return LayerTable(
        names=ga.names,
        kinds=ga.kinds,
        modules=ga.modules,
        engine=engine,
        dataflow=p.dataflow,
        macs=ga.macs,
        compute_cycles=comp,
        stall_cycles=s.stall,
        memory_bound=s.dram_cycles > p.comp,
        utilization=util,
        scalesim_mapping_efficiency=mapping,
        scalesim_compute_utilization=s_util,
        dram_load_bytes=s.load_bytes,
        dram_store_bytes=s.store_bytes,
        start=s.start,
        end=s.finish,
    )


def build_report(schedule: Schedule, result: RunResult) -> Report:
    """The :class:`Report` of a schedule and its run."""
    ga, hw, s = schedule.graph, schedule.hardware, result.arrays
    res = estimate_resources(hw)
    overflow = list(res.overflow)
    if schedule.buffer_overflow:
        overflow.append(schedule.buffer_overflow)
    total = result.total_cycles
    latency_s = total / (hw.clock_mhz * 1e6)
    macs = ga.total_macs
    gops = 2 * macs / latency_s / 1e9 if total else 0.0
    dsp_cycles = schedule.array_dsp_cycles()
    util = dsp_cycles / (total * hw.array.dsps) if total else 0.0
    load, store = int(s.load_bytes.sum()), int(s.store_bytes.sum())
    power = frame_power(
        hw,
        total_cycles=total,
        busy_cycles=s.busy,
        dram_busy_cycles=float(s.dram_cycles.sum()),
        dram_bytes=load + store,
        array_dsp_cycles=dsp_cycles,
        macs=macs,
    )
    a = hw.array
    return Report(
        graph=ga.name,
        hardware=hw.name,
        board=hw.board.name,
        array=f"{a.rows}x{a.cols} {a.dataflow_label}, {a.timing}",
        clock_mhz=hw.clock_mhz,
        total_cycles=total,
        latency_ms=latency_s * 1e3,
        fps=1.0 / latency_s if total else 0.0,
        total_macs=macs,
        gops=gops,
        gops_per_dsp=gops / res.dsp if res.dsp else 0.0,
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
        energy_mj_estimate=power.energy_mj,
        power_w_estimate=power.total_w,
        gops_per_watt_estimate=power.gops_per_w,
        power_breakdown_w_estimate=power.breakdown(),
        engine_busy_cycles={name: int(s.busy[e]) for e, name in enumerate(ENGINE_NAMES)},
        engine_utilization={
            name: float(s.busy[e]) / total if total else 0.0 for e, name in enumerate(ENGINE_NAMES)
        },
        _source=(schedule, result),
    )


__all__ = ["LAYER_FIELDS", "LayerRow", "LayerTable", "Report", "build_report"]
