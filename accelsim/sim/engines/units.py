"""Engines beside the systolic array: which op runs where, how long it takes, what it costs.

Each engine is a :class:`UnitModel` in a registry (:func:`register_unit`), built by
:func:`unit_from_table` from its row of :data:`accelsim.sim.engines.table.ENGINES` (code, classes,
priority, config field) plus its timing function below; what it is built from is the table's
``cost`` column (:func:`accelsim.sim.resources.engine_resources`). The mapping sends an op
to the first registered unit, in priority order, that is present in the config and accepts the
op's class; the systolic array (engine 0) takes the MAC classes nobody else took. So without a
linear-attention unit a linear attention runs as its two GEMMs on the array plus its ReLU and
divide on the vector unit, head by head; without a depthwise engine a depthwise conv runs on the
array as per-channel GEMMs (N = 1: one array column busy, the poor efficiency such designs have).

Timing models (stall-free cycles of one op; memory stalls come from the schedule):

- **vector** (layernorm, activations, eltwise, requantisation, and the ReLU/divide of a linear
  attention without its unit): ``ceil(elements * passes / lanes) + latency``; passes = 3 for
  layernorm (mean, variance, normalise), 1 otherwise.
- **softmax** (max, exp, sum, divide): rows are processed one after the other, ``lanes`` elements
  of a row per cycle, ``passes`` sweeps per row (2 with the online normaliser, Milakov &
  Gimelshein arXiv:1805.02867: running max + rescaled sum, then exp x reciprocal):
  ``rows * passes * ceil(length / lanes) + latency``. For attention rows = heads x T and
  length = T: the N^2 cost is explicit.
- **linear attention** (Trio-ViT, Shi et al., arXiv:2405.03882; EfficientViT's ReLU linear
  attention, Cai et al., ICCV 2023, arXiv:2205.14756): per head, phase 1 accumulates
  ``ReLU(K)^T [V, 1]`` (the k-sum rides along as an extra column: T d (d+1) MACs), phase 2
  computes ``ReLU(Q) (KV)`` (T d (d+1) MACs) while the normalisers divide its T d outputs by the
  k-sum column; ReLU is a sign test on the operand path (free)::

      p  = ceil(T d (d+1) / macs)               # each phase
      dv = ceil(T d / divider_lanes)            # normalisers, pipelined behind phase 2
      cycles = B H (p + max(p, dv)) + latency + (1 if shift else divider_latency)

  The ``shift`` divider quantises the divisor to the nearest power of two (log2) so the divide
  is a rounding right shift (:func:`accelsim.datapath.log2_shift_divide`); ``true`` is a pipelined divider.
- **depthwise engine**: ``macs // kernel_macs`` channel lanes each reading one k x k window per
  ``ceil(kh kw / kernel_macs)`` cycles; a line buffer shifts in one input column per cycle, so
  stride s costs at least s cycles per output::

      cycles = ceil(C / lanes) * out_h out_w * max(ceil(kh kw / kernel_macs), s) + latency

  (``kernel_macs = None``: a fully flexible MAC pool, ``ceil(MACs / macs) + latency``.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from accelsim.config.hardware import HardwareConfig
from accelsim.sim._kernels import (
    CLS_DWCONV,
    CLS_LA_AUX,
    CLS_LINATT,
    ENG_ARRAY,
    ENG_DWCONV,
    ENG_NONE,
    ENG_RECONF,
)
from accelsim.sim.engines.table import ENGINE_BY_NAME, ENGINE_NAMES
from accelsim.sim.graph_arrays import GraphArrays


@dataclass(frozen=True)
class UnitModel:
    """One engine: which op classes it takes, whether a config has it and its timing.

    ``cycles(ga, idx, hw)`` returns the stall-free cycles (int64) of ops ``idx`` on this unit;
    ``absorbs`` are classes whose work the unit does inside its own ops (they cost nothing).
    """

    name: str
    code: int
    #: the order the mapping offers ops to units (lowest first): dedicated units before the
    #: vector unit; two units may not share one
    priority: int
    classes: frozenset[int]
    present: Callable[[HardwareConfig], bool]
    cycles: Callable[[GraphArrays, np.ndarray, HardwareConfig], np.ndarray]
    absorbs: frozenset[int] = frozenset()
    #: the classes a config makes it take, where that depends on the config (default: ``classes``)
    classes_for: Callable[[HardwareConfig], frozenset[int]] | None = None

    def takes(self, hw: HardwareConfig) -> frozenset[int]:
        return self.classes_for(hw) if self.classes_for is not None else self.classes

    def absorbed(self, hw: HardwareConfig) -> frozenset[int]:
        return self.absorbs if CLS_LINATT in self.takes(hw) or not self.absorbs else frozenset()


_UNITS: dict[str, UnitModel] = {}
_ORDERED: list[UnitModel] = []
#: registrations so far (:func:`registry_version`)
_REGISTRATIONS = [0]


def register_unit(unit: UnitModel, *, replace: bool = False) -> UnitModel:
    """Add ``unit`` to the registry (``replace=True`` to swap a model of the same name).

    Raises:
        ValueError: a unit of that name exists and ``replace`` is False, its code is unknown or
            not its name's, or another unit has its priority.
    """
    if unit.name in _UNITS and not replace:
        raise ValueError(f"unit {unit.name!r} already registered")
    if not 0 <= unit.code < len(ENGINE_NAMES) or ENGINE_NAMES[unit.code] != unit.name:
        raise ValueError(f"unit {unit.name!r}: engine code {unit.code} is not its code in {ENGINE_NAMES}")
    for other in _UNITS.values():
        if other.name != unit.name and other.priority == unit.priority:
            raise ValueError(f"unit {unit.name!r}: priority {unit.priority} is {other.name!r}'s")
    _UNITS[unit.name] = unit
    _ORDERED.clear()
    _REGISTRATIONS[0] += 1
    return unit


def registry_version() -> int:
    """A number that changes with every registration: what the mapping's memo of unit plans is
    keyed by (an answer per registry, never reused for another)."""
    return _REGISTRATIONS[0]


def unit_from_table(
    name: str,
    cycles: Callable[[GraphArrays, np.ndarray, HardwareConfig], np.ndarray],
    classes_for: Callable[[HardwareConfig], frozenset[int]] | None = None,
) -> UnitModel:
    """The unit ``name`` of :data:`~accelsim.sim.engines.table.ENGINES`: code, priority, classes,
    absorbed classes and presence (its config field is set) from the table; timing given."""
    spec = ENGINE_BY_NAME[name]
    field = spec.config_field
    if spec.priority is None or field is None:
        raise ValueError(
            f"engine {name!r} is not a unit: it has no priority or config field in the engine table"
        )
    return UnitModel(
        name,
        spec.code,
        spec.priority,
        spec.classes,
        lambda hw: getattr(hw.units, field) is not None,
        cycles,
        absorbs=spec.absorbs,
        classes_for=classes_for,
    )


def registered_units() -> list[UnitModel]:
    """Units in priority order (dedicated units first, the vector unit last)."""
    if not _ORDERED:
        _ORDERED.extend(sorted(_UNITS.values(), key=lambda u: u.priority))
    return list(_ORDERED)


def _ceil_div(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    return -(-np.asarray(a, dtype=np.int64) // b)


# -- timing ---------------------------------------------------------------------------------------
def vector_cycles(elements: np.ndarray, passes: np.ndarray, lanes: int, latency: int) -> np.ndarray:
    """Vector unit: ``ceil(elements * passes / lanes) + latency``."""
    return _ceil_div(elements * passes, lanes) + latency


def softmax_cycles(rows: np.ndarray, length: np.ndarray, lanes: int, passes: int, latency: int) -> np.ndarray:
    """Softmax unit: ``rows * passes * ceil(length / lanes) + latency``."""
    return rows * passes * _ceil_div(length, lanes) + latency


def linear_attention_cycles(
    heads: np.ndarray,
    tokens: np.ndarray,
    head_dim: np.ndarray,
    macs: int,
    divider_lanes: int,
    latency: int,
    divider_latency: int,
) -> np.ndarray:
    """Linear-attention unit: ``B H (p + max(p, dv)) + latency + divider_latency`` (module docs)."""
    p = _ceil_div(tokens * head_dim * (head_dim + 1), macs)
    dv = _ceil_div(tokens * head_dim, divider_lanes)
    return heads * (p + np.maximum(p, dv)) + latency + divider_latency


def dwconv_cycles(
    channels: np.ndarray,
    out_hw: np.ndarray,
    kh: np.ndarray,
    kw: np.ndarray,
    stride: np.ndarray,
    macs: int,
    kernel_macs: int,
    latency: int,
) -> np.ndarray:
    """Depthwise engine with ``macs // kernel_macs`` channel lanes (module docs)."""
    lanes = max(1, macs // kernel_macs)
    per_out = np.maximum(_ceil_div(kh * kw, kernel_macs), np.maximum(stride, 1))
    return _ceil_div(channels, lanes) * out_hw * per_out + latency


def _vector_cycles(ga: GraphArrays, idx: np.ndarray, hw: HardwareConfig) -> np.ndarray:
    v = hw.units.vector
    passes = ga.passes[idx]
    if hw.epilogue.layernorm_stats:
        # mean and variance gathered while the producer streams the row out: one pass remains
        passes = np.where(ga.ln_src[idx] >= 0, 1, passes)
    return vector_cycles(ga.elements[idx], passes, v.lanes, v.latency_cycles)


def _softmax_cycles(ga: GraphArrays, idx: np.ndarray, hw: HardwareConfig) -> np.ndarray:
    s = hw.units.softmax
    assert s is not None
    rows, length = ga.rows[idx], ga.length[idx]
    # A softmax without row attributes is timed as one row of all its elements.
    flat = rows == 0
    rows = np.where(flat, 1, rows)
    length = np.where(flat, ga.elements[idx], length)
    return softmax_cycles(rows, length, s.lanes, s.passes, s.latency_cycles)


def _linatt_cycles(ga: GraphArrays, idx: np.ndarray, hw: HardwareConfig) -> np.ndarray:
    u = hw.units.linear_attention
    assert u is not None
    return _linatt_on(ga, idx, u.macs, u.divider, u.divider_lanes, u.latency_cycles, u.divider_latency_cycles)


def _linatt_on(
    ga: GraphArrays, idx: np.ndarray, macs: int, divider: str, lanes: int, latency: int, div_latency: int
) -> np.ndarray:
    # The core row has batch = B x heads, M = head_dim, K = tokens (see graph_arrays._gemm_dims).
    return linear_attention_cycles(
        ga.batch[idx], ga.K[idx], ga.M[idx], macs, lanes, latency, 1 if divider == "shift" else div_latency
    )


def _dwconv_cycles(ga: GraphArrays, idx: np.ndarray, hw: HardwareConfig) -> np.ndarray:
    u = hw.units.dwconv
    assert u is not None
    return _dwconv_on(ga, idx, u.macs, u.kernel_macs, u.latency_cycles)


def _dwconv_on(
    ga: GraphArrays, idx: np.ndarray, macs: int, kernel_macs: int | None, latency: int
) -> np.ndarray:
    if kernel_macs is None:
        return _ceil_div(ga.macs[idx], macs) + latency
    return dwconv_cycles(
        ga.channels[idx], ga.out_hw[idx], ga.kh[idx], ga.kw[idx], ga.stride[idx], macs, kernel_macs, latency
    )


def _reconf_cycles(ga: GraphArrays, idx: np.ndarray, hw: HardwareConfig) -> np.ndarray:
    # Each kind it runs, timed as that kind's dedicated unit would be with this pool of MACs.
    u = hw.units.reconfigurable
    assert u is not None
    out = np.zeros(idx.size, dtype=np.int64)
    dw = ga.cls[idx] == CLS_DWCONV
    if dw.any():
        out[dw] = _dwconv_on(ga, idx[dw], u.macs, u.kernel_macs, u.latency_cycles)
    if (~dw).any():
        out[~dw] = _linatt_on(
            ga, idx[~dw], u.macs, u.divider, u.divider_lanes, u.latency_cycles, u.divider_latency_cycles
        )
    return out


register_unit(unit_from_table("vector", _vector_cycles))
register_unit(unit_from_table("softmax", _softmax_cycles))
register_unit(unit_from_table("linear_attention", _linatt_cycles))


_RECONF_CLASSES = {"dwconv": CLS_DWCONV, "linear_attention": CLS_LINATT}

register_unit(
    unit_from_table(
        "reconfigurable",
        _reconf_cycles,
        classes_for=lambda hw: (
            frozenset(_RECONF_CLASSES[k] for k in hw.units.reconfigurable.runs)
            if hw.units.reconfigurable is not None
            else frozenset()
        ),
    )
)
register_unit(unit_from_table("dwconv", _dwconv_cycles))

#: Classes the systolic array runs when no unit took them (dwconv as per-group GEMMs, linear
#: attention as its two GEMMs; its ReLU and divide go to the vector unit).
ARRAY_CLASSES = ENGINE_BY_NAME["array"].classes


def _of_classes(cls: np.ndarray, classes: frozenset[int]) -> np.ndarray:
    """``np.isin(cls, classes)`` by a table lookup (the codes are small; isin costs ~10 us a call)."""
    table = np.zeros(CLS_LA_AUX + 1, dtype=bool)
    table[list(classes)] = True
    return table[cls]


def assign_engines(ga: GraphArrays, hw: HardwareConfig) -> np.ndarray:
    """Engine code per op (``ENG_NONE`` for data movement and work absorbed by a unit)."""
    engine = np.full(ga.n_ops, ENG_NONE, dtype=np.int64)
    taken = np.zeros(ga.n_ops, dtype=bool)
    for unit in registered_units():
        if not unit.present(hw):
            continue
        absorbed = unit.absorbed(hw)
        if absorbed:
            taken |= _of_classes(ga.cls, absorbed)
        m = ~taken & _of_classes(ga.cls, unit.takes(hw))
        engine[m] = unit.code
        taken |= m
    m = ~taken & _of_classes(ga.cls, ARRAY_CLASSES)
    engine[m] = ENG_ARRAY
    return engine


def unit_cycles(ga: GraphArrays, engine: np.ndarray, hw: HardwareConfig) -> np.ndarray:
    """Stall-free cycles of every op that runs on a unit (zeros elsewhere)."""
    out = np.zeros(ga.n_ops, dtype=np.int64)
    for unit in registered_units():
        idx = np.flatnonzero(engine == unit.code)
        if idx.size:
            out[idx] = unit.cycles(ga, idx, hw)
    return out


def unit_min_tiles(ga: GraphArrays, engine: np.ndarray, hw: HardwareConfig) -> np.ndarray:
    """Tiles a unit op is at least cut into (0: no constraint): a depthwise engine (dedicated or
    reconfigurable) works one group of ``lanes`` channels at a time, so a tile is one channel group."""
    out = np.zeros(ga.n_ops, dtype=np.int64)
    for code, u in ((ENG_DWCONV, hw.units.dwconv), (ENG_RECONF, hw.units.reconfigurable)):
        idx = np.flatnonzero((engine == code) & (ga.cls == CLS_DWCONV))
        if u is not None and idx.size:
            per_lane = u.kernel_macs if u.kernel_macs is not None else ga.kh[idx] * ga.kw[idx]
            lanes = np.maximum(1, u.macs // np.maximum(per_lane, 1))
            out[idx] = _ceil_div(ga.channels[idx], lanes)
    return out
