"""One bounded memo for every per-graph and per-config cache of the simulator.

A sweep asks the same question for many points (the timing of a GEMM shape on one array, the
engines of one set of units, the resources of one config object); each answer is remembered in a
:class:`Memo`, which holds at most ``limit`` entries and starts afresh when full (a sweep's
working set is small; a long search must not grow without bound).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

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
