"""Fuzzing the two inputs users hand-edit most: hardware configs and saved graphs.

Each example mutates a valid one (a value replaced by one of the wrong kind or size, a key
dropped or added) and asserts the contract: a valid config or graph whose simulation reports
strict JSON, or an :class:`~accelsim.errors.AccelsimError` (a one-line error of ours), never any
other exception.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim.config.hardware import HardwareConfig
from accelsim.errors import AccelsimError
from accelsim.ir import Graph
from accelsim.sim import simulate

_ROOT = Path(__file__).resolve().parents[1]
HW: dict[str, Any] = yaml.safe_load((_ROOT / "hw_configs" / "zcu102.yaml").read_text())
GRAPH: dict[str, Any] = {
    "format": "accelsim.graph",
    "version": 1,
    "name": "mlp",
    "meta": {},
    "inputs": ["x"],
    "outputs": ["y"],
    "quant": {},
    "tensors": [
        {"name": "x", "shape": [8, 16], "bits": 8, "weight": False},
        {"name": "w", "shape": [16, 8], "bits": 8, "weight": True},
        {"name": "h", "shape": [8, 8], "bits": 8, "weight": False},
        {"name": "y", "shape": [8, 8], "bits": 8, "weight": False},
    ],
    "ops": [
        {
            "name": "mm",
            "kind": "matmul",
            "inputs": ["x", "w"],
            "outputs": ["h"],
            "attrs": {"batch": 1, "M": 8, "K": 16, "N": 8},
            "macs": 1024,
        },
        {
            "name": "act",
            "kind": "activation",
            "inputs": ["h"],
            "outputs": ["y"],
            "attrs": {"fn": "gelu", "elements": 64},
        },
    ],
}
SMALL_HW = HardwareConfig.load("zcu102")

#: what a hand edit or a broken tool puts where a value was
WRONG = st.sampled_from(
    [None, True, False, 0, -1, 1, 3, 7, 2**31, 2**63, 10**30, 0.0, -0.5, 0.5, 1e-300, 1e308,
     float("inf"), float("nan"), "", "8", "ws", "false", [], [1, 2], {}, {"x": 1}]
)  # fmt: skip


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in ``node`` (dict keys and list indices), containers included."""
    out = [path] if path else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _leaves(v, (*path, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _leaves(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for p in path[:-1]:
            parent = parent[p]
        action = draw(st.sampled_from(["replace", "replace", "replace", "drop", "add"]))
        if action == "replace":
            parent[path[-1]] = copy.deepcopy(draw(WRONG))  # WRONG's lists are shared
        elif action == "drop":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "Rows", "clock"]))] = copy.deepcopy(draw(WRONG))
        else:
            parent.append(copy.deepcopy(draw(WRONG)))
    return data


# examples: the profile's (100 by default; `make test-explore` draws 1000 fresh ones)
_SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(mutated(HW))
def test_a_mutated_hardware_config_is_valid_or_our_error(data: dict[str, Any]) -> None:
    graph = Graph.from_dict(GRAPH)
    try:
        hw = HardwareConfig.from_dict(data, "fuzz.yaml")
        report = simulate(graph, hw)
        json.loads(report.to_json())  # strict JSON: the writer refuses NaN and infinities
    except AccelsimError:
        pass


@_SETTINGS
@given(mutated(GRAPH))
def test_a_mutated_graph_is_valid_or_our_error(data: dict[str, Any]) -> None:
    try:
        graph = Graph.from_dict(data)
        report = simulate(graph, SMALL_HW)
        json.loads(report.to_json())
        assert Graph.from_dict(json.loads(graph.to_json())) == graph
    except AccelsimError:
        pass
