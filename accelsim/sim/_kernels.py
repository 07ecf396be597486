"""Numba kernel of the mapping, and the codes it shares: flat int64/float64 arrays and scalars in,
arrays out.

Only numpy and numba are imported here; the typed layer (:mod:`accelsim.sim.mapping`) validates
before calling. The integer codes the mapping kernel switches on (op classes, engines, streaming
edges, loop orders, operand roles, buffers) are defined here, once, and every other module uses
them by name. Every constant a jitted function reads is defined in the module that compiles it
(``tests/sim/test_jit_constants.py``): numba's on-disk cache does not notice a constant, or a
callee, that another module changes, so the array's dataflow and timing codes live in
:mod:`accelsim.sim.engines.systolic` and the mapping's loop orders here, joined by name
(``LOOP_OF_DATAFLOW``). The systolic timing functions are called from the typed layer, not from
these kernels, for the same reason. The schedule kernel is :mod:`accelsim.sim._schedule_kernel`.

Kernel arguments and results are named tuples of arrays (numba types them field by field), so
a call site names what it passes and what it reads back.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from accelsim._numba import njit

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
#: no engine (data movement, or work a unit absorbs). Names, op classes, priorities
#: and config fields: :data:`accelsim.sim.engines.table.ENGINES`, which must agree with these.
ENG_NONE = -1
ENG_ARRAY, ENG_VECTOR, ENG_SOFTMAX, ENG_LINATT, ENG_DWCONV, ENG_RECONF = 0, 1, 2, 3, 4, 5

# Pipelined (streaming) edges producer -> consumer: the consumer's tiles follow the producer's
# instead of waiting for all of it. PIPE_HEAD: per attention head (QK^T -> softmax -> AV, the
# parts of a linear attention); PIPE_ELEM: an element-wise consumer behind any producer;
# PIPE_MBCONV: depthwise conv -> (activation) -> pointwise conv (MBConv fusion).
PIPE_NONE, PIPE_HEAD, PIPE_ELEM, PIPE_MBCONV = 0, 1, 2, 3

#: Loop orders of an array GEMM (which operand stays, which streams; see :func:`_gemm_plan`), one
#: per dataflow of :mod:`accelsim.sim.engines.systolic` (``LOOP_OF_DATAFLOW``, by name: the
#: dataflow codes are that module's, and a code imported into this module's jitted functions would
#: stay frozen in numba's on-disk cache after it changed). ``LOOP_TREE``: an adder tree's order,
#: ws's without partial sums leaving the engine.
LOOP_OS, LOOP_WS, LOOP_IS, LOOP_TREE = 0, 1, 2, 3
LOOP_OF_DATAFLOW: dict[str, int] = {"os": LOOP_OS, "ws": LOOP_WS, "is": LOOP_IS, "tree": LOOP_TREE}

# Input roles: the GEMM operands A[M,K] (activations) and B[K,N] (weights or 2nd activation),
# and everything else an op reads (bias, layernorm affine, vector operands).
ROLE_A, ROLE_B, ROLE_OTHER = 0, 1, 2

#: Buffers a tile may overflow (``PlanArrays.bad_buffer``).
BUF_NONE, BUF_INPUT, BUF_WEIGHT = -1, 0, 1

#: The deepest prefetch a buffer gets, in tiles (``PlanArrays.slots``).
MAX_SLOTS = 64


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
    with a reconfigurable unit assisting, ``busy_assisted``), folds, the dataflow code, its loop
    order (``LOOP_*``) and the
    logical columns of a fold; per shape the products per DSP (the array's packing for its operand
    bits)."""

    busy: np.ndarray
    busy_assisted: np.ndarray
    row_folds: np.ndarray
    col_folds: np.ndarray
    dataflow: np.ndarray
    loop: np.ndarray
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
    edges, the share on DSPs; and the first op whose tile does not fit a buffer (``bad_buffer`` a ``BUF_*`` code)
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
    #: per op, the share of its MACs on the array's DSPs (the rest on its LUT multipliers or an
    #: assisting unit; 1.0 where it has no GEMM shape)
    dsp_share: np.ndarray
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
def _gemm_plan(loop, fr, fc, lcols, batch, M, K, N, a_t, a_d, b_t, b_d, o_t, o_d, prm):
    """Tiles, footprints and DRAM bytes of an array GEMM (operand bytes: ``*_t`` total, ``*_d``
    from DRAM) in the loop order ``loop``, with ``fr x fc`` folds of ``lcols`` logical columns."""
    ibuf, wbuf, obuf = prm.ibuf, prm.wbuf, prm.obuf
    if loop == LOOP_OS:  # os: outer M folds, inner N folds, stream K
        outer, inner, t_len = fr, fc, K
    elif loop in (LOOP_WS, LOOP_TREE):  # ws, tree: outer N folds, inner K folds, stream M
        outer, inner, t_len = fc, fr, M
    else:  # is: outer M folds, inner K folds, stream N
        outer, inner, t_len = fc, fr, N
    stat_ws = loop in (LOOP_WS, LOOP_TREE)
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
    if (loop in (LOOP_WS, LOOP_IS)) and inner > 1 and t_len * psum_row > obuf:
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


#: Rows of :func:`plan_ops`'s integer result, in :class:`PlanArrays`' order (its int64 arrays).
PLAN_ROWS = 17


@njit(cache=True)
def plan_ops(g, engine, fused, assisted, allowed, unit_comp, unit_tiles, sh, dsp_frac, prm):
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
        dsp_frac: per shape, column and (plain, assisted), the share of its MACs on the DSPs.
        prm: the :class:`MapParams`.

    Returns:
        :class:`PlanArrays`' fields in order, its int64 arrays as the rows of one array (one
        result to hand back instead of 17: boxing each array returned costs more than planning
        all ops): ``(rows, dsp_share, bad_op, bad_buffer, bad_need, n_bad)``.
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
    out = np.zeros((PLAN_ROWS, n), np.int64)
    comp, pack, n_tiles, tpo, n_outer, reuse = out[0], out[1], out[2], out[3], out[4], out[5]
    ld_once, ld_strm, spill, store, act_dep, slots = out[6], out[7], out[8], out[9], out[10], out[11]
    fr, fc, dfl, pipe_on_out, pipe_span = out[12], out[13], out[14], out[15], out[16]
    comp[:] = unit_comp
    pack[:] = 1
    tpo[:] = 1
    n_outer[:] = 1
    reuse[:] = 1
    slots[:] = 1
    dfl[:] = -1
    pipe_on_out[:] = pipe_on
    pipe_span[:] = 1
    bad_op = -1
    bad_buf = BUF_NONE
    bad_need = np.int64(0)
    n_bad = 0
    for i in range(n):
        e = engine[i]
        if e < 0:
            continue
        loop_i = -1
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
                loop_i = sh.loop[s, best]
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
                    sh.loop[s, 0], sh.row_folds[s, 0], sh.col_folds[s, 0], sh.logical_cols[s, 0],
                    batch[i], M[i], K[i], N[i], a_t, a_d, b_t, b_d, o_t, o_d, prm,
                )  # fmt: skip
                for c in range(busy.shape[1]):
                    if not (allowed[i] >> c) & 1:
                        continue
                    gp = _gemm_plan(
                        sh.loop[s, c], sh.row_folds[s, c], sh.col_folds[s, c], sh.logical_cols[s, c],
                        batch[i], M[i], K[i], N[i], a_t, a_d, b_t, b_d, o_t, o_d, prm,
                    )  # fmt: skip
                    est = _roofline(gp, busy[s, c], store[i], prm.bytes_per_cycle)
                    if best < 0 or est < best_est:
                        best, best_est, plan = c, est, gp
                comp[i] = busy[s, best]
                fr[i] = sh.row_folds[s, best]
                fc[i] = sh.col_folds[s, best]
                dfl[i] = sh.dataflow[s, best]
                loop_i = sh.loop[s, best]
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
        fit = np.int64(MAX_SLOTS)
        if i_tile > 0:
            fit = min(fit, ibuf // i_tile)
        if w_tile > 0:
            fit = min(fit, wbuf // w_tile)
        if fit < 1:
            fit = np.int64(1)
        if prm.double_buffer:
            slots[i] = min(2 * fit, MAX_SLOTS)
        else:
            slots[i] = 1
        # Streaming span: a consumer reads its producer's stream over all its tiles, except a
        # pointwise conv on the array, which reads it over its first outer stripe under ws (the
        # K folds follow the depthwise engine's channel groups) and needs all of it under os/is.
        pipe_span[i] = n_tiles[i]
        if pipe_on[i] and e == ENG_ARRAY and g.pipe_kind[i] == PIPE_MBCONV and batch[i] == 1:
            pipe_span[i] = tpo[i] if loop_i in (LOOP_WS, LOOP_TREE) else 1
    # The GEMM writes its epilogue's output: what that output stores, the GEMM stores. A scale
    # folded through data movement rewrites the GEMM's own output, which the GEMM stores anyway
    # when it is off chip.
    for i in range(n):
        if fused[i] >= 0:
            ro = g.out_root[i]
            rg = g.out_root[fused[i]]
            if (ro < 0 or not onchip[ro]) and (g.pipe_root[i] >= 0 or rg < 0 or onchip[rg]):
                store[fused[i]] += g.out_bytes[i]
    # The share of each GEMM's MACs on the DSPs, in the dataflow it runs in (column 0 where it
    # runs in none of them, off the array).
    dsp_share = np.ones(n, np.float64)
    for i in range(n):
        s = g.shape_id[i]
        if s < 0:
            continue
        col = 0
        for c in range(1, dsp_frac.shape[1]):
            if sh.dataflow[s, c] == dfl[i]:
                col = c
        dsp_share[i] = dsp_frac[s, col, 1 if assisted[i] else 0]
    return out, dsp_share, bad_op, bad_buf, int(bad_need), n_bad


@njit(cache=True)
def plan_ops_flat(g, macs, engine, fused, assisted, allowed, unit_comp, unit_tiles, sh, dsp_frac, prm):
    """:func:`plan_ops` with ``g``, ``sh`` and ``prm`` as plain tuples (their named tuples' fields
    in order), the way the mapper calls it: numba unboxes a named tuple argument field by field
    through Python (~3-10 us for these three), a plain tuple in C; the named tuples are rebuilt
    here, at no cost. Returns ``plan_ops``' result with, after the DSP share, the two vectors
    whose dot product is :meth:`~accelsim.sim.schedule.Schedule.array_dsp_cycles`: per op the
    array's MACs on its DSPs (``macs``: the graph's, per op) and the reciprocal of its products
    per DSP, each element exactly as that method's NumPy expression computes it."""
    out, dsp_share, bad_op, bad_buf, bad_need, n_bad = plan_ops(
        GraphColumns(*g), engine, fused, assisted, allowed, unit_comp, unit_tiles, ShapeTiming(*sh),
        dsp_frac, MapParams(*prm),
    )  # fmt: skip
    n = engine.shape[0]
    w = np.empty(n, np.float64)
    inv = np.empty(n, np.float64)
    for i in range(n):
        w[i] = (macs[i] if engine[i] == ENG_ARRAY else 0) * dsp_share[i]
        inv[i] = 1.0 / out[1, i]
    return out, dsp_share, w, inv, bad_op, bad_buf, bad_need, n_bad


@njit(cache=True)
def lower_bound(v, allowed, assisted, q_ptr):
    """Cycles that the schedule kernel (:func:`~accelsim.sim._schedule_kernel.run_schedule`) takes
    at least for any schedule in which each queue position ``p`` runs in one of the dataflow
    columns of the bit mask ``allowed[p]`` (assisted where ``assisted[p]``).

    ``v[a, c, :, p]``: the op at position ``p`` of the engines' queues (engine by engine, CSR
    ``q_ptr``) in column ``c``, unassisted (``a`` 0) or assisted: compute, one tile's compute,
    loads and stores as cycles of the channel. Each takes its least value over its mask. The kernel
    cannot beat this: an engine runs its queue one tile at a time in order; the DRAM channel moves
    one transfer at a time, each at least its bytes over the bandwidth; a tile computes after its
    load and stores after its compute. So the frame takes at least all bytes at full bandwidth,
    and per queue all its compute; per op ``i`` of a queue, its loads up to ``i`` then the compute
    after ``i``; and the compute before ``i`` and one tile of ``i``, then its stores from ``i`` on.
    """
    n_df = v.shape[1]
    nq = v.shape[3]
    least = np.full((4, nq), np.inf)
    for p in range(nq):
        a = 1 if assisted[p] else 0
        for c in range(n_df):
            if (allowed[p] >> c) & 1:
                for k in range(4):
                    least[k, p] = min(least[k, p], v[a, c, k, p])
    out = least[2].sum() + least[3].sum()
    for e in range(q_ptr.shape[0] - 1):
        lo, hi = q_ptr[e], q_ptr[e + 1]
        if lo == hi:
            continue
        queue = least[0, lo:hi].sum()
        stores = least[3, lo:hi].sum()
        loads = 0.0
        done = 0.0
        for p in range(lo, hi):
            out = max(out, done + least[1, p] + stores)
            loads += least[2, p]
            done += least[0, p]
            stores -= least[3, p]
            out = max(out, loads + queue - done)
        out = max(out, queue)
    return out
