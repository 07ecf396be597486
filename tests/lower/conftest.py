"""Shared fixtures: lowered graphs are cached per test session (exporting is the slow part)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accelsim.ir import Graph


@pytest.fixture(scope="session")
def lowered() -> Callable[..., Graph]:
    """``lowered(name, **kwargs)``: ``accelsim.lower(name, **kwargs)``, each distinct call done once."""
    from accelsim.lower import lower

    cache: dict[tuple[str, tuple[tuple[str, object], ...]], Graph] = {}

    def get(name: str, **kwargs: object) -> Graph:
        key = (name, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = lower(name, **kwargs)
        return cache[key]

    return get
