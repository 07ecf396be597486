"""Regression pins of whole reports: every scalar field, exactly, and a digest of every per-layer
column, on seeded random hardware points of the five lowered test graphs.

Not an oracle (the hand-computed power, resource and report tests are): they catch any change to
a report (power, resources, precision, the layer table) that nobody meant to make, e.g. while the
report is rewritten for speed. The expected values were written by the report code before its
array rewrite. When a change is meant to move them, rerun ``python tests/sim/test_report_pins.py``
(it rewrites ``tests/data/report_pins.json``) and say why in the commit.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from accelsim.config.hardware import HardwareConfig
from accelsim.errors import ConfigError
from accelsim.ir import Graph
from accelsim.sim import compile_graph, simulate
from accelsim.sim.graph_arrays import GraphArrays
from accelsim.sim.report import LAYER_FIELDS, Report

DATA = Path(__file__).parents[1] / "data"
PINS = DATA / "report_pins.json"
GRAPHS = sorted(p.name.removesuffix(".json.gz") for p in (DATA / "graphs").glob("*.json.gz"))
POINTS_PER_GRAPH = 4
#: configs the points start from: units of every kind, LUT multipliers, adder trees, DSP58, URAM
BASES = (
    "zcu102",
    "zcu102_softmax",
    "zcu102_trio",
    "u280",
    "vck190",
    "published/auto_vit_acc",
    "published/efficientvit_fpga",
    "published/trio_vit",
    "published/heatvit",
)


def _point(rng: random.Random) -> HardwareConfig:
    """A valid random variation of one of :data:`BASES`."""
    while True:
        hw = HardwareConfig.load(rng.choice(BASES))
        changes: dict[str, object] = {
            "clock_mhz": rng.choice((150.0, 200.0, 300.0)),
            "buffers.input_kib": rng.choice((32, 128, 512)),
            "buffers.weight_kib": rng.choice((32, 128, 512)),
            "buffers.output_kib": rng.choice((32, 128, 512)),
            "buffers.double_buffer": rng.random() < 0.5,
            "dram.bandwidth_gbs": rng.choice((4.8, 19.2, 77.0)),
            "epilogue.activation": rng.random() < 0.5,
            "epilogue.layernorm_stats": rng.random() < 0.5,
            "epilogue.requant_multiplier": rng.choice(("dsp", "lut")),
            "overlap": rng.random() < 0.8,
        }
        if hw.array.kind == "systolic":
            changes["array.rows"] = rng.choice((8, 16, 32, 48))
            changes["array.cols"] = rng.choice((16, 32, 64))
            changes["array.dataflow"] = rng.choice(("ws", "os", "is", ("ws", "os")))
            changes["array.timing"] = rng.choice(("pipelined", "pipelined", "scalesim"))
        if hw.board.uram:
            changes["buffers.weight_memory"] = rng.choice(("bram", "uram"))
        if rng.random() < 0.15:
            changes["board.virtual"] = True
        try:
            return hw.with_changes(**changes).model_copy(update={"name": f"pin{rng.randrange(10**6)}"})
        except ConfigError:
            continue


@cache
def _graph(name: str) -> GraphArrays:
    with gzip.open(DATA / "graphs" / f"{name}.json.gz", "rt") as f:
        return compile_graph(Graph.from_dict(json.load(f)))


def _points(name: str) -> list[HardwareConfig]:
    rng = random.Random(f"report-pins/{name}")
    return [_point(rng) for _ in range(POINTS_PER_GRAPH)]


def _digest(values: list[Any]) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()[:20]


def _summary(r: Report) -> dict[str, Any]:
    """Every scalar field as JSON keeps it (floats round-trip exactly), a digest per layer column,
    of the hints and of the terminal table."""
    rows = r.layers
    return {
        "scalars": {k: v for k, v in r.to_dict(layers=False).items()},
        "layers": {f: _digest([getattr(row, f) for row in rows]) for f in LAYER_FIELDS},
        "hints": r.hints(),
        "table": _digest([r.table()]),
    }


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (a virtual board's power fields)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@cache
def _pins() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = json.loads(PINS.read_text())
    return out


@pytest.mark.parametrize("graph", GRAPHS)
def test_reports_are_pinned(graph: str) -> None:
    expected = _pins()[graph]
    got = [json.loads(json.dumps(_summary(simulate(_graph(graph), hw)))) for hw in _points(graph)]
    assert len(got) == len(expected) == POINTS_PER_GRAPH
    for j, (g, e) in enumerate(zip(got, expected, strict=True)):
        for part in ("scalars", "layers"):
            bad = [k for k in e[part] if not _same(g[part].get(k), e[part][k])]
            assert not bad, (
                f"{graph} point {j}: {part} differ: {[(k, g[part].get(k), e[part][k]) for k in bad]}"
            )
        assert g["hints"] == e["hints"] and g["table"] == e["table"], f"{graph} point {j}"


def test_pins_cover_what_they_claim() -> None:
    # the points exercise virtual boards, LUT requantisers, URAM buffers and every unit kind
    pts = [hw for g in GRAPHS for hw in _points(g)]
    assert any(hw.board.virtual for hw in pts) and not all(hw.board.virtual for hw in pts)
    assert any(hw.epilogue.requant_multiplier == "lut" and hw.epilogue.activation for hw in pts)
    assert any(hw.buffers.weight_memory == "uram" for hw in pts)
    assert any(hw.array.lut_macs is not None for hw in pts)
    for unit in ("softmax", "linear_attention", "dwconv", "reconfigurable"):
        assert any(getattr(hw.units, unit) is not None for hw in pts), unit


if __name__ == "__main__":  # pragma: no cover
    PINS.write_text(
        json.dumps({g: [_summary(simulate(_graph(g), hw)) for hw in _points(g)] for g in GRAPHS}, indent=1)
        + "\n"
    )
    print(f"wrote {PINS}")
