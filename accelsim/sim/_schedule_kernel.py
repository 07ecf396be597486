"""The schedule kernel: every tile of every op on its engine's timeline and the DRAM's (numba only).

:func:`run_schedule` is an event loop over small steps, each a jitted function of its own that a
test can run through its ``py_func``:

- :func:`_release_free_ops`: ops with no engine (data movement) finish as soon as their inputs do;
- :func:`_candidate`: when an engine's next tile could start (the scan of all engines and the
  run-ahead of one engine share it);
- :func:`_pick`: the engine whose candidate is earliest;
- :func:`_start_op`: an op's totals shared out over its tiles, into its engine's state row;
- :func:`_issue_load` and :func:`_issue_store`: a tile's transfers on the DRAM timeline
  (:func:`_dma`), scalars in and out;
- :func:`_retire_tile`: a computed tile's end where streams and the buffer-slot rule read it;
  :func:`_retire_op`: an op's last tile releases its successors;
- :func:`_run_engine`: the tiles one engine runs while it keeps the pick.

State lives in a few tables: per op its constants (``opc``, columns ``_C_*``, from the
:class:`TileProgram`) and its running state (``ops``, ``_O_*``); per engine one row (``eng``,
``_E_*``); one DMA row (``dma``, ``_D_*``). A step reads a row into locals and writes it back,
so the tile loop keeps its state in registers. The steps are inlined (``inline="always"``); one
that takes arrays and branches costs reference counting on every call (numba prunes an
increment and its decrement only within one basic block), so the per-tile steps take scalars or
are branch-free, and records are written by the caller. Every constant the jitted code reads is defined
in this module (numba's on-disk cache does not notice a constant that another module changes).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

#: Outcome of a schedule run (``RunArrays.error``): no engine could start although ops remained,
#: which a DAG in topological order never does (a bug, reported rather than returning half-filled
#: arrays).
RUN_OK, RUN_STUCK = 0, 1

_NONE = np.iinfo(np.int64).max

# Per-engine state (columns of ``eng``): the engine's own timeline, queue position and cached
# candidate, then the op it is running: its per-tile shares (quotient, remainder) of compute,
# once-loaded bytes, spills, stores and streamed bytes, its loop counters and prefetched load.
_E_FREE, _E_RING_N, _E_HEAD, _E_TILE, _E_CAND, _E_T_PIPE, _E_NEED_K, _E_NEED_OP, _E_NEED_V = range(9)
_E_READY, _E_PRE, _E_POS, _E_OUTER, _E_FIRST = 9, 10, 11, 12, 13
_E_Q_COMP, _E_R_COMP, _E_Q_ONCE, _E_R_ONCE, _E_Q_SPILL, _E_R_SPILL = 14, 15, 16, 17, 18, 19
_E_Q_ST, _E_R_ST, _E_Q_STRM, _E_R_STRM = 20, 21, 22, 23
_E_N = 24

# Per-op constants (columns of ``opc``): the TileProgram's per-op fields, the offset of the op's
# tiles in ``tile_end`` and whether it feeds a stream.
_C_ENGINE, _C_NT, _C_TPO, _C_NOUT, _C_REUSE, _C_COMP, _C_ONCE, _C_STRM, _C_SPILL, _C_STORE = range(10)
_C_ACT, _C_SLOTS, _C_PSRC, _C_PGROUPS, _C_PSPAN, _C_PON, _C_TOFF, _C_FEEDS = range(10, 18)
_C_N = 18

# Per-op state (columns of ``ops``): the outputs, then when its (non-streamed) inputs are done,
# how many predecessors are left and how many tiles are computed.
_O_START, _O_END, _O_FIN, _O_STALL, _O_LD, _O_ST, _O_DRAM, _O_READY, _O_LEFT, _O_TDONE = range(10)
_O_N = 10

# DMA state (``dma``): when the channel is free, the occupancy of the last load and store sizes
# (the tiles of one op mostly move the same bytes, so the division and float ceil are skipped on
# most tiles), the records written so far and the serial mode's clock.
_D_CHAN, _D_LD_NB, _D_LD_OCC, _D_ST_NB, _D_ST_OCC, _D_N_TR, _D_N_XF, _D_SERIAL = range(8)
_D_N = 8

# Columns of the records: a tile (op, start, end); a transfer (op, is a store, start, end).
_TR_N = 3
_XF_N = 4


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
def _occupancy(nbytes, burst_total, bytes_per_cycle):
    """Cycles the (interleaved) DRAM channels are busy moving ``nbytes``: whole bursts on every
    channel. A transfer issued at ``t`` starts at ``max(channels free, t)``; its data has arrived
    ``latency`` cycles after the last burst left."""
    bursts = (nbytes + burst_total - 1) // burst_total
    return np.int64(np.ceil(bursts * burst_total / bytes_per_cycle))


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def _pipe_need(k, nt_p, groups, span):
    """Producer tiles that consumer tile ``k`` needs: its progress through ``span`` tiles, rounded
    up to whole groups (heads) of the producer's ``nt_p`` tiles (``groups`` 0: per tile)."""
    g = groups if groups > 0 else nt_p
    kk = min(k, span - 1) + 1
    grp = (kk * g + span - 1) // span
    return min(nt_p, (grp * nt_p + g - 1) // g)


@njit(cache=True, inline="always")
def _dma(nbytes, t, chan, memo, dram):
    """One transfer of ``nbytes`` issued at ``t`` on the DRAM channel free at ``chan`` (``memo``:
    the last size and its occupancy; ``dram``: burst bytes, bytes per cycle, latency).

    Returns:
        ``(start, end, occupancy, memo)``: the channel is busy from start to end.
    """
    nb, occ = memo
    if nbytes != nb:
        nb = nbytes
        occ = _occupancy(nbytes, dram[0], dram[1])
    s0 = max(chan, t)
    return s0, s0 + occ, occ, (nb, occ)


@njit(cache=True, inline="always")
def _issue_load(kk, cnt, sh, t_slot, chan, memo, dram):
    """Tile ``kk``'s load: its bytes (:func:`_load_bytes`: loop counters ``cnt = (pos, outer,
    first)``, the op's shares ``sh``), issued once its buffer slot (and inputs) are free at
    ``t_slot``; the data is there ``latency`` after the channel is done.

    Returns:
        ``(data ready, bytes, start, DRAM cycles, channel free, counters, memo)``.
    """
    pos, outer, first = cnt
    lb, pos, outer, first = _load_bytes(
        kk, pos, outer, first, sh[0], sh[1], sh[2], sh[3], sh[4], sh[5], sh[6], sh[7], sh[8]
    )
    if lb <= 0:
        return t_slot, lb, t_slot, np.int64(0), chan, (pos, outer, first), memo
    s0, chan, occ, memo = _dma(lb, t_slot, chan, memo, dram)
    return chan + dram[2], lb, s0, occ, chan, (pos, outer, first), memo


@njit(cache=True, inline="always")
def _issue_store(k, sh, t, chan, memo, dram):
    """Tile ``k``'s store (its output share and spilled partial sums, ``sh``), after its compute
    ends at ``t``.

    Returns:
        ``(bytes, start, DRAM cycles, channel free, memo)``.
    """
    sb = sh[0] + (k < sh[1]) + sh[2] + (k < sh[3])
    if sb <= 0:
        return sb, t, np.int64(0), chan, memo
    s0, chan, occ, memo = _dma(sb, t, chan, memo, dram)
    return sb, s0, occ, chan, memo


@njit(cache=True, inline="always")
def _record_tile(tr, n, i, c0, c1):
    """Row ``n`` of the tile records (op, start, end); returns the next row's index."""
    tr[n, 0] = i
    tr[n, 1] = c0
    tr[n, 2] = c1
    return n + 1


@njit(cache=True, inline="always")
def _record_xfer(xf, n, i, store, s0, s1):
    """Row ``n`` of the transfer records (op, is a store, start, end); the next row's index."""
    xf[n, 0] = i
    xf[n, 1] = store
    xf[n, 2] = s0
    xf[n, 3] = s1
    return n + 1


@njit(cache=True, inline="always")
def _candidate(e, i, k, free, ready_i, overlap, strm, eng, ops, tile_end):
    """When tile ``k`` of op ``i`` could start on engine ``e`` (free at ``free``): after the op's
    inputs and, if it streams behind a producer (``strm``: :func:`_stream`), the producer tiles it
    needs (:func:`_pipe_need`); in serial mode the op index orders instead.

    Returns:
        ``(candidate, stream ready)``; the candidate is ``_NONE`` while the producer lags.
    """
    tp = np.int64(0)
    on, p, nt_p, groups, span, toff_p = strm
    if on:
        if eng[e, _E_NEED_K] != k or eng[e, _E_NEED_OP] != i:
            eng[e, _E_NEED_K] = k
            eng[e, _E_NEED_OP] = i
            eng[e, _E_NEED_V] = _pipe_need(k, nt_p, groups, span)
        need = eng[e, _E_NEED_V]
        if ops[p, _O_TDONE] < need:
            return _NONE, tp
        tp = tile_end[toff_p + need - 1]
    if overlap:
        return max(free, ready_i, tp), tp
    return np.int64(i), tp


@njit(cache=True, inline="always")
def _stream(i, opc):
    """``(streams, producer, its tiles, head groups, span, its first tile's offset)`` of op ``i``:
    the op's constants :func:`_candidate` reads."""
    if not opc[i, _C_PON]:
        return np.int64(0), np.int64(0), np.int64(0), np.int64(0), np.int64(0), np.int64(0)
    p = opc[i, _C_PSRC]
    return np.int64(1), p, opc[p, _C_NT], opc[i, _C_PGROUPS], opc[i, _C_PSPAN], opc[p, _C_TOFF]


@njit(cache=True, inline="always")
def _refresh_candidates(eng, opc, ops, tile_end, eq_ptr, eq_ops, overlap, dirty, last_e):
    """Each engine's candidate (``eng[:, _E_CAND]``): all when ``dirty``, else only ``last_e``'s
    (a tile changes only its own engine's, unless an op finished or it feeds a stream)."""
    for e in range(eng.shape[0]):
        if not dirty and e != last_e:
            continue
        eng[e, _E_CAND] = _NONE
        h = eng[e, _E_HEAD]
        if h >= eq_ptr[e + 1]:
            continue
        i = eq_ops[h]
        if ops[i, _O_LEFT] != 0:
            continue
        c, tp = _candidate(
            e,
            i,
            eng[e, _E_TILE],
            eng[e, _E_FREE],
            ops[i, _O_READY],
            overlap,
            _stream(i, opc),
            eng,
            ops,
            tile_end,
        )
        eng[e, _E_CAND] = c
        eng[e, _E_T_PIPE] = tp


@njit(cache=True, inline="always")
def _pick(eng):
    """``(engine, lo, hi)``: the engine whose candidate is earliest (the lowest on ties; -1 if none
    can start), and the earliest candidates of the engines below and above it."""
    best = -1
    best_t = _NONE
    for e in range(eng.shape[0]):
        if eng[e, _E_CAND] < best_t:
            best, best_t = e, eng[e, _E_CAND]
    lo = _NONE
    hi = _NONE
    for e2 in range(eng.shape[0]):
        if e2 < best:
            lo = min(lo, eng[e2, _E_CAND])
        elif e2 > best:
            hi = min(hi, eng[e2, _E_CAND])
    return best, lo, hi


@njit(cache=True, inline="always")
def _start_op(eng, e, i, opc, ready):
    """Op ``i``'s totals spread over its tiles (the first ``total % n`` tiles get one more) into
    engine ``e``'s row; the streamed operand is loaded by the first outer fold's tiles when reused,
    else by every tile."""
    nt = opc[i, _C_NT]
    eng[e, _E_READY] = ready
    eng[e, _E_Q_COMP], eng[e, _E_R_COMP] = opc[i, _C_COMP] // nt, opc[i, _C_COMP] % nt
    eng[e, _E_Q_ONCE], eng[e, _E_R_ONCE] = opc[i, _C_ONCE] // nt, opc[i, _C_ONCE] % nt
    eng[e, _E_Q_SPILL], eng[e, _E_R_SPILL] = opc[i, _C_SPILL] // nt, opc[i, _C_SPILL] % nt
    eng[e, _E_Q_ST], eng[e, _E_R_ST] = opc[i, _C_STORE] // nt, opc[i, _C_STORE] % nt
    if opc[i, _C_REUSE]:
        n_first = nt // opc[i, _C_NOUT]
        eng[e, _E_Q_STRM], eng[e, _E_R_STRM] = opc[i, _C_STRM] // n_first, opc[i, _C_STRM] % n_first
    else:
        tot = opc[i, _C_STRM] * opc[i, _C_NOUT]
        eng[e, _E_Q_STRM], eng[e, _E_R_STRM] = tot // nt, tot % nt
    eng[e, _E_POS] = 0
    eng[e, _E_OUTER] = 0
    eng[e, _E_FIRST] = 0
    eng[e, _E_PRE] = -1


@njit(cache=True, inline="always")
def _retire_tile(e, i, k, c1, ring, rn, mask, toff_i, tile_end, ops):
    """Tile ``k`` of op ``i`` computed until ``c1`` on engine ``e``: its end goes to the op's tiles
    (consumers streaming behind it read them) and to the engine's ring of compute ends (the
    buffer-slot rule). Returns the ring count.

    Branch-free on purpose: an inlined step that takes arrays costs reference counting on every
    call unless the count's increment and decrement fall in one basic block (numba prunes them).
    """
    tile_end[toff_i + k] = c1
    ops[i, _O_TDONE] = k + 1
    ring[e, rn & mask] = c1
    return rn + 1


@njit(cache=True, inline="always")
def _retire_op(i, fin, opc, ops, succ_ptr, succ_idx, stack, sp):
    """Op ``i`` finished at ``fin``: its successors' inputs are ready (those streaming behind it
    already started); engine-less successors with nothing left to wait for go on ``stack``.
    Returns the stack size."""
    for q in range(succ_ptr[i], succ_ptr[i + 1]):
        s = succ_idx[q]
        if opc[s, _C_PON] and opc[s, _C_PSRC] == i:
            continue  # already streaming behind this op
        ops[s, _O_READY] = max(ops[s, _O_READY], fin)
        ops[s, _O_LEFT] -= 1
        if ops[s, _O_LEFT] == 0 and opc[s, _C_ENGINE] < 0:
            stack[sp] = s
            sp += 1
    return sp


@njit(cache=True, inline="always")
def _release_free_ops(ops, opc, succ_ptr, succ_idx, stack, sp):
    """Finish the engine-less ops on ``stack`` (they cost nothing) and those they release."""
    while sp > 0:
        sp -= 1
        i = stack[sp]
        r = ops[i, _O_READY]
        ops[i, _O_FIN] = r
        ops[i, _O_START] = r
        ops[i, _O_END] = r
        for q in range(succ_ptr[i], succ_ptr[i + 1]):
            s = succ_idx[q]
            ops[s, _O_READY] = max(ops[s, _O_READY], r)
            ops[s, _O_LEFT] -= 1
            if ops[s, _O_LEFT] == 0 and opc[s, _C_ENGINE] < 0:
                stack[sp] = s
                sp += 1
    return sp


@njit(cache=True, inline="always")
def _run_engine(e, lo, hi, eng, ring, mask, dma, opc, ops, tile_end, eq_ops, dram, overlap, record, tr, xf):
    """Run engine ``e``'s tiles of its current op, from its current tile, while it keeps the pick.

    While an engine runs tiles of one op that feeds no stream, no other engine's candidate
    changes, so it keeps the pick as long as it still wins the same comparison (strictly before
    the lower engines' ``lo``, not after the higher ones' ``hi``): the scan is skipped, not the
    order. Per tile: its load (unless prefetched while the previous tile ran), its compute (after
    the engine, the op's inputs, the stream and its data: the wait for data is a stall), the next
    tile's prefetch, then its store (the DMA issues in time order).

    Returns:
        ``(op done, dirty, busy cycles)``: whether the op's last tile ran, and whether every
        engine's candidate must be re-evaluated.
    """
    i = eq_ops[eng[e, _E_HEAD]]
    k = eng[e, _E_TILE]
    nt = opc[i, _C_NT]
    toff_i = opc[i, _C_TOFF]
    slots_i = opc[i, _C_SLOTS]
    act_i = opc[i, _C_ACT]
    feeds_i = opc[i, _C_FEEDS]
    strm = _stream(i, opc)
    ready_i = ops[i, _O_READY]
    ready_e = eng[e, _E_READY]
    ld_sh = (
        eng[e, _E_Q_ONCE], eng[e, _E_R_ONCE], eng[e, _E_Q_SPILL], eng[e, _E_R_SPILL],
        eng[e, _E_Q_STRM], eng[e, _E_R_STRM], opc[i, _C_REUSE], opc[i, _C_TPO], opc[i, _C_NOUT],
    )  # fmt: skip
    st_sh = (eng[e, _E_Q_ST], eng[e, _E_R_ST], eng[e, _E_Q_SPILL], eng[e, _E_R_SPILL])
    q_comp = eng[e, _E_Q_COMP]
    r_comp = eng[e, _E_R_COMP]
    cnt = (eng[e, _E_POS], eng[e, _E_OUTER], eng[e, _E_FIRST])
    pre = eng[e, _E_PRE]
    t_pipe = eng[e, _E_T_PIPE]
    ef = eng[e, _E_FREE]
    rn = eng[e, _E_RING_N]
    chan = dma[_D_CHAN]
    ld_memo = (dma[_D_LD_NB], dma[_D_LD_OCC])
    st_memo = (dma[_D_ST_NB], dma[_D_ST_OCC])
    n_tr = dma[_D_N_TR]
    n_xf = dma[_D_N_XF]
    start_i = ops[i, _O_START]
    end_i = ops[i, _O_END]
    fin_i = ops[i, _O_FIN]
    acc_busy = np.int64(0)
    acc_stall = np.int64(0)
    acc_ld = np.int64(0)
    acc_st = np.int64(0)
    acc_dram = np.int64(0)
    done = False
    dirty = False
    while True:
        r = max(ready_e, t_pipe)
        t_act = r if act_i else np.int64(0)
        t_data = pre
        if pre < 0:
            t_slot = ring[e, (rn - slots_i) & mask] if rn >= slots_i else np.int64(0)
            t_data, lb, s0, occ, chan, cnt, ld_memo = _issue_load(
                k, cnt, ld_sh, max(t_slot, t_act), chan, ld_memo, dram
            )
            acc_ld += lb
            acc_dram += occ
            if record and lb > 0:
                n_xf = _record_xfer(xf, n_xf, i, 0, s0, chan)
        t_can = max(ef, r)
        c0 = max(t_can, t_data)
        c1 = c0 + q_comp + (k < r_comp)
        acc_stall += c0 - t_can
        acc_busy += c1 - c0
        if start_i < 0:
            start_i = c0
        end_i = c1
        ef = c1
        rn = _retire_tile(e, i, k, c1, ring, rn, mask, toff_i, tile_end, ops)
        if record:
            n_tr = _record_tile(tr, n_tr, i, c0, c1)
        pre = -1
        if k + 1 < nt:
            t_slot = ring[e, (rn - slots_i) & mask] if rn >= slots_i else np.int64(0)
            pre, lb, s0, occ, chan, cnt, ld_memo = _issue_load(
                k + 1, cnt, ld_sh, max(t_slot, t_act), chan, ld_memo, dram
            )
            acc_ld += lb
            acc_dram += occ
            if record and lb > 0:
                n_xf = _record_xfer(xf, n_xf, i, 0, s0, chan)
        sb, s0, occ, chan, st_memo = _issue_store(k, st_sh, c1, chan, st_memo, dram)
        acc_st += sb
        acc_dram += occ
        fin_i = max(fin_i, c1, chan if sb > 0 else c1)
        if record and sb > 0:
            n_xf = _record_xfer(xf, n_xf, i, 1, s0, chan)
        k += 1
        if feeds_i or k == nt:
            dirty = True
        if k == nt:
            done = True
            break
        if dirty:
            break
        c, tp = _candidate(e, i, k, ef, ready_i, overlap, strm, eng, ops, tile_end)
        if c == _NONE or c >= lo or c > hi:
            break
        t_pipe = tp
        eng[e, _E_T_PIPE] = tp
        eng[e, _E_CAND] = c
    eng[e, _E_TILE] = 0 if done else k
    eng[e, _E_POS], eng[e, _E_OUTER], eng[e, _E_FIRST] = cnt
    eng[e, _E_PRE] = pre
    eng[e, _E_FREE] = ef
    eng[e, _E_RING_N] = rn
    dma[_D_CHAN] = chan
    dma[_D_LD_NB], dma[_D_LD_OCC] = ld_memo
    dma[_D_ST_NB], dma[_D_ST_OCC] = st_memo
    dma[_D_N_TR] = n_tr
    dma[_D_N_XF] = n_xf
    ops[i, _O_START] = start_i
    ops[i, _O_END] = end_i
    ops[i, _O_FIN] = fin_i
    ops[i, _O_STALL] += acc_stall
    ops[i, _O_LD] += acc_ld
    ops[i, _O_ST] += acc_st
    ops[i, _O_DRAM] += acc_dram
    return done, dirty, acc_busy


@njit(cache=True)
def _tables(prog):
    """The per-op constants ``opc`` and the per-op state ``ops`` at the start."""
    n_ops = prog.engine.shape[0]
    opc = np.zeros((n_ops, _C_N), np.int64)
    ops = np.zeros((n_ops, _O_N), np.int64)
    toff = np.int64(0)
    for i in range(n_ops):
        opc[i, _C_ENGINE] = prog.engine[i]
        opc[i, _C_NT] = prog.n_tiles[i]
        opc[i, _C_TPO] = prog.tiles_per_outer[i]
        opc[i, _C_NOUT] = prog.n_outer[i]
        opc[i, _C_REUSE] = prog.strm_reuse[i]
        opc[i, _C_COMP] = prog.comp[i]
        opc[i, _C_ONCE] = prog.ld_once[i]
        opc[i, _C_STRM] = prog.ld_strm[i]
        opc[i, _C_SPILL] = prog.spill[i]
        opc[i, _C_STORE] = prog.store[i]
        opc[i, _C_ACT] = prog.act_dep[i]
        opc[i, _C_SLOTS] = prog.slots[i]
        opc[i, _C_PSRC] = prog.pipe_src[i]
        opc[i, _C_PGROUPS] = prog.pipe_groups[i]
        opc[i, _C_PSPAN] = prog.pipe_span[i]
        opc[i, _C_PON] = prog.pipe_on[i]
        opc[i, _C_TOFF] = toff
        toff += prog.n_tiles[i]
        if prog.pipe_on[i]:
            opc[prog.pipe_src[i], _C_FEEDS] = 1
        ops[i, _O_START] = -1
        ops[i, _O_LEFT] = prog.pred_ptr[i + 1] - prog.pred_ptr[i] - prog.pipe_on[i]
    return opc, ops, toff


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
    slot (the compute of the tile ``slots`` places earlier on this engine has ended) and, if it
    reads activations from DRAM, for the op's inputs; its compute waits for the engine, the op's
    inputs and its data (the difference is a stall); its store follows its compute on the DRAM
    timeline. Engine-less ops (data movement) cost nothing.

    An op's totals are spread evenly over its tiles (the first ``total % n`` tiles get one more):
    compute, once-loaded bytes, partial-sum spills (loaded and stored), stores; the streamed
    operand is loaded by the tiles of the first outer fold when reused, else by every tile.

    Returns:
        The :class:`RunArrays`.
    """
    succ_ptr = prog.succ_ptr
    succ_idx = prog.succ_idx
    eq_ptr = prog.eq_ptr
    eq_ops = prog.eq_ops
    n_ops = prog.engine.shape[0]
    n_eng = eq_ptr.shape[0] - 1
    opc, ops, n_all = _tables(prog)
    tile_end = np.zeros(max(1, n_all), np.int64)
    n_rec = max(1, n_all) if record else 1
    tr = np.zeros((n_rec, _TR_N), np.int64)
    xf = np.zeros((2 * n_rec if record else 1, _XF_N), np.int64)
    dram_t = (np.int64(dram.burst_total), dram.bytes_per_cycle, np.int64(dram.latency))
    # Compute ends remembered per engine for the buffer-slot rule: a power of two >= every op's
    # slots, so the ring index is a mask.
    ring_n = 1
    for i in range(n_ops):
        while ring_n < prog.slots[i]:
            ring_n *= 2
    ring = np.zeros((n_eng, ring_n), np.int64)
    eng = np.zeros((n_eng, _E_N), np.int64)
    eng[:, _E_HEAD] = eq_ptr[:-1]
    eng[:, _E_NEED_K] = -1
    eng[:, _E_NEED_OP] = -1
    eng[:, _E_CAND] = _NONE
    dma = np.zeros(_D_N, np.int64)
    dma[_D_LD_NB] = -1
    dma[_D_ST_NB] = -1
    busy = np.zeros(n_eng, np.int64)
    stack = np.zeros(n_ops + 1, np.int64)
    sp = 0
    remaining = 0
    for i in range(n_ops):
        if opc[i, _C_ENGINE] >= 0:
            remaining += 1
        elif ops[i, _O_LEFT] == 0:
            stack[sp] = i
            sp += 1
    error = RUN_OK
    dirty = True
    last_e = 0
    while True:
        sp = _release_free_ops(ops, opc, succ_ptr, succ_idx, stack, sp)
        if remaining == 0:
            break
        _refresh_candidates(eng, opc, ops, tile_end, eq_ptr, eq_ops, overlap, dirty, last_e)
        e, lo, hi = _pick(eng)
        if e < 0:
            error = RUN_STUCK  # no engine can start: impossible for a DAG in topological order
            break
        i = eq_ops[eng[e, _E_HEAD]]
        if eng[e, _E_TILE] == 0:
            r = ops[i, _O_READY] if overlap else max(ops[i, _O_READY], dma[_D_SERIAL])
            _start_op(eng, e, i, opc, r)
        done, dirty, b = _run_engine(
            e, lo, hi, eng, ring, ring_n - 1, dma, opc, ops, tile_end, eq_ops, dram_t, overlap, record, tr, xf
        )
        busy[e] += b
        last_e = e
        if done:
            eng[e, _E_HEAD] += 1
            remaining -= 1
            dma[_D_SERIAL] = max(dma[_D_SERIAL], ops[i, _O_FIN])
            sp = _retire_op(i, ops[i, _O_FIN], opc, ops, succ_ptr, succ_idx, stack, sp)
    n_tr = dma[_D_N_TR]
    n_xf = dma[_D_N_XF]
    return RunArrays(
        ops[:, _O_START].copy(),
        ops[:, _O_END].copy(),
        ops[:, _O_FIN].copy(),
        ops[:, _O_STALL].copy(),
        ops[:, _O_LD].copy(),
        ops[:, _O_ST].copy(),
        ops[:, _O_DRAM].copy(),
        busy,
        tr[:n_tr, 0].copy(),
        tr[:n_tr, 1].copy(),
        tr[:n_tr, 2].copy(),
        xf[:n_xf, 0].copy(),
        xf[:n_xf, 1].copy(),
        xf[:n_xf, 2].copy(),
        xf[:n_xf, 3].copy(),
        error,
    )
