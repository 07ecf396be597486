"""Stall-free compute timing of a GEMM on a systolic array of DSP slices, in two timing modes.

A GEMM here is ``C[M, N] = A[M, K] @ B[K, N]``: ``M`` output pixels / tokens, ``K`` the reduction
(conv window ``kh*kw*in_ch``), ``N`` filters / output features. A dataflow maps it onto the
``R x C`` array (``R = rows``, ``C = cols``, physical DSP slices) through three numbers, as in
SCALE-Sim (Samajdar et al., "SCALE-Sim: Systolic CNN Accelerator Simulator", arXiv:1811.02883,
Sec. III; code: ``scalesim/topology_utils.py calc_spatio_temporal_params``): ``Sr`` mapped along
the rows, ``Sc`` along the columns and ``T`` streamed in time:

==========  ======  ======  ======  =====================================================
dataflow    ``Sr``  ``Sc``  ``T``   stationary in the PEs / streamed from the left edge
==========  ======  ======  ======  =====================================================
``os``      ``M``   ``N``   ``K``   outputs ``C`` / ``A`` rows from the left, ``B`` from the top
``ws``      ``K``   ``N``   ``M``   weights ``B`` / ``A`` rows, partial sums flow down
``is``      ``K``   ``M``   ``N``   inputs ``Aᵀ`` / ``B`` columns, partial sums flow down
==========  ======  ======  ======  =====================================================

**Packing** (:class:`Packing`): one DSP slice computes ``pm * pk * pn`` products per cycle, ``pm``
along M, ``pk`` along K and ``pn`` along N. Two INT8 products sharing an operand on a DSP48E2
(Xilinx WP486) are ``pn = 2`` (two weights, one activation); a DSP58's INT8 vector mode is a
three-term dot product, ``pk = 3`` (Xilinx AM004); four INT4 products on a DSP48E2 are a 2x2 outer
product, ``pm = pn = 2`` (Sommer et al., "DSP-Packing", arXiv:2203.11028). The packed products
share the DSP's position: the array holds ``R`` physical rows and ``C`` physical columns, a fold
covers ``R * p_rows`` logical rows by ``C * p_cols`` logical columns (``p_rows, p_cols = pm, pn`` for
os, ``pk, pn`` for ws, ``pk, pm`` for is) and streams ``T' = ceil(T / p_stream)`` packed vectors
(``p_stream = pk, pm, pn``). Folds: ``F = batch * ceil(Sr / (R p_rows)) * ceil(Sc / (C p_cols))``.

**One fold** as SCALE-Sim times it (``scalesim/compute/systolic_compute_{os,ws,is}.py``, PyPI
``scalesim`` 3.0.0), :func:`fold_cycles`: ``T + R + C - 2`` for os (stream plus the skew over
rows and columns), ``2R + C + T - 2`` for ws and is (``R`` cycles shift the stationary operand in
from the top edge first). A partial fold at the GEMM's edge costs as much as a full one: the
schedule is fixed, unused PEs see zeros.

**Timing modes** (:data:`TIMING_CODES`):

- ``scalesim``: folds run one after the other, each paying its own preload, fill and drain, on a
  *logical* array of ``R x (C pm pk pn)`` PEs (SCALE-Sim has no packing: a packed DSP is that many
  extra columns, as accelsim modelled packing before the pipelined mode): busy cycles
  ``F * fold_cycles(T, R, C pm pk pn)``. Without packing this equals SCALE-Sim's compute cycles
  exactly (``tests/sim/test_scalesim_agreement.py``).
- ``pipelined`` (what FPGA arrays build, the default): folds stream back to back and the skew is
  paid once per run of folds, over the *physical* array::

      busy = fold_cycles(T', R, C) + (F - 1) * max(T', R)           (every fold full)

  *ws / is*: each PE has two weight banks (ping-pong "shadow" registers) and a per-column load
  chain: fold ``n + 1``'s weights shift down the chain (deepest row first, the column ``j`` chain
  ``j`` cycles behind column 0, like the operands) and latch into the idle bank while fold ``n``
  streams; fold ``n + 1``'s first vector follows fold ``n``'s last one, and each PE switches bank
  with the first vector of the new fold (the switch travels with the data). A load shifts in only
  the ``L`` rows that hold data (``R``, fewer in the last row fold of a reduction shorter than a
  multiple of ``R``: the rows below meet zero activations, so their stale weights do not matter).
  A fold waits only when its load is not done, i.e. it costs ``max(T', L)`` after the first, whose
  load is ``L_0``::

      busy = L_0 + sum over folds n >= 1 of max(T', L_n) + T' + R + C - 2

  which is the formula above when every fold is full: the chain (one row of weights per cycle) is
  slower than the stream only when ``T' < L``. The TPU's weight FIFO double-buffers its tiles
  the same way (Jouppi et al., "In-Datacenter Performance Analysis of a Tensor Processing Unit",
  ISCA 2017, Sec. 2: "the weights for the next tile are loaded while the current tile computes").
  *os*: each PE has two accumulator banks; fold ``n + 1`` accumulates in one while the other
  shifts fold ``n``'s results down its column to the bottom edge, one row per cycle, so a fold
  may start every ``max(T', L)`` cycles (the output port of a column drains the ``L`` results of
  the fold before). ``L`` is ``R``, except in the last row fold of an ``M`` that does not fill
  the array's rows: that fold's ``L`` rows sit in the bottom rows, next to the port, and drain in
  ``L`` cycles. With short folds (``T' < R``) a fold also waits for its bank's previous fold
  (two before) to begin draining, ``T' + R`` cycles after that fold started
  (:func:`_os_pipelined_busy`); with every fold full this is the formula above. ``R = 1`` is the
  degenerate case: ``max(T', 1) = T'``.

  For GEMV-like layers (``M = 1`` under ws, ``T' < R``) the array is bound by its weight chains,
  ``C p_cols`` weights per cycle whatever ``R``: where that is faster than DRAM supplies them
  (128 INT8 weights/cycle against 96 B/cycle on the default ZCU102 design at 200 MHz) such layers
  run at DRAM speed in the schedule (their weights stream tile by tile, double-buffered).

The PE-level models in :mod:`accelsim.sim.reference.pe` move operands register by register for both
modes and reproduce these counts exactly; ``tests/sim/rtl/`` checks them against the Verilog of the
same arrays.

**Cycle convention.** SCALE-Sim's reported compute cycles ("Total Cycles" in ``COMPUTE_REPORT.csv``)
are ``max(ofmap_serviced_cycles)`` in ``memory/double_buffered_scratchpad_mem.py`` with zero stalls,
i.e. the 0-based *index of the last busy cycle*, one less than the number of busy cycles:
``compute_cycles = busy - 1`` in both modes; ``busy`` is what a schedule that lays GEMM tiles end
to end adds up.

**Efficiency.** ``utilization`` = MACs / (busy cycles x ``R C pm pk pn``) in both modes.
SCALE-Sim's own fold averages are given under their own names (on the logical array, as SCALE-Sim
sees it): ``scalesim_mapping_efficiency`` = mean of ``used_PEs / (R*C)``, which sums exactly to
``Sr*Sc / (R*C*folds)``; ``scalesim_compute_utilization`` = mean of ``used_PEs * T / (R*C*u)`` with
``u = T+R+C-2`` (os) or ``u = 2R+2C+T-3`` (ws, is; SCALE-Sim measures these folds on the un-skewed
stationary-operand demand matrix, which is ``C-1`` rows longer than the fold itself).

Everything jitted takes and returns int64 scalars or flat arrays; validation happens in the typed
wrappers :func:`gemm_timing` and :func:`gemm_timing_batch` before the jit boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from accelsim._numba import njit
from accelsim.errors import ConfigError

# The codes the jitted functions below switch on are defined here, in the module that compiles
# them: numba's on-disk cache would keep a value imported from another module after it changed.
#: Dataflows of the array (names in ``DATAFLOW_NAMES``, same order); ``DF_TREE`` is the loop
#: order of a multiplier + adder-tree engine (weights of an output block resident, activations
#: streamed, every output finished in its lane before the next: no partial sums leave it).
DF_OS, DF_WS, DF_IS, DF_TREE = 0, 1, 2, 3
_DF_BY_NAME = {"os": DF_OS, "ws": DF_WS, "is": DF_IS, "tree": DF_TREE}
DATAFLOW_NAMES: tuple[str, ...] = tuple(sorted(_DF_BY_NAME, key=_DF_BY_NAME.__getitem__))
#: Array timing modes (see the module docs).
TIMING_SCALESIM, TIMING_PIPELINED = 0, 1

#: Dataflow name -> integer code used inside the jitted kernels.
DATAFLOW_CODES: dict[str, int] = {"os": DF_OS, "ws": DF_WS, "is": DF_IS}
#: Timing-mode name -> integer code.
TIMING_CODES: dict[str, int] = {"scalesim": TIMING_SCALESIM, "pipelined": TIMING_PIPELINED}


@dataclass(frozen=True)
class Packing:
    """Products one DSP slice computes per cycle, by GEMM dimension (see the module docs)."""

    m: int = 1
    k: int = 1
    n: int = 1

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n


#: One product per DSP slice.
NO_PACKING = Packing()


@njit(cache=True)
def spatio_temporal_dims(M: int, K: int, N: int, dataflow: int) -> tuple[int, int, int]:
    """SCALE-Sim's ``(Sr, Sc, T)`` of a GEMM for a dataflow code (see the module table)."""
    if dataflow == DF_OS:
        return M, N, K
    if dataflow == DF_WS:
        return K, N, M
    return K, M, N


@njit(cache=True)
def packed_dims(dataflow: int, pm: int, pk: int, pn: int) -> tuple[int, int, int]:
    """``(p_rows, p_cols, p_stream)``: which packing factor multiplies the array rows, the array
    columns and the streamed vectors under ``dataflow``: each packs along its GEMM dimension, so
    the factors take the places of M, K, N in :func:`spatio_temporal_dims`."""
    return spatio_temporal_dims(pm, pk, pn, dataflow)


@njit(cache=True)
def logical_array(
    rows: int, cols: int, dataflow: int, timing: int, pm: int, pk: int, pn: int, stream_len: int
) -> tuple[int, int, int]:
    """``(logical rows, logical columns, packed stream length)`` a fold covers in a timing mode."""
    if timing == TIMING_SCALESIM:
        return rows, cols * pm * pk * pn, stream_len
    p_rows, p_cols, p_stream = packed_dims(dataflow, pm, pk, pn)
    return rows * p_rows, cols * p_cols, (stream_len + p_stream - 1) // p_stream


@njit(cache=True)
def gemm_folds(
    M: int, K: int, N: int, rows: int, cols: int, dataflow: int, pm: int = 1, pk: int = 1, pn: int = 1
) -> tuple[int, int]:
    """``(row_folds, col_folds) = (ceil(Sr / (rows p_rows)), ceil(Sc / (cols p_cols)))`` (pipelined)."""
    sr, sc, t = spatio_temporal_dims(M, K, N, dataflow)
    lr, lc, _ = logical_array(rows, cols, dataflow, TIMING_PIPELINED, pm, pk, pn, t)
    return (sr + lr - 1) // lr, (sc + lc - 1) // lc


@njit(cache=True)
def fold_cycles(stream_len: int, rows: int, cols: int, dataflow: int) -> int:
    """Cycles of one fold as SCALE-Sim counts it: stationary preload (ws/is), stream and skew.

    Args:
        stream_len: ``T``, the operand vectors streamed through the array in this fold.
        rows: array rows ``R``.
        cols: array columns ``C``.
        dataflow: a :data:`DATAFLOW_CODES` value.

    Returns:
        ``T + R + C - 2`` for os; ``R + (T + R + C - 2)`` for ws and is (``R`` cycles shift the
        stationary operand in from the top edge before the stream starts).
    """
    if dataflow == DF_OS:
        return stream_len + rows + cols - 2
    return 2 * rows + cols + stream_len - 2


@njit(cache=True)
def _os_pipelined_busy(ts: int, rows: int, cols: int, batch: int, fr: int, fc: int, last: int) -> int:
    """Busy cycles of pipelined os folds (module docs): fold ``n`` starts when the stream of fold
    ``n - 1`` and the drain of its ``L_{n-1}`` rows allow, ``S_n = max(S_{n-1} + max(T', L_{n-1}),
    DS_{n-2} + 1)`` (its bank's previous fold has begun to drain), and drains from ``DS_n =
    max(S_n + T' + R - 1, DS_{n-1} + L_{n-1})`` (its last MAC at the bottom row is over and the
    port is free); busy = ``S_{F-1} + T' + R + C - 2``. ``L`` is ``R`` but in the last row fold of
    each column fold (``last`` rows: a partial fold puts its rows at the bottom, next to the port)."""
    folds = batch * fr * fc
    s_prev = 0
    ds_prev2 = -1  # DS of fold n - 2
    ds_prev = ts + rows - 1  # DS of fold n - 1
    l_prev = rows if fr > 1 else last
    for n in range(1, folds):
        s = max(s_prev + max(ts, l_prev), ds_prev2 + 1)
        ds = max(s + ts + rows - 1, ds_prev + l_prev)
        l_prev = last if (n % fr) == fr - 1 else rows
        s_prev, ds_prev2, ds_prev = s, ds_prev, ds
    return s_prev + ts + rows + cols - 2


@njit(cache=True)
def array_busy_cycles(
    M: int,
    K: int,
    N: int,
    batch: int,
    rows: int,
    cols: int,
    dataflow: int,
    timing: int,
    pm: int,
    pk: int,
    pn: int,
) -> tuple[int, int, int]:
    """``(busy cycles, row folds, col folds)`` of ``batch`` GEMMs of one shape run as one op.

    ``scalesim``: ``F * fold_cycles(T', R p_rows, C p_cols)``; ``pipelined``:
    ``fold_cycles(T', R, C) + (F - 1) * max(T', R)`` (module docs).
    """
    sr, sc, t = spatio_temporal_dims(M, K, N, dataflow)
    lr, lc, ts = logical_array(rows, cols, dataflow, timing, pm, pk, pn, t)
    fr = (sr + lr - 1) // lr
    fc = (sc + lc - 1) // lc
    folds = batch * fr * fc
    if timing == TIMING_SCALESIM:
        return folds * fold_cycles(ts, lr, lc, dataflow), fr, fc
    if dataflow == DF_OS:
        return _os_pipelined_busy(ts, rows, cols, batch, fr, fc, (sr - (fr - 1) * lr + pm - 1) // pm), fr, fc
    # ws / is: fold n costs max(T', L_n) after the first, L_n the physical rows its load shifts in:
    # R, except the last row fold of each column fold, which loads only the rows holding data.
    p_rows = lr // rows
    last = (sr - (fr - 1) * lr + p_rows - 1) // p_rows
    first = rows if fr > 1 else last
    total = batch * fc * ((fr - 1) * max(ts, rows) + max(ts, last))
    return first + total - max(ts, first) + ts + rows + cols - 2, fr, fc


@njit(cache=True)
def mapped_busy_cycles(
    M: int,
    K: int,
    N: int,
    batch: int,
    rows: int,
    cols: int,
    dataflow: int,
    timing: int,
    pm: int,
    pk: int,
    pn: int,
) -> tuple[int, int, int]:
    """:func:`array_busy_cycles` of the op as the mapper runs it: in ``pipelined`` timing it may
    use only ``R' <= R`` rows and ``C' <= C`` columns of the array (folds of that size, the
    operands passing through the idle rows and columns: ``R - R' + C - C'`` more cycles of skew),
    whichever is least. A bigger array can so always run an op as a smaller one did, at one
    cycle per extra row or column. The sub-array sizes tried are, per fold count from the least
    up to twice it (and two), the fewest rows (columns) that give it: the least busy for that
    count (balanced folds, by convexity of ``max(T', L)``)."""
    busy, fr, fc = array_busy_cycles(M, K, N, batch, rows, cols, dataflow, timing, pm, pk, pn)
    if timing == TIMING_SCALESIM:
        return busy, fr, fc
    sr, sc, _ = spatio_temporal_dims(M, K, N, dataflow)
    p_rows, p_cols, _ = packed_dims(dataflow, pm, pk, pn)
    r_prev = rows + 1
    for f in range(fr, 2 * fr + 3):
        r = (sr + f * p_rows - 1) // (f * p_rows)
        if r >= r_prev or r > rows:
            continue
        r_prev = r
        c_prev = cols + 1
        for g in range(fc, 2 * fc + 3):
            c = (sc + g * p_cols - 1) // (g * p_cols)
            if c >= c_prev or c > cols:
                continue
            c_prev = c
            if r == rows and c == cols:
                continue
            b, fr2, fc2 = array_busy_cycles(M, K, N, batch, r, c, dataflow, timing, pm, pk, pn)
            b += rows - r + cols - c
            if b < busy:
                busy, fr, fc = b, fr2, fc2
    return busy, fr, fc


@njit(cache=True)
def adder_tree_busy_cycles(
    M: int, K: int, N: int, batch: int, lanes: int, cols: int, tree: int, pm: int, pk: int, pn: int
) -> tuple[int, int, int]:
    """``(busy cycles, K folds, N folds)`` of ``batch`` GEMMs on a multiplier + adder-tree engine.

    ``lanes`` lanes each take one token (``pm`` with packing), ``cols`` output channels (``pn``)
    and ``tree`` input channels (``pk``) per cycle: a lane's adder trees sum ``tree`` products per
    output channel and its accumulators add that over the ``ceil(K / (tree pk))`` cycles of the
    reduction, so an output block is finished before the next starts and the blocks follow each
    other with no skew. One step (a K fold of an output block) issues per cycle and passes
    ``depth = ceil(log2(tree pk)) + 2`` registers: the multiplier stage, the adder tree's levels
    and the accumulator (Trio-ViT's MAT, Shi et al., arXiv:2405.03882, Sec. V). The last step
    issues in cycle ``S - 1`` and accumulates ``depth - 1`` cycles later, so::

        busy = S + depth - 1,   S = batch * ceil(M / (lanes pm)) * ceil(N / (cols pn)) * ceil(K / (tree pk))

    the fill paid once per op. ``accelsim/sim/reference/rtl/tree_gemm.v`` is this engine register
    for register (``pm = pk = 1``); ``tests/sim/rtl/test_rtl_tree.py`` checks its products and its
    last accumulation cycle (``busy - 1``) against numpy and this formula on the published
    engines at DeiT-Tiny's shapes.
    """
    kf = (K + tree * pk - 1) // (tree * pk)
    nf = (N + cols * pn - 1) // (cols * pn)
    mf = (M + lanes * pm - 1) // (lanes * pm)
    width = tree * pk
    depth = 2
    while (1 << (depth - 2)) < width:
        depth += 1
    return batch * mf * nf * kf + depth - 1, kf, nf


@njit(cache=True)
def gemm_busy_cycles(M: int, K: int, N: int, rows: int, cols: int, dataflow: int) -> int:
    """SCALE-Sim's busy cycles of the whole GEMM (no packing): ``folds * fold_cycles``."""
    return array_busy_cycles(M, K, N, 1, rows, cols, dataflow, TIMING_SCALESIM, 1, 1, 1)[0]


@njit(cache=True)
def gemm_compute_cycles(M: int, K: int, N: int, rows: int, cols: int, dataflow: int) -> int:
    """Stall-free compute cycles of the whole GEMM in SCALE-Sim's convention (busy cycles - 1)."""
    return gemm_busy_cycles(M, K, N, rows, cols, dataflow) - 1


@njit(cache=True)
def _gemm_timing_scalar(
    M: int, K: int, N: int, rows: int, cols: int, dataflow: int, timing: int, pm: int, pk: int, pn: int
) -> tuple[int, float, float, float]:
    busy, fr, fc = array_busy_cycles(M, K, N, 1, rows, cols, dataflow, timing, pm, pk, pn)
    sr, sc, t = spatio_temporal_dims(M, K, N, dataflow)
    lr, lc, ts = logical_array(rows, cols, dataflow, timing, pm, pk, pn, t)
    folds = fr * fc
    pes = lr * lc
    util = (M * K * N) / (busy * rows * cols * pm * pk * pn)
    # per-fold used PEs sum to Sr*Sc over all folds, so both fold averages have closed forms
    used = sr * sc
    mapping = used / (pes * folds)
    util_span = ts + lr + lc - 2 if dataflow == DF_OS else 2 * lr + 2 * lc + ts - 3
    scalesim_util = (used * ts) / (pes * util_span * folds)
    return busy, util, mapping, scalesim_util


@njit(cache=True)
def gemm_timing_kernel(
    M: np.ndarray,
    K: np.ndarray,
    N: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    dataflow: np.ndarray,
    timing: np.ndarray,
    pm: np.ndarray,
    pk: np.ndarray,
    pn: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Timing of many GEMMs at once (equal-length int64 arrays, already validated).

    Returns:
        ``(busy cycles int64, utilization, scalesim mapping efficiency, scalesim compute
        utilization)``, the last three float64.
    """
    n = M.shape[0]
    busy = np.empty(n, np.int64)
    util = np.empty(n, np.float64)
    mapping = np.empty(n, np.float64)
    s_util = np.empty(n, np.float64)
    for i in range(n):
        b, u, m, s = _gemm_timing_scalar(
            M[i], K[i], N[i], rows[i], cols[i], dataflow[i], timing[i], pm[i], pk[i], pn[i]
        )
        busy[i] = b
        util[i] = u
        mapping[i] = m
        s_util[i] = s
    return busy, util, mapping, s_util


@dataclass(frozen=True)
class GemmTiming:
    """Stall-free timing of one GEMM on one array.

    Attributes:
        compute_cycles: index of the last busy cycle (= ``busy_cycles - 1``; SCALE-Sim's "Total
            Cycles" with unconstrained memory in ``scalesim`` timing).
        busy_cycles: cycles the array is busy on the GEMM.
        utilization: MACs / (busy cycles x the array's peak MACs per cycle), in (0, 1].
        scalesim_mapping_efficiency: SCALE-Sim's fold-averaged fraction of PEs holding real work.
        scalesim_compute_utilization: SCALE-Sim's fold-averaged fraction of PE-cycles doing MACs.
    """

    compute_cycles: int
    busy_cycles: int
    utilization: float
    scalesim_mapping_efficiency: float
    scalesim_compute_utilization: float


def dataflow_code(dataflow: str) -> int:
    """Integer code of a dataflow name; an unknown name is a :class:`ConfigError`."""
    try:
        return DATAFLOW_CODES[dataflow]
    except (KeyError, TypeError):
        raise ConfigError(f"dataflow: must be one of 'os', 'ws', 'is' (got {dataflow!r})") from None


def timing_code(timing: str) -> int:
    """Integer code of a timing mode; an unknown name is a :class:`ConfigError`."""
    try:
        return TIMING_CODES[timing]
    except (KeyError, TypeError):
        raise ConfigError(f"timing: must be one of 'pipelined', 'scalesim' (got {timing!r})") from None


def _check_positive(**dims: int) -> None:
    for name, v in dims.items():
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ConfigError(f"{name}: must be a positive integer (got {v!r})")


def gemm_timing(
    M: int,
    K: int,
    N: int,
    rows: int,
    cols: int,
    dataflow: str,
    timing: str = "pipelined",
    packing: Packing = NO_PACKING,
) -> GemmTiming:
    """Stall-free timing of one GEMM on an ``rows x cols`` array of DSP slices.

    Args:
        M: output rows (pixels / tokens).
        K: reduction length.
        N: output columns (filters / features).
        rows: physical array rows.
        cols: physical array columns.
        dataflow: ``"os"``, ``"ws"`` or ``"is"``.
        timing: ``"pipelined"`` (folds back to back) or ``"scalesim"`` (SCALE-Sim 3.0.0's model).
        packing: products per DSP along M, K, N.

    Returns:
        The :class:`GemmTiming`; in ``scalesim`` timing without packing its compute cycles equal
        SCALE-Sim 3.0.0's for the same layer.

    Raises:
        ConfigError: a non-positive or non-integer size, an unknown dataflow or timing.

    Examples:
        >>> gemm_timing(20, 10, 12, 4, 4, "os", "scalesim").compute_cycles  # 15 folds of 16, minus 1
        239
        >>> gemm_timing(20, 10, 12, 4, 4, "os").compute_cycles  # 16 + 14 folds of max(10, 4), minus 1
        155
    """
    code = DATAFLOW_CODES.get(dataflow) if type(dataflow) is str else None
    if code is None:
        code = dataflow_code(dataflow)  # raises the one-line error
    tcode = timing_code(timing)
    _check_positive(M=M, K=K, N=N, rows=rows, cols=cols, pm=packing.m, pk=packing.k, pn=packing.n)
    busy, util, mapping, s_util = _gemm_timing_scalar(
        int(M), int(K), int(N), int(rows), int(cols), code, tcode, packing.m, packing.k, packing.n
    )
    return GemmTiming(int(busy) - 1, int(busy), util, mapping, s_util)


def gemm_timing_batch(
    M: ArrayLike,
    K: ArrayLike,
    N: ArrayLike,
    rows: ArrayLike,
    cols: ArrayLike,
    dataflow: ArrayLike,
    timing: str = "pipelined",
    packing: Packing = NO_PACKING,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised :func:`gemm_timing` over broadcastable int arrays (e.g. GEMMs x hardware
    points), one ``packing`` for all. ``dataflow`` is a name (``"ws"``) or an int array of
    :data:`DATAFLOW_CODES`.

    Returns:
        ``(compute_cycles, utilization, scalesim_mapping_efficiency, scalesim_compute_utilization)``
        with the broadcast shape.

    Raises:
        ConfigError: any size below 1, a non-integer array, an unknown dataflow code or timing.
    """
    df = dataflow_code(dataflow) if isinstance(dataflow, str) else dataflow
    tcode = timing_code(timing)
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
    _check_positive(pm=packing.m, pk=packing.k, pn=packing.n)
    shape = arrays[0].shape
    ones = np.ones(flat[0].size, np.int64)
    kernel: Any = gemm_timing_kernel
    busy, util, mapping, s_util = kernel(
        *flat, ones * tcode, ones * packing.m, ones * packing.k, ones * packing.n
    )
    return (busy - 1).reshape(shape), util.reshape(shape), mapping.reshape(shape), s_util.reshape(shape)
