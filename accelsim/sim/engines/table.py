"""The engines, as one table: each engine's name, code, the op classes it may run, the order the
mapping offers it ops, the work it absorbs, its field in the config's ``units``, what it is built
from (its resource terms) and what switches those resources (its power terms).

Everything else that lists engines derives from :data:`ENGINES`: the report's and the trace's
names (:data:`ENGINE_NAMES`), the unit registry's codes, priorities, classes and presence
(:func:`accelsim.sim.engines.units.unit_from_table`), the resources of each engine
(:func:`accelsim.sim.resources.engine_resources` reads the ``cost`` column) and the power model's
activities (:mod:`accelsim.sim.power` reads the ``*_activity`` columns); ``tests/sim/test_units.py``
ties it to :class:`accelsim.config.hardware.UnitsConfig` and its unit classes (hand-written
pydantic classes, not generated from the table, so that ``hw.units.softmax.lanes`` stays typed
for mypy and readable with its field docs). Adding an engine is one entry here, its code in
:mod:`accelsim.sim._kernels` (jitted kernels read codes defined in their own module), its config
class and field, and its timing function registered in :mod:`accelsim.sim.engines.units`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from accelsim.sim._kernels import (
    CLS_DWCONV,
    CLS_GEMM,
    CLS_LA_AUX,
    CLS_LINATT,
    CLS_SOFTMAX,
    CLS_VECTOR,
    ENG_ARRAY,
    ENG_DWCONV,
    ENG_LINATT,
    ENG_RECONF,
    ENG_SOFTMAX,
    ENG_VECTOR,
)

#: What switches a resource of an engine, in the power model (:mod:`accelsim.sim.power`): the
#: engine's busy fraction, the array's utilisation (DSP-cycles of its MACs over its DSP-cycles) or
#: its buffers' activity (array and DRAM busy fractions).
Activity = Literal["busy", "utilisation", "buffers"]


@dataclass(frozen=True)
class UnitCost:
    """What a unit is built from, as products of its config section's fields (the resource terms;
    :func:`accelsim.sim.resources.engine_resources`): ``width`` elements (the field counting them),
    each with ``dsp_per_lane`` DSPs (``dsp="per_lane"``) or, for MAC units, packed like the array
    (``dsp="packed"``: ``ceil(width / INT8 products per DSP)``), and ``lut_per`` LUTs (the field);
    normaliser lanes when ``dividers`` and the unit runs linear attention (``divider_lanes`` x the
    LUTs of one lane of its ``divider``); and its ``buffer_kib`` of BRAM36."""

    width: Literal["lanes", "macs"]
    dsp: Literal["per_lane", "packed"]
    lut_per: Literal["lut_per_lane", "lut_per_mac"]
    dividers: bool = False


_LANES = UnitCost("lanes", "per_lane", "lut_per_lane")
_MACS = UnitCost("macs", "packed", "lut_per_mac")
_MACS_AND_DIVIDERS = UnitCost("macs", "packed", "lut_per_mac", dividers=True)


@dataclass(frozen=True)
class EngineSpec:
    """One engine's row of the table."""

    name: str
    #: its index in :data:`ENGINES` (one schedule timeline and one trace track per code)
    code: int
    #: the op classes it may run (a config may narrow them: the reconfigurable unit's ``runs``)
    classes: frozenset[int]
    #: the order the mapping offers ops to units, lowest first; ``None``: the array, which takes
    #: the MAC classes no unit took
    priority: int | None
    #: its field of the config's ``units`` (``None`` for the array, configured by ``array``)
    config_field: str | None
    #: classes whose work it does inside its own ops (they cost nothing when it is present)
    absorbs: frozenset[int] = frozenset()
    #: what it is built from (``None``: the array, costed from its geometry and its buffers)
    cost: UnitCost | None = None
    #: what switches its DSPs, its BRAM and its LUTs (the power terms)
    dsp_activity: Activity = "busy"
    bram_activity: Activity = "busy"
    lut_activity: Activity = "busy"


ENGINES: tuple[EngineSpec, ...] = (
    # Without a dwconv or linear-attention unit, those ops run on the array as GEMMs. An idle or
    # unmapped PE has no operand toggling, so its DSPs switch with the utilisation; its buffers
    # work while it computes or DMA fills them.
    EngineSpec(
        "array",
        ENG_ARRAY,
        frozenset({CLS_GEMM, CLS_DWCONV, CLS_LINATT}),
        None,
        None,
        dsp_activity="utilisation",
        bram_activity="buffers",
    ),
    EngineSpec(
        "vector", ENG_VECTOR, frozenset({CLS_VECTOR, CLS_SOFTMAX, CLS_LA_AUX}), 4, "vector", cost=_LANES
    ),
    EngineSpec("softmax", ENG_SOFTMAX, frozenset({CLS_SOFTMAX}), 3, "softmax", cost=_LANES),
    EngineSpec(
        "linear_attention",
        ENG_LINATT,
        frozenset({CLS_LINATT}),
        1,
        "linear_attention",
        frozenset({CLS_LA_AUX}),
        cost=_MACS_AND_DIVIDERS,
    ),
    EngineSpec("dwconv", ENG_DWCONV, frozenset({CLS_DWCONV}), 2, "dwconv", cost=_MACS),
    EngineSpec(
        "reconfigurable",
        ENG_RECONF,
        frozenset({CLS_DWCONV, CLS_LINATT}),
        0,
        "reconfigurable",
        frozenset({CLS_LA_AUX}),
        cost=_MACS_AND_DIVIDERS,  # one pool of multipliers, whatever it runs
    ),
)

#: Engine names by code (the report's and the trace's names).
ENGINE_NAMES: tuple[str, ...] = tuple(e.name for e in ENGINES)
#: Engines by name.
ENGINE_BY_NAME: dict[str, EngineSpec] = {e.name: e for e in ENGINES}
