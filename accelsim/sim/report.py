"""The simulation report: what FPGA accelerator papers report, per design and per layer.

Scalars are computed eagerly (cheap: a search builds thousands of reports); the per-layer rows
and the timeline are built on first use from the arrays the schedule returned.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.config.hardware import HardwareConfig
from accelsim.sim.graph_arrays import CLS_DWCONV, CLS_GEMM, CLS_LA_AUX, CLS_MOVE, GraphArrays
from accelsim.sim.mapping import Plan
from accelsim.sim.units import ENG_ARRAY, ENG_LINATT, ENGINE_NAMES

LAYER_FIELDS = (
    "name",
    "kind",
    "engine",
    "macs",
    "cycles",
    "total_cycles",
    "compute_cycles",
    "stall_cycles",
    "bound",
    "mapping_efficiency",
    "compute_utilization",
    "dram_load_bytes",
    "dram_store_bytes",
    "start",
    "end",
)


@dataclass(frozen=True)
class LayerRow:
    """One op of the graph as it ran.

    ``compute_cycles`` are stall-free; for a GEMM on the array they follow SCALE-Sim's convention
    (index of the last busy cycle, i.e. busy cycles - 1), so they equal SCALE-Sim's numbers.
    ``cycles`` = ``total_cycles`` = compute + stall cycles on its engine. ``mapping_efficiency``
    and ``compute_utilization`` (SCALE-Sim's definitions) are given for GEMMs on the array only.
    ``start``/``end`` are absolute cycles (``end`` includes its last store); ``bound`` is
    ``memory`` when the op's DRAM transfers take longer than its compute.
    """

    name: str
    kind: str
    engine: str
    macs: int
    cycles: int
    total_cycles: int
    compute_cycles: int
    stall_cycles: int
    bound: str
    mapping_efficiency: float | None
    compute_utilization: float | None
    dram_load_bytes: int
    dram_store_bytes: int
    start: int
    end: int
    module: str = ""  # the timm module path the op came from (empty for hand-built graphs)


@dataclass(frozen=True, eq=False)
class ScheduleArrays:
    """Raw per-op results of the schedule kernel (see ``_kernels.run_schedule``)."""

    start: np.ndarray
    end: np.ndarray
    finish: np.ndarray
    stall: np.ndarray
    load_bytes: np.ndarray
    store_bytes: np.ndarray
    dram_cycles: np.ndarray
    busy: np.ndarray


@dataclass(frozen=True, eq=False)
class Report:
    """Result of :func:`accelsim.simulate`. GOPS = 2 x MACs / latency; ``*_estimate`` fields come
    from the energy coefficients of the config and are estimates, not measurements.
    ``engine_busy_cycles`` / ``engine_utilization``: cycles each engine computed, and that over
    ``total_cycles`` (engines run concurrently when the config overlaps them)."""

    graph: str
    hardware: str
    board: str
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
    engine_busy_cycles: dict[str, int]
    engine_utilization: dict[str, float]
    _ga: GraphArrays = field(repr=False, compare=False)
    _plan: Plan = field(repr=False, compare=False)
    _sched: ScheduleArrays = field(repr=False, compare=False)
    _hw: HardwareConfig = field(repr=False, compare=False)

    # -- per layer --------------------------------------------------------------------------------
    @cached_property
    def layers(self) -> list[LayerRow]:
        """One row per op, in topological order (data-movement ops included, with zero cycles)."""
        from accelsim.sim import systolic

        ga, p, s, hw = self._ga, self._plan, self._sched, self._hw
        gemm = (p.engine == ENG_ARRAY) & np.isin(ga.cls, (CLS_GEMM, CLS_DWCONV)) & (ga.shape_id >= 0)
        idx = np.flatnonzero(gemm)
        me = np.full(ga.n_ops, np.nan)
        cu = np.full(ga.n_ops, np.nan)
        if idx.size:
            # Dims were validated when the graph was compiled: call the kernel directly.
            _, me[idx], cu[idx] = systolic.gemm_timing_kernel(
                ga.M[idx],
                ga.K[idx],
                ga.N[idx],
                np.full(idx.size, hw.array.rows, dtype=np.int64),
                (hw.array.cols * p.pack[idx]).astype(np.int64),
                np.full(idx.size, systolic.DATAFLOW_CODES[hw.array.dataflow], dtype=np.int64),
            )
        # SCALE-Sim counts a GEMM's compute cycles as the index of its last busy cycle (busy - 1).
        comp = p.compute_cycles - gemm
        rows: list[LayerRow] = []
        for i, name in enumerate(ga.names):
            eng = int(p.engine[i])
            if eng < 0 and ga.cls[i] == CLS_LA_AUX:
                eng = ENG_LINATT  # ReLU and divide done inside the linear-attention unit
            c, st = int(comp[i]), int(s.stall[i])
            rows.append(
                LayerRow(
                    name=name,
                    kind=ga.kinds[i],
                    engine=ENGINE_NAMES[eng] if eng >= 0 else "none",
                    macs=int(ga.macs[i]),
                    cycles=c + st,
                    total_cycles=c + st,
                    compute_cycles=c,
                    stall_cycles=st,
                    bound="memory" if int(s.dram_cycles[i]) > int(p.compute_cycles[i]) else "compute",
                    mapping_efficiency=None if np.isnan(me[i]) else float(me[i]),
                    compute_utilization=None if np.isnan(cu[i]) else float(cu[i]),
                    dram_load_bytes=int(s.load_bytes[i]),
                    dram_store_bytes=int(s.store_bytes[i]),
                    start=int(s.start[i]),
                    end=int(s.finish[i]),
                    module=ga.modules[i],
                )
            )
        return rows

    # -- export -----------------------------------------------------------------------------------
    def to_dict(self, layers: bool = True) -> dict[str, Any]:
        """JSON-ready dict: the scalars above, ``engine_busy_cycles`` and (optionally) ``layers``."""
        d = {k: v for k, v in self.__dict__.items() if not k.startswith("_") and k != "layers"}
        d["overflow"] = list(self.overflow)
        if layers:
            d["layers"] = [asdict(r) for r in self.layers]
        return d

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def save_csv(self, path: str | Path) -> Path:
        """Write the per-layer rows as CSV (one row per op; empty cells for n/a)."""
        path = Path(path)
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(LAYER_FIELDS)
            for r in self.layers:
                w.writerow(["" if v is None else v for v in (getattr(r, k) for k in LAYER_FIELDS)])
        return path

    def trace_events(self) -> list[dict[str, Any]]:
        """Chrome-trace events (``ph: X``, microseconds): one track per engine and per DRAM channel."""
        from accelsim.sim.engine import record_schedule

        rec = record_schedule(self._ga, self._plan, self._hw)
        us = 1.0 / self.clock_mhz
        events: list[dict[str, Any]] = [
            {"name": "process_name", "ph": "M", "pid": 0, "args": {"name": f"{self.hardware} | {self.graph}"}}
        ]
        for e, name in enumerate(ENGINE_NAMES):
            events.append({"name": "thread_name", "ph": "M", "pid": 0, "tid": e, "args": {"name": name}})
        n_ch = self._hw.dram_cfg.channels
        for c in range(n_ch):
            tid = len(ENGINE_NAMES) + c
            events.append(
                {"name": "thread_name", "ph": "M", "pid": 0, "tid": tid, "args": {"name": f"dram{c}"}}
            )
        names = self._ga.names
        for op, s, e in zip(rec["tile_op"], rec["tile_start"], rec["tile_end"], strict=True):
            events.append(
                {
                    "name": names[op],
                    "cat": self._ga.kinds[op],
                    "ph": "X",
                    "pid": 0,
                    "tid": int(self._plan.engine[op]),
                    "ts": float(s) * us,
                    "dur": float(e - s) * us,
                }
            )
        # Addresses interleave over the channels, so every transfer occupies all of them at once.
        for op, st, s, e in zip(
            rec["xfer_op"], rec["xfer_store"], rec["xfer_start"], rec["xfer_end"], strict=True
        ):
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

    def save_trace(self, path: str | Path) -> Path:
        """Write a Chrome-trace / Perfetto JSON timeline (open in ui.perfetto.dev)."""
        path = Path(path)
        path.write_text(json.dumps({"traceEvents": self.trace_events(), "displayTimeUnit": "ns"}))
        return path

    def table(self, max_layers: int = 40) -> str:
        """A readable terminal summary plus the most expensive layers."""
        fit = "yes" if self.fits else "NO (" + "; ".join(self.overflow) + ")"
        lines = [
            # the array's shape printed from the config itself: a copied YAML keeps its old ``name``
            f"{self.graph} on {self.hardware} ({self.board}, {self._hw.array.rows}x{self._hw.array.cols} "
            f"{self._hw.array.dataflow}, {self.clock_mhz:g} MHz)",
            f"  latency {self.latency_ms:.3f} ms ({self.total_cycles:,} cycles)   {self.fps:,.1f} FPS",
            f"  {self.gops:,.1f} GOPS   {self.gops_per_dsp:.3f} GOPS/DSP   array utilisation {self.array_utilization:.1%}",
            f"  DSP {self.dsp_used:,}  BRAM36 {self.bram36_used:,}  URAM {self.uram_used:,}  LUT ~{self.lut_used:,}"
            f"   fits: {fit}",
            f"  DRAM {self.dram_bytes / 2**20:.2f} MiB (load {self.dram_load_bytes / 2**20:.2f}, "
            f"store {self.dram_store_bytes / 2**20:.2f})",
            f"  energy ~{self.energy_mj_estimate:.3f} mJ/frame, ~{self.power_w_estimate:.2f} W, "
            f"~{self.gops_per_watt_estimate:.1f} GOPS/W (estimate)",
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
                f"  {'layer':<18}{'module':<26}{'kind':<11}{'engine':<9}{'MMACs':>9}{'cycles':>11}"
                f"{'stall':>9}{'bound':>8}{'util':>7}"
            )
            for r in rows:
                util = "" if r.compute_utilization is None else f"{r.compute_utilization:.0%}"
                lines.append(
                    f"  {r.name[:17]:<18}{r.module[-25:]:<26}{r.kind[:10]:<11}{r.engine[:8]:<9}{r.macs / 1e6:>9.2f}"
                    f"{r.cycles:>11,}{r.stall_cycles:>9,}{r.bound:>8}{util:>7}"
                )
            n_more = sum(1 for r in self.layers if r.engine != "none") - len(rows)
            if n_more > 0:
                lines.append(f"  ... {n_more} more layers (see --csv/--json)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def layer_macs_on_engine(ga: GraphArrays, plan: Plan, engine: int) -> int:
    """MACs of the ops mapped to ``engine``."""
    return int(ga.macs[(plan.engine == engine) & (ga.cls != CLS_MOVE)].sum())
