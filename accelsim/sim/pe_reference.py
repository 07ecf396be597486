"""PE-level reference model of a systolic array: registers stepped cycle by cycle (Numba).

This is the ground truth the fast formulas of :mod:`accelsim.sim.systolic` are tested against. It
computes the real integer product and counts cycles by actually moving operands through PE registers
with skewed injection at the array edges; no timing formula is used here.

Microarchitecture (one fold = one ``R x C`` tile of the GEMM; folds run back to back):

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

**Cycle convention:** the model returns the 0-based index of the last cycle in which any PE did a MAC,
counted from cycle 0 of the first fold. That is SCALE-Sim's "compute cycles" convention (one less
than the number of busy cycles) and equals :func:`accelsim.sim.systolic.gemm_compute_cycles`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from accelsim.errors import ConfigError
from accelsim.sim.systolic import dataflow_code


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
def pe_gemm_kernel(
    A: np.ndarray, B: np.ndarray, rows: int, cols: int, dataflow: int
) -> tuple[np.ndarray, int]:
    """Jitted entry: ``(A @ B, last busy cycle)`` for int64 ``A`` (M x K), ``B`` (K x N)."""
    if dataflow == 0:
        return _os_gemm(A, B, rows, cols)
    if dataflow == 1:
        return _stationary_gemm(A, B, rows, cols)
    out_t, last = _stationary_gemm(np.ascontiguousarray(B.T), np.ascontiguousarray(A.T), rows, cols)
    return np.ascontiguousarray(out_t.T), last


def pe_gemm(A: np.ndarray, B: np.ndarray, rows: int, cols: int, dataflow: str) -> tuple[np.ndarray, int]:
    """Run ``A @ B`` through the PE-level systolic array model.

    Args:
        A: integer matrix ``M x K``.
        B: integer matrix ``K x N``.
        rows: array rows.
        cols: array columns.
        dataflow: ``"os"``, ``"ws"`` or ``"is"``.

    Returns:
        ``(product, cycles)``: the int64 product (equal to ``A @ B``) and the index of the last busy
        cycle (SCALE-Sim's compute-cycle convention).

    Raises:
        ConfigError: non-integer or non-2-D operands, mismatched inner sizes, empty operands,
            non-positive array sizes, or an unknown dataflow.

    Examples:
        >>> import numpy as np
        >>> prod, cycles = pe_gemm(np.ones((2, 3), int), np.ones((3, 2), int), 2, 2, "os")
        >>> prod.tolist(), cycles  # one fold of 3 + 2 + 2 - 2 cycles, last index 4
        ([[3, 3], [3, 3]], 4)
    """
    code = dataflow_code(dataflow)
    a, b = np.asarray(A), np.asarray(B)
    for name, m in (("A", a), ("B", b)):
        if m.ndim != 2 or m.dtype.kind not in "iu" or 0 in m.shape:
            raise ConfigError(f"{name}: must be a non-empty 2-D integer matrix (got {m.dtype} {m.shape})")
    if a.shape[1] != b.shape[0]:
        raise ConfigError(f"B: has {b.shape[0]} rows, A has {a.shape[1]} columns; they must be equal")
    for name, v in (("rows", rows), ("cols", cols)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ConfigError(f"{name}: must be a positive integer (got {v!r})")
    out, last = pe_gemm_kernel(
        np.ascontiguousarray(a, np.int64), np.ascontiguousarray(b, np.int64), int(rows), int(cols), code
    )
    return out, int(last)
