"""The schedule kernel: every tile of every op on its engine's timeline and the DRAM's (numba only).

:func:`run_schedule` is one jitted function with its per-tile state in locals; its helpers
(:func:`_load_bytes`, :func:`_pipe_need`, :func:`_occupancy`) are small jitted functions of
scalars. Splitting the loop into steps that share the state arrays was tried and measured 1.7x
slower: numba counts references of every array an inlined step with branches receives, on every
call. Every constant the jitted code reads is defined in this module (numba's on-disk cache does
not notice a constant that another module changes).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from accelsim._numba import njit

#: Outcome of a schedule run (``RunArrays.error``): no engine could start although ops remained,
#: which a DAG in topological order never does (a bug, reported rather than returning half-filled
#: arrays).
RUN_OK, RUN_STUCK = 0, 1

#: Compute-end times remembered per engine for the buffer-slot (prefetch depth) rule: at least the
#: deepest prefetch the mapping gives (``_kernels.MAX_SLOTS``; a test checks), a power of two.
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
