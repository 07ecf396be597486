"""simulate(graph, hw) -> Report: map, run the schedule kernel once, summarise.

Per hardware point this is NumPy over all ops plus one Numba call; the graph is flattened once
(:func:`~accelsim.sim.graph_arrays.compile_graph`) and reused by every point of a sweep.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.config.hardware import HardwareConfig
from accelsim.errors import ConfigError
from accelsim.ir.graph import Graph
from accelsim.sim import _kernels
from accelsim.sim.graph_arrays import CLS_MOVE, GraphArrays, compile_graph
from accelsim.sim.mapping import Plan, plan
from accelsim.sim.report import Report, ScheduleArrays
from accelsim.sim.resources import estimate_resources
from accelsim.sim.units import ENG_ARRAY, ENGINE_NAMES

HardwareLike = HardwareConfig | str | Path
# The numba dispatcher, typed loosely (its signature is the kernel's docstring).
_RUN: Any = _kernels.run_schedule


def _resolve_hw(hw: HardwareLike) -> HardwareConfig:
    return hw if isinstance(hw, HardwareConfig) else HardwareConfig.load(hw)


def _kernel_args(p: Plan, ga: GraphArrays, hw: HardwareConfig) -> tuple[Any, ...]:
    d = hw.dram_cfg
    return (
        p.engine,
        p.n_tiles,
        p.tiles_per_outer,
        p.n_outer,
        p.strm_reuse,
        p.compute_cycles,
        p.ld_once,
        p.ld_strm,
        p.spill,
        p.store,
        p.act_dep,
        p.slots,
        ga.pred_ptr,
        ga.succ_ptr,
        ga.succ_idx,
        p.eq_ptr,
        p.eq_ops,
        ga.pipe_src,
        ga.pipe_groups,
        p.pipe_span,
        p.pipe_on,
        float(hw.dram_bytes_per_cycle()),
        int(d.burst_bytes * d.channels),
        int(d.latency_cycles),
        bool(hw.overlap),
    )


def _run_kernel(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """One schedule-kernel call without recording (what a sweep's worker threads run)."""
    out: tuple[Any, ...] = _RUN(*args, False)
    return out


def record_schedule(ga: GraphArrays, p: Plan, hw: HardwareConfig) -> dict[str, np.ndarray]:
    """Re-run the schedule recording every tile and transfer (for the trace)."""
    out = _RUN(*_kernel_args(p, ga, hw), True)
    keys = ("tile_op", "tile_start", "tile_end", "xfer_op", "xfer_store", "xfer_start", "xfer_end")
    return dict(zip(keys, out[8:], strict=True))


def _mac_pj(hw: HardwareConfig, bits: np.ndarray) -> np.ndarray:
    table = hw.energy.mac_pj
    keys = np.array(sorted(table), dtype=np.int64)
    vals = np.array([table[int(k)] for k in keys])
    idx = np.minimum(np.searchsorted(keys, bits), len(keys) - 1)
    return vals[idx]


def _energy_pj(ga: GraphArrays, p: Plan, hw: HardwareConfig, dram_bytes: int) -> float:
    """Dynamic energy: MACs by bit width, on-chip buffer bytes, DRAM bytes, vector-lane ops.

    On-chip bytes count every operand read from and result written to a buffer once per op, plus
    the re-reads of the streamed operand of array GEMMs under ws (once per outer fold).
    """
    e = hw.energy
    key = ("energy", tuple(sorted(e.mac_pj.items())), p.eq_ptr.tobytes())
    hit = ga._cache.get(key)
    if hit is None:
        mac = float((ga.macs * _mac_pj(hw, ga.bits)).sum())
        sram = float(ga.in_bytes.sum() + ga.out_bytes.sum())
        unit = (p.engine > ENG_ARRAY) & (ga.cls != CLS_MOVE)
        vec = float((ga.elements * ga.passes)[unit].sum())
        mk = ((p.engine == ENG_ARRAY) * ga.M * ga.K).astype(np.float64)
        hit = ga._cache[key] = (mac, sram, vec, mk)
    mac, sram, vec, mk = hit
    if hw.array.dataflow == "ws":
        sram += float(np.dot(p.n_outer - 1, mk))
    return mac + sram * e.sram_pj_per_byte + dram_bytes * e.dram_pj_per_byte + vec * e.vector_pj_per_op


def _build_report(ga: GraphArrays, p: Plan, hw: HardwareConfig, out: tuple[Any, ...]) -> Report:
    s = ScheduleArrays(*out[:8])
    res = estimate_resources(hw)
    overflow = list(res.overflow)
    if p.buffer_overflow:
        overflow.append(p.buffer_overflow)
    total = int(s.finish.max(initial=0))
    latency_s = total / (hw.clock_mhz * 1e6)
    macs = ga.total_macs
    gops = 2 * macs / latency_s / 1e9 if total else 0.0
    dsp_cycles = float(np.dot((p.engine == ENG_ARRAY) * ga.macs, 1.0 / p.pack))
    util = dsp_cycles / (total * hw.array.rows * hw.array.cols) if total else 0.0
    load, store = int(s.load_bytes.sum()), int(s.store_bytes.sum())
    energy_pj = _energy_pj(ga, p, hw, load + store)
    power = (energy_pj * 1e-12 / latency_s if total else 0.0) + hw.energy.static_w
    return Report(
        graph=ga.name,
        hardware=hw.name,
        board=hw.board.name,
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
        energy_mj_estimate=energy_pj * 1e-9,
        power_w_estimate=power,
        gops_per_watt_estimate=gops / power if power > 0 else 0.0,
        engine_busy_cycles={name: int(s.busy[e]) for e, name in enumerate(ENGINE_NAMES)},
        engine_utilization={
            name: float(s.busy[e]) / total if total else 0.0 for e, name in enumerate(ENGINE_NAMES)
        },
        _ga=ga,
        _plan=p,
        _sched=s,
        _hw=hw,
    )


def simulate(graph: Graph | GraphArrays, hw: HardwareLike) -> Report:
    """Simulate one frame of ``graph`` on the accelerator ``hw``.

    Args:
        graph: a lowered :class:`~accelsim.ir.Graph` (or its cached :class:`GraphArrays`).
        hw: a :class:`HardwareConfig`, a config name in ``hw_configs/`` or a YAML path.

    Returns:
        The :class:`Report`. A design that does not fit its board is still simulated, with
        ``fits`` False and ``overflow`` naming each overflowing resource.

    Raises:
        ConfigError: invalid config, or operand bits the packing table does not cover.
        GraphFormatError: an op without the attributes its kind needs.

    Examples:
        >>> from accelsim.ir import Graph, Op, OpKind, Tensor
        >>> g = Graph("fc")
        >>> for t in (Tensor("x", (64, 64)), Tensor("w", (64, 64), weight=True), Tensor("y", (64, 64))):
        ...     g.add_tensor(t)
        >>> g.add_op(Op("fc", OpKind.MATMUL, ("x", "w"), ("y",), {"M": 64, "K": 64, "N": 64}, macs=64**3))
        >>> r = simulate(g, "zcu102")
        >>> r.total_macs, r.fits
        (262144, True)
    """
    ga = compile_graph(graph)
    hwc = _resolve_hw(hw)
    p = plan(ga, hwc)
    out = _RUN(*_kernel_args(p, ga, hwc), False)
    return _build_report(ga, p, hwc, out)


def simulate_many(
    graph: Graph | GraphArrays, hws: Iterable[HardwareLike], workers: int | None = None
) -> list[Report]:
    """Simulate one graph on many hardware points (the graph is flattened once).

    A point costs the mapping (NumPy over all ops, in this thread) plus one schedule-kernel call.
    The kernel releases the GIL, so kernel calls run on ``workers`` threads while the next points
    are mapped; reports come back in the order of ``hws`` and equal :func:`simulate`'s exactly.

    Args:
        graph: a lowered Graph (or its :class:`GraphArrays`).
        hws: hardware configs, names or YAML paths.
        workers: kernel threads (default: the machine's CPU count, at most 8; 1 runs inline).

    Raises:
        ConfigError: as :func:`simulate`, for the first point that fails.
    """
    ga = compile_graph(graph)
    n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    if n_workers < 1:
        raise ConfigError(f"simulate_many: workers must be >= 1, got {n_workers}")
    if n_workers == 1:
        return [simulate(ga, hw) for hw in hws]
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        jobs = []
        for hw in hws:
            hwc = _resolve_hw(hw)
            p = plan(ga, hwc)
            jobs.append((hwc, p, pool.submit(_run_kernel, _kernel_args(p, ga, hwc))))
        return [_build_report(ga, p, hwc, job.result()) for hwc, p, job in jobs]


__all__ = ["HardwareLike", "simulate", "simulate_many"]
