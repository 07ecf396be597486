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
import operator
import typing
import weakref
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from pydantic import BaseModel

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


def _holds_model(annotation: Any) -> bool:
    """Whether a field of this type may hold a model (itself, optional, in a tuple)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_model(a) for a in typing.get_args(annotation))


#: per model class: a getter of its field values from the instance dict (in field order, one
#: tuple) and the positions of the fields that may hold models
_SPECS: dict[type, tuple[Callable[[dict[str, Any]], tuple[Any, ...]], tuple[int, ...]]] = {}


def _spec(cls: type[BaseModel]) -> tuple[Callable[[dict[str, Any]], tuple[Any, ...]], tuple[int, ...]]:
    fields = cls.__pydantic_fields__
    names = tuple(fields)
    get = operator.itemgetter(*names)
    getter = get if len(names) > 1 else (lambda d: (get(d),))
    nested = tuple(i for i, n in enumerate(names) if _holds_model(fields[n].annotation))
    _SPECS[cls] = getter, nested
    return getter, nested


def model_value(model: BaseModel) -> tuple[Any, ...]:
    """The values of a frozen model's fields, in order, a model among them (alone or in a tuple)
    as its own :func:`model_value`: equal for configs equal by value, hashable, and hashed and
    compared in C. A model's class is not in it: a key holds the values of one field, whose
    class is fixed (a union's members differ in their fields)."""
    cls = model.__class__
    getter, nested = _SPECS.get(cls) or _spec(cls)
    values = getter(model.__dict__)
    if not nested:
        return values
    out = list(values)
    for i in nested:
        v = out[i]
        if isinstance(v, BaseModel):
            out[i] = model_value(v)
        elif type(v) is tuple:
            out[i] = tuple(model_value(x) if isinstance(x, BaseModel) else x for x in v)
    return tuple(out)


class ConfigValues(NamedTuple):
    """:func:`model_value` of the sections of a hardware config that the overlay's answers depend
    on (the scalars beside them, ``clock_mhz``, ``overlap``, ..., are read from the config)."""

    board: tuple[Any, ...]
    array: tuple[Any, ...]
    packing: tuple[Any, ...]
    buffers: tuple[Any, ...]
    dram: tuple[Any, ...]
    units: tuple[Any, ...]
    epilogue: tuple[Any, ...]


@per_config
def config_values(hw: HardwareConfig) -> ConfigValues:
    """The :class:`ConfigValues` of ``hw``, once per config object (a point asks from its mapping
    and its report)."""
    return ConfigValues(
        model_value(hw.board),
        model_value(hw.array),
        tuple(map(model_value, hw.packing)),
        model_value(hw.buffers),
        model_value(hw.dram_cfg),
        model_value(hw.units),
        model_value(hw.epilogue),
    )
