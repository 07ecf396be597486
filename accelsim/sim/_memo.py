"""One bounded memo for every per-graph and per-config cache of the simulator.

A sweep asks the same question for many points (the timing of a GEMM shape on one array, the
engines of one set of units, the resources of one design); each answer is remembered in a
:class:`Memo`, which holds at most ``limit`` entries and starts afresh when full (a sweep's
working set is small; a long search must not grow without bound).

Every point of a sweep or a search is a new config object, equal in most of its sections to
others: answers that depend on a few sections are keyed by their values (:func:`config_values`),
as plain tuples, which hash and compare in C (a pydantic model hashes and compares its fields in
Python, 1-2 us a section, several sections a key, several keys a point).
"""

from __future__ import annotations

import functools
import itertools
import operator
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar, cast

from pydantic import BaseModel

from accelsim.config.hardware import ArrayConfig

if TYPE_CHECKING:
    from accelsim.config.hardware import HardwareConfig

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
C = TypeVar("C")
_MISSING = object()


class Memo(Generic[K, V]):
    """A dict of at most ``limit`` answers, cleared when it is full."""

    __slots__ = ("_d", "limit")

    def __init__(self, limit: int) -> None:
        self._d: dict[K, V] = {}
        self.limit = limit

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The answer for ``key``, computed by ``make()`` the first time."""
        value = self._d.get(key, _MISSING)
        if value is not _MISSING:
            return value  # type: ignore[return-value]
        value = make()
        self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        if len(self._d) >= self.limit:
            self._d.clear()
        self._d[key] = value

    def peek(self, key: K) -> V | None:
        """The answer for ``key`` if remembered, else None (nothing computed)."""
        return self._d.get(key)

    def forget(self, key: K) -> None:
        self._d.pop(key, None)

    def __len__(self) -> int:
        return len(self._d)

    def clear(self) -> None:
        self._d.clear()


def per_config(fn: Callable[[C], V], limit: int = 1024) -> Callable[[C], V]:
    """Remember ``fn(hw)`` by the config's identity. Configs are frozen; a sweep asks once per
    point, and a report, the power model or a search asks again for the same object. The config
    is held with its answer, so its id is not reused while remembered."""
    memo: Memo[int, tuple[C, V]] = Memo(limit)

    @functools.wraps(fn)
    def remembered(hw: C) -> V:
        hit = memo.peek(id(hw))
        if hit is None or hit[0] is not hw:  # new, or an id reused after its config died
            hit = (hw, fn(hw))
            memo.put(id(hw), hit)
        return hit[1]

    return remembered


def per_value(
    key: Callable[[C], Hashable], limit: int = 1024
) -> Callable[[Callable[[C], V]], Callable[[C], V]]:
    """Remember ``fn(hw)`` by ``key(hw)``, the values it depends on (:func:`config_values`'
    sections): equal configs share the answer however many objects a sweep makes of them."""

    def wrap(fn: Callable[[C], V]) -> Callable[[C], V]:
        memo: Memo[Hashable, V] = Memo(limit)

        @functools.wraps(fn)
        def remembered(hw: C) -> V:
            k = key(hw)
            value = memo.peek(k)
            if value is None:
                value = fn(hw)
                memo.put(k, value)
            return value

        return remembered

    return wrap


def per_object(fn: Callable[[C], V], version: Callable[[C], Hashable], limit: int = 64) -> Callable[[C], V]:
    """Remember ``fn(obj)`` by the object's identity and ``version(obj)``, for objects that compare
    by value and are not hashable (a Graph): an edit that changes the version computes afresh, and
    an entry goes when its object dies (it is held weakly, so remembering keeps nothing alive)."""
    memo: Memo[int, tuple[weakref.ref[Any], Hashable, V]] = Memo(limit)

    @functools.wraps(fn)
    def remembered(obj: C) -> V:
        key, v = id(obj), version(obj)
        hit = memo.peek(key)
        if hit is not None and hit[0]() is obj and hit[1] == v:
            return hit[2]
        value = fn(obj)

        def dead(_ref: weakref.ref[Any], k: int = key) -> None:
            # runs before the dead object's id can be reused, so it forgets only its own entry
            memo.forget(k)

        memo.put(key, (weakref.ref(obj, dead), v, value))
        return value

    return remembered


#: per model class, its :func:`model_value` function
_VALUE_FNS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _value_fn(cls: type[BaseModel]) -> Callable[[Any], tuple[Any, ...]]:
    """``cls``'s :func:`model_value` as straight-line code, ``(d["rows"], d["cols"], ...)`` on the
    instance dict (generated once per class, as dataclasses generate ``__init__``): a sweep asks
    for ~100 values per point, and a loop over a getter's tuple costs twice as much."""
    env: dict[str, Any] = {}
    parts = []
    for name, info in cls.__pydantic_fields__.items():
        t = info.annotation
        if isinstance(t, type) and issubclass(t, BaseModel):
            fn = f"value_{len(env)}"
            env[fn] = _VALUE_FNS.get(t) or _value_fn(t)
            parts.append(f"{fn}(d[{name!r}])")
        else:
            parts.append(f"d[{name!r}]")
    src = f"def value(m):\n    d = m.__dict__\n    return ({', '.join(parts)},)\n"
    exec(src, env)  # the source: field names only, from the class
    _VALUE_FNS[cls] = env["value"]
    return env["value"]


def model_value(model: BaseModel) -> tuple[Any, ...]:
    """The values of a frozen model's fields, in order, hashable and equal for models equal by
    value. A field typed as one model class holds its own :func:`model_value`, so that the common
    sections hash and compare in C; an optional model (absent in most configs) stays a model,
    which hashes and compares by value too (in Python: slower, as correct). A model's class is
    not in it: a key holds the values of one field, whose class is fixed."""
    return (_VALUE_FNS.get(model.__class__) or _value_fn(model.__class__))(model)


#: section values seen, each with its number (never reused: the table starts afresh when full,
#: and an equal value seen again then gets a new number, so a memo misses rather than errs)
_NUMBERS: dict[tuple[Any, ...], int] = {}
_NEXT = itertools.count()
_NUMBERS_LIMIT = 1 << 14


def _number(value: tuple[Any, ...]) -> int:
    n = _NUMBERS.get(value)
    if n is None:
        if len(_NUMBERS) >= _NUMBERS_LIMIT:
            _NUMBERS.clear()
        n = _NUMBERS[value] = next(_NEXT)
    return n


#: the array's fields that its resources and power depend on (not the dataflows it runs, nor
#: their timing): positions in its :func:`model_value`
_ARRAY_BUILT = operator.itemgetter(
    *(i for i, name in enumerate(ArrayConfig.__pydantic_fields__) if name not in ("dataflow", "timing"))
)


class ConfigValues(NamedTuple):
    """The sections of a hardware config that the overlay's answers depend on, each as a number
    that equal values share (its :func:`model_value`, looked up once per config object): memo
    keys made of them hash and compare as small tuples of ints. The scalars beside them
    (``clock_mhz``, ``overlap``, ...) are read from the config."""

    board: int
    array: int
    #: the array less its dataflows and timing (what its resources are built from)
    array_built: int
    packing: int
    buffers: int
    dram: int
    units: int
    epilogue: int


@per_config
def config_values(hw: HardwareConfig) -> ConfigValues:
    """The :class:`ConfigValues` of ``hw``, once per config object (a point asks from its mapping
    and its report)."""
    array, array_built = _array_numbers(hw.array)
    return ConfigValues(
        _board_number(hw.board),
        array,
        array_built,
        _packing_number(hw.packing),
        _buffers_number(hw.buffers),
        _dram_number(hw.dram_cfg),
        _units_number(hw.units),
        _epilogue_number(hw.epilogue),
    )


def _last_numbered(number: Callable[[Any], V]) -> Callable[[Any], V]:
    """``number(section)``, the last section asked for remembered by identity: a sweep's points
    share the section objects no knob sets (the base config's, in a search; those a ``model_copy``
    does not update), and numbering a section costs ~0.5-1.5 us (its values, then their hash),
    an identity check ~0.05. One entry, not a memo of many: a sweep of configs validated one by one
    shares nothing, and a memo's misses cost it more than the hits save (bench_sim.py)."""
    last: list[tuple[Any, V]] = [(None, cast(V, None))]  # one tuple, replaced whole: thread-safe

    def numbered(section: Any) -> V:
        seen, value = last[0]
        if seen is section:
            return value
        value = number(section)
        last[0] = (section, value)
        return value

    return numbered


def _section_number(section: BaseModel) -> int:
    return _number(model_value(section))


def _array_number_pair(array: ArrayConfig) -> tuple[int, int]:
    value = model_value(array)
    return _number(value), _number(_ARRAY_BUILT(value))


_board_number = _last_numbered(_section_number)
_array_numbers = _last_numbered(_array_number_pair)
_packing_number = _last_numbered(lambda packing: _number(tuple(map(model_value, packing))))
_buffers_number = _last_numbered(_section_number)
_dram_number = _last_numbered(_section_number)
_units_number = _last_numbered(_section_number)
_epilogue_number = _last_numbered(_section_number)
