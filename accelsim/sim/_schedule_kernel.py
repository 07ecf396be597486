"""The schedule kernel: every tile of every op on its engine's timeline and the DRAM's (numba only).

:func:`run_schedule` is an event loop: release the engine-less ops whose inputs are done, take
each engine's candidate (when its next tile could start), pick the earliest, and run that
engine's tiles while it keeps the pick; the op's last tile releases its successors. Its steps:

- module-level jitted functions of scalars, each testable through its ``py_func``:
  :func:`_shares` (an op's totals spread over its tiles), :func:`_load_bytes` (a tile's load),
  :func:`_store_bytes`, :func:`_dma` (a transfer on the DRAM timeline, :func:`_occupancy`),
  :func:`_pipe_need` (the producer tiles a streaming tile waits for);
- closures inside :func:`run_schedule` for the steps that read or write the state arrays:
  ``candidate`` (when an engine's next tile could start: the scan of all engines and the
  run-ahead of one share it), ``pick``, ``slot_free``, ``retire_tile``, ``record_xfer`` and
  ``release`` (an op's successors). numba inlines a closure with its free variables bound to the
  kernel's own arrays, at no cost; a module-level step that receives arrays pays reference
  counting and argument unpacking on every call: ``candidate`` as one made the DeiT-Small sweep's
  kernel 3.6x (``inline="always"``) to 4.8x (a plain call) slower. These steps are tested through
  ``run_schedule.py_func``. A tile's load is written out at its two sites (the tile's own load,
  the next tile's prefetch): as a closure returning the loop counters it measured 10% slower.
- module-level jitted functions for the block jump (below), which runs once per cut (a dozen
  times a run), not per tile: :func:`_cut` and its steps :func:`_first_not_done`,
  :func:`_snapshot`, :func:`_engines_match`, :func:`_ops_match`, :func:`_blocks_to_skip` (with
  :func:`_first_unlike`) and :func:`_skip_blocks`. As closures (inlined into the loop's function) they
  made its first compile (no numba cache) 2.3x longer; the state arrays as arguments cost nothing
  measurable at a dozen calls. Their int arguments are int64 from the start: a literal ``0``
  would have numba compile them a second time.

State: one row per engine (``eng``, columns ``_E_*``) and one array per per-op quantity. Every
constant the jitted code reads is defined in this module (numba's on-disk cache does not notice
a constant that another module changes).

The block jump. A transformer's blocks are identical, and after a block or two the run repeats
itself block by block: the same tiles, one block later, one constant ``dt`` later. Given the
graph's hint ``(s0, P, B)`` (:mod:`accelsim.sim._period`), the loop takes a snapshot at each
*cut* (the first pick of an op of block ``c``: index at least ``s0 + c*P``) of everything it
can still read: every engine's row and the ring entries its later tiles can read (the deepest
prefetch back), the DRAM channel's time, the ops left to run, and the per-op state of the window
from the first op not done (less the farthest a stream consumer sits behind its producer) to the
highest op a release or a start has touched (ops above it are as at the start). At the next cut
it compares: op ``x`` of the window with op ``x + P``, each busy engine's queue position and
ring count moved by what it ran between the cuts, counts equal, and times moved by ``dt`` (the
picked candidates' difference) while sentinels (-1, ``_NONE``) and the floor 0 ("never set",
before every real time: a max with it never picks it) stay as they are. Every step of the loop is
a max, a sum with a duration or a comparison of times, so a state equal to the last one moved by
``(P, dt)`` runs on exactly as the last one did, moved by ``(P, dt)``, as long as every op it
touches and every queue entry it reads has an identical copy ``P`` ops on: the kernel checks
that on the program itself (the mapping is per hardware point: the graph's periodicity is only a
hint) and skips the most blocks it allows at once, filling the skipped ops' outputs from their
copies one block back. A floor value that became a real time (an engine's first tile, the DRAM's
first transfer) would not move by ``dt``; it shows up as a changed engine ``free`` or DRAM time at
the cut, so the state does not match. An engine that stood still between the cuts must have
nothing ready to run and its next op must lie beyond every op the skipped blocks touch. Caches
(the producer need, the DMA occupancy memos) are not compared: their values are functions of
their keys. One jump a run; none when recording (traces want every tile) or in serial mode.
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
    #: ``(s0, P, B)``: a hint that ops ``s0 + c*P + j`` (``c < B``, ``j < P``) repeat block by
    #: block (:func:`accelsim.sim._period.block_period`); ``B = 0``: none. The kernel checks the
    #: program and its own state before it skips any block (:func:`run_schedule`). A fourth entry,
    #: if given, receives the number of blocks skipped (tests and benchmarks).
    period: np.ndarray


class DramParams(NamedTuple):
    """The DRAM channel as the kernel sees it: bytes per accelerator cycle (all channels), bytes
    per burst (all channels), latency per transfer in cycles."""

    bytes_per_cycle: float
    burst_total: int
    latency: int


class RunArrays(NamedTuple):
    """Per op: start, end (compute), finish (incl. its last store), stall cycles, DRAM bytes and
    cycles; per engine busy cycles; per tile and per transfer records (empty unless recorded);
    ``error`` (``RUN_OK`` or ``RUN_STUCK``); the run's totals.

    The per-op arrays are the rows of ``ops`` and the records those of ``tiles`` and ``xfers``
    (the properties below name them): each array the kernel returns costs a boxing (~0.7 us),
    four instead of fifteen per point of a sweep."""

    ops: np.ndarray  # (OPS_N, n_ops): start, end, finish, stall, load_bytes, store_bytes, dram_cycles
    busy: np.ndarray
    tiles: np.ndarray  # (3, n): op, start, end
    xfers: np.ndarray  # (4, n): op, store, start, end
    error: int
    #: the last finish (0 without ops) and the sums of load_bytes, store_bytes and dram_cycles
    total_cycles: int
    load_total: int
    store_total: int
    dram_cycles_total: int

    @property
    def start(self) -> np.ndarray:
        return self.ops[0]

    @property
    def end(self) -> np.ndarray:
        return self.ops[1]

    @property
    def finish(self) -> np.ndarray:
        return self.ops[2]

    @property
    def stall(self) -> np.ndarray:
        return self.ops[3]

    @property
    def load_bytes(self) -> np.ndarray:
        return self.ops[4]

    @property
    def store_bytes(self) -> np.ndarray:
        return self.ops[5]

    @property
    def dram_cycles(self) -> np.ndarray:
        return self.ops[6]

    @property
    def tile_op(self) -> np.ndarray:
        return self.tiles[0]

    @property
    def tile_start(self) -> np.ndarray:
        return self.tiles[1]

    @property
    def tile_end(self) -> np.ndarray:
        return self.tiles[2]

    @property
    def xfer_op(self) -> np.ndarray:
        return self.xfers[0]

    @property
    def xfer_store(self) -> np.ndarray:
        return self.xfers[1]

    @property
    def xfer_start(self) -> np.ndarray:
        return self.xfers[2]

    @property
    def xfer_end(self) -> np.ndarray:
        return self.xfers[3]


#: rows of ``RunArrays.ops``
OPS_N = 7


# Per-engine state (columns of ``eng``): its timeline (free at, compute ends recorded for the
# buffer-slot ring), queue position and tile, cached candidate and stream-ready time, the
# remembered producer need of its streaming tile; then the op it is running: when its inputs were
# ready, the prefetched tile's data time, its load-loop counters and per-tile shares (quotient,
# remainder) of compute, once-loaded bytes, spills, stores and streamed bytes (:func:`_shares`).
_E_FREE, _E_RING_N, _E_HEAD, _E_TILE, _E_CAND, _E_T_PIPE, _E_NEED_K, _E_NEED_OP, _E_NEED_V = range(9)
_E_READY, _E_PRE, _E_POS, _E_OUTER, _E_FIRST = range(9, 14)
_E_Q_COMP, _E_R_COMP, _E_Q_ONCE, _E_R_ONCE, _E_Q_SPILL, _E_R_SPILL = range(14, 20)
_E_Q_ST, _E_R_ST, _E_Q_STRM, _E_R_STRM = range(20, 24)
_E_N = 24

#: ``_E_PRE`` of an engine whose next tile's data was not prefetched.
_NO_PREFETCH = -1


@njit(cache=True)
def _shares(nt, comp, once, spill, store, strm, reuse, n_outer):
    """An op's totals spread over its ``nt`` tiles as ``(quotient, remainder)`` pairs (the first
    ``remainder`` tiles get one more): compute, once-loaded bytes, spills, stores, and the
    streamed operand, loaded by the tiles of the first outer fold when ``reuse``, else by every
    tile (``strm`` per outer fold)."""
    if reuse:
        n_first = nt // n_outer
        q_strm, r_strm = strm // n_first, strm % n_first
    else:
        q_strm, r_strm = (strm * n_outer) // nt, (strm * n_outer) % nt
    return (
        comp // nt, comp % nt, once // nt, once % nt, spill // nt, spill % nt,
        store // nt, store % nt, q_strm, r_strm,
    )  # fmt: skip


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
def _store_bytes(k, q_st, r_st, q_spill, r_spill):
    """DRAM bytes tile ``k`` stores: its output share and its spilled partial sums."""
    return q_st + (k < r_st) + q_spill + (k < r_spill)


@njit(cache=True)
def _dma(nbytes, t, chan, memo_nb, memo_occ, burst_total, bytes_per_cycle):
    """A transfer of ``nbytes`` (> 0) issued at ``t`` on the DRAM channel, free from ``chan``.
    ``memo_nb``/``memo_occ``: the last size and its occupancy (the tiles of one op mostly move the
    same bytes, so the division and float ceil are skipped on most tiles).

    Returns:
        ``(start, occupancy, memo_nb, memo_occ)``: the channel is busy from start for occupancy.
    """
    if nbytes != memo_nb:
        memo_nb = nbytes
        memo_occ = _occupancy(nbytes, burst_total, bytes_per_cycle)
    return max(chan, t), memo_occ, memo_nb, memo_occ


@njit(cache=True)
def _pipe_need(k, nt_p, groups, span):
    """Producer tiles that consumer tile ``k`` needs: its progress through ``span`` tiles, rounded
    up to whole groups (heads) of the producer's ``nt_p`` tiles (``groups`` 0: per tile)."""
    g = groups if groups > 0 else nt_p
    kk = min(k, span - 1) + 1
    grp = (kk * g + span - 1) // span
    return min(nt_p, (grp * nt_p + g - 1) // g)


@njit(cache=True)
def _t_same(v_prev, v_now, dt):
    """A time of the state one block apart: a sentinel (-1, ``_NONE``) or the floor 0 ("never
    set", which every real time is at or after) must be the same value; a real time must have
    moved by ``dt``."""
    if v_prev == -1 or v_prev == 0 or v_prev == _NONE:
        return v_now == v_prev
    return v_now == v_prev + dt


@njit(cache=True)
def _t_shift(v, dt):
    """A time of the state moved ``dt`` later (sentinels and the floor 0 stay: :func:`_t_same`)."""
    if v == -1 or v == 0 or v == _NONE:
        return v
    return v + dt


# The block jump's steps (the module docstring says why module-level). ``ops`` is the per-op
# state, the rows of ``sn_op``: start, end, finish, ready, stall, load bytes, store bytes, DRAM
# cycles, predecessors left, tiles done.


@njit(cache=True)
def _first_not_done(u, engine, n_tiles, tdone, start):
    """The first op from ``u`` on that is not done (every op below ``u`` is)."""
    while u < engine.shape[0]:
        if (tdone[u] != n_tiles[u]) if engine[u] >= 0 else start[u] < 0:
            break
        u += 1
    return u


@njit(cache=True)
def _first_unlike(prog, feeds, x, per):
    """The first op from ``x`` on whose op ``per`` later does not run exactly as it does, one block
    later (every program field the loop reads; its successors, and its stream producer when it
    streams, one block later). One call for the whole scan: passing and unpacking the program
    costs a reference count per array (a call per op, with the per-element row picks the other
    steps had, made a DeiT-Base run ~30 us slower)."""
    (
        engine, n_tiles, tiles_per_outer, n_outer, strm_reuse, comp, ld_once, ld_strm, spill, store,
        act_dep, slots, pred_ptr, succ_ptr, succ_idx, _eq_ptr, _eq_ops, pipe_src, pipe_groups, pipe_span,
        pipe_on, _period,
    ) = prog  # fmt: skip
    while True:
        y = x + per
        if y >= engine.shape[0]:
            return x
        if (
            engine[x] != engine[y] or n_tiles[x] != n_tiles[y] or tiles_per_outer[x] != tiles_per_outer[y]
            or n_outer[x] != n_outer[y] or strm_reuse[x] != strm_reuse[y] or comp[x] != comp[y]
            or ld_once[x] != ld_once[y] or ld_strm[x] != ld_strm[y] or spill[x] != spill[y]
            or store[x] != store[y] or act_dep[x] != act_dep[y] or slots[x] != slots[y]
            or pipe_on[x] != pipe_on[y] or feeds[x] != feeds[y]
            or pred_ptr[x + 1] - pred_ptr[x] != pred_ptr[y + 1] - pred_ptr[y]
        ):  # fmt: skip
            return x
        if pipe_on[x] and (
            pipe_src[y] != pipe_src[x] + per
            or pipe_groups[x] != pipe_groups[y]
            or pipe_span[x] != pipe_span[y]
        ):
            return x
        n = succ_ptr[x + 1] - succ_ptr[x]
        if succ_ptr[y + 1] - succ_ptr[y] != n:
            return x
        for m in range(n):
            if succ_idx[succ_ptr[y] + m] != succ_idx[succ_ptr[x] + m] + per:
                return x
        x += 1


@njit(cache=True)
def _snapshot(
    ops, eng, ring, busy, feeds, tile_off, tile_end, sn_eng, sn_ring, sn_busy, sn_op, sn_te, lo, mx
):
    """What the loop can still read at a cut (the module docstring's list), to compare a block
    later: the engines, their rings and busy cycles, the window ``lo..mx``'s per-op state and the
    tile ends of its ops that a consumer streams behind."""
    # loops, not slice assignments: those compile a shape check with its message (~1.5 s)
    for e in range(eng.shape[0]):
        sn_busy[e] = busy[e]
        for col in range(_E_N):
            sn_eng[e, col] = eng[e, col]
        for j in range(RING):
            sn_ring[e, j] = ring[e, j]
    for r in range(len(ops)):
        a = ops[r]  # once per row: a pick from the tuple by a variable index costs a reference count
        for x in range(lo, mx + 1):
            sn_op[r, x] = a[x]
    for x in range(lo, mx + 1):
        if feeds[x]:
            for k in range(tile_off[x], tile_off[x + 1]):
                sn_te[k] = tile_end[k]


@njit(cache=True)
def _engines_match(eng, ring, sn_eng, sn_ring, win, eq_ptr, eq_ops, left, per, dt):
    """Every engine one block on from the last cut: a busy one with its queue, ring count and
    times moved (the ring's readable entries too), a still one unchanged and unable to start."""
    for e in range(eng.shape[0]):
        q = eng[e, _E_HEAD] - sn_eng[e, _E_HEAD]
        d = eng[e, _E_RING_N] - sn_eng[e, _E_RING_N]
        if q == 0 and d == 0:
            for col in range(_E_N):
                cache = _E_NEED_K <= col <= _E_NEED_V
                if not cache and eng[e, col] != sn_eng[e, col]:
                    return False
            h = eng[e, _E_HEAD]
            if eng[e, _E_CAND] != _NONE or (h < eq_ptr[e + 1] and left[eq_ops[h]] == 0):
                return False
            continue
        h = eng[e, _E_HEAD]
        if q <= 0 or d <= 0 or sn_eng[e, _E_RING_N] < win[e] or h >= eq_ptr[e + 1]:
            return False
        if eq_ops[h] != eq_ops[sn_eng[e, _E_HEAD]] + per or eng[e, _E_TILE] != sn_eng[e, _E_TILE]:
            return False
        if not (
            _t_same(sn_eng[e, _E_FREE], eng[e, _E_FREE], dt)
            and _t_same(sn_eng[e, _E_CAND], eng[e, _E_CAND], dt)
        ):
            return False
        if eng[e, _E_CAND] != _NONE and not _t_same(sn_eng[e, _E_T_PIPE], eng[e, _E_T_PIPE], dt):
            return False
        if eng[e, _E_TILE] > 0:  # the running op's columns (rewritten when an op starts)
            if not (
                _t_same(sn_eng[e, _E_READY], eng[e, _E_READY], dt)
                and _t_same(sn_eng[e, _E_PRE], eng[e, _E_PRE], dt)
            ):
                return False
            for col in range(_E_POS, _E_N):
                if eng[e, col] != sn_eng[e, col]:
                    return False
        rn, rp = eng[e, _E_RING_N], sn_eng[e, _E_RING_N]
        for j in range(1, win[e] + 1):
            if not _t_same(sn_ring[e, (rp - j) & (RING - 1)], ring[e, (rn - j) & (RING - 1)], dt):
                return False
    return True


@njit(cache=True)
def _ops_match(ops, sn_op, sn_te, n_tiles, feeds, tile_off, tile_end, per, dt, lo, mx):
    """The ops of the last cut's window ``lo..mx`` against those one block later: times (the first
    four rows of ``ops``) moved by ``dt``, counts equal."""
    for r in range(len(ops)):
        a = ops[r]  # once per row (_snapshot)
        for x in range(lo, mx + 1):
            if not (_t_same(sn_op[r, x], a[x + per], dt) if r < 4 else sn_op[r, x] == a[x + per]):
                return False
    for x in range(lo, mx + 1):
        y = x + per
        if n_tiles[x] != n_tiles[y] or feeds[x] != feeds[y]:
            return False
        if feeds[x]:
            for k in range(n_tiles[x]):
                if not _t_same(sn_te[tile_off[x] + k], tile_end[tile_off[y] + k], dt):
                    return False
    return True


@njit(cache=True)
def _blocks_to_skip(prog, feeds, eng, sn_eng, per, lo, mx):
    """How many blocks the segment between the cuts can be repeated: while every op it touched
    (from the last cut's window ``lo`` to this cut's highest ``mx``) and every queue entry it read
    has its identical copy one block on, and a still engine's next op stays untouched."""
    eq_ptr, eq_ops = prog[15], prog[16]
    xf = _first_unlike(prog, feeds, lo, per)
    if xf <= mx:
        return 0
    nj = (xf - 1 - mx) // per + 1
    for e in range(eng.shape[0]):
        hp, hc = sn_eng[e, _E_HEAD], eng[e, _E_HEAD]
        q = hc - hp
        if q == 0:
            if hc < eq_ptr[e + 1]:
                nj = min(nj, (eq_ops[hc] - mx - 1) // per)
            continue
        h = hp
        while h + q < eq_ptr[e + 1] and eq_ops[h + q] == eq_ops[h] + per:
            h += 1
        if h <= hc:
            return 0
        nj = min(nj, (h - 1 - hc) // q + 1)
    return max(nj, 0)


@njit(cache=True)
def _skip_blocks(
    ops, n_tiles, feeds, tile_off, tile_end, eng, ring, busy, sn_eng, sn_busy, win, per, nj, dt, lo, mx
):
    """The state ``nj`` blocks on: the window's ops moved nj blocks (high to low: the ranges may
    overlap), the ops in between done as their counterparts a block earlier, one block later; the
    busy engines' rows, rings and busy cycles moved. The caller moves the scalars (the DRAM
    channel, the ops left, the highest op touched)."""
    sh, dtt = nj * per, nj * dt
    for r in range(len(ops)):  # the rows are separate arrays: each in the order the overlap needs
        a = ops[r]  # once per row (_snapshot)
        for x in range(mx, lo - 1, -1):
            a[x + sh] = _t_shift(a[x], dtt) if r < 4 else a[x]
        for x in range(lo, lo + sh):
            a[x] = _t_shift(a[x - per], dt) if r < 4 else a[x - per]
    for x in range(mx, lo - 1, -1):
        y = x + sh
        if feeds[x]:
            for k in range(n_tiles[x]):
                tile_end[tile_off[y] + k] = _t_shift(tile_end[tile_off[x] + k], dtt)
    tmp = np.empty(RING, np.int64)
    for e in range(eng.shape[0]):
        q = eng[e, _E_HEAD] - sn_eng[e, _E_HEAD]
        if q == 0:
            continue
        d = eng[e, _E_RING_N] - sn_eng[e, _E_RING_N]
        busy[e] += nj * (busy[e] - sn_busy[e])
        rn = eng[e, _E_RING_N]
        for j in range(win[e]):
            tmp[j] = _t_shift(ring[e, (rn - 1 - j) & (RING - 1)], dtt)
        rn += nj * d
        for j in range(win[e]):
            ring[e, (rn - 1 - j) & (RING - 1)] = tmp[j]
        eng[e, _E_RING_N] = rn
        eng[e, _E_HEAD] += nj * q
        for col in (_E_FREE, _E_CAND, _E_T_PIPE, _E_READY, _E_PRE):
            eng[e, col] = _t_shift(eng[e, col], dtt)


#: the snapshot's scalars (``sn`` of :func:`_cut`): taken, its block, window (lowest, highest op),
#: time (the picked candidate), DRAM channel time, ops left; and the first op not done
_SN_OK, _SN_C, _SN_LO, _SN_MX, _SN_T, _SN_CHAN, _SN_REM, _SN_U = range(8)
_SN_N = 8


@njit(cache=True)
def _cut(
    prog, feeds, ops, tile_off, tile_end, eng, ring, busy, win, sn_eng, sn_ring, sn_busy, sn_op, sn_te, sn, touch,
    t_c, i, d_pipe, chan, remaining,
):  # fmt: skip
    """A cut: op ``i``, the first of its block, picked at ``t_c`` (its engine's candidate). The
    state is compared with the last cut's (``sn_*``); if it is the same one block on, the blocks
    repeat: as many as the program allows are skipped; else, from the first block on, a snapshot
    is taken. ``ops``: the per-op state (the rows of ``sn_op``).

    Returns:
        ``(next cut, DRAM channel time, ops left, blocks skipped)``.
    """
    engine, n_tiles, eq_ptr, eq_ops, period = prog[0], prog[1], prog[15], prog[16], prog[21]
    start, left, tdone = ops[0], ops[8], ops[9]
    n_ops = engine.shape[0]
    b_s0, per, n_blk = period[0], period[1], period[2]
    blk = (i - b_s0) // per
    cut_at = b_s0 + (blk + 1) * per if blk < n_blk - 1 else n_ops
    u = _first_not_done(sn[_SN_U], engine, n_tiles, tdone, start)
    sn[_SN_U] = u
    w_lo, w_mx = u - d_pipe, touch[0]
    sn_lo, sn_mx = sn[_SN_LO], sn[_SN_MX]
    dt = t_c - sn[_SN_T]
    nj = 0
    if (
        sn[_SN_OK] and w_lo >= b_s0 and blk == sn[_SN_C] + 1 and w_lo == sn_lo + per and w_mx == sn_mx + per
        and dt > 0 and remaining < sn[_SN_REM] and _t_same(sn[_SN_CHAN], chan, dt)
        and _engines_match(eng, ring, sn_eng, sn_ring, win, eq_ptr, eq_ops, left, per, dt)
        and _ops_match(ops, sn_op, sn_te, n_tiles, feeds, tile_off, tile_end, per, dt, sn_lo, sn_mx)
    ):  # fmt: skip
        nj = _blocks_to_skip(prog, feeds, eng, sn_eng, per, sn_lo, w_mx)
    if nj > 0:
        _skip_blocks(
            ops,
            n_tiles,
            feeds,
            tile_off,
            tile_end,
            eng,
            ring,
            busy,
            sn_eng,
            sn_busy,
            win,
            per,
            nj,
            dt,
            w_lo,
            w_mx,
        )
        touch[0] = w_mx + nj * per
        if period.size > 3:
            period[3] = nj
        # one jump a run
        return n_ops, _t_shift(chan, nj * dt), remaining - nj * (sn[_SN_REM] - remaining), nj
    if w_lo >= b_s0:
        _snapshot(
            ops,
            eng,
            ring,
            busy,
            feeds,
            tile_off,
            tile_end,
            sn_eng,
            sn_ring,
            sn_busy,
            sn_op,
            sn_te,
            w_lo,
            w_mx,
        )
        sn[_SN_OK], sn[_SN_C], sn[_SN_LO], sn[_SN_MX] = 1, blk, w_lo, w_mx
        sn[_SN_T], sn[_SN_CHAN], sn[_SN_REM] = t_c, chan, remaining
    return cut_at, chan, remaining, nj


@njit(cache=True, nogil=True)
def run_schedule(prog, dram, overlap, record):
    """Event-driven run of all tiles of all ops; one timeline per engine and one for DRAM.

    Args:
        prog: the :class:`TileProgram`, as a plain tuple (its fields in order).
        dram: the :class:`DramParams`, as a plain tuple (either may be the NamedTuple itself,
            at a compile of its own and ~2.5 us more per call to type it).
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

    An op's totals are spread evenly over its tiles (:func:`_shares`).

    Returns:
        The :class:`RunArrays`.
    """
    # unpacked by position: the callers pass plain tuples (:func:`accelsim.sim.schedule.run`),
    # which numba types ~2.5 us faster per call than the NamedTuples (the same fields)
    (
        engine, n_tiles, tiles_per_outer, n_outer, strm_reuse, comp, ld_once, ld_strm, spill, store,
        act_dep, slots, pred_ptr, succ_ptr, succ_idx, eq_ptr, eq_ops, pipe_src, pipe_groups, pipe_span,
        pipe_on, period,
    ) = prog  # fmt: skip
    bytes_per_cycle, burst_total, latency = dram
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
    ready = np.zeros(n_ops, np.int64)  # when the op's (non-streamed) inputs are done
    left = np.zeros(n_ops, np.int64)  # predecessors still running (streamed producer excluded)
    tdone = np.zeros(n_ops, np.int64)  # tiles computed
    feeds = np.zeros(n_ops, np.bool_)  # a consumer streams behind it
    tile_off = np.zeros(n_ops + 1, np.int64)  # the op's first tile in tile_end
    for i in range(n_ops):
        left[i] = pred_ptr[i + 1] - pred_ptr[i] - pipe_on[i]
        tile_off[i + 1] = tile_off[i] + n_tiles[i]
        if pipe_on[i]:
            feeds[pipe_src[i]] = True
    tile_end = np.zeros(max(1, tile_off[n_ops]), np.int64)
    n_rec = max(1, tile_off[n_ops]) if record else 1
    tr_op = np.full(n_rec, -1, np.int64)
    tr_s = np.zeros(n_rec, np.int64)
    tr_e = np.zeros(n_rec, np.int64)
    xf_op = np.full(2 * n_rec if record else 1, -1, np.int64)
    xf_store = np.zeros_like(xf_op)
    xf_s = np.zeros_like(xf_op)
    xf_e = np.zeros_like(xf_op)
    n_tr = 0
    n_xf = 0
    eng = np.zeros((n_eng, _E_N), np.int64)
    eng[:, _E_HEAD] = eq_ptr[:-1]
    eng[:, _E_NEED_K] = -1
    eng[:, _E_NEED_OP] = -1
    ring = np.zeros((n_eng, RING), np.int64)
    chan = np.int64(0)  # the DRAM channel is free from here
    ld_memo = (np.int64(-1), np.int64(0))
    st_memo = (np.int64(-1), np.int64(0))
    serial_t = np.int64(0)
    stack = np.zeros(n_ops + 1, np.int64)  # engine-less ops ready to finish
    sp = 0
    remaining = np.int64(0)  # int64, as d_pipe: a literal 0 would compile _cut twice
    for i in range(n_ops):
        if engine[i] >= 0:
            remaining += 1
        elif left[i] == 0:
            stack[sp] = i
            sp += 1

    # The block jump (see the docstring): the hint, and the state of the last cut to compare with.
    b_s0, per, n_blk = period[0], period[1], period[2]
    jump_on = overlap and not record and per > 0 and n_blk >= 3 and b_s0 + n_blk * per <= n_ops
    cut_at = b_s0 if jump_on else n_ops  # the first op index whose pick is the next cut
    touch = np.zeros(1, np.int64)  # the highest op a release or a start has touched
    d_pipe = np.int64(0)  # the farthest a streaming consumer in the blocks sits behind its producer
    win = np.zeros(n_eng, np.int64)  # ring entries a later tile can read (deepest prefetch)
    n_sn = n_ops if jump_on else 1
    sn_eng = np.zeros((n_eng, _E_N), np.int64)
    sn_ring = np.zeros((n_eng, RING), np.int64)
    sn_busy = np.zeros(n_eng, np.int64)
    sn_op = np.zeros((10, n_sn), np.int64)
    sn_te = np.zeros(tile_end.size if jump_on else 1, np.int64)
    # the per-op state the jump's steps read and write (rows of sn_op, in this order)
    op_st = (start, end, finish, ready, stall, ld_bytes, st_bytes, dram_cyc, left, tdone)
    sn = np.zeros(_SN_N, np.int64)  # the last snapshot's scalars (_cut)
    if jump_on:
        for x in range(b_s0, n_ops):
            if pipe_on[x]:
                d_pipe = max(d_pipe, x - pipe_src[x])
        for e in range(n_eng):
            for h in range(eq_ptr[e], eq_ptr[e + 1]):
                sl = slots[eq_ops[h]]
                win[e] = max(win[e], sl) if sl >= 1 else RING
                if sl < 1:
                    break

    def candidate(e, i, k, free, ready_i):
        # When tile k of op i could start on engine e (free from ``free``): after the op's inputs
        # and, when it streams, the producer tiles it needs; in serial mode the op index orders.
        # Returns (candidate, stream ready); _NONE while the producer lags.
        tp = np.int64(0)
        if pipe_on[i]:
            p = pipe_src[i]
            if eng[e, _E_NEED_K] != k or eng[e, _E_NEED_OP] != i:
                eng[e, _E_NEED_K] = k
                eng[e, _E_NEED_OP] = i
                eng[e, _E_NEED_V] = _pipe_need(k, n_tiles[p], pipe_groups[i], pipe_span[i])
            need = eng[e, _E_NEED_V]
            if tdone[p] < need:
                return _NONE, tp
            tp = tile_end[tile_off[p] + need - 1]
        if overlap:
            return max(free, ready_i, tp), tp
        return np.int64(i), tp

    def pick():
        # The engine whose candidate is earliest (the lowest on ties; -1: none can start), and
        # the earliest candidates of the engines below and above it.
        best = -1
        best_t = _NONE
        for e in range(n_eng):
            if eng[e, _E_CAND] < best_t:
                best, best_t = e, eng[e, _E_CAND]
        lo = _NONE
        hi = _NONE
        for e in range(n_eng):
            if e < best:
                lo = min(lo, eng[e, _E_CAND])
            elif e > best:
                hi = min(hi, eng[e, _E_CAND])
        return best, lo, hi

    def slot_free(e, rn, slots):
        # A load into the buffer waits until the compute of the tile ``slots`` places earlier on
        # this engine has ended (the ring holds the last RING compute ends).
        return ring[e, (rn - slots) & (RING - 1)] if rn >= slots else np.int64(0)

    def retire_tile(e, i, k, c0, c1, rn, n_tr):
        # Tile k of op i computed from c0 to c1: its end goes to the op's tiles (consumers
        # streaming behind it read them) and to the engine's ring. Returns the ring and record
        # counts.
        tile_end[tile_off[i] + k] = c1
        tdone[i] = k + 1
        ring[e, rn & (RING - 1)] = c1
        if record:
            tr_op[n_tr], tr_s[n_tr], tr_e[n_tr] = i, c0, c1
            n_tr += 1
        return rn + 1, n_tr

    def record_xfer(n_xf, i, is_store, s0, s1):
        if record:
            xf_op[n_xf], xf_store[n_xf], xf_s[n_xf], xf_e[n_xf] = i, is_store, s0, s1
            n_xf += 1
        return n_xf

    def release(i, fin, sp, started):
        # Op i finished at fin: its successors' inputs are ready (with ``started``, those already
        # streaming behind it are skipped); engine-less successors with nothing left to wait for
        # go on the stack. Returns the stack size.
        for q in range(succ_ptr[i], succ_ptr[i + 1]):
            s = succ_idx[q]
            if started and pipe_on[s] and pipe_src[s] == i:
                continue
            ready[s] = max(ready[s], fin)
            left[s] -= 1
            if s > touch[0]:
                touch[0] = s
            if left[s] == 0 and engine[s] < 0:
                stack[sp] = s
                sp += 1
        return sp

    error = RUN_OK
    dirty = True
    while True:
        # Engine-less ops whose inputs are done finish then (and release their successors).
        while sp > 0:
            sp -= 1
            i = stack[sp]
            start[i] = end[i] = finish[i] = ready[i]
            sp = release(i, ready[i], sp, False)
        if remaining == 0:
            break
        # Every engine's candidate once an op has finished (``dirty``); otherwise the run-ahead
        # below left them all current.
        if dirty:
            for e in range(n_eng):
                eng[e, _E_CAND] = _NONE
                if eng[e, _E_HEAD] >= eq_ptr[e + 1]:
                    continue
                i = eq_ops[eng[e, _E_HEAD]]
                if left[i] == 0:
                    eng[e, _E_CAND], eng[e, _E_T_PIPE] = candidate(
                        e, i, eng[e, _E_TILE], eng[e, _E_FREE], ready[i]
                    )
            dirty = False
        e, lo, hi = pick()
        if e < 0:
            error = RUN_STUCK  # no engine can start: impossible for a DAG in topological order
            break
        i = eq_ops[eng[e, _E_HEAD]]
        if i >= cut_at:
            # A cut: compare the state with the last cut's, skip blocks or take a snapshot.
            cut_at, chan, remaining, nj = _cut(
                prog, feeds, op_st, tile_off, tile_end, eng, ring, busy, win, sn_eng, sn_ring, sn_busy, sn_op,
                sn_te, sn, touch, eng[e, _E_CAND], i, d_pipe, chan, remaining,
            )  # fmt: skip
            if nj > 0:
                continue
        k = eng[e, _E_TILE]
        nt = n_tiles[i]
        if k == 0:
            if i > touch[0]:
                touch[0] = i
            eng[e, _E_READY] = ready[i] if overlap else max(ready[i], serial_t)
            (
                eng[e, _E_Q_COMP], eng[e, _E_R_COMP], eng[e, _E_Q_ONCE], eng[e, _E_R_ONCE],
                eng[e, _E_Q_SPILL], eng[e, _E_R_SPILL], eng[e, _E_Q_ST], eng[e, _E_R_ST],
                eng[e, _E_Q_STRM], eng[e, _E_R_STRM],
            ) = _shares(
                nt, comp[i], ld_once[i], spill[i], store[i], ld_strm[i],
                strm_reuse[i], n_outer[i],
            )  # fmt: skip
            eng[e, _E_POS] = eng[e, _E_OUTER] = eng[e, _E_FIRST] = 0
            eng[e, _E_PRE] = _NO_PREFETCH
        # Run this engine's tiles while it keeps the pick: a tile that does not end its op changes
        # no other engine's candidate but those of consumers streaming behind the op (refreshed
        # below), so the engine keeps the pick as long as its next tile still wins the same
        # comparison (strictly before the lower engines' ``lo``, not after the higher ones'
        # ``hi``): the scan is skipped, not the order. The op's
        # constants and the running state live in locals (stores to other int64 arrays would
        # otherwise make the compiler reload them on every tile: it cannot rule out aliasing).
        reuse_i = strm_reuse[i]
        tpo_i = tiles_per_outer[i]
        nout_i = n_outer[i]
        slots_i = slots[i]
        act_i = act_dep[i]
        feeds_i = feeds[i]
        ready_i = ready[i]
        ready_e = eng[e, _E_READY]
        q_comp, r_comp = eng[e, _E_Q_COMP], eng[e, _E_R_COMP]
        q_once, r_once = eng[e, _E_Q_ONCE], eng[e, _E_R_ONCE]
        q_spill, r_spill = eng[e, _E_Q_SPILL], eng[e, _E_R_SPILL]
        q_st, r_st = eng[e, _E_Q_ST], eng[e, _E_R_ST]
        q_strm, r_strm = eng[e, _E_Q_STRM], eng[e, _E_R_STRM]
        pos, outer, first = eng[e, _E_POS], eng[e, _E_OUTER], eng[e, _E_FIRST]
        pre = eng[e, _E_PRE]
        tp = eng[e, _E_T_PIPE]
        ef = eng[e, _E_FREE]
        rn = eng[e, _E_RING_N]
        start_i, end_i, fin_i = start[i], end[i], finish[i]
        acc_busy = acc_stall = acc_ld = acc_st = acc_dram = np.int64(0)
        while True:
            r = max(ready_e, tp)
            t_act = r if act_i else np.int64(0)  # a load of activations from DRAM waits for the inputs
            # Tile k's data: prefetched while tile k-1 ran, else loaded now.
            t_data = pre
            if pre == _NO_PREFETCH:
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
                t_data = max(slot_free(e, rn, slots_i), t_act)
                if lb > 0:
                    s0, occ, ld_memo_nb, ld_memo_occ = _dma(
                        lb, t_data, chan, *ld_memo, burst_total, bytes_per_cycle
                    )
                    ld_memo = (ld_memo_nb, ld_memo_occ)
                    chan = s0 + occ
                    t_data = chan + latency
                    acc_ld += lb
                    acc_dram += occ
                    n_xf = record_xfer(n_xf, i, 0, s0, chan)
            # Compute: after the engine, the inputs, the stream and the data (that wait: a stall).
            t_can = max(ef, r)
            c0 = max(t_can, t_data)
            c1 = c0 + q_comp + (k < r_comp)
            acc_stall += c0 - t_can
            acc_busy += c1 - c0
            if start_i < 0:
                start_i = c0
            end_i = ef = c1
            rn, n_tr = retire_tile(e, i, k, c0, c1, rn, n_tr)
            # Tile k+1's prefetch, before tile k's store (the DMA issues in time order).
            pre = _NO_PREFETCH
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
                pre = max(slot_free(e, rn, slots_i), t_act)
                if lb > 0:
                    s0, occ, ld_memo_nb, ld_memo_occ = _dma(
                        lb, pre, chan, *ld_memo, burst_total, bytes_per_cycle
                    )
                    ld_memo = (ld_memo_nb, ld_memo_occ)
                    chan = s0 + occ
                    pre = chan + latency
                    acc_ld += lb
                    acc_dram += occ
                    n_xf = record_xfer(n_xf, i, 0, s0, chan)
            # Tile k's store.
            sb = _store_bytes(k, q_st, r_st, q_spill, r_spill)
            if sb > 0:
                s0, occ, st_memo_nb, st_memo_occ = _dma(sb, c1, chan, *st_memo, burst_total, bytes_per_cycle)
                st_memo = (st_memo_nb, st_memo_occ)
                chan = s0 + occ
                fin_i = max(fin_i, chan)
                acc_st += sb
                acc_dram += occ
                n_xf = record_xfer(n_xf, i, 1, s0, chan)
            else:
                fin_i = max(fin_i, c1)
            k += 1
            if k == nt:
                dirty = True
                break
            if feeds_i:
                # The tile may let a consumer streaming behind op i start: of the other engines'
                # candidates, only those whose next op streams behind i change.
                lo = hi = _NONE
                for e2 in range(n_eng):
                    if e2 == e:
                        continue
                    h = eng[e2, _E_HEAD]
                    if h < eq_ptr[e2 + 1]:
                        j = eq_ops[h]
                        if pipe_on[j] and pipe_src[j] == i and left[j] == 0:
                            eng[e2, _E_CAND], eng[e2, _E_T_PIPE] = candidate(
                                e2, j, eng[e2, _E_TILE], eng[e2, _E_FREE], ready[j]
                            )
                    if e2 < e:
                        lo = min(lo, eng[e2, _E_CAND])
                    else:
                        hi = min(hi, eng[e2, _E_CAND])
            c, tp_next = candidate(e, i, k, ef, ready_i)
            if c >= lo or c > hi:
                eng[e, _E_CAND], eng[e, _E_T_PIPE] = c, tp_next
                break
            tp = tp_next
        eng[e, _E_TILE] = k
        eng[e, _E_POS], eng[e, _E_OUTER], eng[e, _E_FIRST] = pos, outer, first
        eng[e, _E_PRE] = pre
        eng[e, _E_FREE] = ef
        eng[e, _E_RING_N] = rn
        start[i], end[i], finish[i] = start_i, end_i, fin_i
        busy[e] += acc_busy
        stall[i] += acc_stall
        ld_bytes[i] += acc_ld
        st_bytes[i] += acc_st
        dram_cyc[i] += acc_dram
        if k == nt:
            # The op is done: release its successors, advance this engine's queue.
            eng[e, _E_TILE] = 0
            eng[e, _E_HEAD] += 1
            remaining -= 1
            serial_t = max(serial_t, fin_i)
            sp = release(i, fin_i, sp, True)

    ops = np.empty((OPS_N, n_ops), np.int64)
    ops[0], ops[1], ops[2], ops[3] = start, end, finish, stall
    ops[4], ops[5], ops[6] = ld_bytes, st_bytes, dram_cyc
    tiles = np.empty((3, n_tr), np.int64)
    tiles[0], tiles[1], tiles[2] = tr_op[:n_tr], tr_s[:n_tr], tr_e[:n_tr]
    xfers = np.empty((4, n_xf), np.int64)
    xfers[0], xfers[1], xfers[2], xfers[3] = xf_op[:n_xf], xf_store[:n_xf], xf_s[:n_xf], xf_e[:n_xf]
    # integer sums and max: the same values as NumPy's on the rows, in any order
    total = ld_sum = st_sum = dram_sum = np.int64(0)
    for i in range(n_ops):
        total = max(total, finish[i])
        ld_sum += ld_bytes[i]
        st_sum += st_bytes[i]
        dram_sum += dram_cyc[i]
    return RunArrays(ops, busy, tiles, xfers, error, int(total), int(ld_sum), int(st_sum), int(dram_sum))
