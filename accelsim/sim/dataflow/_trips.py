"""The closed-form trip counts of the stage kinds, jitted: one Numba loop over flat arrays of stage
parameters times a whole pipeline per call (a design point in microseconds).

Each formula has a code; :data:`accelsim.sim.dataflow.kinds.STAGE_KINDS` gives every kind its
code, and this dispatcher is the formula's only home (equal to the kind's loop nest, tested for
every kind). Rows of ``dims`` are the shape fields in :data:`FIELDS` order, 0 where unset.
"""

from __future__ import annotations

import numpy as np

from accelsim._numba import njit

FIELDS = ("t", "tp", "cin", "cip", "cout", "cop", "c", "cp", "h", "top", "keep")
T, TP, CIN, CIP, COUT, COP, C, CP, H, TOP, KEEP = range(len(FIELDS))

#: the formulas, by code
MATMUL = 0  # TT x COT x CIT: a beat in, each output channel group, each input channel group
WEIGHT_CACHE = 1  # load COT x CIT beats, then stream them once per token group
THREE_PASS = 2  # TT x 3 passes x CT (layernorm, softmax)
BEATS = 3  # one iteration per beat (map, select)
PACK = 4  # TT x C/COP x COP/CIP
UNPACK = 5  # TT x C/CIP x CIP/COP
HEADS = 6  # TT x H x (C/H)/CP (split, merge)
SERIALIZE = 7  # one iteration per element
REORDER = 8  # every element read, then written, per group of tokens


@njit(cache=True, inline="always")
def _count(k: int, d: np.ndarray, i: int) -> int:
    """Iterations per frame of stage ``i`` (column of ``d``) under formula ``k``."""
    tt = d[T, i] // d[TP, i] if k != REORDER else 0
    if k == MATMUL:
        return tt * (d[COUT, i] // d[COP, i]) * (d[CIN, i] // d[CIP, i])
    if k == WEIGHT_CACHE:
        return (d[COUT, i] // d[COP, i]) * (d[CIN, i] // d[CIP, i]) * (1 + tt)
    if k == THREE_PASS:
        return tt * 3 * (d[C, i] // d[CP, i])
    if k == BEATS:
        return tt * (d[C, i] // d[CP, i])
    if k == PACK:
        return tt * (d[C, i] // d[COP, i]) * (d[COP, i] // d[CIP, i])
    if k == UNPACK:
        return tt * (d[C, i] // d[CIP, i]) * (d[CIP, i] // d[COP, i])
    if k == HEADS:
        return tt * d[H, i] * (d[C, i] // d[H, i] // d[CP, i])
    if k == SERIALIZE:
        return tt * (d[C, i] // d[CP, i]) * d[TP, i] * d[CP, i]
    return 2 * d[T, i] * d[C, i]


@njit(cache=True)
def trip_counts(code: np.ndarray, dims: np.ndarray, restart: int, out: np.ndarray) -> int:
    """Write each stage's cycles per frame (trip count + ``restart``) into ``out``; return the
    slowest stage's index."""
    worst = 0
    for i in range(code.size):
        out[i] = _count(code[i], dims, i) + restart
        if out[i] > out[worst]:
            worst = i
    return worst


@njit(cache=True)
def trip_count(code: int, dims: np.ndarray) -> int:
    """One stage's iterations per frame; ``dims`` its shape fields (one column)."""
    return _count(code, dims, 0)
