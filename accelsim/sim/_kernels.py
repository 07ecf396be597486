"""Numba kernels of the simulator: flat int64/float64 arrays and scalars in, arrays out.

Only numpy and numba are imported here; the typed layer (:mod:`accelsim.sim.mapping`,
:mod:`accelsim.sim.engine`) validates before calling. The systolic timing functions are called
from the typed layer, not from these kernels, on purpose: numba's on-disk cache does not notice
when a callee in another module changes, so a cached kernel would keep a stale inlined formula.
"""

from __future__ import annotations

import numpy as np
from numba import njit

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
def run_schedule(
    engine,
    n_tiles,
    tiles_per_outer,
    n_outer,
    strm_reuse,
    comp,
    ld_once,
    ld_strm,
    spill,
    st,
    act_dep,
    slots,
    pred_ptr,
    succ_ptr,
    succ_idx,
    eq_ptr,
    eq_ops,
    pipe_src,
    pipe_groups,
    pipe_span,
    pipe_on,
    bytes_per_cycle,
    burst_total,
    latency,
    overlap,
    record,
):
    """Event-driven run of all tiles of all ops; one timeline per engine and one for DRAM.

    Pipelined edges (``pipe_on[i]``): op ``i`` streams behind ``pipe_src[i]`` instead of waiting
    for all of it: its tile ``k`` waits for the producer's first :func:`_pipe_need` tiles (their
    compute end: the data is on chip). Its other predecessors are waited for as usual.

    Ops are given in topological order. Each engine runs its queue (``eq_ops[eq_ptr[e]:eq_ptr[e+1]]``,
    topological order) one tile at a time; at each step the engine whose next tile can start first
    goes, so independent ops on different engines overlap (``overlap == 0`` runs ops one at a time
    in topological order). A tile's load waits for a free buffer slot (the compute of the tile
    ``slots`` places earlier on the same engine has ended) and, if it reads activations from DRAM,
    for the op's inputs; its compute waits for the engine, the op's inputs and its data (the
    difference is a stall); its store follows its compute on the DRAM timeline. Engine -1 ops
    (data movement) cost nothing.

    An op's totals are spread evenly over its tiles (the first ``total % n`` tiles get one more):
    compute, once-loaded bytes, partial-sum spills (loaded and stored), stores; the streamed
    operand is loaded by the tiles of the first outer fold when reused, else by every tile.

    Returns per op (start, end, finish, stall, load_bytes, store_bytes, dram_cycles), per engine
    busy cycles, and (when ``record``) per tile (op, start, end) and per transfer (op, is_store,
    start, end).
    """
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
        left[i] = pred_ptr[i + 1] - pred_ptr[i] - pipe_on[i]
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
                    need_v[e] = _pipe_need(tile[e], n_tiles[p], pipe_groups[i], pipe_span[i])
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
        if best < 0:  # cannot happen for a DAG in topological order
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
            cur[e, _Q_COMP], cur[e, _R_COMP] = comp[i] // nt, comp[i] % nt
            cur[e, _Q_ONCE], cur[e, _R_ONCE] = ld_once[i] // nt, ld_once[i] % nt
            cur[e, _Q_SPILL], cur[e, _R_SPILL] = spill[i] // nt, spill[i] % nt
            cur[e, _Q_ST], cur[e, _R_ST] = st[i] // nt, st[i] % nt
            if strm_reuse[i]:
                n_first = nt // n_outer[i]
                cur[e, _Q_STRM], cur[e, _R_STRM] = ld_strm[i] // n_first, ld_strm[i] % n_first
            else:
                tot = ld_strm[i] * n_outer[i]
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
        reuse_i = strm_reuse[i]
        tpo_i = tiles_per_outer[i]
        nout_i = n_outer[i]
        slots_i = slots[i]
        act_i = act_dep[i]
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
            # -- load of tile k (already issued if it was prefetched while tile k-1 ran) --------------
            if pre >= 0:
                t_data = pre
            else:
                lb, pos, outer, first = _load_bytes(
                    k,
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
                t_slot = np.int64(0)
                sl = slots_i
                if rn >= sl:
                    t_slot = ring[e, (rn - sl) & (RING - 1)]
                if act_i:
                    t_slot = max(t_slot, r)
                t_data = t_slot
                if lb > 0:
                    if lb != memo_nb:
                        memo_nb = lb
                        memo_occ = _occupancy(lb, burst_total, bytes_per_cycle)
                    s0 = max(chan_free, t_slot)
                    occ = memo_occ
                    t_data = s0 + occ + latency
                    chan_free = s0 + occ
                    acc_ld += lb
                    acc_dram += occ
                    if record:
                        xf_op[n_xf] = i
                        xf_store[n_xf] = 0
                        xf_s[n_xf] = s0
                        xf_e[n_xf] = s0 + occ
                        n_xf += 1
            # -- compute ----------------------------------------------------------------------------
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
            # -- prefetch the next tile's data before this tile's store (the DMA issues in time order) --
            pre = -1
            if k + 1 < nt:
                lb, pos, outer, first = _load_bytes(
                    k + 1,
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
                t_slot = np.int64(0)
                sl = slots_i
                if rn >= sl:
                    t_slot = ring[e, (rn - sl) & (RING - 1)]
                if act_i:
                    t_slot = max(t_slot, r)
                t_next = t_slot
                if lb > 0:
                    if lb != memo_nb:
                        memo_nb = lb
                        memo_occ = _occupancy(lb, burst_total, bytes_per_cycle)
                    s0 = max(chan_free, t_slot)
                    occ = memo_occ
                    t_next = s0 + occ + latency
                    chan_free = s0 + occ
                    acc_ld += lb
                    acc_dram += occ
                    if record:
                        xf_op[n_xf] = i
                        xf_store[n_xf] = 0
                        xf_s[n_xf] = s0
                        xf_e[n_xf] = s0 + occ
                        n_xf += 1
                pre = t_next
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
                    need_v[e] = _pipe_need(k + 1, n_tiles[p], pipe_groups[i], pipe_span[i])
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

    return (
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
        if kind == 1:  # per head
            if not pipeline_heads:
                continue
            if r >= 0:
                if not t_can_reside[r] or t_peak_heads[r] > obuf:
                    continue
                onchip[r] = True
        elif kind == 3 and mbconv_fusion:
            if r >= 0:
                if not t_can_reside[r]:
                    continue
                onchip[r] = True
        else:  # element-wise (an MBConv activation without fusion streams as element-wise)
            if kind == 3 and cls[i] != 4:
                continue
            if r >= 0 and not onchip[r]:
                continue
        pipe_on[i] = 1
    return onchip, pipe_on


@njit(cache=True)
def plan_ops(
    cls,
    engine,
    batch,
    M,
    K,
    N,
    elements,
    shape_id,
    shape2_id,
    sh_busy,
    sh_fr,
    sh_fc,
    sh_pack,
    unit_comp,
    unit_tiles,
    in_ptr,
    in_root,
    in_bytes,
    in_role,
    in_weight,
    out_root,
    out_bytes,
    t_can_reside,
    t_peak_live,
    t_peak_heads,
    pipe_src,
    pipe_kind,
    pipe_root,
    heads,
    dataflow,
    cols,
    ibuf,
    wbuf,
    obuf,
    acc_bytes,
    double_buffer,
    t_chunk,
    v_chunk,
    max_tpo,
    overlap,
    pipeline_heads,
    mbconv_fusion,
):
    """Per-op mapping on one hardware point (see :mod:`accelsim.sim.mapping` for the model).

    ``shape_id``/``shape2_id`` index the per-shape busy cycles and folds of array GEMMs (-1: none).
    Returns (compute, pack, n_tiles, tiles_per_outer, n_outer, strm_reuse, ld_once, ld_strm, spill,
    store, act_dep, slots, row_folds, col_folds, pipe_on, pipe_span, bad_op, bad_buffer, bad_need,
    n_bad): the first op whose tile does not fit a buffer (``bad_buffer`` 0 input, 1 weight; -1 if
    none) and how many.
    """
    n = cls.shape[0]
    onchip, pipe_on = _onchip_and_pipes(
        engine, cls, t_can_reside, t_peak_live, t_peak_heads, pipe_src, pipe_kind, pipe_root,
        obuf, overlap, pipeline_heads, mbconv_fusion,
    )  # fmt: skip
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
            if in_role[j] == 0:
                a_t += nb
                a_d += d
            elif in_role[j] == 1:
                b_t += nb
                b_d += d
            else:
                o_t += nb
                o_d += d
        ro = out_root[i]
        if ro < 0 or not onchip[ro]:
            store[i] = out_bytes[i]
        s = shape_id[i]
        i_fp = np.int64(0)
        w_fp = np.int64(0)
        i_tile = np.int64(0)
        w_tile = np.int64(0)
        if e == 0 and s >= 0:
            pack[i] = sh_pack[s]
            comp[i] = batch[i] * sh_busy[s]
            fr[i] = sh_fr[s]
            fc[i] = sh_fc[s]
            s2 = shape2_id[i]
            if s2 >= 0 or cls[i] == 2:
                # Linear attention on the array: both GEMMs back to back per head (its ReLU and
                # divide are separate rows on the vector unit).
                f2 = 0
                if s2 >= 0:
                    comp[i] += batch[i] * sh_busy[s2]
                    f2 = sh_fr[s2] * sh_fc[s2]
                n_tiles[i] = max(1, batch[i] * (fr[i] * fc[i] + f2))
                ld_once[i] = a_d + b_d + o_d
                i_fp = (a_t + b_t + o_t + n_tiles[i] - 1) // n_tiles[i]
                i_tile = i_fp
            else:
                if dataflow == 0:  # os: outer M folds, inner N folds, stream K
                    outer, inner, t_len = fr[i], fc[i], K[i]
                elif dataflow == 1:  # ws: outer N folds, inner K folds, stream M
                    outer, inner, t_len = fc[i], fr[i], M[i]
                else:  # is: outer M folds, inner K folds, stream N
                    outer, inner, t_len = fc[i], fr[i], N[i]
                chunks = max(1, (t_len + t_chunk - 1) // t_chunk)
                n_outer[i] = max(1, outer)
                # A tile is a run of consecutive fold-chunks of one outer stripe, at most
                # ``max_tpo`` tiles per stripe: the grouping depends on the array and the op only.
                fold_chunks = max(1, inner * chunks)
                tpo[i] = min(fold_chunks, max_tpo)
                n_tiles[i] = max(1, batch[i] * n_outer[i] * tpo[i])
                if dataflow == 1:
                    stat_t, stat_d, strm_t, strm_d, strm_cap = b_t, b_d, a_t, a_d, ibuf
                else:
                    stat_t, stat_d, strm_t, strm_d, strm_cap = a_t, a_d, b_t, b_d, wbuf
                ld_once[i] = stat_d + o_d
                ld_strm[i] = strm_d
                if n_outer[i] > 1 and strm_t > strm_cap * batch[i]:
                    reuse[i] = 0
                # Partial sums: a fold's accumulators (t_len streamed rows x the logical columns)
                # stay in the output buffer over the K folds if they fit. If not, there are two
                # loop orders, and the mapper takes the one that moves fewer DRAM bytes:
                # - the plain order spills every K fold's partial sums but the last to DRAM and
                #   reads them back ((inner - 1) x the output, both ways);
                # - the output-stationary order cuts the stream into chunks whose accumulators
                #   fit and finishes the whole K reduction of a chunk before the next, so the
                #   stationary operand's stripe is re-read once per extra chunk, unless the stripe
                #   fits its buffer and stays there (then it costs nothing more).
                # Only DRAM bytes change: the stall-free compute cycles stay SCALE-Sim's formula
                # for the whole GEMM (the extra weight fills of the chunked order are not counted).
                psum_row = cols * pack[i] * acc_bytes
                if dataflow != 0 and inner > 1 and t_len * psum_row > obuf:
                    spill_b = (inner - 1) * batch[i] * M[i] * N[i] * acc_bytes
                    chunk = obuf // psum_row
                    if chunk > 0:
                        n_chunks = (t_len + chunk - 1) // chunk
                        stripes = batch[i] * n_outer[i]
                        stripe = (stat_t + stripes - 1) // stripes
                        stat_cap = wbuf if dataflow == 1 else ibuf
                        extra = np.int64(0) if stripe <= stat_cap else (n_chunks - 1) * stat_d
                        if extra <= 2 * spill_b:
                            ld_once[i] += extra
                            spill_b = 0
                    spill[i] = spill_b
                n_fc = max(1, batch[i] * n_outer[i] * fold_chunks)
                stat_fp = (stat_t + o_t + n_fc - 1) // n_fc
                strm_fp = (strm_t + batch[i] * fold_chunks - 1) // max(1, batch[i] * fold_chunks)
                if dataflow == 1:
                    w_fp, i_fp = stat_fp, strm_fp
                else:
                    w_fp, i_fp = strm_fp, stat_fp
                # Tiles group fold-chunks: per-tile footprints for the prefetch depth.
                grp = (fold_chunks + tpo[i] - 1) // tpo[i]
                w_tile = w_fp * grp
                i_tile = i_fp * grp
        else:
            # Unit ops stream element chunks; a tile's inputs take at most half the input buffer.
            half = max(1, ibuf // 2)
            n_tiles[i] = max(
                1, (elements[i] + v_chunk - 1) // v_chunk, unit_tiles[i], (a_t + b_t + o_t + half - 1) // half
            )
            if pipe_on[i]:  # streaming behind a producer: at least its granularity
                n_tiles[i] = max(n_tiles[i], n_tiles[pipe_src[i]])
            if heads[i] > 1:  # work split per head: whole tiles per head, so heads can stream
                n_tiles[i] = heads[i] * ((n_tiles[i] + heads[i] - 1) // heads[i])
            ld_once[i] = a_d + b_d + o_d
            i_fp = (a_t + b_t + o_t + n_tiles[i] - 1) // n_tiles[i]
            i_tile = i_fp
        # One fold-chunk must fit its buffers (else the design cannot run this op at all).
        if (i_fp > 0 and ibuf < i_fp) or (w_fp > 0 and wbuf < w_fp):
            n_bad += 1
            if bad_op < 0:
                bad_op = i
                bad_buf = 0 if (i_fp > 0 and ibuf < i_fp) else 1
                bad_need = i_fp if bad_buf == 0 else w_fp
        # Prefetch depth: whole tiles that fit each buffer half (at least one).
        fit = np.int64(RING)
        if i_tile > 0:
            fit = min(fit, ibuf // i_tile)
        if w_tile > 0:
            fit = min(fit, wbuf // w_tile)
        if fit < 1:
            fit = np.int64(1)
        if double_buffer:
            slots[i] = min(2 * fit, RING)
        else:
            slots[i] = 1
        # Streaming span: a consumer reads its producer's stream over all its tiles, except a
        # pointwise conv on the array, which reads it over its first outer stripe under ws (the
        # K folds follow the depthwise engine's channel groups) and needs all of it under os/is.
        pipe_span[i] = n_tiles[i]
        if pipe_on[i] and e == 0 and pipe_kind[i] == 3 and batch[i] == 1:
            pipe_span[i] = tpo[i] if dataflow == 1 else 1
    return (
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
        pipe_on,
        pipe_span,
        bad_op,
        bad_buf,
        bad_need,
        n_bad,
    )
