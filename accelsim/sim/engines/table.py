"""The engines, as one table: each engine's name, code, the op classes it may run, the order the
mapping offers it ops, the work it absorbs and its field in the config's ``units``.

Everything else that lists engines derives from :data:`ENGINES`: the report's and the trace's
names (:data:`ENGINE_NAMES`), the unit registry's codes, priorities, classes and presence
(:func:`accelsim.sim.engines.units.unit_from_table`), and ``tests/sim/test_units.py`` ties it to
:class:`accelsim.config.hardware.UnitsConfig`. Adding an engine is one entry here, its code in
:mod:`accelsim.sim._kernels` (jitted kernels read codes defined in their own module), its config
field, and its timing and resource functions registered in :mod:`accelsim.sim.engines.units`.
"""

from __future__ import annotations

from dataclasses import dataclass

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


ENGINES: tuple[EngineSpec, ...] = (
    # Without a dwconv or linear-attention unit, those ops run on the array as GEMMs.
    EngineSpec("array", ENG_ARRAY, frozenset({CLS_GEMM, CLS_DWCONV, CLS_LINATT}), None, None),
    EngineSpec("vector", ENG_VECTOR, frozenset({CLS_VECTOR, CLS_SOFTMAX, CLS_LA_AUX}), 4, "vector"),
    EngineSpec("softmax", ENG_SOFTMAX, frozenset({CLS_SOFTMAX}), 3, "softmax"),
    EngineSpec(
        "linear_attention",
        ENG_LINATT,
        frozenset({CLS_LINATT}),
        1,
        "linear_attention",
        frozenset({CLS_LA_AUX}),
    ),
    EngineSpec("dwconv", ENG_DWCONV, frozenset({CLS_DWCONV}), 2, "dwconv"),
    EngineSpec(
        "reconfigurable",
        ENG_RECONF,
        frozenset({CLS_DWCONV, CLS_LINATT}),
        0,
        "reconfigurable",
        frozenset({CLS_LA_AUX}),
    ),
)

#: Engine names by code (the report's and the trace's names).
ENGINE_NAMES: tuple[str, ...] = tuple(e.name for e in ENGINES)
#: Engines by name.
ENGINE_BY_NAME: dict[str, EngineSpec] = {e.name: e for e in ENGINES}
