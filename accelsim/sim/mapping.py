"""``map_graph(graph, hw) -> Schedule``: each op gets an engine and a tiling that fits the buffers.

Vectorised over all ops: Python touches distinct GEMM shapes, not ops, per hardware point.

Engines: :mod:`accelsim.sim.engines.units` routes each op (array, vector, softmax, linear-attention or
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
The op's stall-free compute cycles come from the array's timing formula for the *whole* op (all its
batch GEMMs; :mod:`accelsim.sim.engines.systolic`, ``pipelined`` or ``scalesim``) and are shared out
over its tiles, so the per-layer ``compute_cycles`` equals the formula exactly; stalls come only
from memory. In ``pipelined`` timing the op may run on a sub-array with balanced folds where that
is faster (:func:`~accelsim.sim.engines.systolic.mapped_busy_cycles`): one more row or column
then never costs more than its cycle of skew. A reconfigurable array (several ``array.dataflow``) runs each op in a dataflow chosen
by the time the schedule really takes (:func:`_search`): the fastest of the whole-graph runs of a
fixed set of per-op choices (each dataflow alone; per subset of them, the least time measured in
the runs alone, at least the op's DRAM bytes over the bandwidth), so listing one more dataflow
never makes a design slower; a sound lower bound on each candidate's cycles skips the runs that
cannot win. A reconfigurable unit
that assists the array's GEMMs is chosen per op the same way, and never while it runs its own ops
(the pool is in one place at a time). Buffer sizes decide
operand reuse, partial-sum spills, on-chip residency of activations, and how many tiles ahead
the DRAM may prefetch (``slots``): a bigger buffer only ever removes traffic or waiting.
"""

from __future__ import annotations

import dataclasses
import heapq
from typing import Any, NamedTuple

import numpy as np

from accelsim.config.hardware import HardwareConfig
from accelsim.errors import ConfigError
from accelsim.ir.graph import Graph
from accelsim.sim import _kernels
from accelsim.sim._kernels import (
    BUF_INPUT,
    ENG_ARRAY,
    ENG_NONE,
    ENG_RECONF,
    LOOP_OF_DATAFLOW,
    PlanArrays,
    ShapeTiming,
)
from accelsim.sim._memo import Memo, config_values
from accelsim.sim.engines import systolic
from accelsim.sim.engines.systolic import DATAFLOW_NAMES, DF_TREE
from accelsim.sim.engines.table import ENGINE_NAMES
from accelsim.sim.engines.units import assign_engines, registry_version, unit_cycles, unit_min_tiles
from accelsim.sim.graph_arrays import GraphArrays, compile_graph
from accelsim.sim.schedule import Schedule, run

#: Streaming rows per tile: long streams (e.g. a 112x112 conv's 12,544 output pixels under ws) are
#: cut so one tile's streamed data stays small; the array keeps streaming across the cut.
T_CHUNK = 1024
#: Elements per tile of a unit op (vector, softmax, ...).
V_CHUNK = 4096
#: Input bytes per tile of a unit op (fewer where half the input buffer is smaller).
UNIT_TILE_BYTES = 8192
#: Tiles per outer stripe of an array GEMM: consecutive fold-chunks are grouped into at most this
#: many tiles, so that small arrays (many folds) stay cheap to simulate.
MAX_TILES_PER_STRIPE = 4

# Busy cycles and folds of one GEMM shape on one array geometry never change: memoise them.
_GEMM_MEMO: Memo[tuple[Any, ...], tuple[int, int, int]] = Memo(200_000)


def _gemm(key: tuple[int, ...], tree: bool = False) -> tuple[int, int, int]:
    """(busy, row folds, col folds) of ``key = (M, K, N, batch, rows, cols, df, timing, pm, pk, pn)``
    on a systolic array, or of ``(M, K, N, batch, lanes, cols, tree, pm, pk, pn)`` on an adder tree."""

    def make() -> tuple[int, int, int]:
        busy, fr, fc = systolic.adder_tree_busy_cycles(*key) if tree else systolic.mapped_busy_cycles(*key)
        return int(busy), int(fr), int(fc)

    return _GEMM_MEMO.get((tree, *key), make)


def _shape_timing(ga: GraphArrays, hw: HardwareConfig) -> tuple[ShapeTiming, np.ndarray, np.ndarray]:
    """Timing of each distinct array GEMM shape on ``hw`` in each of its dataflows, the packing
    ``(pm, pk, pn)`` per shape and the share of its MACs on DSPs; cached per array (a sweep over
    buffers or DRAM reuses it)."""
    v = config_values(hw)
    rec = hw.units.reconfigurable
    assist = (rec.macs, rec.latency_cycles) if rec is not None and rec.assists_gemm else None
    return ga.memo.get(("shapes", v.array, v.packing, assist), lambda: _time_shapes(ga, hw))


def _time_shapes(ga: GraphArrays, hw: HardwareConfig) -> tuple[ShapeTiming, np.ndarray, np.ndarray]:
    a = hw.array
    rows, cols = a.rows, a.cols
    timing = systolic.TIMING_CODES[a.timing]
    # columns in one fixed order (os, ws, is), so the listing order of the config never matters
    dfs = [DF_TREE] if a.kind == "adder_tree" else sorted(systolic.DATAFLOW_CODES[d] for d in a.dataflows)
    lut = a.lut_macs
    rec = hw.units.reconfigurable
    rec_macs = rec.macs if rec is not None and rec.assists_gemm else 0
    rec_lat = rec.latency_cycles if rec is not None else 0
    n, n_df = ga.shapes.shape[0], len(dfs)
    busy, busy_a, fr, fc, df, loop, lcols = (np.zeros((n, n_df), dtype=np.int64) for _ in range(7))
    macs = np.ones(n, dtype=np.int64)
    packs = np.ones((n, 3), dtype=np.int64)
    share = np.ones((n, n_df, 2), dtype=np.float64)  # of the MACs done on DSPs, plain and assisted
    entries: dict[tuple[int, int], tuple[int, int, int]] = {}

    def helper(cycles_of: int, n_part: int, pool: int, latency: int) -> int:
        return -(-cycles_of * n_part // pool) + latency if n_part else 0

    for s, (m, k, nn, wbits, abits, batch, b_weight) in enumerate(ga.shapes.tolist()):
        if (wbits, abits) not in entries:
            try:
                e = hw.packing_for(wbits, abits)
            except ConfigError as err:
                ops = [ga.names[i] for i in np.flatnonzero(ga.shape_id == s)[:3]]
                raise ConfigError(f"{err} (needed by ops {', '.join(ops)})") from None
            entries[(wbits, abits)] = (e.m, e.k, e.n)
        pm, pk, pn = entries[(wbits, abits)]
        # Helper pools take output channels of a weight GEMM and run beside the array; the op takes
        # the longest of them. LUT multipliers take their configured fraction; an assisting
        # reconfigurable unit the share that finishes the op soonest.
        n_lut = round(lut.fraction * nn) if lut is not None and b_weight else 0
        lut_busy = helper(batch * m * k, n_lut, lut.macs, lut.latency_cycles) if lut is not None else 0
        rest = nn - n_lut

        def on_dsps(
            n_dsp: int, d: int, shape: tuple[int, ...] = (m, k, batch, pm, pk, pn)
        ) -> tuple[int, int, int]:
            m_, k_, b_, pm_, pk_, pn_ = shape
            if n_dsp == 0:
                return 0, 0, 0
            if d == DF_TREE:
                return _gemm((m_, k_, n_dsp, b_, rows, cols, a.tree, pm_, pk_, pn_), tree=True)
            return _gemm((m_, k_, n_dsp, b_, rows, cols, d, timing, pm_, pk_, pn_))

        for c, d in enumerate(dfs):
            b_, fr[s, c], fc[s, c] = on_dsps(rest, d)
            busy[s, c] = max(b_, lut_busy)
            busy_a[s, c] = busy[s, c]
            if rec_macs and b_weight and rest > 1:
                best = busy[s, c]
                for n_r in _assist_split(rest, d, a.dsps * pm * pk * pn, rec_macs, cols, (pm, pk, pn)):
                    t = max(
                        on_dsps(rest - n_r, d)[0], lut_busy, helper(batch * m * k, n_r, rec_macs, rec_lat)
                    )
                    if t < best:
                        best, busy_a[s, c] = t, t
                        share[s, c, 1] = (rest - n_r) / nn
            share[s, c, 0] = rest / nn
            if busy_a[s, c] == busy[s, c]:
                share[s, c, 1] = rest / nn
            df[s, c] = d
            loop[s, c] = LOOP_OF_DATAFLOW[DATAFLOW_NAMES[d]]
            lcols[s, c] = cols * (pn if d == DF_TREE else systolic.packed_dims(d, pm, pk, pn)[1])
        macs[s] = pm * pk * pn
        packs[s] = (pm, pk, pn)
    return ShapeTiming(busy, busy_a, fr, fc, df, loop, lcols, macs), packs, share


def _assist_split(
    rest: int, d: int, array_rate: int, rec_macs: int, cols: int, pack: tuple[int, int, int]
) -> list[int]:
    """Output channels an assisting pool may take of a GEMM's ``rest``: the share in proportion to
    peak rates, and every split that leaves the array whole column folds (its busy cycles are a
    step function of the channels it keeps), so the split chosen is never slower than the array
    alone and a wider array never loses to a narrower one by the split."""
    prop = round(rest * rec_macs / (rec_macs + array_rate))
    out = {prop, max(1, prop // 2), min(rest, 2 * prop)}
    if d != systolic.DATAFLOW_CODES["is"]:  # N mapped on the columns: keep whole column folds
        step = cols * (pack[2] if d == DF_TREE else systolic.packed_dims(d, *pack)[1])
        folds = -(-rest // step)
        out |= {rest - j * step for j in range(max(0, folds - 64), folds) if rest - j * step < rest}
    return sorted(x for x in out if 0 < x < rest)


class _UnitPlan(NamedTuple):
    """What the units of a config make of a graph, whatever the array, buffers and DRAM: the engine
    per op and the per-engine queues (CSR), the epilogue each GEMM applies, the GEMMs an assisting
    reconfigurable unit may join, and the unit ops' cycles and fewest tiles."""

    engine: np.ndarray
    eq_ptr: np.ndarray
    eq_ops: np.ndarray
    fused: np.ndarray
    eligible: np.ndarray
    any_eligible: bool
    unit_cycles: np.ndarray
    unit_tiles: np.ndarray
    #: every op in the first dataflow column (the choice where there is none to make)
    first_column: np.ndarray


def _unit_plan(ga: GraphArrays, hw: HardwareConfig) -> tuple[Any, _UnitPlan]:
    """The :class:`_UnitPlan` of ``hw`` and its memo key, cached per (units, epilogue switches,
    unit registry).

    An activation the GEMM engine applies in its drain path (``epilogue.activation``) has no
    engine: it costs nothing and its input never leaves the array (``plan_ops`` keeps it on chip).
    """
    epi = hw.epilogue
    key = ("units", config_values(hw).units, epi.activation, epi.layernorm_stats, registry_version())
    hit = ga.memo.peek(key)
    if hit is not None:
        return key, hit

    def make() -> _UnitPlan:
        engine = assign_engines(ga, hw)
        if hw.epilogue.activation:
            fused = ga.epi_src >= 0
            fused[fused] = engine[ga.epi_src[fused]] == ENG_ARRAY
            engine[fused] = ENG_NONE
        order = np.argsort(engine, kind="stable")
        order = order[engine[order] >= 0].astype(np.int64)
        counts = np.bincount(engine[engine >= 0], minlength=len(ENGINE_NAMES))
        eq_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        fused_by = np.where((engine == ENG_NONE) & (ga.epi_src >= 0) & hw.epilogue.activation, ga.epi_src, -1)
        eligible = _assisted(ga, engine, hw)
        plan = _UnitPlan(
            engine,
            eq_ptr,
            order,
            fused_by,
            eligible,
            bool(eligible.any()),
            unit_cycles(ga, engine, hw),
            unit_min_tiles(ga, engine, hw),
            np.ones(ga.n_ops, dtype=np.int64),
        )
        return plan

    return key, ga.memo.get(key, make)


def _assisted(ga: GraphArrays, engine: np.ndarray, hw: HardwareConfig) -> np.ndarray:
    """Weight GEMMs an assisting reconfigurable unit joins: not where the GEMM streams behind the
    unit's own work, nor where the unit's work streams behind the GEMM (it is busy then)."""
    rec = hw.units.reconfigurable
    out = np.zeros(ga.n_ops, dtype=bool)
    if rec is None or not rec.assists_gemm:
        return out
    out = (engine == ENG_ARRAY) & (ga.shape_id >= 0) & (ga.b_weight == 1)
    src = ga.pipe_src
    streams = (ga.pipe_kind != 0) & (src >= 0)
    behind_unit = streams & (engine[np.maximum(src, 0)] == ENG_RECONF)
    out &= ~behind_unit
    ahead_of_unit = np.zeros(ga.n_ops, dtype=bool)
    ahead_of_unit[src[streams & (engine == ENG_RECONF)]] = True
    return out & ~ahead_of_unit


def _overlapping(a: Any, ops: np.ndarray, pool_ops: np.ndarray) -> np.ndarray:
    """Which of ``ops`` run (compute spans) while any of ``pool_ops`` does."""
    if not ops.size or not pool_ops.size:
        return np.zeros(ops.size, dtype=bool)
    s, e = a.start[ops][:, None], a.end[ops][:, None]
    ps, pe = a.start[pool_ops][None, :], a.end[pool_ops][None, :]
    return ((ps < e) & (pe > s) & (pe > ps)).any(axis=1)


def map_graph(graph: Graph | GraphArrays, hw: HardwareConfig) -> Schedule:
    """Map every op of ``graph`` onto ``hw``: engines, dataflows, compute cycles, tiles, DRAM bytes,
    prefetch slots. The result is what :func:`accelsim.sim.run` executes.

    Where the array offers several dataflows, or a reconfigurable unit may assist its GEMMs, the
    choice per op is made by the time the schedule really takes (:func:`_search`).

    Raises:
        ConfigError: an op's operand bits are not in the packing table, or ``hw`` is a dataflow
            design (:func:`accelsim.sim.dataflow.report.simulate_dataflow` simulates those).
        GraphFormatError: an op lacks the attributes its kind needs.
    """
    if hw.dataflow is not None:
        raise ConfigError(f"{hw.name}: a dataflow design has no overlay to map onto (use simulate_dataflow)")
    ga = compile_graph(graph)
    _, up = _unit_plan(ga, hw)
    a = hw.array
    n_df = 1 if a.kind == "adder_tree" else len(a.dataflows)
    searched = n_df > 1 or up.any_eligible
    # Everything the mapping reads of ``hw``. The DRAM and the clock only matter where the mapper
    # chooses among dataflows or an assist (by the roofline estimate and by running the schedule):
    # a sweep over them alone maps once. ``up`` by identity: the entry holds it.
    v = config_values(hw)
    key = (
        id(up),
        v.array,
        v.packing,
        v.buffers,
        hw.overlap,
        hw.pipeline_heads,
        hw.mbconv_fusion,
        (v.dram, hw.clock_mhz) if searched else None,
    )
    hit = ga.plans.get(key, lambda: _map(ga, hw, up, n_df, searched))
    return _schedule(ga, hw, up.engine, up.eq_ptr, up.eq_ops, *hit[1:])


#: Schedule's fields; :func:`_schedule` fills them itself while they are the ones it knows and the
#: class has no ``__post_init__`` (else it calls the constructor)
_SCHEDULE_FIELDS = tuple(f.name for f in dataclasses.fields(Schedule))
_FAST_SCHEDULE = getattr(Schedule, "__post_init__", None) is None and _SCHEDULE_FIELDS == (
    "graph", "hardware", "engine", "eq_ptr", "eq_ops", "shapes", "shape_packing", "dsp_share", "plan",
    "buffer_overflow", "dsp_cycles",
)  # fmt: skip


def _schedule(*values: Any) -> Schedule:
    """``Schedule(*values)``, every field given: a frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__`` (~1.5 us of a mapping memo hit); its dict in field order is the
    same object."""
    if not _FAST_SCHEDULE or len(values) != len(_SCHEDULE_FIELDS):
        return Schedule(*values)
    s = object.__new__(Schedule)
    s.__dict__.update(zip(_SCHEDULE_FIELDS, values, strict=True))
    return s


def _map(
    ga: GraphArrays, hw: HardwareConfig, up: _UnitPlan, n_df: int, searched: bool
) -> tuple[_UnitPlan, ShapeTiming, np.ndarray, np.ndarray, PlanArrays, str, float]:
    """:func:`map_graph`'s answer, less the graph and the config: ``(up, shapes, shape_packing,
    dsp_share, plan, buffer_overflow, dsp_cycles)``."""
    shapes, packs, share = _shape_timing(ga, hw)
    buf = hw.buffers
    bytes_per_cycle = float(hw.dram_bytes_per_cycle())
    # plain tuples, not the kernel's named tuples (:func:`~accelsim.sim._kernels.plan_ops_flat`):
    # ``_kernels.MapParams``' fields in order
    prm = (
        buf.input_kib * 1024,
        buf.weight_kib * 1024,
        buf.output_kib * 1024,
        buf.acc_bits // 8,
        bytes_per_cycle,
        buf.double_buffer,
        T_CHUNK,
        V_CHUNK,
        UNIT_TILE_BYTES,
        MAX_TILES_PER_STRIPE,
        hw.overlap,
        hw.pipeline_heads,
        hw.mbconv_fusion,
    )
    cols, sh = tuple(ga.columns), tuple(shapes)
    # each plan's DSP-cycles (Schedule.array_dsp_cycles), by the plan's identity: the plan is held
    dsp_cycles: dict[int, tuple[PlanArrays, float]] = {}

    def plan_of(allowed: np.ndarray, assisted: np.ndarray) -> PlanArrays:
        rows, share_, w, inv, *rest = _kernels.plan_ops_flat(
            cols,
            ga.macs,
            up.engine,
            up.fused,
            assisted,
            allowed,
            up.unit_cycles,
            up.unit_tiles,
            sh,
            share,
            prm,
        )
        plan = PlanArrays._make((*rows, share_, *rest))
        dsp_cycles[id(plan)] = plan, float(np.dot(w, inv))
        return plan

    def overflow(plan: PlanArrays) -> str:
        if plan.bad_op < 0:
            return ""
        which = "input_kib" if plan.bad_buffer == BUF_INPUT else "weight_kib"
        return (
            f"buffers.{which}: one tile of op {ga.names[plan.bad_op]!r} needs {plan.bad_need} B "
            f"({plan.n_bad} ops do not fit a tile)"
        )

    def build(allowed: np.ndarray, assisted: np.ndarray, plan: PlanArrays | None = None) -> Schedule:
        plan = plan_of(allowed, assisted) if plan is None else plan
        return Schedule(
            ga, hw, up.engine, up.eq_ptr, up.eq_ops, shapes, packs, plan.dsp_share, plan, overflow(plan)
        )

    if searched:
        s = _search(build, plan_of, n_df, up.eligible, up.engine, (up.eq_ptr, up.eq_ops), bytes_per_cycle)
        plan, why = s.plan, s.buffer_overflow
    else:
        plan = plan_of(up.first_column, up.eligible)
        why = overflow(plan)
    return up, shapes, packs, plan.dsp_share, plan, why, dsp_cycles[id(plan)][1]


def _dram_bytes(plan: Any) -> np.ndarray:
    """Per op, the DRAM bytes the schedule kernel moves for it: the once-loaded operands, the
    streamed one (once per outer fold unless it is reused), partial sums both ways, the stores."""
    strm = plan.ld_strm * np.where(plan.strm_reuse != 0, 1, plan.n_outer)
    return plan.ld_once + strm + 2 * plan.spill + plan.store


class _LowerBound:
    """:func:`~accelsim.sim._kernels.lower_bound` of candidates given by a mask for every op, or
    by a column per op, from each dataflow column's plan (unassisted, assisted); sound for the
    assist dropped later on any op too (assisted busy cycles are never more)."""

    def __init__(
        self, plans: list[tuple[Any, Any]], queues: tuple[np.ndarray, np.ndarray], per_byte: float
    ) -> None:
        self.q_ptr, self.q = queues
        # bytes as cycles of the channel, scaled down a hair so that float rounding never lifts
        # the bound above the integer cycles it bounds
        self.v = np.zeros((2, len(plans), 4, self.q.size))
        for c, pair in enumerate(plans):
            for a, p in enumerate(pair):
                strm = p.ld_strm * np.where(p.strm_reuse != 0, 1, p.n_outer)
                self.v[a, c, 0] = p.comp[self.q]
                self.v[a, c, 1] = (p.comp // np.maximum(p.n_tiles, 1))[self.q]
                self.v[a, c, 2] = (p.ld_once + strm + p.spill)[self.q] * per_byte
                self.v[a, c, 3] = (p.store + p.spill)[self.q] * per_byte

    def of_mask(self, mask: int, assist: np.ndarray) -> float:
        """Any choice among the dataflows in ``mask`` for every op, assisted where ``assist``."""
        return float(
            _kernels.lower_bound(
                self.v, np.full(self.q.size, mask, dtype=np.int64), assist[self.q], self.q_ptr
            )
        )

    def of_choice(self, col: np.ndarray, assisted: np.ndarray) -> float:
        """Each op in the dataflow column ``col``, assisted where ``assisted`` (per op)."""
        return float(
            _kernels.lower_bound(self.v, np.left_shift(1, col[self.q]), assisted[self.q], self.q_ptr)
        )


def _search(
    build: Any,
    plan_of: Any,
    n_df: int,
    eligible: np.ndarray,
    engine: np.ndarray,
    queues: tuple[np.ndarray, np.ndarray],
    bytes_per_cycle: float,
) -> Schedule:
    """The schedule that finishes first of a fixed set of per-op choices (ties: the first in the
    set's order).

    The set: every dataflow alone, without and with the assist; for every subset of the dataflows
    (and of {no assist, assist}) of two or more runs alone, the per-op choice of the least time in
    those runs: the op's measured time (end - start), and where the runs are in several dataflows,
    at least its DRAM bytes over the bandwidth (an op's time alone does not show the loads it
    prefetched while the op before it ran, which a choice for that op may not leave room for).
    A subset's candidates depend on the subset only, so listing one more dataflow (or allowing the
    assist) only adds candidates: it never makes the design slower. An assisted GEMM whose run
    overlaps an op of the pool loses the assist (and the schedule is run again) until none does:
    the pool is never in two places at once.

    Candidates are run in the order of a lower bound on their cycles (:class:`_LowerBound`), and
    none whose bound is above the best run so far (nor equal to it and later in the order): the
    choice is the one that running all of them would make.
    """
    n = engine.size
    pool_ops = np.flatnonzero(engine == ENG_RECONF)
    none = np.zeros(n, dtype=bool)
    assist_opts = (none, eligible) if eligible.any() else (none,)
    n_opt = len(assist_opts)
    plans = {}
    for c in range(n_df):
        for o, opt in enumerate(assist_opts):
            plans[c * n_opt + o] = plan_of(np.full(n, 1 << c, dtype=np.int64), opt)
    per_byte = (1.0 - 1e-9) / bytes_per_cycle
    # One dataflow (the assist's choice alone): three candidates, each close to the others; all run.
    bound = (
        _LowerBound([(plans[c * n_opt], plans[c * n_opt + n_opt - 1]) for c in range(n_df)], queues, per_byte)
        if n_df > 1
        else None
    )

    def of_mask(mask: int, opt: np.ndarray) -> float:
        return bound.of_mask(mask, opt) if bound is not None else 0.0

    def of_choice(col: np.ndarray, assisted: np.ndarray) -> float:
        return bound.of_choice(col, assisted) if bound is not None else 0.0

    seen: dict[bytes, tuple[Any, np.ndarray, bytes, Schedule]] = {}

    def attempt(
        allowed: np.ndarray, assisted: np.ndarray, plan: Any
    ) -> tuple[Any, np.ndarray, bytes, Schedule]:
        while True:
            # the same dataflow and assist per op (however it was asked for) runs once
            key = plan.dataflow.tobytes() + assisted.tobytes()
            if key in seen:
                return seen[key]
            sched = build(allowed, assisted, plan)
            res = run(sched)
            clash = np.zeros(n, dtype=bool)
            ops = np.flatnonzero(assisted)
            clash[ops] = _overlapping(res.arrays, ops, pool_ops)
            if not clash.any():
                break
            assisted = assisted & ~clash
            plan = plan_of(allowed, assisted)
        seen[key] = (res, assisted, key, sched)
        return seen[key]

    # The candidates in their fixed order, each (allowed, assisted, plan) once known; a per-op
    # choice among runs alone first as the indices of those runs (the singles, index c * n_opt + o).
    fixed: dict[int, tuple[np.ndarray, np.ndarray, Any]] = {}
    mixes: dict[int, list[int]] = {}
    heap: list[tuple[float, int]] = []
    for c in range(n_df):
        for o, opt in enumerate(assist_opts):
            idx = c * n_opt + o
            fixed[idx] = (np.full(n, 1 << c, dtype=np.int64), opt, plans[idx])
            heap.append((of_mask(1 << c, opt), idx))
    for mask in range(1, 1 << n_df):
        for o, opt in enumerate(assist_opts):
            runs = [c * n_opt + o2 for c in range(n_df) if (mask >> c) & 1 for o2 in range(o + 1)]
            if len(runs) >= 2:
                idx = n_df * n_opt + len(mixes)
                mixes[idx] = runs
                heap.append((of_mask(mask, opt), idx))  # the runs' choice is within the mask
    heapq.heapify(heap)

    found: dict[bytes, list[Any]] = {}  # key -> [cycles, first candidate index, schedule]
    singles: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def evaluate(idx: int) -> None:
        allowed, assisted, plan = fixed.pop(idx)
        res, used, key, sched = attempt(allowed, assisted, plan)
        if idx < n_df * n_opt:
            span = res.arrays.end - res.arrays.start
            singles[idx] = (span, np.maximum(span, _dram_bytes(sched.plan) / bytes_per_cycle), used)
        entry = found.setdefault(key, [res.total_cycles, idx, sched])
        entry[1] = min(entry[1], idx)

    def best() -> tuple[float, int]:
        return min((e[0], e[1]) for e in found.values()) if found else (np.inf, 0)

    while heap:
        b, idx = heapq.heappop(heap)
        if (b, idx) > best():
            break  # this and every later candidate take longer than the best (or tie after it)
        if idx in fixed:
            evaluate(idx)
        if idx not in mixes:
            continue  # run, or a single run already because a per-op choice needed it
        runs = mixes.pop(idx)
        for j in runs:
            if j not in singles:
                evaluate(j)
        col = np.array([j // n_opt for j in runs], dtype=np.int64)
        took = np.argmin(np.stack([singles[j][0 if col.min() == col.max() else 1] for j in runs]), axis=0)
        col = col[took]
        assisted = np.stack([singles[j][2] for j in runs])[took, np.arange(n)]
        allowed = np.left_shift(1, col)
        fixed[idx] = (allowed, assisted, plan_of(allowed, assisted))
        heapq.heappush(heap, (of_choice(col, assisted), idx))
    return min(found.values(), key=lambda e: (e[0], e[1]))[2]


__all__ = ["MAX_TILES_PER_STRIPE", "T_CHUNK", "V_CHUNK", "map_graph"]
