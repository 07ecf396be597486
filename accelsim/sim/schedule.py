"""The Schedule (a graph mapped onto one accelerator) and ``run(schedule) -> RunResult``.

:func:`accelsim.sim.map_graph` builds a :class:`Schedule`; :func:`run` executes it in the event-driven
schedule kernel (:func:`accelsim.sim._schedule_kernel.run_schedule`), one Numba call, and returns the
per-op timeline as plain arrays; :func:`accelsim.sim.report.build_report` summarises the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accelsim.config.hardware import HardwareConfig
from accelsim.sim import _kernels
from accelsim.sim._kernels import PlanArrays, ShapeTiming
from accelsim.sim._memo import per_config
from accelsim.sim._period import block_period
from accelsim.sim._schedule_kernel import RUN_OK, DramParams, RunArrays, TileProgram, run_schedule
from accelsim.sim.graph_arrays import GraphArrays

# The numba dispatcher, typed loosely (its signature is the kernel's docstring).
_RUN: Any = run_schedule


@dataclass(frozen=True, eq=False)
class Schedule:
    """One graph mapped onto one accelerator: per op its engine, dataflow, compute cycles, tiles and
    DRAM bytes (``plan``), the engines' queues, the timing of each GEMM shape on the array.

    Attributes:
        graph: the flattened graph (:class:`~accelsim.sim.graph_arrays.GraphArrays`).
        hardware: the accelerator.
        engine: engine code per op (``ENG_NONE``: no work).
        eq_ptr: CSR offsets of each engine's queue in ``eq_ops`` (ops in topological order).
        eq_ops: op indices, engine by engine.
        shapes: the :class:`~accelsim.sim._kernels.ShapeTiming` of the graph's GEMM shapes.
        shape_packing: ``(pm, pk, pn)`` per GEMM shape.
        dsp_share: per op, the share of its MACs done on the array's DSPs (the rest on its LUT
            multipliers; 1.0 without them).
        plan: the :class:`~accelsim.sim._kernels.PlanArrays` (per op).
        buffer_overflow: why a tile does not fit a buffer ("" if every tile fits).
        dsp_cycles: :meth:`array_dsp_cycles` when the mapper already knows it (its memo keeps it
            with the plan, so a warm point skips four passes over the ops); None: computed.
    """

    graph: GraphArrays
    hardware: HardwareConfig
    engine: np.ndarray
    eq_ptr: np.ndarray
    eq_ops: np.ndarray
    shapes: ShapeTiming
    shape_packing: np.ndarray
    dsp_share: np.ndarray
    plan: PlanArrays
    buffer_overflow: str
    dsp_cycles: float | None = field(default=None, repr=False)

    @property
    def n_tiles(self) -> int:
        """Tiles the schedule runs (the kernel's work)."""
        return int(self.plan.n_tiles.sum())

    def array_dsp_cycles(self) -> float:
        """DSP-cycles of the array's MACs: the MACs its DSPs do (the LUT multipliers' share is not
        DSP work) over the products per DSP, summed over the array's ops."""
        if self.dsp_cycles is not None:
            return self.dsp_cycles
        on_array = self.engine == _kernels.ENG_ARRAY
        return float(np.dot(on_array * self.graph.macs * self.dsp_share, 1.0 / self.plan.pack))

    def program(self) -> TileProgram:
        """The schedule kernel's input."""
        p, ga = self.plan, self.graph
        return TileProgram(
            engine=self.engine,
            n_tiles=p.n_tiles,
            tiles_per_outer=p.tiles_per_outer,
            n_outer=p.n_outer,
            strm_reuse=p.strm_reuse,
            comp=p.comp,
            ld_once=p.ld_once,
            ld_strm=p.ld_strm,
            spill=p.spill,
            store=p.store,
            act_dep=p.act_dep,
            slots=p.slots,
            pred_ptr=ga.pred_ptr,
            succ_ptr=ga.succ_ptr,
            succ_idx=ga.succ_idx,
            eq_ptr=self.eq_ptr,
            eq_ops=self.eq_ops,
            pipe_src=ga.pipe_src,
            pipe_groups=ga.pipe_groups,
            pipe_span=p.pipe_span,
            pipe_on=p.pipe_on,
            period=block_period(ga),
        )

    def dram(self) -> DramParams:
        return _dram(self.hardware)


@per_config
def _dram(hw: HardwareConfig) -> DramParams:
    """The kernel's DRAM parameters of ``hw`` (once per config: a sweep's points each ask again)."""
    d = hw.dram_cfg
    return DramParams(
        bytes_per_cycle=float(hw.dram_bytes_per_cycle()),
        burst_total=int(d.burst_bytes * d.channels),
        latency=int(d.latency_cycles),
    )


@dataclass(frozen=True, eq=False)
class RunResult:
    """What the schedule kernel returned (:class:`~accelsim.sim._schedule_kernel.RunArrays`): per op start,
    end, finish, stall, DRAM bytes and cycles; per engine busy cycles; per tile and transfer records
    when ``recorded``."""

    arrays: RunArrays
    recorded: bool

    @property
    def total_cycles(self) -> int:
        return int(self.arrays.total_cycles)


def run(schedule: Schedule, record: bool = False) -> RunResult:
    """Execute ``schedule``: every tile of every op on its engine's timeline and the DRAM's.

    Args:
        schedule: from :func:`accelsim.sim.map_graph`.
        record: also keep every tile and transfer (what the Chrome trace shows).

    Raises:
        RuntimeError: the kernel could not schedule every op (a bug: a DAG in topological order
            always can).
    """
    # plain tuples: numba types them faster than the NamedTuples (the kernel unpacks by position)
    prog, dram = tuple(schedule.program()), tuple(_dram(schedule.hardware))
    out: RunArrays = _RUN(prog, dram, bool(schedule.hardware.overlap), bool(record))
    if out.error != RUN_OK:
        raise RuntimeError(
            f"schedule kernel stopped with ops left to run on {schedule.hardware.name} "
            f"(graph {schedule.graph.name!r}): the dependency order is inconsistent"
        )
    return RunResult(out, bool(record))


__all__ = ["RunResult", "Schedule", "run"]
