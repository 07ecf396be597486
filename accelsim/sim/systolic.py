"""Exact stall-free compute timing of a GEMM on a systolic array, as SCALE-Sim counts it.

A GEMM here is ``C[M, N] = A[M, K] @ B[K, N]``: ``M`` output pixels / tokens, ``K`` the reduction
(conv window ``kh*kw*in_ch``), ``N`` filters / output features. SCALE-Sim (Samajdar et al., "SCALE-Sim:
Systolic CNN Accelerator Simulator", arXiv:1811.02883, Sec. III; code: ``scalesim/topology_utils.py
calc_spatio_temporal_params`` and ``scalesim/compute/systolic_compute_{os,ws,is}.py``, PyPI
``scalesim`` 3.0.0) maps the GEMM onto an ``R x C`` array (``R = rows``, ``C = cols``) through three
numbers: ``Sr`` (mapped along the rows), ``Sc`` (along the columns) and ``T`` (streamed in time):

==========  ==========  ==========  ======  =============================================
dataflow    ``Sr``      ``Sc``      ``T``   one fold, in cycles (``fold_cycles``)
==========  ==========  ==========  ======  =============================================
``os``      ``M``       ``N``       ``K``   ``T + R + C - 2``  (stream, skew over rows+cols)
``ws``      ``K``       ``N``       ``M``   ``2R + C + T - 2`` (``R`` preload + the above)
``is``      ``K``       ``M``       ``N``   ``2R + C + T - 2`` (``R`` preload + the above)
==========  ==========  ==========  ======  =============================================

The array runs ``ceil(Sr/R) * ceil(Sc/C)`` folds back to back (a partial fold costs as much as a
full one: the schedule is fixed, unused PEs see zeros). ``fold_cycles`` is the number of cycles from
the first operand entering the array to the last MAC at the bottom-right PE, inclusive; it is the
number of rows SCALE-Sim's per-fold demand matrices have (``skew_matrix`` of the prefix/stream/suffix).

**Cycle convention.** SCALE-Sim's reported compute cycles ("Total Cycles" in ``COMPUTE_REPORT.csv``)
are ``max(ofmap_serviced_cycles)`` in ``memory/double_buffered_scratchpad_mem.py`` with zero stalls,
i.e. the 0-based *index of the last busy cycle*, one less than the number of busy cycles. We keep
that convention so our numbers equal theirs:
``gemm_compute_cycles = row_folds * col_folds * fold_cycles - 1``; :func:`gemm_busy_cycles` gives the
plain count (what a schedule that lays GEMM tiles end to end should add up).

**Efficiency.** As SCALE-Sim defines them, both are averages over folds:
``mapping_efficiency`` = mean of ``used_PEs / (R*C)``, which sums exactly to
``Sr*Sc / (R*C*folds)``; ``compute_utilization`` = mean of ``used_PEs * T / (R*C*u)`` with
``u = T+R+C-2`` (os) or ``u = 2R+2C+T-3`` (ws, is; SCALE-Sim measures these folds on the un-skewed
stationary-operand demand matrix, which is ``C-1`` rows longer than the fold itself).

Everything jitted takes and returns int64 scalars or flat arrays; validation happens in the typed
wrappers :func:`gemm_timing` and :func:`gemm_timing_batch` before the jit boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import ArrayLike

from accelsim.errors import ConfigError

#: Dataflow name -> integer code used inside the jitted kernels.
DATAFLOW_CODES: dict[str, int] = {"os": 0, "ws": 1, "is": 2}
_OS, _WS, _IS = 0, 1, 2


@njit(cache=True)
def spatio_temporal_dims(M: int, K: int, N: int, dataflow: int) -> tuple[int, int, int]:
    """SCALE-Sim's ``(Sr, Sc, T)`` of a GEMM for a dataflow code (see the module table)."""
    if dataflow == _OS:
        return M, N, K
    if dataflow == _WS:
        return K, N, M
    return K, M, N


@njit(cache=True)
def gemm_folds(M: int, K: int, N: int, rows: int, cols: int, dataflow: int) -> tuple[int, int]:
    """``(row_folds, col_folds) = (ceil(Sr/rows), ceil(Sc/cols))``."""
    sr, sc, _ = spatio_temporal_dims(M, K, N, dataflow)
    return (sr + rows - 1) // rows, (sc + cols - 1) // cols


@njit(cache=True)
def fold_cycles(stream_len: int, rows: int, cols: int, dataflow: int) -> int:
    """Cycles of one fold: stationary preload (ws/is), operand stream and pipeline fill/drain skew.

    Args:
        stream_len: ``T``, the operand vectors streamed through the array in this fold.
        rows: array rows ``R``.
        cols: array columns ``C``.
        dataflow: a :data:`DATAFLOW_CODES` value.

    Returns:
        ``T + R + C - 2`` for os; ``R + (T + R + C - 2)`` for ws and is (``R`` cycles shift the
        stationary operand in from the top edge before the stream starts).
    """
    if dataflow == _OS:
        return stream_len + rows + cols - 2
    return 2 * rows + cols + stream_len - 2


@njit(cache=True)
def gemm_busy_cycles(M: int, K: int, N: int, rows: int, cols: int, dataflow: int) -> int:
    """Number of cycles the array is busy on the whole GEMM: ``folds * fold_cycles``."""
    _, _, t = spatio_temporal_dims(M, K, N, dataflow)
    fr, fc = gemm_folds(M, K, N, rows, cols, dataflow)
    return fr * fc * fold_cycles(t, rows, cols, dataflow)


@njit(cache=True)
def gemm_compute_cycles(M: int, K: int, N: int, rows: int, cols: int, dataflow: int) -> int:
    """Stall-free compute cycles of the whole GEMM in SCALE-Sim's convention (busy cycles - 1)."""
    return gemm_busy_cycles(M, K, N, rows, cols, dataflow) - 1


@njit(cache=True)
def _gemm_timing_scalar(
    M: int, K: int, N: int, rows: int, cols: int, dataflow: int
) -> tuple[int, float, float]:
    sr, sc, t = spatio_temporal_dims(M, K, N, dataflow)
    fr = (sr + rows - 1) // rows
    fc = (sc + cols - 1) // cols
    folds = fr * fc
    pes = rows * cols
    cycles = folds * fold_cycles(t, rows, cols, dataflow) - 1
    # per-fold used PEs sum to Sr*Sc over all folds, so both fold averages have closed forms
    used = sr * sc
    mapping = used / (pes * folds)
    util_span = t + rows + cols - 2 if dataflow == _OS else 2 * rows + 2 * cols + t - 3
    util = (used * t) / (pes * util_span * folds)
    return cycles, mapping, util


@njit(cache=True)
def gemm_timing_kernel(
    M: np.ndarray, K: np.ndarray, N: np.ndarray, rows: np.ndarray, cols: np.ndarray, dataflow: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timing of many GEMMs at once (equal-length int64 arrays, already validated).

    Returns:
        ``(compute_cycles int64, mapping_efficiency float64, compute_utilization float64)``.
    """
    n = M.shape[0]
    cycles = np.empty(n, np.int64)
    mapping = np.empty(n, np.float64)
    util = np.empty(n, np.float64)
    for i in range(n):
        c, m, u = _gemm_timing_scalar(M[i], K[i], N[i], rows[i], cols[i], dataflow[i])
        cycles[i] = c
        mapping[i] = m
        util[i] = u
    return cycles, mapping, util


@dataclass(frozen=True)
class GemmTiming:
    """Stall-free timing of one GEMM on one array, in SCALE-Sim's definitions.

    Attributes:
        compute_cycles: index of the last busy cycle (= busy cycles - 1), SCALE-Sim's "Total Cycles"
            with unconstrained memory.
        mapping_efficiency: fold-averaged fraction of PEs holding real work, in (0, 1].
        compute_utilization: fold-averaged fraction of PE-cycles doing real MACs, in (0, 1].
    """

    compute_cycles: int
    mapping_efficiency: float
    compute_utilization: float


def dataflow_code(dataflow: str) -> int:
    """Integer code of a dataflow name; an unknown name is a :class:`ConfigError`."""
    try:
        return DATAFLOW_CODES[dataflow]
    except (KeyError, TypeError):
        raise ConfigError(f"dataflow: must be one of 'os', 'ws', 'is' (got {dataflow!r})") from None


def _check_positive(**dims: int) -> None:
    for name, v in dims.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"{name}: must be a positive integer (got {v!r})")


def gemm_timing(M: int, K: int, N: int, rows: int, cols: int, dataflow: str) -> GemmTiming:
    """Stall-free compute cycles, mapping efficiency and compute utilisation of one GEMM.

    Args:
        M: output rows (pixels / tokens).
        K: reduction length.
        N: output columns (filters / features).
        rows: systolic array rows.
        cols: systolic array columns.
        dataflow: ``"os"``, ``"ws"`` or ``"is"``.

    Returns:
        The :class:`GemmTiming`, equal to SCALE-Sim 3.0.0's numbers for the same layer.

    Raises:
        ConfigError: a non-positive or non-integer size, or an unknown dataflow.

    Examples:
        >>> gemm_timing(20, 10, 12, 4, 4, "os").compute_cycles  # 15 folds of 10+4+4-2 cycles, minus 1
        239
    """
    code = DATAFLOW_CODES.get(dataflow) if type(dataflow) is str else None
    if code is None:
        code = dataflow_code(dataflow)  # raises the one-line error
    # fast path for plain ints (the sim core calls this per GEMM per hardware point)
    if not (
        type(M) is int and type(K) is int and type(N) is int and type(rows) is int and type(cols) is int
        and M > 0 and K > 0 and N > 0 and rows > 0 and cols > 0
    ):  # fmt: skip
        _check_positive(M=M, K=K, N=N, rows=rows, cols=cols)
        M, K, N, rows, cols = int(M), int(K), int(N), int(rows), int(cols)
    c, m, u = _gemm_timing_scalar(M, K, N, rows, cols, code)
    return GemmTiming(c, m, u)


def gemm_timing_batch(
    M: ArrayLike,
    K: ArrayLike,
    N: ArrayLike,
    rows: ArrayLike,
    cols: ArrayLike,
    dataflow: ArrayLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised :func:`gemm_timing` over broadcastable int arrays (e.g. GEMMs x hardware points).

    ``dataflow`` is a name (``"ws"``) or an int array of :data:`DATAFLOW_CODES` values.

    Returns:
        ``(compute_cycles, mapping_efficiency, compute_utilization)`` with the broadcast shape.

    Raises:
        ConfigError: any size below 1, a non-integer array, or an unknown dataflow code.
    """
    df = dataflow_code(dataflow) if isinstance(dataflow, str) else dataflow
    arrays = np.broadcast_arrays(*(np.asarray(x) for x in (M, K, N, rows, cols, df)))
    names = ("M", "K", "N", "rows", "cols", "dataflow")
    flat = []
    for name, a in zip(names, arrays, strict=True):
        if a.dtype.kind not in "iu":
            raise ConfigError(f"{name}: must be an integer array (got dtype {a.dtype})")
        flat.append(np.ascontiguousarray(a, dtype=np.int64).ravel())
    for name, a in zip(names[:5], flat[:5], strict=True):
        if a.size and a.min() < 1:
            raise ConfigError(f"{name}: must be positive (got {int(a.min())})")
    if flat[5].size and (flat[5].min() < 0 or flat[5].max() > 2):
        raise ConfigError(
            f"dataflow: codes must be 0 (os), 1 (ws) or 2 (is) (got {np.unique(flat[5]).tolist()})"
        )
    shape = arrays[0].shape
    cyc, mapping, util = gemm_timing_kernel(*flat)
    return cyc.reshape(shape), mapping.reshape(shape), util.reshape(shape)
