"""The weights sidecar: bit-exact round trip, refusal of foreign or corrupt files, torch-free execution."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from accelsim.errors import GraphFormatError
from accelsim.ir import Graph, Op, OpKind, QuantParams, Tensor
from accelsim.ir.sidecar import load_constants, load_graph, save_constants, save_graph, sidecar_path


def _quantised_mlp() -> Graph:
    g = Graph("qmlp")
    for t in [
        Tensor("x", (1, 4, 8)),
        Tensor("w1", (16, 8), weight=True),
        Tensor("b1", (16,), bits=32, weight=True),
        Tensor("h", (1, 4, 16)),
        Tensor("a", (1, 4, 16)),
        Tensor("w2", (16, 8), bits=4, weight=True),
        Tensor("y", (1, 4, 8)),
        Tensor("z", (1, 4, 8)),
    ]:
        g.add_tensor(t)
    mm = {"batch": 1, "M": 4, "operands": "wa"}
    g.add_op(
        Op("fc1", OpKind.MATMUL, ("x", "w1", "b1"), ("h",), {**mm, "K": 8, "N": 16, "weight_layout": "NK"})
    )
    g.add_op(Op("act", OpKind.ACTIVATION, ("h",), ("a",), {"fn": "gelu", "elements": 64}))
    g.add_op(Op("fc2", OpKind.MATMUL, ("a", "w2"), ("y",), {**mm, "K": 16, "N": 8}))
    g.add_op(Op("res", OpKind.ELTWISE, ("y", "x"), ("z",), {"fn": "add", "elements": 32}))
    rng = np.random.default_rng(0)
    g.constants["w1"] = rng.normal(0, 0.3, (16, 8)).astype(np.float32)
    g.constants["b1"] = rng.normal(0, 0.1, 16).astype(np.float64)
    g.constants["w2"] = rng.normal(0, 0.3, (16, 8)).astype(np.float32)
    g.quant["x"] = QuantParams(8, np.array(0.02), np.array(128), signed=False)
    g.quant["w1"] = QuantParams(8, np.abs(g.constants["w1"]).max(1) / 127, np.zeros(16), axis=0)
    g.quant["a"] = QuantParams(8, np.array(0.01), np.array(20), signed=False)
    g.quant["w2"] = QuantParams(4, np.abs(g.constants["w2"]).max(0) / 7, np.zeros(8), axis=1)
    return g


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    g = _quantised_mlp()
    g.constants["ints"] = np.arange(-5, 5, dtype=np.int8).reshape(2, 5)
    g.add_tensor(Tensor("ints", (2, 5), weight=True))
    path = save_graph(g, tmp_path / "m.json")
    assert sidecar_path(path) == tmp_path / "m.weights.safetensors"
    back = load_graph(path)
    assert back == g
    assert set(back.constants) == set(g.constants)
    for name, arr in g.constants.items():
        assert back.constants[name].dtype == arr.dtype
        assert back.constants[name].tobytes() == arr.tobytes()


def test_refuses_missing_foreign_mismatched_or_corrupt_sidecars(tmp_path: Path) -> None:
    g = _quantised_mlp()
    json_path = g.save(tmp_path / "m.json")
    with pytest.raises(GraphFormatError, match="weights sidecar not found"):
        load_constants(Graph.load(json_path), json_path)
    save_constants(g, json_path)
    other = Graph.load(json_path)
    other.name = "another"
    with pytest.raises(GraphFormatError, match="sidecar of graph 'qmlp', not of graph 'another'"):
        load_constants(other, json_path)
    bad = _quantised_mlp()
    bad.constants["w1"] = np.zeros((8, 16), np.float32)
    with pytest.raises(GraphFormatError, match=r"constant 'w1': shape \(8, 16\) != tensor shape \(16, 8\)"):
        save_constants(bad, json_path)
    bad.constants = {"nope": np.zeros(3)}
    with pytest.raises(GraphFormatError, match="constant 'nope' names no tensor"):
        save_constants(bad, json_path)
    sc = sidecar_path(json_path)
    sc.write_bytes(sc.read_bytes()[:40])
    with pytest.raises(GraphFormatError, match="corrupt weights sidecar"):
        load_constants(Graph.load(json_path), json_path)


def test_saved_quantised_graph_executes_without_torch(tmp_path: Path) -> None:
    from accelsim.eval.bittrue import execute

    g = _quantised_mlp()
    path = save_graph(g, tmp_path / "m.json")
    x = np.random.default_rng(1).uniform(-2, 2, (1, 4, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    want = execute(g, {"x": x})["z"]
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        from accelsim.ir.sidecar import load_graph
        from accelsim.eval.bittrue import BittrueStats, execute
        g = load_graph({str(path)!r})
        st = BittrueStats()
        z = execute(g, {{"x": np.load({str(tmp_path / "x.npy")!r})}}, stats=st)["z"]
        print(json.dumps({{"torch": "torch" in sys.modules, "z": z.tolist(), "int": sorted(st.integer_ops)}}))
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["torch"] is False
    # both GEMMs and the residual add in integers, GELU through its LUT
    assert out["int"] == ["act", "fc1", "fc2", "res"]
    np.testing.assert_array_equal(np.asarray(out["z"], np.float32), want)
