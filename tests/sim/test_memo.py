"""The simulator's one bounded memo."""

from __future__ import annotations

from _helpers import tiny_hw

from accelsim.sim._memo import Memo, per_config


def test_memo_computes_once_and_starts_afresh_when_full() -> None:
    calls: list[int] = []
    m: Memo[int, int] = Memo(limit=2)

    def sq(k: int) -> int:
        calls.append(k)
        return k * k

    assert [m.get(k, lambda k=k: sq(k)) for k in (3, 3, 4)] == [9, 9, 16]
    assert calls == [3, 4] and len(m) == 2
    assert m.get(5, lambda: sq(5)) == 25  # full: cleared, then 5 held alone
    assert len(m) == 1
    assert m.get(3, lambda: sq(3)) == 9
    assert calls == [3, 4, 5, 3]


def test_per_config_remembers_by_identity() -> None:
    calls: list[str] = []

    @per_config
    def name_of(hw: object) -> str:
        calls.append("x")
        return hw.name  # type: ignore[attr-defined,no-any-return]

    a, b = tiny_hw(), tiny_hw()
    assert (name_of(a), name_of(a), name_of(b)) == ("tiny", "tiny", "tiny")
    assert len(calls) == 2  # equal configs, distinct objects: asked once each
