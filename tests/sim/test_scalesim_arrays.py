"""simulate_scalesim builds a topology's GraphArrays directly (bridge.arrays_from_topology): every
column must equal what compile_graph makes of the topology's Graph, value and dtype."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from accelsim.errors import GraphFormatError
from accelsim.sim.graph_arrays import GraphArrays, compile_graph
from accelsim.sim.scalesim.bridge import arrays_from_topology, graph_from_topology
from accelsim.sim.scalesim.io import ScaleSimLayer, read_scalesim_topology

DATA = Path(__file__).resolve().parents[1] / "data" / "scalesim"
TOPOLOGIES = sorted([*DATA.glob("*.csv"), *(DATA / "reference").glob("*.csv")])


def _columns(ga: GraphArrays) -> dict[str, object]:
    return {f.name: getattr(ga, f.name) for f in fields(ga) if f.name not in ("memo", "plans")}


@pytest.mark.parametrize("path", TOPOLOGIES, ids=[p.name for p in TOPOLOGIES])
def test_direct_arrays_equal_the_compiled_graph(path: Path) -> None:
    layers = read_scalesim_topology(path)
    direct = _columns(arrays_from_topology(layers, path.stem))
    compiled = _columns(compile_graph(graph_from_topology(layers, path.stem)))
    assert direct.keys() == compiled.keys()
    for name, want in compiled.items():
        got = direct[name]
        if isinstance(want, np.ndarray):
            assert isinstance(got, np.ndarray), name
            assert (got.dtype, got.shape) == (want.dtype, want.shape), name
            assert np.array_equal(got, want), name
        else:
            assert got == want, name


def test_repeated_shape_and_strided_input() -> None:
    # two GEMMs of one shape share a shape row; a strided conv reads less input than M x K
    conv = ScaleSimLayer("c", 15, 15, 3, 3, 4, 10, 2, 2)  # M = 7*7, K = 36, input 15*15*4
    gemm = ScaleSimLayer("g", 49, 36, 1, 36, 1, 10, 1, 1)  # M = 49, K = 36 as a GEMM row
    ga = arrays_from_topology([conv, gemm, ScaleSimLayer("c2", 15, 15, 3, 3, 4, 10, 2, 2)])
    assert ga.shape_id.tolist() == [0, 0, 0]
    assert ga.shapes.tolist() == [[49, 36, 10, 8, 8, 1, 1]]
    assert ga.in_bytes.tolist() == [900, 360, 1764, 360, 900, 360]
    assert ga.t_bytes.tolist() == [900, 360, 490, 1764, 360, 490, 900, 360, 490]
    assert ga.total_macs == 3 * 49 * 36 * 10


def test_duplicate_layer_names_are_the_graphs_error() -> None:
    layer = ScaleSimLayer("fc", 4, 8, 1, 8, 1, 2, 1, 1)
    with pytest.raises(GraphFormatError, match="defined twice"):
        arrays_from_topology([layer, layer])


def test_simulate_scalesim_report_equals_the_graph_path() -> None:
    from accelsim.sim import simulate, simulate_scalesim
    from accelsim.sim.scalesim.bridge import load_scalesim

    cfg, topo = DATA / "reference" / "sa16x16_ws.cfg", DATA / "reference" / "deit_tiny_gemm.csv"
    assert simulate_scalesim(cfg, topo).to_dict() == simulate(*reversed(load_scalesim(cfg, topo))).to_dict()
