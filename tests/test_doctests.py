"""Every example in accelsim's docstrings runs (the examples are part of the documentation)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import accelsim

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(accelsim.__path__, "accelsim.")
    if ">>>" in (importlib.util.find_spec(m.name).loader.get_source(m.name) or "")  # type: ignore[union-attr]
)


def test_the_docstrings_have_examples() -> None:
    assert {"accelsim.ir.graph", "accelsim.sim.driver", "accelsim.sim.engines.systolic"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
