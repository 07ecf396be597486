"""PE-level reference models of a systolic array: registers stepped cycle by cycle (Numba).

These are the ground truth the fast formulas of :mod:`accelsim.sim.engines.systolic` are tested
against (``tests/sim/test_pe_reference.py``), in both timing modes. They compute the real integer
product and count cycles by moving operands through PE registers with skewed injection at the
array edges; no timing formula is used, and every register read checks that it holds the fold and
vector it should (a schedule that overwrote live data raises instead of returning a number).

**scalesim timing** (one fold = one ``R x C`` tile of the GEMM; folds one after the other):

- **os** (output stationary): PE ``(i, j)`` owns ``C[m0+i, n0+j]``. Row ``i`` of the left edge gets
  ``A[m0+i, t]`` at fold cycle ``t + i``; column ``j`` of the top edge gets ``B[t, n0+j]`` at
  ``t + j``. Operands move one PE right / down per cycle, so PE ``(i, j)`` multiplies the pair
  ``t`` at cycle ``t + i + j`` and accumulates locally.
- **ws** (weight stationary) and **is** (input stationary): first ``R`` cycles shift the stationary
  tile ``S`` in from the top edge, one row per cycle (``S = B`` tile for ws, ``Aᵀ`` tile for is).
  Then row ``i`` of the left edge gets ``X[t, k0+i]`` at cycle ``R + t + i`` (``X = A`` for ws,
  ``Bᵀ`` for is); it moves right one PE per cycle while partial sums move down one PE per cycle,
  and column ``j`` leaves the bottom edge with ``O[t, j] = Σ_i X[t, k0+i]·S[k0+i, j]``, added to the
  output buffer (which also sums the partial results of the K folds).

The schedule of a fold is fixed (a controller counts cycles): a partial fold at the GEMM's edge feeds
zeros into its unused rows/columns and takes as long as a full one, as SCALE-Sim assumes.

**pipelined timing** (what :mod:`accelsim.sim.engines.systolic` documents), on ``R x C`` physical
PEs, each computing ``p_rows x p_cols x p_stream`` products per cycle (packing):

- **ws / is**: each PE has two banks of stationary registers. Column ``j``'s load chain (``R``
  stages) shifts a fold's rows in, deepest first, starting ``j`` cycles after column 0: ``L`` shifts
  for the ``L`` rows that hold data (``R``, or fewer in the last fold of a short reduction); then
  those rows latch their chain stage into the bank the fold uses (fold ``n`` uses bank ``n mod
  2``; rows past the data keep stale weights, which meet zero activations). The controller loads
  fold ``n`` into the idle bank when fold ``n - 1`` starts streaming from the other, and starts a
  fold's stream when its load is done and the previous fold's stream has ended. Vectors carry
  their fold: a PE multiplies by the bank of that fold (the switch travels with the data).
- **os**: each PE has two accumulator banks. A fold holds its ``L`` rows of outputs in the bottom
  ``L`` physical rows (``R``, or fewer in the last row fold of an ``M`` that is not a multiple of
  the fold: the rows above get no operands and do no MACs). A fold may start ``max(T, L)``
  cycles after the previous one (the rate at which a column's output port drains the previous
  fold's ``L`` results) once its bank has begun to drain; a finished bank shifts down its column
  one row per cycle for ``L`` cycles, the bottom row leaving through the port, while the next fold
  accumulates in the other bank.

**Cycle convention:** the models return the 0-based index of the last cycle in which any PE did a
MAC, counted from cycle 0. That is SCALE-Sim's "compute cycles" convention (one less than the number
of busy cycles) and equals ``GemmTiming.compute_cycles`` of :func:`accelsim.sim.engines.systolic.gemm_timing`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from accelsim.errors import ConfigError
from accelsim.sim.engines.systolic import (
    DF_OS,
    DF_WS,
    NO_PACKING,
    TIMING_SCALESIM,
    Packing,
    dataflow_code,
    timing_code,
)


@njit(cache=True)
def _os_gemm(A: np.ndarray, B: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, int]:
    M, T = A.shape
    N = B.shape[1]
    out = np.zeros((M, N), np.int64)
    a_reg = np.zeros((rows, cols), np.int64)
    b_reg = np.zeros((rows, cols), np.int64)
    a_ok = np.zeros((rows, cols), np.bool_)
    b_ok = np.zeros((rows, cols), np.bool_)
    acc = np.zeros((rows, cols), np.int64)
    macs = np.zeros((rows, cols), np.int64)
    base = 0  # global index of the fold's first cycle
    last_busy = -1
    for n0 in range(0, N, cols):  # SCALE-Sim's fold order: column folds outer, row folds inner
        for m0 in range(0, M, rows):
            a_reg[:] = 0
            b_reg[:] = 0
            a_ok[:] = False
            b_ok[:] = False
            acc[:] = 0
            macs[:] = 0
            c = 0
            done = 0
            while done < rows * cols:
                # registers shift right (A) and down (B): iterate from the far edge backwards so each
                # PE reads its neighbour's value of the previous cycle
                for i in range(rows):
                    for j in range(cols - 1, 0, -1):
                        a_reg[i, j] = a_reg[i, j - 1]
                        a_ok[i, j] = a_ok[i, j - 1]
                for j in range(cols):
                    for i in range(rows - 1, 0, -1):
                        b_reg[i, j] = b_reg[i - 1, j]
                        b_ok[i, j] = b_ok[i - 1, j]
                # skewed injection at the left and top edges
                for i in range(rows):
                    t = c - i
                    a_ok[i, 0] = 0 <= t < T
                    a_reg[i, 0] = A[m0 + i, t] if (a_ok[i, 0] and m0 + i < M) else 0
                for j in range(cols):
                    t = c - j
                    b_ok[0, j] = 0 <= t < T
                    b_reg[0, j] = B[t, n0 + j] if (b_ok[0, j] and n0 + j < N) else 0
                busy = False
                for i in range(rows):
                    for j in range(cols):
                        if a_ok[i, j] and b_ok[i, j]:
                            acc[i, j] += a_reg[i, j] * b_reg[i, j]
                            macs[i, j] += 1
                            busy = True
                            if macs[i, j] == T:
                                done += 1
                if busy:
                    last_busy = base + c
                c += 1
            for i in range(min(rows, M - m0)):
                for j in range(min(cols, N - n0)):
                    out[m0 + i, n0 + j] = acc[i, j]
            base += c
    return out, last_busy


@njit(cache=True)
def _stationary_gemm(X: np.ndarray, S: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, int]:
    """``O = X @ S`` with ``S`` (Sr x Sc) held in the PEs and ``X`` (T x Sr) streamed from the left."""
    T, Sr = X.shape
    Sc = S.shape[1]
    out = np.zeros((T, Sc), np.int64)
    stat = np.zeros((rows, cols), np.int64)
    x_reg = np.zeros((rows, cols), np.int64)
    x_ok = np.zeros((rows, cols), np.bool_)
    p_reg = np.zeros((rows, cols), np.int64)  # partial sum leaving each PE downwards
    p_t = np.zeros((rows, cols), np.int64)  # stream index the partial sum belongs to
    macs = np.zeros((rows, cols), np.int64)
    base = 0
    last_busy = -1
    for c0 in range(0, Sc, cols):
        for r0 in range(0, Sr, rows):
            stat[:] = 0
            x_reg[:] = 0
            x_ok[:] = False
            p_reg[:] = 0
            macs[:] = 0
            # preload: the stationary tile enters at the top edge, bottom row first, one row a cycle
            for c in range(rows):
                for i in range(rows - 1, 0, -1):
                    for j in range(cols):
                        stat[i, j] = stat[i - 1, j]
                k = r0 + rows - 1 - c
                for j in range(cols):
                    stat[0, j] = S[k, c0 + j] if (k < Sr and c0 + j < Sc) else 0
            c = rows
            done = 0
            while done < rows * cols:
                # one clock edge: X moves right, partial sums move down (far edge first)
                for i in range(rows - 1, -1, -1):
                    for j in range(cols - 1, -1, -1):
                        if j > 0:
                            x_reg[i, j] = x_reg[i, j - 1]
                            x_ok[i, j] = x_ok[i, j - 1]
                        else:
                            t = c - rows - i
                            x_ok[i, 0] = 0 <= t < T
                            x_reg[i, 0] = X[t, r0 + i] if (x_ok[i, 0] and r0 + i < Sr) else 0
                busy = False
                for i in range(rows - 1, -1, -1):  # bottom-up so row i-1 still holds last cycle's sum
                    for j in range(cols):
                        if x_ok[i, j]:
                            p_in = p_reg[i - 1, j] if i > 0 else 0
                            p_reg[i, j] = p_in + x_reg[i, j] * stat[i, j]
                            p_t[i, j] = c - rows - i - j
                            macs[i, j] += 1
                            busy = True
                            if macs[i, j] == T:
                                done += 1
                            if i == rows - 1 and c0 + j < Sc:
                                out[p_t[i, j], c0 + j] += p_reg[i, j]
                if busy:
                    last_busy = base + c
                c += 1
            base += c
    return out, last_busy


@njit(cache=True)
def _ws_pipelined(
    X: np.ndarray, S: np.ndarray, rows: int, cols: int, pr: int, pc: int, ps: int
) -> tuple[np.ndarray, int]:
    """``O = X @ S`` with ``S`` (Sr x Sc) in ping-pong banks, ``X`` (T x Sr) streamed from the left.

    A PE holds ``pr x pc`` stationary values (``pr`` consecutive rows of ``S``, ``pc`` columns) and
    takes ``ps`` consecutive vectors of ``X`` per cycle: ``pr`` products summed into each of its
    ``pc x ps`` partial sums.
    """
    T, Sr = X.shape
    Sc = S.shape[1]
    R, C = rows, cols
    lr, lc = R * pr, C * pc
    tp = (T + ps - 1) // ps  # packed vectors per fold
    fr = (Sr + lr - 1) // lr
    fc = (Sc + lc - 1) // lc
    F = fr * fc
    out = np.zeros((T, Sc), np.int64)
    f_r0 = np.zeros(F, np.int64)
    f_c0 = np.zeros(F, np.int64)
    f_len = np.zeros(F, np.int64)  # rows of the fold that hold real data: what its load shifts in
    n = 0
    for cf in range(fc):  # column folds outer, row folds inner (SCALE-Sim's order)
        for rf in range(fr):
            f_r0[n] = rf * lr
            f_c0[n] = cf * lc
            f_len[n] = (min(lr, Sr - rf * lr) + pr - 1) // pr
            n += 1
    bank = np.zeros((2, R, C, pr, pc), np.int64)
    bank_fold = np.full((2, R, C), -1, np.int64)
    chain = np.zeros((R, C, pr, pc), np.int64)
    xv = np.zeros((R, C, pr, ps), np.int64)  # x registers moving right: values, fold, packed vector
    xf = np.full((R, C), -1, np.int64)
    xt = np.full((R, C), -1, np.int64)
    pv = np.zeros((R, C, pc, ps), np.int64)  # partial sums moving down
    pf = np.full((R, C), -1, np.int64)
    pt = np.full((R, C), -1, np.int64)
    load_start = np.full(F, -1, np.int64)  # column 0's timeline; column j runs j cycles later
    stream_start = np.full(F, -1, np.int64)
    next_load = 0
    next_stream = 0
    last_busy = -1
    macs_left = F * tp * R * C
    c = 0
    while macs_left > 0:
        # -- controller: start a stream (its load is done, the previous stream has ended)
        if next_stream < next_load:
            ok = c >= load_start[next_stream] + f_len[next_stream]
            if next_stream >= 1:
                ok = ok and c >= stream_start[next_stream - 1] + tp
            if ok:
                stream_start[next_stream] = c
                next_stream += 1
        # -- controller: load fold n into the idle bank as fold n-1 starts streaming from the other
        if next_load < F and (next_load == 0 or next_stream == next_load):
            load_start[next_load] = c
            next_load += 1
        # -- datapath during cycle c: far edge first, so each PE reads last cycle's neighbour
        busy = False
        for i in range(R - 1, -1, -1):
            for j in range(C - 1, -1, -1):
                if j > 0:
                    xv[i, j] = xv[i, j - 1]
                    xf[i, j] = xf[i, j - 1]
                    xt[i, j] = xt[i, j - 1]
                else:  # the left edge: row i sees the stream i cycles late
                    xf[i, 0] = -1
                    xt[i, 0] = -1
                    xv[i, 0] = 0
                    for q in range(next_stream):
                        tau = c - stream_start[q] - i
                        if 0 <= tau < tp:
                            xf[i, 0] = q
                            xt[i, 0] = tau
                            for r in range(pr):
                                k = f_r0[q] + i * pr + r
                                for u in range(ps):
                                    t = tau * ps + u
                                    xv[i, 0, r, u] = X[t, k] if (k < Sr and t < T) else 0
                if xt[i, j] < 0:
                    pf[i, j] = -1
                    pt[i, j] = -1
                    continue
                q = xf[i, j]
                b = q % 2
                # rows past the fold's data keep stale weights: their activations are zero
                if i < f_len[q] and bank_fold[b, i, j] != q:
                    raise RuntimeError("ws: a vector met the bank of another fold")
                if i > 0 and (pf[i - 1, j] != q or pt[i - 1, j] != xt[i, j]):
                    raise RuntimeError("ws: partial sums misaligned")
                for a in range(pc):
                    for u in range(ps):
                        acc = pv[i - 1, j, a, u] if i > 0 else 0
                        for r in range(pr):
                            acc += xv[i, j, r, u] * bank[b, i, j, r, a]
                        pv[i, j, a, u] = acc
                pf[i, j] = q
                pt[i, j] = xt[i, j]
                macs_left -= 1
                busy = True
                if i == R - 1:
                    for a in range(pc):
                        col = f_c0[q] + j * pc + a
                        for u in range(ps):
                            t = xt[i, j] * ps + u
                            if col < Sc and t < T:
                                out[t, col] += pv[i, j, a, u]
        if busy:
            last_busy = c
        # -- end of cycle c: the chains shift, deepest real row first; after a fold's ``f_len``
        # shifts its rows latch into the fold's bank (a partial fold loads only its real rows)
        for j in range(C):
            for q in range(next_load):
                lc_ = c - load_start[q] - j
                ln = f_len[q]
                if 0 <= lc_ < ln:
                    for i in range(R - 1, 0, -1):
                        chain[i, j] = chain[i - 1, j]
                    row = ln - 1 - lc_
                    for r in range(pr):
                        k = f_r0[q] + row * pr + r
                        for a in range(pc):
                            col = f_c0[q] + j * pc + a
                            chain[0, j, r, a] = S[k, col] if (k < Sr and col < Sc) else 0
                    if lc_ == ln - 1:
                        b = q % 2
                        for i in range(ln):
                            bank[b, i, j] = chain[i, j]
                            bank_fold[b, i, j] = q
        c += 1
    return out, last_busy


@njit(cache=True)
def _os_pipelined(
    A: np.ndarray, B: np.ndarray, rows: int, cols: int, pm: int, pk: int, pn: int
) -> tuple[np.ndarray, int]:
    """``C = A @ B`` output-stationary with two accumulator banks per PE; a finished bank drains
    down its column (one physical row per cycle) while the next fold accumulates in the other.

    A PE owns ``pm x pn`` outputs and takes ``pk`` terms of the reduction per cycle.
    """
    M, K = A.shape
    N = B.shape[1]
    R, C = rows, cols
    lr, lc = R * pm, C * pn
    tp = (K + pk - 1) // pk
    fr = (M + lr - 1) // lr
    fc = (N + lc - 1) // lc
    F = fr * fc
    out = np.zeros((M, N), np.int64)
    f_m0 = np.zeros(F, np.int64)
    f_n0 = np.zeros(F, np.int64)
    f_len = np.zeros(F, np.int64)  # physical rows holding data: the bottom ones, next to the port
    n = 0
    for cf in range(fc):
        for rf in range(fr):
            f_m0[n] = rf * lr
            f_n0[n] = cf * lc
            f_len[n] = min(R, (M - rf * lr + pm - 1) // pm)
            n += 1
    acc = np.zeros((2, R, C, pm, pn), np.int64)
    acc_fold = np.full((2, R, C), -1, np.int64)
    live = np.zeros((2, R, C), np.bool_)  # holds a result not yet passed down to the port
    av = np.zeros((R, C, pm, pk), np.int64)
    af = np.full((R, C), -1, np.int64)
    at = np.full((R, C), -1, np.int64)
    bv = np.zeros((R, C, pk, pn), np.int64)
    bf = np.full((R, C), -1, np.int64)
    bt = np.full((R, C), -1, np.int64)
    S = np.full(F, -1, np.int64)
    DS = np.full(F, -1, np.int64)  # first drain cycle of column 0
    last0 = np.full(F, -1, np.int64)  # cycle of a fold's last MAC at PE (R-1, 0)
    next_stream = 0
    next_drain = 0
    drained = 0
    last_busy = -1
    c = 0
    while drained < F:
        if next_stream < F:
            ok = True
            if next_stream >= 1:
                ok = c >= S[next_stream - 1] + max(tp, f_len[next_stream - 1])
            if next_stream >= 2:
                ok = ok and DS[next_stream - 2] >= 0 and c >= DS[next_stream - 2]
            if ok:
                S[next_stream] = c
                next_stream += 1
        if next_drain < next_stream and last0[next_drain] >= 0 and c > last0[next_drain]:
            q = next_drain
            if q == 0 or c >= DS[q - 1] + f_len[q - 1]:  # the column's output port is free
                DS[q] = c
                next_drain += 1
        for i in range(R - 1, -1, -1):
            for j in range(C - 1, -1, -1):
                if j > 0:
                    av[i, j] = av[i, j - 1]
                    af[i, j] = af[i, j - 1]
                    at[i, j] = at[i, j - 1]
                else:
                    af[i, 0] = -1
                    at[i, 0] = -1
                    av[i, 0] = 0
                    for q in range(next_stream):
                        tau = c - S[q] - i
                        off = R - f_len[q]
                        if 0 <= tau < tp and i >= off:
                            af[i, 0] = q
                            at[i, 0] = tau
                            for a in range(pm):
                                m = f_m0[q] + (i - off) * pm + a
                                for r in range(pk):
                                    k = tau * pk + r
                                    av[i, 0, a, r] = A[m, k] if (m < M and k < K) else 0
                if i > 0:
                    bv[i, j] = bv[i - 1, j]
                    bf[i, j] = bf[i - 1, j]
                    bt[i, j] = bt[i - 1, j]
                else:
                    bf[0, j] = -1
                    bt[0, j] = -1
                    bv[0, j] = 0
                    for q in range(next_stream):
                        tau = c - S[q] - j
                        if 0 <= tau < tp:
                            bf[0, j] = q
                            bt[0, j] = tau
                            for r in range(pk):
                                k = tau * pk + r
                                for b in range(pn):
                                    nn = f_n0[q] + j * pn + b
                                    bv[0, j, r, b] = B[k, nn] if (k < K and nn < N) else 0
        # Drains and MACs write at the end of cycle c; both read start-of-cycle values.
        new_acc = acc.copy()
        new_fold = acc_fold.copy()
        new_live = live.copy()
        written = np.zeros((2, R, C), np.bool_)
        for j in range(C):
            for q in range(next_drain):
                d = c - DS[q] - j
                if 0 <= d < f_len[q]:
                    b = q % 2
                    if acc_fold[b, R - 1, j] != q or not live[b, R - 1, j]:
                        raise RuntimeError("os: drained a register of another fold")
                    for a in range(pm):
                        m = f_m0[q] + (f_len[q] - 1 - d) * pm + a
                        for bb in range(pn):
                            nn = f_n0[q] + j * pn + bb
                            if m < M and nn < N:
                                out[m, nn] = acc[b, R - 1, j, a, bb]
                    new_live[b, R - 1, j] = False
                    for i in range(R - 1, d, -1):  # rows below d receive from above
                        new_acc[b, i, j] = acc[b, i - 1, j]
                        new_fold[b, i, j] = acc_fold[b, i - 1, j]
                        new_live[b, i, j] = live[b, i - 1, j]
                        written[b, i, j] = True
                    if d < R - 1:
                        new_live[b, d, j] = False  # row d gave its result away and gets none
                    if d == f_len[q] - 1 and j == C - 1:
                        drained += 1
        busy = False
        for i in range(R):
            for j in range(C):
                if at[i, j] < 0:
                    continue
                q = af[i, j]
                if bf[i, j] != q or bt[i, j] != at[i, j]:
                    raise RuntimeError("os: operands misaligned")
                b = q % 2
                if written[b, i, j]:
                    raise RuntimeError("os: a MAC and the drain write one register")
                if at[i, j] > 0:
                    if acc_fold[b, i, j] != q or not live[b, i, j]:
                        raise RuntimeError("os: the accumulator holds another fold")
                elif new_live[b, i, j]:
                    raise RuntimeError("os: a new fold overwrites an undrained result")
                for a in range(pm):
                    for bb in range(pn):
                        v = acc[b, i, j, a, bb] if at[i, j] > 0 else 0
                        for r in range(pk):
                            v += av[i, j, a, r] * bv[i, j, r, bb]
                        new_acc[b, i, j, a, bb] = v
                new_fold[b, i, j] = q
                new_live[b, i, j] = True
                busy = True
                if i == R - 1 and j == 0 and at[i, j] == tp - 1:
                    last0[q] = c
        acc = new_acc
        acc_fold = new_fold
        live = new_live
        if busy:
            last_busy = c
        c += 1
    return out, last_busy


def pe_gemm_kernel(
    A: np.ndarray, B: np.ndarray, rows: int, cols: int, dataflow: int, timing: int, pm: int, pk: int, pn: int
) -> tuple[np.ndarray, int]:
    """``(A @ B, last busy cycle)`` for int64 ``A`` (M x K), ``B`` (K x N): picks the jitted model
    of the dataflow and timing mode (in Python, so no compiled code holds the imported codes)."""
    if timing == TIMING_SCALESIM:
        # SCALE-Sim's array has no packing: a packed DSP is ``pm pk pn`` logical columns
        lr, lc = rows, cols * pm * pk * pn
        if dataflow == DF_OS:
            return _os_gemm(A, B, lr, lc)
        if dataflow == DF_WS:
            return _stationary_gemm(A, B, lr, lc)
        out_t, last = _stationary_gemm(np.ascontiguousarray(B.T), np.ascontiguousarray(A.T), lr, lc)
        return np.ascontiguousarray(out_t.T), last
    if dataflow == DF_OS:
        return _os_pipelined(A, B, rows, cols, pm, pk, pn)
    if dataflow == DF_WS:
        return _ws_pipelined(A, B, rows, cols, pk, pn, pm)
    out_t, last = _ws_pipelined(np.ascontiguousarray(B.T), np.ascontiguousarray(A.T), rows, cols, pk, pm, pn)
    return np.ascontiguousarray(out_t.T), last


def pe_gemm(
    A: np.ndarray,
    B: np.ndarray,
    rows: int,
    cols: int,
    dataflow: str,
    timing: str = "pipelined",
    packing: Packing = NO_PACKING,
) -> tuple[np.ndarray, int]:
    """Run ``A @ B`` through the PE-level systolic array model.

    Args:
        A: integer matrix ``M x K``.
        B: integer matrix ``K x N``.
        rows: physical array rows.
        cols: physical array columns.
        dataflow: ``"os"``, ``"ws"`` or ``"is"``.
        timing: ``"pipelined"`` or ``"scalesim"`` (see the module docs).
        packing: products per PE along M, K, N (``scalesim``: as that many more logical columns).

    Returns:
        ``(product, cycles)``: the int64 product (equal to ``A @ B``) and the index of the last busy
        cycle (SCALE-Sim's compute-cycle convention).

    Raises:
        ConfigError: non-integer or non-2-D operands, mismatched inner sizes, empty operands,
            non-positive array sizes or packing, or an unknown dataflow or timing.

    Examples:
        >>> import numpy as np
        >>> prod, cycles = pe_gemm(np.ones((2, 3), int), np.ones((3, 2), int), 2, 2, "os", "scalesim")
        >>> prod.tolist(), cycles  # one fold of 3 + 2 + 2 - 2 cycles, last index 4
        ([[3, 3], [3, 3]], 4)
    """
    code = dataflow_code(dataflow)
    tcode = timing_code(timing)
    a, b = np.asarray(A), np.asarray(B)
    for name, m in (("A", a), ("B", b)):
        if m.ndim != 2 or m.dtype.kind not in "iu" or 0 in m.shape:
            raise ConfigError(f"{name}: must be a non-empty 2-D integer matrix (got {m.dtype} {m.shape})")
    if a.shape[1] != b.shape[0]:
        raise ConfigError(f"B: has {b.shape[0]} rows, A has {a.shape[1]} columns; they must be equal")
    for name, v in (("rows", rows), ("cols", cols), ("packing.m", packing.m), ("packing.k", packing.k),
                    ("packing.n", packing.n)):  # fmt: skip
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ConfigError(f"{name}: must be a positive integer (got {v!r})")
    out, last = pe_gemm_kernel(
        np.ascontiguousarray(a, np.int64),
        np.ascontiguousarray(b, np.int64),
        int(rows),
        int(cols),
        code,
        tcode,
        packing.m,
        packing.k,
        packing.n,
    )
    return out, int(last)
