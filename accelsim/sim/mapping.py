"""Mapping: each op gets an engine and a tiling that fits the buffers; vectorised over all ops.

Engines: :mod:`accelsim.sim.units` routes each op (array, vector, softmax, linear-attention or
depthwise unit, from what the config has) and times the unit ops. Streaming edges (attention
per head, element-wise consumers, MBConv dwconv -> pointwise) are switched on here per config
(``overlap``, ``pipeline_heads``, ``mbconv_fusion``) and decide which tensors stay on chip.

Tiles of a GEMM on the array (C[M,N] = A[M,K] @ B[K,N], SCALE-Sim's (Sr, Sc, T) per dataflow):

======  =============  ==========  =================  ===============================
flow    array rows x   stationary  streamed operand   loop order (outer, inner)
        cols hold      operand     (reused if it fits its buffer, else reloaded per outer)
======  =============  ==========  =================  ===============================
ws      K x N          B           A (input buffer)   N folds, then K folds (partial sums)
is      K x M          A           B (weight buffer)  M folds, then K folds (partial sums)
os      M x N          C           B (weight buffer)  M folds, then N folds; A once
======  =============  ==========  =================  ===============================

A fold-chunk is one fold (rows x logical cols of the array) times one chunk of at most
``T_CHUNK`` streaming rows; a tile is a run of consecutive fold-chunks of one outer stripe (at
most ``MAX_TILES_PER_STRIPE`` tiles per stripe). Tiles are fold-aligned and their granularity
never depends on buffer sizes; one fold-chunk must fit the buffers.
Partial sums (ws, is) stay in the output buffer over the K folds when one fold's accumulators fit.
When they do not, the mapper picks, per op, the loop order with fewer DRAM bytes: spill and
reload them every K fold, or the output-stationary order that cuts the stream into chunks whose
accumulators fit and finishes each chunk's K reduction first, re-reading the stationary
operand's stripe per chunk unless the stripe fits its buffer (``_kernels.plan_ops``).
The op's stall-free compute cycles come from SCALE-Sim's formula for the *whole* GEMM and are
shared out over its tiles, so fill and drain are counted once per fold and the per-layer
``compute_cycles`` equals the formula exactly; stalls come only from memory. Buffer sizes decide
operand reuse, partial-sum spills, on-chip residency of activations, and how many tiles ahead
the DRAM may prefetch (``slots``): a bigger buffer only ever removes traffic or waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelsim.config.hardware import HardwareConfig
from accelsim.errors import ConfigError
from accelsim.sim import _kernels, systolic
from accelsim.sim.graph_arrays import GraphArrays
from accelsim.sim.units import ENGINE_NAMES, assign_engines, registered_units, unit_cycles, unit_min_tiles

#: Streaming rows per tile: long streams (e.g. a 112x112 conv's 12,544 output pixels under ws) are
#: cut so one tile's streamed data stays small; the array keeps streaming across the cut.
T_CHUNK = 1024
#: Elements per tile of a unit op (vector, softmax, ...).
V_CHUNK = 4096
#: Tiles per outer stripe of an array GEMM: consecutive fold-chunks are grouped into at most this
#: many tiles, so that small arrays (many folds) stay cheap to simulate.
MAX_TILES_PER_STRIPE = 4

DF_OS, DF_WS, DF_IS = (systolic.DATAFLOW_CODES[k] for k in ("os", "ws", "is"))


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything the schedule kernel needs for one (graph, hardware) pair, plus report columns."""

    engine: np.ndarray
    pack: np.ndarray
    compute_cycles: np.ndarray
    n_tiles: np.ndarray
    tiles_per_outer: np.ndarray
    n_outer: np.ndarray
    strm_reuse: np.ndarray
    ld_once: np.ndarray
    ld_strm: np.ndarray
    spill: np.ndarray
    store: np.ndarray
    act_dep: np.ndarray
    slots: np.ndarray
    row_folds: np.ndarray
    col_folds: np.ndarray
    eq_ptr: np.ndarray
    eq_ops: np.ndarray
    pipe_on: np.ndarray
    pipe_span: np.ndarray
    buffer_overflow: str


# Busy cycles and folds of one GEMM shape on one array geometry never change: memoise them.
_GEMM_MEMO: dict[tuple[int, ...], tuple[int, int, int]] = {}


def _gemm(m: int, k: int, n: int, rows: int, cols: int, df: int) -> tuple[int, int, int]:
    key = (m, k, n, rows, cols, df)
    hit = _GEMM_MEMO.get(key)
    if hit is None:
        fr, fc = systolic.gemm_folds(m, k, n, rows, cols, df)
        # Busy cycles (folds x fold cycles): what tiles laid end to end add up to. SCALE-Sim's
        # "compute cycles" are one less (index of the last busy cycle); the report converts.
        hit = (int(systolic.gemm_busy_cycles(m, k, n, rows, cols, df)), int(fr), int(fc))
        if len(_GEMM_MEMO) > 200_000:
            _GEMM_MEMO.clear()
        _GEMM_MEMO[key] = hit
    return hit


def _shape_timing(
    ga: GraphArrays, hw: HardwareConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Busy cycles, row folds, col folds and packing of each distinct array GEMM shape on ``hw``."""
    rows, cols, df = hw.array.rows, hw.array.cols, systolic.DATAFLOW_CODES[hw.array.dataflow]
    n = ga.shapes.shape[0]
    busy = np.zeros(n, dtype=np.int64)
    fr = np.zeros(n, dtype=np.int64)
    fc = np.zeros(n, dtype=np.int64)
    pack = np.ones(n, dtype=np.int64)
    packs: dict[int, int] = {}
    for s, (m, k, nn, bits) in enumerate(ga.shapes.tolist()):
        if bits not in packs:
            try:
                packs[bits] = hw.macs_per_dsp(bits)
            except ConfigError as e:
                ops = [ga.names[i] for i in np.flatnonzero(ga.shape_id == s)[:3]]
                raise ConfigError(f"{e} (needed by ops {', '.join(ops)})") from None
        pack[s] = packs[bits]
        busy[s], fr[s], fc[s] = _gemm(m, k, nn, rows, cols * packs[bits], df)
    return busy, fr, fc, pack


def _engines(
    ga: GraphArrays, hw: HardwareConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """Engine per op and the per-engine queues (CSR), cached per set of units present."""
    key = ("engines", *(u.name for u in registered_units() if u.present(hw)))
    hit = ga._cache.get(key)
    if hit is None:
        if len(ga._cache) > 256:
            ga._cache.clear()
        engine = assign_engines(ga, hw)
        order = np.argsort(engine, kind="stable")
        order = order[engine[order] >= 0].astype(np.int64)
        counts = np.bincount(engine[engine >= 0], minlength=len(ENGINE_NAMES))
        eq_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        hit = ga._cache[key] = (engine, eq_ptr, order, key)
    return hit


def _unit_cycles(
    ga: GraphArrays, engine: np.ndarray, engines_key: tuple[str, ...], hw: HardwareConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Cycles and minimum tile counts of unit ops, cached per (units present, unit parameters)."""
    params = tuple(
        (name, tuple(cfg.__dict__.values())) if cfg is not None else (name, None)
        for name, cfg in hw.units.__dict__.items()
    )
    key = ("unit_cycles", engines_key, params)
    hit = ga._cache.get(key)
    if hit is None:
        if len(ga._cache) > 256:
            ga._cache.clear()
        hit = ga._cache[key] = (unit_cycles(ga, engine, hw), unit_min_tiles(ga, engine, hw))
    return hit


def plan(ga: GraphArrays, hw: HardwareConfig) -> Plan:
    """Map every op of ``ga`` onto ``hw``: engines, compute cycles, tiles, DRAM bytes, slots.

    Raises:
        ConfigError: an op's operand bits are not in the packing table.
    """
    buf = hw.buffers
    ibuf, wbuf, obuf = buf.input_kib * 1024, buf.weight_kib * 1024, buf.output_kib * 1024
    engine, eq_ptr, eq_ops, engines_key = _engines(ga, hw)
    busy, sfr, sfc, spack = _shape_timing(ga, hw)
    u_cycles, u_tiles = _unit_cycles(ga, engine, engines_key, hw)
    out = _kernels.plan_ops(
        ga.cls,
        engine,
        ga.batch,
        ga.M,
        ga.K,
        ga.N,
        ga.elements,
        ga.shape_id,
        ga.shape2_id,
        busy,
        sfr,
        sfc,
        spack,
        u_cycles,
        u_tiles,
        ga.in_ptr,
        ga.in_root,
        ga.in_bytes,
        ga.in_role,
        ga.in_weight,
        ga.out_root,
        ga.out_bytes,
        ga.t_can_reside,
        ga.t_peak_live,
        ga.t_peak_live_heads,
        ga.pipe_src,
        ga.pipe_kind,
        ga.pipe_root,
        ga.heads,
        systolic.DATAFLOW_CODES[hw.array.dataflow],
        hw.array.cols,
        ibuf,
        wbuf,
        obuf,
        buf.acc_bits // 8,
        buf.double_buffer,
        T_CHUNK,
        V_CHUNK,
        MAX_TILES_PER_STRIPE,
        hw.overlap,
        hw.pipeline_heads,
        hw.mbconv_fusion,
    )
    (comp, pack, n_tiles, tpo, n_outer, reuse, ld_once, ld_strm, spill, store, act_dep, slots, fr, fc) = out[
        :14
    ]
    pipe_on, pipe_span = out[14], out[15]
    bad_op, bad_buf, bad_need, n_bad = (int(x) for x in out[16:])
    overflow = ""
    if bad_op >= 0:
        which = "input_kib" if bad_buf == 0 else "weight_kib"
        overflow = (
            f"buffers.{which}: one tile of op {ga.names[bad_op]!r} needs {bad_need} B "
            f"({n_bad} ops do not fit a tile)"
        )
    return Plan(
        engine=engine,
        pack=pack,
        compute_cycles=comp,
        n_tiles=n_tiles,
        tiles_per_outer=tpo,
        n_outer=n_outer,
        strm_reuse=reuse,
        ld_once=ld_once,
        ld_strm=ld_strm,
        spill=spill,
        store=store,
        act_dep=act_dep,
        slots=slots,
        row_folds=fr,
        col_folds=fc,
        eq_ptr=eq_ptr,
        eq_ops=eq_ops,
        pipe_on=pipe_on,
        pipe_span=pipe_span,
        buffer_overflow=overflow,
    )
