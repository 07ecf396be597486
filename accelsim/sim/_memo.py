"""One bounded memo for every per-graph and per-config cache of the simulator.

A sweep asks the same question for many points (the timing of a GEMM shape on one array, the
engines of one set of units, the resources of one config object); each answer is remembered in a
:class:`Memo`, which holds at most ``limit`` entries and starts afresh when full (a sweep's
working set is small; a long search must not grow without bound).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

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
        hit = memo._d.get(id(hw))
        if hit is None or hit[0] is not hw:  # new, or an id reused after its config died
            hit = (hw, fn(hw))
            memo.put(id(hw), hit)
        return hit[1]

    return remembered
