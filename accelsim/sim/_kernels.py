"""Numba kernels of the simulator: flat int64/float64 arrays and scalars in, arrays out.

Only numpy and numba are imported here; the typed layer (:mod:`accelsim.sim.mapping`,
:mod:`accelsim.sim.schedule`) validates before calling. The integer codes the kernels switch on
(op classes, engines, streaming edges, dataflows, timing modes, operand roles) are defined here,
once, and every other module uses them by name. The systolic timing functions are called from the
typed layer, not from these kernels, on purpose: numba's on-disk cache does not notice when a
callee in another module changes, so a cached kernel would keep a stale inlined formula.

Kernel arguments and results are named tuples of arrays (numba types them field by field), so
a call site names what it passes and what it reads back.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

# -- codes ----------------------------------------------------------------------------------------
# Op classes: what kind of work an op is (the mapping picks an engine per class and config).
CLS_GEMM = 0  # matmul, conv2d (im2col; grouped = per-group GEMMs)
CLS_DWCONV = 1  # dwconv2d
CLS_LINATT = 2  # linear_attention (fused softmax-free attention)
CLS_SOFTMAX = 3
CLS_VECTOR = 4  # layernorm, batchnorm, activation, eltwise, pool, token_select
CLS_MOVE = 5  # reshape, transpose, ...: no work, aliases its input
CLS_LA_AUX = 6  # the vector work of a linear attention (ReLU of Q and K; the normalising divide)

#: Engine codes; one timeline each in the schedule and one track each in the trace. ``ENG_NONE``:
#: no engine (data movement, or work a unit absorbs).
ENG_NONE = -1
ENG_ARRAY, ENG_VECTOR, ENG_SOFTMAX, ENG_LINATT, ENG_DWCONV, ENG_RECONF = 0, 1, 2, 3, 4, 5
ENGINE_NAMES: tuple[str, ...] = ("array", "vector", "softmax", "linear_attention", "dwconv", "reconfigurable")

# Pipelined (streaming) edges producer -> consumer: the consumer's tiles follow the producer's
# instead of waiting for all of it. PIPE_HEAD: per attention head (QK^T -> softmax -> AV, the
# parts of a linear attention); PIPE_ELEM: an element-wise consumer behind any producer;
# PIPE_MBCONV: depthwise conv -> (activation) -> pointwise conv (MBConv fusion).
PIPE_NONE, PIPE_HEAD, PIPE_ELEM, PIPE_MBCONV = 0, 1, 2, 3

#: Dataflows of the array (names in ``DATAFLOW_NAMES``, same order); ``DF_TREE`` is the loop
#: order of a multiplier + adder-tree engine (weights of an output block resident, activations
#: streamed, every output finished in its lane before the next: no partial sums leave it).
DF_OS, DF_WS, DF_IS, DF_TREE = 0, 1, 2, 3
DATAFLOW_NAMES: tuple[str, ...] = ("os", "ws", "is", "tree")
#: Array timing modes (see :mod:`accelsim.sim.engines.systolic`).
TIMING_SCALESIM, TIMING_PIPELINED = 0, 1

# Input roles: the GEMM operands A[M,K] (activations) and B[K,N] (weights or 2nd activation),
# and everything else an op reads (bias, layernorm affine, vector operands).
ROLE_A, ROLE_B, ROLE_OTHER = 0, 1, 2

#: Buffers a tile may overflow (``PlanArrays.bad_buffer``).
BUF_NONE, BUF_INPUT, BUF_WEIGHT = -1, 0, 1

#: Outcome of a schedule run (``RunArrays.error``): no engine could start although ops remained,
#: which a DAG in topological order never does (a bug, reported rather than returning half-filled
#: arrays).
RUN_OK, RUN_STUCK = 0, 1

#: Compute-end times remembered per engine for the buffer-slot (prefetch depth) rule.
RING = 64
_NONE = np.iinfo(np.int64).max


@njit(cache=True)
def _occupancy(nbytes, burst_total, bytes_per_cycle):
    """Cycles the (interleaved) DRAM channels are busy moving ``nbytes``: whole bursts on every
    channel. A transfer issued at ``t`` starts at ``max(channels free, t)``; its data has arrived
    ``latency`` cycles after the last burst left."""
    bursts = (nbytes + burst_total - 1) // burst_total
    return np.int64(np.ceil(bursts * burst_total / bytes_per_cycle))


# Per-engine state of the op it is running (columns of the ``cur`` table in run_schedule).
_Q_COMP, _R_COMP, _Q_ONCE, _R_ONCE, _Q_SPILL, _R_SPILL, _Q_ST, _R_ST, _Q_STRM, _R_STRM = range(10)
_POS, _OUTER, _FIRST, _READY, _PRE = 10, 11, 12, 13, 14
_NCUR = 15


class TileProgram(NamedTuple):
    """What the schedule kernel runs: per op its engine, tiles and bytes; the dependency CSR; the
    engines' queues; the streaming edges (see :func:`run_schedule`)."""

    engine: np.ndarray
    n_tiles: np.ndarray
    tiles_per_outer: np.ndarray
    n_outer: np.ndarray
    strm_reuse: np.ndarray
    comp: np.ndarray
    ld_once: np.ndarray
    ld_strm: np.ndarray
    spill: np.ndarray
    store: np.ndarray
    act_dep: np.ndarray
    slots: np.ndarray
    pred_ptr: np.ndarray
    succ_ptr: np.ndarray
    succ_idx: np.ndarray
    eq_ptr: np.ndarray
    eq_ops: np.ndarray
    pipe_src: np.ndarray
    pipe_groups: np.ndarray
    pipe_span: np.ndarray
    pipe_on: np.ndarray


class DramParams(NamedTuple):
    """The DRAM channel as the kernel sees it: bytes per accelerator cycle (all channels), bytes
    per burst (all channels), latency per transfer in cycles."""

    bytes_per_cycle: float
    burst_total: int
    latency: int


class RunArrays(NamedTuple):
    """Per op: start, end (compute), finish (incl. its last store), stall cycles, DRAM bytes and
    cycles; per engine busy cycles; per tile and per transfer records (empty unless recorded);
    ``error`` (``RUN_OK`` or ``RUN_STUCK``)."""

    start: np.ndarray
    end: np.ndarray
    finish: np.ndarray
    stall: np.ndarray
    load_bytes: np.ndarray
    store_bytes: np.ndarray
    dram_cycles: np.ndarray
    busy: np.ndarray
    tile_op: np.ndarray
    tile_start: np.ndarray
    tile_end: np.ndarray
    xfer_op: np.ndarray
    xfer_store: np.ndarray
    xfer_start: np.ndarray
    xfer_end: np.ndarray
    error: int


@njit(cache=True)
def _load_bytes(k, pos, outer, first, q_once, r_once, q_spill, r_spill, q_strm, r_strm, reuse, tpo, n_outer):
    """DRAM bytes tile ``k`` loads, and the loop counters (position in the outer fold, outer fold,
    first-fold tiles seen) after it: tiles must be asked in order."""
    lb = q_once + (k < r_once) + q_spill + (k < r_spill)
    if reuse:
        if outer == 0:
            lb += q_strm + (first < r_strm)
            first += 1
    else:
        lb += q_strm + (k < r_strm)
    pos += 1
    if pos == tpo:
        pos = 0
        outer += 1
        if outer == n_outer:
            outer = 0
    return lb, pos, outer, first


@njit(cache=True)
def _pipe_need(k, nt_p, groups, span):
    """Producer tiles that consumer tile ``k`` needs: its progress through ``span`` tiles, rounded
    up to whole groups (heads) of the producer's ``nt_p`` tiles (``groups`` 0: per tile)."""
    g = groups if groups > 0 else nt_p
    kk = min(k, span - 1) + 1
    grp = (kk * g + span - 1) // span
    return min(nt_p, (grp * nt_p + g - 1) // g)


@njit(cache=True, nogil=True)
def run_schedule(prog, dram, overlap, record):
    """Event-driven run of all tiles of all ops; one timeline per engine and one for DRAM.

    Args:
        prog: the :class:`TileProgram`.
        dram: the :class:`DramParams`.
        overlap: independent ops on different engines run at once (False: one op at a time, in
            topological order).
        record: also return every tile and transfer (for the trace).

    Pipelined edges (``pipe_on[i]``): op ``i`` streams behind ``pipe_src[i]`` instead of waiting
    for all of it: its tile ``k`` waits for the producer's first :func:`_pipe_need` tiles (their
    compute end: the data is on chip). Its other predecessors are waited for as usual.

    Ops are given in topological order. Each engine runs its queue (``eq_ops[eq_ptr[e]:eq_ptr[e+1]]``,
    topological order) one tile at a time; at each step the engine whose next tile can start first
    goes, so independent ops on different engines overlap. A tile's load waits for a free buffer
    slot and, if it reads activations from DRAM, for the op's inputs; its
    compute waits for the engine, the op's inputs and its data (the difference is a stall); its
    store follows its compute on the DRAM timeline. Engine-less ops (data movement) cost nothing.

    An op's totals are spread evenly over its tiles (the first ``total % n`` tiles get one more):
    compute, once-loaded bytes, partial-sum spills (loaded and stored), stores; the streamed
    operand is loaded by the tiles of the first outer fold when reused, else by every tile.

    Returns:
        The :class:`RunArrays`.
    """
    engine = prog.engine
    n_tiles = prog.n_tiles
    burst_total = dram.burst_total
    bytes_per_cycle = dram.bytes_per_cycle
    latency = dram.latency
    pipe_on = prog.pipe_on
    pipe_src = prog.pipe_src
    succ_ptr = prog.succ_ptr
    succ_idx = prog.succ_idx
    eq_ptr = prog.eq_ptr
    eq_ops = prog.eq_ops
    n_ops = engine.shape[0]
    n_eng = eq_ptr.shape[0] - 1
    start = np.full(n_ops, -1, np.int64)
    end = np.zeros(n_ops, np.int64)
    finish = np.zeros(n_ops, np.int64)
    stall = np.zeros(n_ops, np.int64)
    ld_bytes = np.zeros(n_ops, np.int64)
    st_bytes = np.zeros(n_ops, np.int64)
    dram_cyc = np.zeros(n_ops, np.int64)
    busy = np.zeros(n_eng, np.int64)
    ready = np.zeros(n_ops, np.int64)
    left = np.zeros(n_ops, np.int64)
    tile_off = np.zeros(n_ops + 1, np.int64)
    for i in range(n_ops):
        left[i] = prog.pred_ptr[i + 1] - prog.pred_ptr[i] - pipe_on[i]
        tile_off[i + 1] = tile_off[i] + n_tiles[i]
    tile_end = np.zeros(max(1, tile_off[n_ops]), np.int64)
    tdone = np.zeros(n_ops, np.int64)
    t_pipe = np.zeros(eq_ptr.shape[0], np.int64)
    n_rec = 1
    n_xfer = 1
    if record:
        n_rec = max(1, int(n_tiles.sum()))
        n_xfer = 2 * n_rec
    tr_op = np.full(n_rec, -1, np.int64)
    tr_s = np.zeros(n_rec, np.int64)
    tr_e = np.zeros(n_rec, np.int64)
    xf_op = np.full(n_xfer, -1, np.int64)
    xf_store = np.zeros(n_xfer, np.int64)
    xf_s = np.zeros(n_xfer, np.int64)
    xf_e = np.zeros(n_xfer, np.int64)
    n_tr = 0
    n_xf = 0
    error = RUN_OK

    eng_free = np.zeros(n_eng, np.int64)
    ring = np.zeros((n_eng, RING), np.int64)
    ring_n = np.zeros(n_eng, np.int64)
    head = eq_ptr[:-1].copy()
    tile = np.zeros(n_eng, np.int64)
    cur = np.zeros((n_eng, _NCUR), np.int64)
    chan_free = np.int64(0)
    serial_t = np.int64(0)

    need_k = np.full(n_eng, -1, np.int64)
    need_op = np.full(n_eng, -1, np.int64)
    need_v = np.zeros(n_eng, np.int64)
    # Occupancy of the last load and store sizes: the tiles of one op mostly move the same bytes,
    # so the division and float ceil are skipped on most tiles.
    memo_nb = np.int64(-1)
    memo_occ = np.int64(0)
    memo_snb = np.int64(-1)
    memo_socc = np.int64(0)
    cand = np.full(n_eng, _NONE, np.int64)
    dirty = True
    last_e = 0
    feeds = np.zeros(n_ops, np.bool_)
    for i in range(n_ops):
        if pipe_on[i]:
            feeds[pipe_src[i]] = True
    stack = np.zeros(n_ops + 1, np.int64)
    sp = 0
    remaining = 0
    for i in range(n_ops):
        if engine[i] >= 0:
            remaining += 1
        elif left[i] == 0:
            stack[sp] = i
            sp += 1
    while True:
        # Finish zero-cost ops whose inputs are done (and release their successors).
        while sp > 0:
            sp -= 1
            i = stack[sp]
            finish[i] = ready[i]
            start[i] = ready[i]
            end[i] = ready[i]
            for q in range(succ_ptr[i], succ_ptr[i + 1]):
                s = succ_idx[q]
                ready[s] = max(ready[s], finish[i])
                left[s] -= 1
                if left[s] == 0 and engine[s] < 0:
                    stack[sp] = s
                    sp += 1
        if remaining == 0:
            break
        # Pick the engine whose next tile can start first (serial mode: the lowest op index).
        # Candidates are cached: a tile changes only its own engine's, unless an op finished or
        # the op feeds a stream (``dirty``: all are re-evaluated).
        for e in range(n_eng):
            if not dirty and e != last_e:
                continue
            cand[e] = _NONE
            if head[e] >= eq_ptr[e + 1]:
                continue
            i = eq_ops[head[e]]
            if left[i] != 0:
                continue
            t_pipe[e] = 0
            if pipe_on[i]:
                p = pipe_src[i]
                if need_k[e] != tile[e] or need_op[e] != i:
                    need_k[e] = tile[e]
                    need_op[e] = i
                    need_v[e] = _pipe_need(tile[e], n_tiles[p], prog.pipe_groups[i], prog.pipe_span[i])
                need = need_v[e]
                if tdone[p] < need:
                    continue
                t_pipe[e] = tile_end[tile_off[p] + need - 1]
            if overlap:
                cand[e] = max(eng_free[e], ready[i], t_pipe[e])
            else:
                cand[e] = i
        dirty = False
        best = -1
        best_t = _NONE
        for e in range(n_eng):
            if cand[e] < best_t:
                best, best_t = e, cand[e]
        if best < 0:
            error = RUN_STUCK  # no engine can start: impossible for a DAG in topological order
            break
        e = best
        i = eq_ops[head[e]]
        k = tile[e]
        nt = n_tiles[i]
        if k == 0:
            r = ready[i]
            if not overlap:
                r = max(r, serial_t)
            cur[e, _READY] = r
            cur[e, _Q_COMP], cur[e, _R_COMP] = prog.comp[i] // nt, prog.comp[i] % nt
            cur[e, _Q_ONCE], cur[e, _R_ONCE] = prog.ld_once[i] // nt, prog.ld_once[i] % nt
            cur[e, _Q_SPILL], cur[e, _R_SPILL] = prog.spill[i] // nt, prog.spill[i] % nt
            cur[e, _Q_ST], cur[e, _R_ST] = prog.store[i] // nt, prog.store[i] % nt
            if prog.strm_reuse[i]:
                n_first = nt // prog.n_outer[i]
                cur[e, _Q_STRM], cur[e, _R_STRM] = prog.ld_strm[i] // n_first, prog.ld_strm[i] % n_first
            else:
                tot = prog.ld_strm[i] * prog.n_outer[i]
                cur[e, _Q_STRM], cur[e, _R_STRM] = tot // nt, tot % nt
            cur[e, _POS] = 0
            cur[e, _OUTER] = 0
            cur[e, _FIRST] = 0
            cur[e, _PRE] = -1
        # While this engine runs tiles of one op that feeds no stream, no other engine's
        # candidate changes (the rule above), so it keeps the pick as long as it still wins the
        # same comparison (strictly before the lower engines, not after the higher ones): the
        # scan is skipped, not the order. ``lo``/``hi``: the best candidates below/above it.
        lo = _NONE
        hi = _NONE
        for e2 in range(n_eng):
            if e2 < e:
                lo = min(lo, cand[e2])
            elif e2 > e:
                hi = min(hi, cand[e2])
        # The op's constants as locals: the kernel's stores to other int64 arrays would
        # otherwise make the compiler reload them on every tile (it cannot rule out aliasing).
        reuse_i = prog.strm_reuse[i]
        tpo_i = prog.tiles_per_outer[i]
        nout_i = prog.n_outer[i]
        slots_i = prog.slots[i]
        act_i = prog.act_dep[i]
        feeds_i = feeds[i]
        pipe_i = pipe_on[i]
        ready_e = cur[e, _READY]
        q_comp = cur[e, _Q_COMP]
        r_comp = cur[e, _R_COMP]
        q_st = cur[e, _Q_ST]
        r_st = cur[e, _R_ST]
        q_spill = cur[e, _Q_SPILL]
        r_spill = cur[e, _R_SPILL]
        toff_i = tile_off[i]
        ready_i = ready[i]
        # Per-tile running state of this engine and op as locals, stored back once the run ends.
        ef = eng_free[e]
        rn = ring_n[e]
        start_i = start[i]
        end_i = end[i]
        fin_i = finish[i]
        acc_busy = np.int64(0)
        acc_stall = np.int64(0)
        acc_ld = np.int64(0)
        acc_st = np.int64(0)
        acc_dram = np.int64(0)
        q_once = cur[e, _Q_ONCE]
        r_once = cur[e, _R_ONCE]
        q_strm = cur[e, _Q_STRM]
        r_strm = cur[e, _R_STRM]
        pos = cur[e, _POS]
        outer = cur[e, _OUTER]
        first = cur[e, _FIRST]
        pre = cur[e, _PRE]
        while True:
            r = max(ready_e, t_pipe[e])
            t_data = pre
            fin = np.int64(0)
            # Step 0 issues tile k's load unless it was prefetched while tile k-1 ran, step 1
            # computes tile k, step 2 prefetches tile k+1's data before k's store (the DMA issues in
            # time order). Both loads go through the one load site below.
            for step in range(3):
                if step == 1:
                    t_can = max(ef, r)
                    c0 = max(t_can, t_data)
                    acc_stall += c0 - t_can
                    c1 = c0 + q_comp + (k < r_comp)
                    if start_i < 0:
                        start_i = c0
                    end_i = c1
                    acc_busy += c1 - c0
                    ef = c1
                    tile_end[toff_i + k] = c1
                    tdone[i] = k + 1
                    ring[e, rn & (RING - 1)] = c1
                    rn += 1
                    if record:
                        tr_op[n_tr] = i
                        tr_s[n_tr] = c0
                        tr_e[n_tr] = c1
                        n_tr += 1
                    fin = c1
                    pre = -1
                    continue
                kk = k + step // 2
                if (step == 0 and pre >= 0) or kk >= nt:
                    continue
                # -- the load site: a free buffer slot (the compute of the tile ``slots`` places
                # earlier on this engine has ended) and, for activations read from DRAM, the inputs
                lb, pos, outer, first = _load_bytes(
                    kk,
                    pos,
                    outer,
                    first,
                    q_once,
                    r_once,
                    q_spill,
                    r_spill,
                    q_strm,
                    r_strm,
                    reuse_i,
                    tpo_i,
                    nout_i,
                )
                t_ld = np.int64(0)
                if rn >= slots_i:
                    t_ld = ring[e, (rn - slots_i) & (RING - 1)]
                if act_i:
                    t_ld = max(t_ld, r)
                if lb > 0:
                    if lb != memo_nb:
                        memo_nb = lb
                        memo_occ = _occupancy(lb, burst_total, bytes_per_cycle)
                    s0 = max(chan_free, t_ld)
                    chan_free = s0 + memo_occ
                    t_ld = chan_free + latency
                    acc_ld += lb
                    acc_dram += memo_occ
                    if record:
                        xf_op[n_xf] = i
                        xf_store[n_xf] = 0
                        xf_s[n_xf] = s0
                        xf_e[n_xf] = chan_free
                        n_xf += 1
                if step == 0:
                    t_data = t_ld
                else:
                    pre = t_ld
            # -- store ------------------------------------------------------------------------------
            sb = q_st + (k < r_st) + q_spill + (k < r_spill)
            if sb > 0:
                if sb != memo_snb:
                    memo_snb = sb
                    memo_socc = _occupancy(sb, burst_total, bytes_per_cycle)
                s0 = max(chan_free, c1)
                occ = memo_socc
                chan_free = s0 + occ
                acc_st += sb
                acc_dram += occ
                fin = s0 + occ
                if record:
                    xf_op[n_xf] = i
                    xf_store[n_xf] = 1
                    xf_s[n_xf] = s0
                    xf_e[n_xf] = s0 + occ
                    n_xf += 1
            if fin > fin_i:
                fin_i = fin
            tile[e] = k + 1
            last_e = e
            if feeds_i or k + 1 == nt:
                dirty = True
            if k + 1 == nt:
                # The op is done: release successors, advance this engine's queue.
                tile[e] = 0
                head[e] += 1
                remaining -= 1
                serial_t = max(serial_t, fin_i)
                for q in range(succ_ptr[i], succ_ptr[i + 1]):
                    s = succ_idx[q]
                    if pipe_on[s] and pipe_src[s] == i:
                        continue  # already streaming behind this op
                    ready[s] = max(ready[s], fin_i)
                    left[s] -= 1
                    if left[s] == 0 and engine[s] < 0:
                        stack[sp] = s
                        sp += 1
                break
            if dirty:
                break
            # The candidate the scan would compute for this engine's next tile.
            tp = np.int64(0)
            if pipe_i:
                p = pipe_src[i]
                if need_k[e] != k + 1 or need_op[e] != i:
                    need_k[e] = k + 1
                    need_op[e] = i
                    need_v[e] = _pipe_need(k + 1, n_tiles[p], prog.pipe_groups[i], prog.pipe_span[i])
                need = need_v[e]
                if tdone[p] < need:
                    break
                tp = tile_end[tile_off[p] + need - 1]
            c = max(ef, ready_i, tp) if overlap else np.int64(i)
            if c >= lo or c > hi:
                break
            t_pipe[e] = tp
            cand[e] = c
            k += 1
        cur[e, _POS] = pos
        cur[e, _OUTER] = outer
        cur[e, _FIRST] = first
        cur[e, _PRE] = pre
        eng_free[e] = ef
        ring_n[e] = rn
        start[i] = start_i
        end[i] = end_i
        finish[i] = fin_i
        busy[e] += acc_busy
        stall[i] += acc_stall
        ld_bytes[i] += acc_ld
        st_bytes[i] += acc_st
        dram_cyc[i] += acc_dram

    return RunArrays(
        start,
        end,
        finish,
        stall,
        ld_bytes,
        st_bytes,
        dram_cyc,
        busy,
        tr_op[:n_tr],
        tr_s[:n_tr],
        tr_e[:n_tr],
        xf_op[:n_xf],
        xf_store[:n_xf],
        xf_s[:n_xf],
        xf_e[:n_xf],
        error,
    )


@njit(cache=True)
def _onchip_and_pipes(
    engine, cls, t_can_reside, t_peak_live, t_peak_heads, pipe_src, pipe_kind, pipe_root,
    obuf, overlap, pipeline_heads, mbconv_fusion,
):  # fmt: skip
    """Which root tensors stay on chip, and which pipelined edges are on.

    A tensor stays on chip when it may (an activation that is not a graph output) and the live
    activations over its lifetime fit the output buffer. A per-head stream needs only two heads
    of its tensor at a time (double-buffered: ``t_peak_heads``); an MBConv stream passes through line buffers, so
    its tensor never goes to DRAM. An edge streams only if its tensor stays on chip.
    """
    n = engine.shape[0]
    onchip = t_can_reside & (t_peak_live <= obuf)
    pipe_on = np.zeros(n, np.int64)
    if not overlap:
        return onchip, pipe_on
    for i in range(n):
        p = pipe_src[i]
        if p < 0 or engine[i] < 0 or engine[p] < 0:
            continue
        kind = pipe_kind[i]
        r = pipe_root[i]
        if kind == PIPE_HEAD:
            if not pipeline_heads:
                continue
            if r >= 0:
                if not t_can_reside[r] or t_peak_heads[r] > obuf:
                    continue
                onchip[r] = True
        elif kind == PIPE_MBCONV and mbconv_fusion:
            if r >= 0:
                if not t_can_reside[r]:
                    continue
                onchip[r] = True
        else:  # element-wise (an MBConv activation without fusion streams as element-wise)
            if kind == PIPE_MBCONV and cls[i] != CLS_VECTOR:
                continue
            if r >= 0 and not onchip[r]:
                continue
        pipe_on[i] = 1
    return onchip, pipe_on


class GraphColumns(NamedTuple):
    """The hardware-independent per-op columns :func:`plan_ops` reads (from ``GraphArrays``)."""

    cls: np.ndarray
    batch: np.ndarray
    M: np.ndarray
    K: np.ndarray
    N: np.ndarray
    elements: np.ndarray
    shape_id: np.ndarray
    shape2_id: np.ndarray
    in_ptr: np.ndarray
    in_root: np.ndarray
    in_bytes: np.ndarray
    in_role: np.ndarray
    in_weight: np.ndarray
    out_root: np.ndarray
    out_bytes: np.ndarray
    t_can_reside: np.ndarray
    t_peak_live: np.ndarray
    t_peak_heads: np.ndarray
    pipe_src: np.ndarray
    pipe_kind: np.ndarray
    pipe_root: np.ndarray
    heads: np.ndarray


class ShapeTiming(NamedTuple):
    """Per distinct array GEMM shape (``GraphArrays.shapes``, rows) and per dataflow the array
    offers (columns, in the config's order): stall-free busy cycles of all its batch GEMMs (and
    with a reconfigurable unit assisting, ``busy_assisted``), folds, the dataflow code and the
    logical columns of a fold; per shape the products per DSP (the array's packing for its operand
    bits)."""

    busy: np.ndarray
    busy_assisted: np.ndarray
    row_folds: np.ndarray
    col_folds: np.ndarray
    dataflow: np.ndarray
    logical_cols: np.ndarray
    macs_per_dsp: np.ndarray


class MapParams(NamedTuple):
    """Buffer sizes (bytes), accumulator bytes, tiling granularity and the streaming switches."""

    ibuf: int
    wbuf: int
    obuf: int
    acc_bytes: int
    bytes_per_cycle: float
    double_buffer: bool
    t_chunk: int
    v_chunk: int
    unit_tile_bytes: int
    max_tpo: int
    overlap: bool
    pipeline_heads: bool
    mbconv_fusion: bool


class PlanArrays(NamedTuple):
    """Per-op mapping on one hardware point (see :mod:`accelsim.sim.mapping`): compute cycles,
    products per DSP, tiles, DRAM bytes by kind, prefetch slots, folds, dataflow, streaming
    edges; and the first op whose tile does not fit a buffer (``bad_buffer`` a ``BUF_*`` code)
    and how many do not."""

    comp: np.ndarray
    pack: np.ndarray
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
    dataflow: np.ndarray
    pipe_on: np.ndarray
    pipe_span: np.ndarray
    bad_op: int
    bad_buffer: int
    bad_need: int
    n_bad: int


class GemmPlan(NamedTuple):
    """The loop order's tiles and DRAM bytes of one array GEMM in one dataflow (see plan_ops)."""

    n_outer: int
    tiles_per_outer: int
    n_tiles: int
    reuse: int
    ld_once: int
    ld_strm: int
    spill: int
    i_fp: int
    w_fp: int
    i_tile: int
    w_tile: int


@njit(cache=True)
def _gemm_plan(dataflow, fr, fc, lcols, batch, M, K, N, a_t, a_d, b_t, b_d, o_t, o_d, prm):
    """Tiles, footprints and DRAM bytes of an array GEMM (operand bytes: ``*_t`` total, ``*_d``
    from DRAM) under ``dataflow``, with ``fr x fc`` folds of ``lcols`` logical columns."""
    ibuf, wbuf, obuf = prm.ibuf, prm.wbuf, prm.obuf
    if dataflow == DF_OS:  # os: outer M folds, inner N folds, stream K
        outer, inner, t_len = fr, fc, K
    elif dataflow in (DF_WS, DF_TREE):  # ws, tree: outer N folds, inner K folds, stream M
        outer, inner, t_len = fc, fr, M
    else:  # is: outer M folds, inner K folds, stream N
        outer, inner, t_len = fc, fr, N
    stat_ws = dataflow in (DF_WS, DF_TREE)
    chunks = max(1, (t_len + prm.t_chunk - 1) // prm.t_chunk)
    n_outer = max(1, outer)
    # A tile is a run of consecutive fold-chunks of one outer stripe, at most ``max_tpo`` tiles
    # per stripe: the grouping depends on the array and the op only.
    fold_chunks = max(1, inner * chunks)
    tpo = min(fold_chunks, prm.max_tpo)
    n_tiles = max(1, batch * n_outer * tpo)
    if stat_ws:
        stat_t, stat_d, strm_t, strm_d, strm_cap = b_t, b_d, a_t, a_d, ibuf
    else:
        stat_t, stat_d, strm_t, strm_d, strm_cap = a_t, a_d, b_t, b_d, wbuf
    ld_once = stat_d + o_d
    reuse = 1
    if n_outer > 1 and strm_t > strm_cap * batch:
        reuse = 0
    # Partial sums: a fold's accumulators (t_len streamed rows x the logical columns) stay in the
    # output buffer over the K folds if they fit. If not, there are two loop orders, and the
    # mapper takes the one that moves fewer DRAM bytes:
    # - the plain order spills every K fold's partial sums but the last to DRAM and reads them
    #   back ((inner - 1) x the output, both ways);
    # - the output-stationary order cuts the stream into chunks whose accumulators fit and
    #   finishes the whole K reduction of a chunk before the next, so the stationary operand's
    #   stripe is re-read once per extra chunk, unless the stripe fits its buffer and stays there
    #   (then it costs nothing more).
    # Only DRAM bytes change: the stall-free compute cycles stay the array's formula for the
    # whole GEMM (the extra weight fills of the chunked order are not counted).
    spill = np.int64(0)
    psum_row = lcols * prm.acc_bytes
    if (dataflow in (DF_WS, DF_IS)) and inner > 1 and t_len * psum_row > obuf:
        spill = (inner - 1) * batch * M * N * prm.acc_bytes
        chunk = obuf // psum_row
        if chunk > 0:
            n_chunks = (t_len + chunk - 1) // chunk
            stripes = batch * n_outer
            stripe = (stat_t + stripes - 1) // stripes
            stat_cap = wbuf if stat_ws else ibuf
            extra = np.int64(0) if stripe <= stat_cap else (n_chunks - 1) * stat_d
            if extra <= 2 * spill:
                ld_once += extra
                spill = np.int64(0)
    n_fc = max(1, batch * n_outer * fold_chunks)
    stat_fp = (stat_t + o_t + n_fc - 1) // n_fc
    strm_fp = (strm_t + batch * fold_chunks - 1) // max(1, batch * fold_chunks)
    if stat_ws:
        w_fp, i_fp = stat_fp, strm_fp
    else:
        w_fp, i_fp = strm_fp, stat_fp
    # Tiles group fold-chunks: per-tile footprints for the prefetch depth.
    grp = (fold_chunks + tpo - 1) // tpo
    return GemmPlan(
        n_outer, tpo, n_tiles, reuse, ld_once, strm_d, int(spill), i_fp, w_fp, i_fp * grp, w_fp * grp
    )


@njit(cache=True)
def _roofline(plan, busy, store, bytes_per_cycle):
    """The time an array GEMM needs at least: its compute, or its DRAM bytes at full bandwidth."""
    strm = plan.ld_strm * (1 if plan.reuse else plan.n_outer)
    return max(float(busy), (plan.ld_once + strm + 2 * plan.spill + store) / bytes_per_cycle)


@njit(cache=True)
def plan_ops(g, engine, fused, assisted, allowed, unit_comp, unit_tiles, sh, prm):
    """Per-op mapping on one hardware point (see :mod:`accelsim.sim.mapping` for the model).

    Args:
        g: the :class:`GraphColumns`.
        engine: engine code per op (``ENG_NONE`` for no work).
        fused: per op, the GEMM whose drain path applies it (an epilogue), or -1.
        assisted: per op, whether a reconfigurable unit joins the array on it (its
            ``sh.busy_assisted`` timing).
        allowed: per op, a bit mask of the columns of ``sh`` (dataflows) it may run in; of
            those it takes the one whose roofline estimate is least (the mapper's search sets
            one bit to choose).
        unit_comp: stall-free cycles of the ops on a unit (zeros elsewhere).
        unit_tiles: the fewest tiles a unit op is cut into (0: no constraint).
        sh: the :class:`ShapeTiming` of the array's GEMM shapes (``g.shape_id`` indexes it).
        prm: the :class:`MapParams`.

    Returns:
        The :class:`PlanArrays`.
    """
    cls = g.cls
    batch = g.batch
    M = g.M
    K = g.K
    N = g.N
    in_ptr = g.in_ptr
    in_root = g.in_root
    in_bytes = g.in_bytes
    in_role = g.in_role
    in_weight = g.in_weight
    pipe_src = g.pipe_src
    ibuf, wbuf, obuf = prm.ibuf, prm.wbuf, prm.obuf
    n = cls.shape[0]
    onchip, pipe_on = _onchip_and_pipes(
        engine, cls, g.t_can_reside, g.t_peak_live, g.t_peak_heads, pipe_src, g.pipe_kind, g.pipe_root,
        obuf, prm.overlap, prm.pipeline_heads, prm.mbconv_fusion,
    )  # fmt: skip
    # An epilogue's input goes from the GEMM's accumulators through the drain path: never to DRAM.
    for i in range(cls.shape[0]):
        r = g.pipe_root[i]
        if fused[i] >= 0 and r >= 0 and g.t_can_reside[r]:
            onchip[r] = True
    pipe_span = np.ones(n, np.int64)
    comp = unit_comp.copy()
    pack = np.ones(n, np.int64)
    n_tiles = np.zeros(n, np.int64)
    tpo = np.ones(n, np.int64)
    n_outer = np.ones(n, np.int64)
    reuse = np.ones(n, np.int64)
    ld_once = np.zeros(n, np.int64)
    ld_strm = np.zeros(n, np.int64)
    spill = np.zeros(n, np.int64)
    store = np.zeros(n, np.int64)
    act_dep = np.zeros(n, np.int64)
    slots = np.ones(n, np.int64)
    fr = np.zeros(n, np.int64)
    fc = np.zeros(n, np.int64)
    dfl = np.full(n, -1, np.int64)
    bad_op = -1
    bad_buf = -1
    bad_need = np.int64(0)
    n_bad = 0
    for i in range(n):
        e = engine[i]
        if e < 0:
            continue
        # DRAM bytes per operand role (resident activations cost nothing).
        a_t = np.int64(0)
        b_t = np.int64(0)
        o_t = np.int64(0)
        a_d = np.int64(0)
        b_d = np.int64(0)
        o_d = np.int64(0)
        for j in range(in_ptr[i], in_ptr[i + 1]):
            r = in_root[j]
            nb = in_bytes[j]
            d = 0 if onchip[r] else nb
            if d > 0 and not in_weight[j]:
                act_dep[i] = 1
            if in_role[j] == ROLE_A:
                a_t += nb
                a_d += d
            elif in_role[j] == ROLE_B:
                b_t += nb
                b_d += d
            else:
                o_t += nb
                o_d += d
        ro = g.out_root[i]
        if ro < 0 or not onchip[ro]:
            store[i] = g.out_bytes[i]
        s = g.shape_id[i]
        i_fp = np.int64(0)
        w_fp = np.int64(0)
        i_tile = np.int64(0)
        w_tile = np.int64(0)
        if e == ENG_ARRAY and s >= 0:
            pack[i] = sh.macs_per_dsp[s]
            s2 = g.shape2_id[i]
            if s2 >= 0 or cls[i] == CLS_LINATT:
                # Linear attention on the array: both GEMMs back to back per head (its ReLU and
                # divide are separate rows on the vector unit), in the dataflow they take least in.
                best = -1
                best_busy = 0
                for c in range(sh.busy.shape[1]):
                    if not (allowed[i] >> c) & 1:
                        continue
                    both = sh.busy[s, c] + (sh.busy[s2, c] if s2 >= 0 else 0)
                    if best < 0 or both < best_busy:
                        best, best_busy = c, both
                comp[i] = sh.busy[s, best]
                fr[i] = sh.row_folds[s, best]
                fc[i] = sh.col_folds[s, best]
                dfl[i] = sh.dataflow[s, best]
                f2 = 0
                if s2 >= 0:
                    comp[i] += sh.busy[s2, best]
                    f2 = sh.row_folds[s2, best] * sh.col_folds[s2, best]
                n_tiles[i] = max(1, batch[i] * (fr[i] * fc[i] + f2))
                ld_once[i] = a_d + b_d + o_d
                i_fp = (a_t + b_t + o_t + n_tiles[i] - 1) // n_tiles[i]
                i_tile = i_fp
            else:
                # The dataflows the op may take, each with its own loop order and DRAM bytes:
                # the one whose roofline estimate, max(compute, DRAM bytes / bandwidth), is least
                # (ties: the first column).
                busy = sh.busy_assisted if assisted[i] else sh.busy
                best = -1
                best_est = 0.0
                plan = _gemm_plan(
                    sh.dataflow[s, 0], sh.row_folds[s, 0], sh.col_folds[s, 0], sh.logical_cols[s, 0],
                    batch[i], M[i], K[i], N[i], a_t, a_d, b_t, b_d, o_t, o_d, prm,
                )  # fmt: skip
                for c in range(busy.shape[1]):
                    if not (allowed[i] >> c) & 1:
                        continue
                    gp = _gemm_plan(
                        sh.dataflow[s, c], sh.row_folds[s, c], sh.col_folds[s, c], sh.logical_cols[s, c],
                        batch[i], M[i], K[i], N[i], a_t, a_d, b_t, b_d, o_t, o_d, prm,
                    )  # fmt: skip
                    est = _roofline(gp, busy[s, c], store[i], prm.bytes_per_cycle)
                    if best < 0 or est < best_est:
                        best, best_est, plan = c, est, gp
                comp[i] = busy[s, best]
                fr[i] = sh.row_folds[s, best]
                fc[i] = sh.col_folds[s, best]
                dfl[i] = sh.dataflow[s, best]
                n_outer[i] = plan.n_outer
                tpo[i] = plan.tiles_per_outer
                n_tiles[i] = plan.n_tiles
                reuse[i] = plan.reuse
                ld_once[i] = plan.ld_once
                ld_strm[i] = plan.ld_strm
                spill[i] = plan.spill
                i_fp, w_fp, i_tile, w_tile = plan.i_fp, plan.w_fp, plan.i_tile, plan.w_tile
        else:
            # Unit ops stream element chunks of at most ``unit_tile_bytes`` of inputs, fewer when
            # half the input buffer is smaller: above that the tiling (and so how closely
            # consumers stream behind) does not depend on the buffer size.
            chunk = max(1, min(prm.unit_tile_bytes, ibuf // 2))
            n_tiles[i] = max(
                1,
                (g.elements[i] + prm.v_chunk - 1) // prm.v_chunk,
                unit_tiles[i],
                (a_t + b_t + o_t + chunk - 1) // chunk,
            )
            if pipe_on[i]:  # streaming behind a producer: at least its granularity
                n_tiles[i] = max(n_tiles[i], n_tiles[pipe_src[i]])
            h = g.heads[i]
            if h > 1:  # work split per head: whole tiles per head, so heads can stream
                n_tiles[i] = h * ((n_tiles[i] + h - 1) // h)
            ld_once[i] = a_d + b_d + o_d
            i_fp = (a_t + b_t + o_t + n_tiles[i] - 1) // n_tiles[i]
            i_tile = i_fp
        # One fold-chunk must fit its buffers (else the design cannot run this op at all).
        if (i_fp > 0 and ibuf < i_fp) or (w_fp > 0 and wbuf < w_fp):
            n_bad += 1
            if bad_op < 0:
                bad_op = i
                bad_buf = BUF_INPUT if (i_fp > 0 and ibuf < i_fp) else BUF_WEIGHT
                bad_need = i_fp if bad_buf == BUF_INPUT else w_fp
        # Prefetch depth: whole tiles that fit each buffer half (at least one).
        fit = np.int64(RING)
        if i_tile > 0:
            fit = min(fit, ibuf // i_tile)
        if w_tile > 0:
            fit = min(fit, wbuf // w_tile)
        if fit < 1:
            fit = np.int64(1)
        if prm.double_buffer:
            slots[i] = min(2 * fit, RING)
        else:
            slots[i] = 1
        # Streaming span: a consumer reads its producer's stream over all its tiles, except a
        # pointwise conv on the array, which reads it over its first outer stripe under ws (the
        # K folds follow the depthwise engine's channel groups) and needs all of it under os/is.
        pipe_span[i] = n_tiles[i]
        if pipe_on[i] and e == ENG_ARRAY and g.pipe_kind[i] == PIPE_MBCONV and batch[i] == 1:
            pipe_span[i] = tpo[i] if (dfl[i] == DF_WS or dfl[i] == DF_TREE) else 1
    # The GEMM writes its epilogue's output: what that output stores, the GEMM stores. A scale
    # folded through data movement rewrites the GEMM's own output, which the GEMM stores anyway
    # when it is off chip.
    for i in range(n):
        if fused[i] >= 0:
            ro = g.out_root[i]
            rg = g.out_root[fused[i]]
            if (ro < 0 or not onchip[ro]) and (g.pipe_root[i] >= 0 or rg < 0 or onchip[rg]):
                store[fused[i]] += g.out_bytes[i]
    return PlanArrays(
        comp,
        pack,
        n_tiles,
        tpo,
        n_outer,
        reuse,
        ld_once,
        ld_strm,
        spill,
        store,
        act_dep,
        slots,
        fr,
        fc,
        dfl,
        pipe_on,
        pipe_span,
        bad_op,
        bad_buf,
        int(bad_need),
        n_bad,
    )
