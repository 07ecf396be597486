"""The repeat structure of a graph: the longest run of identical consecutive blocks of ops.

A transformer is a prefix, ``B`` identical blocks of ``P`` ops and a tail; the schedule kernel
runs the same block again and again, so it may skip repeated blocks
(:func:`accelsim.sim._schedule_kernel.run_schedule`). What this module finds is a hint only, per
graph and hardware-independent: the kernel itself checks that the program (the mapping, per
hardware point) and its own state repeat before it skips anything.
"""

from __future__ import annotations

import numpy as np

from accelsim.sim._memo import per_object
from accelsim.sim.graph_arrays import GraphArrays

#: Per-op columns that must be equal from one block to the next (the op's kind and every
#: dimension the mapping reads); op-index columns are compared relative to the op instead.
_SAME = (
    "cls", "batch", "M", "K", "N", "macs", "bits", "wbits", "abits", "b_weight", "elements", "passes",
    "rows", "length", "kh", "kw", "stride", "channels", "out_hw", "in_hw", "pipe_kind", "pipe_groups",
    "heads", "shape_id", "shape2_id", "out_bytes",
)  # fmt: skip
_OP_INDEX = ("pipe_src", "epi_src", "ln_src")

#: ``(s0, P, B)`` of a graph without repeated blocks.
NO_PERIOD = np.zeros(3, np.int64)


def _signatures(ga: GraphArrays) -> np.ndarray:
    """One integer per op, equal for two ops exactly when they look alike from where they sit:
    the same columns, the same inputs, and producers/consumers at the same offsets."""
    n = ga.n_ops
    ids: dict[tuple[object, ...], int] = {}
    sig = np.empty(n, np.int64)
    cols = [getattr(ga, f) for f in _SAME]
    rel = [getattr(ga, f) for f in _OP_INDEX]
    for x in range(n):
        key = (
            ga.kinds[x],
            tuple(int(c[x]) for c in cols),
            tuple(int(r[x]) - x if r[x] >= 0 else None for r in rel),
            tuple((ga.pred_idx[ga.pred_ptr[x] : ga.pred_ptr[x + 1]] - x).tolist()),
            tuple((ga.succ_idx[ga.succ_ptr[x] : ga.succ_ptr[x + 1]] - x).tolist()),
            tuple(ga.in_bytes[ga.in_ptr[x] : ga.in_ptr[x + 1]].tolist()),
            tuple(ga.in_role[ga.in_ptr[x] : ga.in_ptr[x + 1]].tolist()),
            tuple(ga.in_weight[ga.in_ptr[x] : ga.in_ptr[x + 1]].tolist()),
        )
        sig[x] = ids.setdefault(key, len(ids))
    return sig


def find_period(sig: np.ndarray) -> np.ndarray:
    """``(s0, P, B)`` of the run of ``B >= 2`` blocks of ``P`` equal signatures each, starting at
    ``s0``, covering the most ops (ties: the shorter block, then the earlier start);
    :data:`NO_PERIOD` when no two consecutive blocks are equal."""
    n = sig.size
    best = (0, 0, 0, 0)  # (covered, -P, -s0, B)
    for p in range(1, n // 2 + 1):
        eq = np.concatenate(([False], sig[:-p] == sig[p:], [False]))
        # runs of x with sig[x] == sig[x + p]: a run of L such x from a gives L // p + 1 blocks
        edges = np.flatnonzero(np.diff(eq.astype(np.int8)))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            blocks = (b - a) // p + 1
            if blocks >= 2 and (blocks * p, -p, -a, blocks) > best:
                best = (blocks * p, -p, -int(a), blocks)
    if best[3] == 0:
        return NO_PERIOD
    return np.array([-best[2], -best[1], best[3]], np.int64)


def _block_period(ga: GraphArrays) -> np.ndarray:
    """``(s0, P, B)`` of ``ga`` (:func:`find_period`)."""
    return find_period(_signatures(ga))


#: once per graph (4 ms on a DeiT): not in ``ga.memo``, which a sweep's per-config entries clear
block_period = per_object(_block_period, lambda ga: 0)
