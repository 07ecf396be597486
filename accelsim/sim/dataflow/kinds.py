"""The stage kinds of the dataflow family: ONE table, name -> loop nest, ports, work and resources.

Every kind is an HLS-style loop nest pipelined at II = 1: one iteration issues per cycle at most,
in order. A kind's :class:`Program` says, for one frame, how many iterations the nest has and at
which iterations it reads a beat from each input port and writes a beat to each output port; the
event kernel (:mod:`accelsim.sim.dataflow._kernel`) stalls an iteration until its reads are
readable and its writes have room. Adding a kind is one :class:`StageKind` entry plus its program.

The loop nests follow HG-PIPE's HLS templates (github.com/OpenDarrenlu/HG-PIPE at 638cc9b; read,
not copied): ``src/matmul.h`` (a matmul is TT x COT x CIT iterations, reading a beat while
``cot == 0`` and writing one when ``cit == CIT-1``; the streamed-weight variant caches the whole
weight first, ``matmul_step1_cache_weight``), ``src/layernorm.h`` and ``src/softmax.h`` (TT x 3
passes x CT: read in pass 0, write in pass 2), ``src/adapter.h`` (width converters ``pack`` and
``unpk``), ``src/head_split.h`` (split / merge over heads), ``src/reshaper.h`` (``unpack`` to single
elements, then ``reorder`` per group of tokens: read all, then write all), ``src/quant.h``,
``src/gelu.h`` and the stream copies / residual merges of ``src/attn.h`` and ``src/mlp.h`` (one
iteration per beat), ``src/head.h`` (``select_cls``).

Resource terms are estimates (labelled in :func:`stage_resources`), not synthesis results.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from accelsim.config.dataflow import StageConfig
from accelsim.errors import ConfigError
from accelsim.sim.dataflow import _trips

I64 = np.int64


@dataclass(frozen=True)
class Program:
    """One frame of a stage's loop nest: ``n_iter`` iterations; ``reads[i]`` / ``writes[p]`` the
    (sorted) iterations that read input port ``i`` / write output port ``p``, one beat each."""

    n_iter: int
    reads: tuple[np.ndarray, ...]
    writes: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class StageKind:
    """One row of the table.

    Attributes:
        fields: the shape fields the kind needs (the others must stay unset).
        inputs: input ports (``None``: any number >= 1, read together, as a residual add).
        program: the loop nest (:class:`Program`) from the stage's config.
        macs: multiply-accumulates per frame (0 for data movement and nonlinear stages).
        lanes: elements processed per cycle (multipliers for matmuls), for the resource terms.
        role: ``matmul`` (multipliers), ``nonlinear`` (tables + arithmetic), ``move`` (wires,
            registers, small buffers).
        beat_elems: elements in one output beat (a FIFO's width, for the resource terms).
        trips: the code of the nest's closed-form iterations per frame in the jitted
            dispatcher (:func:`accelsim.sim.dataflow._trips.trip_counts`, the formulas' one
            home), so a sweep over parallelism times a whole pipeline in one Numba call
            (:class:`accelsim.sim.dataflow.timing.TripTable`); equal to ``program(s).n_iter``
            (tested for every kind).
        outputs: output ports (default 1).
    """

    fields: tuple[str, ...]
    inputs: int | None
    program: Callable[[StageConfig], Program]
    macs: Callable[[StageConfig], int]
    lanes: Callable[[StageConfig], int]
    role: str
    beat_elems: Callable[[StageConfig], int]
    trips: int
    outputs: Callable[[StageConfig], int] = lambda s: 1


def _g(s: StageConfig, f: str) -> int:
    v = getattr(s, f)
    assert v is not None, f"{s.name}.{f} checked by check_stage"
    return int(v)


def _div(s: StageConfig, a: str, b: str, av: int | None = None, bv: int | None = None) -> int:
    x = _g(s, a) if av is None else av
    y = _g(s, b) if bv is None else bv
    if x % y:
        raise ConfigError(f"stage {s.name!r}: {a} ({x}) must be a multiple of {b} ({y})")
    return x // y


def _matmul_loops(s: StageConfig) -> tuple[int, int, int]:
    return _div(s, "t", "tp"), _div(s, "cout", "cop"), _div(s, "cin", "cip")


def _matmul(s: StageConfig) -> Program:
    tt, cot, cit = _matmul_loops(s)
    base = np.arange(tt, dtype=I64)[:, None] * (cot * cit)
    reads = (base + np.arange(cit, dtype=I64)[None, :]).ravel()
    writes = (base + np.arange(cot, dtype=I64)[None, :] * cit + cit - 1).ravel()
    return Program(tt * cot * cit, (reads,), (writes,))


def _matmul_act(s: StageConfig) -> Program:
    # the window half of src/matmul.h's streamed-weight matmul, fused with its MAC loop; the
    # second input is the weight stream, one beat every iteration
    p = _matmul(s)
    return Program(p.n_iter, (p.reads[0], np.arange(p.n_iter, dtype=I64)), p.writes)


def _weight_cache(s: StageConfig) -> Program:
    tt, cot, cit = _matmul_loops(s)
    load = cot * cit
    n = load + tt * cot * cit
    return Program(n, (np.arange(load, dtype=I64),), (np.arange(load, n, dtype=I64),))


def _three_pass(s: StageConfig) -> Program:
    tt, ct = _div(s, "t", "tp"), _div(s, "c", "cp")
    base = np.arange(tt, dtype=I64)[:, None] * (3 * ct)
    c = np.arange(ct, dtype=I64)[None, :]
    return Program(tt * 3 * ct, ((base + c).ravel(),), ((base + 2 * ct + c).ravel(),))


def _beats(s: StageConfig) -> int:
    return _div(s, "t", "tp") * _div(s, "c", "cp")


def _map(s: StageConfig) -> Program:
    n = _beats(s)
    every = np.arange(n, dtype=I64)
    return Program(n, tuple(every for _ in s.inputs), (every,))


def _pack(s: StageConfig) -> Program:
    k = _div(s, "cop", "cip")
    n = _div(s, "t", "tp") * _div(s, "c", "cop") * k
    return Program(n, (np.arange(n, dtype=I64),), (np.arange(k - 1, n, k, dtype=I64),))


def _unpack(s: StageConfig) -> Program:
    k = _div(s, "cip", "cop")
    n = _div(s, "t", "tp") * _div(s, "c", "cip") * k
    return Program(n, (np.arange(0, n, k, dtype=I64),), (np.arange(n, dtype=I64),))


def _heads(s: StageConfig) -> tuple[int, int, int]:
    h = _g(s, "h")
    tt, cht = _div(s, "t", "tp"), _div(s, "c", "cp", av=_div(s, "c", "h"))
    return tt, h, cht


def _per_head(s: StageConfig) -> tuple[int, tuple[np.ndarray, ...]]:
    tt, h, cht = _heads(s)
    it = np.arange(tt * h * cht, dtype=I64).reshape(tt, h, cht)
    return tt * h * cht, tuple(it[:, i, :].ravel() for i in range(h))


def _split(s: StageConfig) -> Program:
    n, per = _per_head(s)
    return Program(n, (np.arange(n, dtype=I64),), per)


def _merge(s: StageConfig) -> Program:
    n, per = _per_head(s)
    return Program(n, per, (np.arange(n, dtype=I64),))


def _select(s: StageConfig) -> Program:
    tt, ct = _div(s, "t", "tp"), _div(s, "c", "cp")
    kept = math.ceil(_g(s, "keep") / _g(s, "tp"))
    return Program(tt * ct, (np.arange(tt * ct, dtype=I64),), (np.arange(kept * ct, dtype=I64),))


def _serialize(s: StageConfig) -> Program:
    per_beat = _g(s, "tp") * _g(s, "cp")
    n = _beats(s) * per_beat
    return Program(n, (np.arange(0, n, per_beat, dtype=I64),), (np.arange(n, dtype=I64),))


def _reorder_group(s: StageConfig) -> tuple[int, int, int]:
    tp, top = _g(s, "tp"), _g(s, "top")
    group = tp * top // math.gcd(tp, top)
    groups = _div(s, "t", "tp", bv=group)
    out_per_group = _div(s, "c", "cop", av=group * _g(s, "c"), bv=top * _g(s, "cop"))
    return groups, group * _g(s, "c"), out_per_group


def _reorder(s: StageConfig) -> Program:
    groups, elems, outs = _reorder_group(s)
    base = np.arange(groups, dtype=I64)[:, None] * (2 * elems)
    reads = (base + np.arange(elems, dtype=I64)[None, :]).ravel()
    step = elems // outs
    writes = (base + elems + np.arange(outs, dtype=I64)[None, :] * step + step - 1).ravel()
    return Program(groups * 2 * elems, (reads,), (writes,))


def _mm_macs(s: StageConfig) -> int:
    return _g(s, "t") * _g(s, "cin") * _g(s, "cout")


def _mm_lanes(s: StageConfig) -> int:
    return _g(s, "tp") * _g(s, "cip") * _g(s, "cop")


def _no_macs(s: StageConfig) -> int:
    return 0


def _elem_lanes(s: StageConfig) -> int:
    return _g(s, "tp") * _g(s, "cp")


def _adapter_lanes(s: StageConfig) -> int:
    return _g(s, "tp") * max(_g(s, "cip"), _g(s, "cop"))


def _tp_cop(s: StageConfig) -> int:
    return _g(s, "tp") * _g(s, "cop")


def _cp(s: StageConfig) -> int:
    return _g(s, "cp")


def _one(s: StageConfig) -> int:
    return 1


_MM = ("t", "tp", "cin", "cip", "cout", "cop")
_EL = ("t", "tp", "c", "cp")
_AD = ("t", "tp", "c", "cip", "cop")

#: the table: kind name -> loop nest, ports, work and resource terms
STAGE_KINDS: dict[str, StageKind] = {
    "matmul": StageKind(_MM, 1, _matmul, _mm_macs, _mm_lanes, "matmul", _tp_cop, _trips.MATMUL),
    "matmul_act": StageKind(_MM, 2, _matmul_act, _mm_macs, _mm_lanes, "matmul", _tp_cop, _trips.MATMUL),
    "weight_cache": StageKind(
        _MM,
        1,
        _weight_cache,
        _no_macs,
        _one,
        "move",
        lambda s: _g(s, "cip") * _g(s, "cop"),
        _trips.WEIGHT_CACHE,
    ),
    "layernorm": StageKind(
        _EL, 1, _three_pass, _no_macs, _elem_lanes, "nonlinear", _elem_lanes, _trips.THREE_PASS
    ),
    "softmax": StageKind(
        _EL, 1, _three_pass, _no_macs, _elem_lanes, "nonlinear", _elem_lanes, _trips.THREE_PASS
    ),
    "map": StageKind(_EL, None, _map, _no_macs, _elem_lanes, "nonlinear", _elem_lanes, _trips.BEATS),
    "pack": StageKind(_AD, 1, _pack, _no_macs, _adapter_lanes, "move", _tp_cop, _trips.PACK),
    "unpack": StageKind(_AD, 1, _unpack, _no_macs, _adapter_lanes, "move", _tp_cop, _trips.UNPACK),
    "split": StageKind(
        (*_EL, "h"), 1, _split, _no_macs, _elem_lanes, "move", _elem_lanes, _trips.HEADS, lambda s: _g(s, "h")
    ),
    "merge": StageKind((*_EL, "h"), None, _merge, _no_macs, _elem_lanes, "move", _elem_lanes, _trips.HEADS),
    "select": StageKind((*_EL, "keep"), 1, _select, _no_macs, _elem_lanes, "move", _cp, _trips.BEATS),
    "serialize": StageKind(_EL, 1, _serialize, _no_macs, _one, "move", _one, _trips.SERIALIZE),
    "reorder": StageKind(
        ("t", "tp", "top", "c", "cop"),
        1,
        _reorder,
        _no_macs,
        _one,
        "move",
        lambda s: _g(s, "top") * _g(s, "cop"),
        _trips.REORDER,
    ),
}

SHAPE_FIELDS = _trips.FIELDS


def check_stage(s: StageConfig, where: str) -> StageKind:
    """The stage's kind, after checking its shape fields and inputs against the table.

    Raises:
        ConfigError: unknown kind (lists the known ones), a missing or extra field, a wrong
            number of inputs, or a shape that does not divide.
    """
    return checked_program(s, where)[0]


def checked_program(s: StageConfig, where: str) -> tuple[StageKind, Program]:
    """:func:`check_stage`'s kind and the loop nest it built for the divisibility checks."""
    kind = STAGE_KINDS.get(s.kind)
    if kind is None:
        raise ConfigError(f"{where}: unknown stage kind {s.kind!r} (known: {', '.join(sorted(STAGE_KINDS))})")
    missing = [f for f in kind.fields if getattr(s, f) is None]
    extra = [f for f in SHAPE_FIELDS if f not in kind.fields and getattr(s, f) is not None]
    if missing or extra:
        what = f"needs {', '.join(missing)}" if missing else f"does not take {', '.join(extra)}"
        raise ConfigError(f"{where}: a {s.kind} stage {what} (fields: {', '.join(kind.fields)})")
    n_in = len(s.inputs)
    if (kind.inputs is None and n_in < 1) or (kind.inputs is not None and n_in != kind.inputs):
        want = "at least 1" if kind.inputs is None else str(kind.inputs)
        raise ConfigError(f"{where}: a {s.kind} stage has {want} input(s), got {n_in}")
    if s.kind == "merge" and n_in != _g(s, "h"):
        raise ConfigError(f"{where}: a merge stage has h ({s.h}) inputs, got {n_in}")
    program = kind.program(s)  # its construction checks the divisions
    for cycles in (*program.reads, *program.writes):
        cycles.flags.writeable = False  # shared by every instance of the stage's block
    return kind, program


__all__ = ["SHAPE_FIELDS", "STAGE_KINDS", "Program", "StageKind", "check_stage", "checked_program"]
