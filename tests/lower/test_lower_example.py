"""``examples/lowering_api.py`` runs and its critical path is right."""

from __future__ import annotations

import runpy
from pathlib import Path

from accelsim.ir import Graph, Op, OpKind, Tensor

EXAMPLE = Path(__file__).parents[2] / "examples" / "lowering_api.py"


def test_example_runs_on_a_tiny_vit(tmp_path, capsys) -> None:
    ns = runpy.run_path(str(EXAMPLE))
    dot = tmp_path / "g.dot"
    ns["main"](["test_vit", "--img-size", "32", "--dot", str(dot)])
    out = capsys.readouterr().out
    assert "heaviest ops:" in out and "longest dependency path:" in out
    assert dot.read_text().startswith('digraph "test_vit"')


def test_critical_path_follows_the_heavier_branch() -> None:
    ns = runpy.run_path(str(EXAMPLE))
    g = Graph("fork")
    for t in ("x", "a", "b", "c", "y"):
        g.add_tensor(Tensor(t, (4,)))
    g.add_op(Op("split", OpKind.ACTIVATION, ("x",), ("a",), {"fn": "relu", "elements": 4}))
    g.add_op(Op("light", OpKind.MATMUL, ("a",), ("b",), {}, macs=5))
    g.add_op(Op("heavy", OpKind.MATMUL, ("a",), ("c",), {}, macs=50))
    g.add_op(Op("join", OpKind.ELTWISE, ("b", "c"), ("y",), {"fn": "add", "elements": 4}))
    path, macs = ns["critical_path"](g)
    assert path == ["split", "heavy", "join"] and macs == 50


def test_accelsim_lower_is_callable_after_the_package_was_imported() -> None:
    import torch

    import accelsim
    import accelsim.lower  # binds accelsim.lower to the package

    g = accelsim.lower(torch.nn.Linear(3, 2), (1, 3))
    assert g.total_macs == 6
