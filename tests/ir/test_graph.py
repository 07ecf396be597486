import json
import subprocess
import sys

import numpy as np
import pytest

from accelsim.errors import GraphFormatError
from accelsim.ir import Graph, Op, OpKind, QuantParams, Tensor


def _mlp() -> Graph:
    """x[1,4,8] -> fc1 (8->16) -> gelu -> fc2 (16->8) -> add(x) ."""
    g = Graph("mlp", meta={"model": "toy"})
    for t in [
        Tensor("x", (1, 4, 8)),
        Tensor("w1", (8, 16), weight=True),
        Tensor("h", (1, 4, 16)),
        Tensor("a", (1, 4, 16)),
        Tensor("w2", (16, 8), bits=4, weight=True),
        Tensor("y", (1, 4, 8)),
        Tensor("z", (1, 4, 8), bits=16),
    ]:
        g.add_tensor(t)
    g.add_op(
        Op("fc1", OpKind.MATMUL, ("x", "w1"), ("h",), {"batch": 1, "M": 4, "K": 8, "N": 16}, macs=4 * 8 * 16)
    )
    g.add_op(Op("act", OpKind.ACTIVATION, ("h",), ("a",), {"fn": "gelu", "elements": 64}))
    g.add_op(
        Op("fc2", OpKind.MATMUL, ("a", "w2"), ("y",), {"batch": 1, "M": 4, "K": 16, "N": 8}, macs=4 * 16 * 8)
    )
    g.add_op(Op("res", OpKind.ELTWISE, ("y", "x"), ("z",), {"fn": "add", "elements": 32}))
    g.quant["w2"] = QuantParams(bits=4, scale=np.full(8, 0.5), zero_point=np.zeros(8), axis=1)
    return g


def test_structure_and_counts() -> None:
    g = _mlp()
    assert g.inputs == ["x"]
    assert g.outputs == ["z"]
    assert [op.name for op in g.ops()] == ["fc1", "act", "fc2", "res"]
    assert g.total_macs == 512 + 512
    assert sorted(g.nx.successors("fc1")) == ["act"]
    assert g.nx.edges["fc1", "act"]["tensors"] == ["h"]
    s = g.summary()
    assert s.params == 8 * 16 + 16 * 8
    # 8-bit w1 (128 B) + 4-bit w2 (64 B)
    assert s.weight_bytes == 128 + 64
    # activations: x 32 B, h 64, a 64, y 32, z 64 (16-bit)
    assert s.activation_bytes == 32 + 64 + 64 + 32 + 64
    assert s.by_kind["matmul"].count == 2 and s.by_kind["matmul"].macs == 1024
    assert "matmul" in str(s)


def test_json_round_trip_is_lossless(tmp_path) -> None:
    g = _mlp()
    path = g.save(tmp_path / "g.json")
    back = Graph.load(path)
    assert back == g
    assert [op.name for op in back.ops()] == [op.name for op in g.ops()]
    assert back.quant["w2"] == g.quant["w2"]
    assert back.op("res").attrs == {"fn": "add", "elements": 32}


def test_loading_a_graph_does_not_import_torch(tmp_path) -> None:
    path = _mlp().save(tmp_path / "g.json")
    code = (
        "import sys; from accelsim import Graph; g = Graph.load(sys.argv[1]); "
        "assert g.total_macs == 1024; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda text: text[: len(text) // 2], "corrupt or truncated"),
        (lambda text: "[]", "not an accelsim graph"),
        (lambda text: text.replace('"version":1', '"version":99'), "unsupported graph version"),
        (lambda text: text.replace('"kind":"eltwise"', '"kind":"teleport"'), "unknown kind 'teleport'"),
        (lambda text: text.replace('"inputs":["y","x"]', '"inputs":["y","nope"]'), "unknown tensor 'nope'"),
        # numbers a graph file gives are checked, never trusted (issue 11)
        (
            lambda text: text.replace('"macs":512', '"macs":51200'),
            r"macs=51200 does not match its shapes \(512",
        ),
        (
            lambda text: text.replace('"M":4,"K":8', '"M":-4,"K":8'),
            r"attribute 'M' must be a positive integer \(at most 2147483647\) \(got -4\)",
        ),
        (
            lambda text: text.replace('"shape":[1,4,8]', '"shape":[1,4,7.9]'),
            r"shape must be positive integers",
        ),
        (
            lambda text: text.replace('"weight":true', '"weight":"false"', 1),
            r"'weight' must be a JSON bool \(got 'false'\)",
        ),
        (lambda text: text.replace('"bits":8', '"bits":true', 1), r"'bits' must be a JSON int \(got True\)"),
        (lambda text: text.replace('"macs":512', '"macs":512.0'), r"'macs' must be a JSON int"),
    ],
)
def test_corrupt_graph_files_raise_one_clear_error(tmp_path, mutate, message) -> None:
    path = tmp_path / "g.json"
    text = json.dumps(_mlp().to_dict(), separators=(",", ":"))
    path.write_text(mutate(text))
    with pytest.raises(GraphFormatError, match=message):
        Graph.load(path)


def test_a_graph_without_ops_is_an_error(tmp_path) -> None:
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"format": "accelsim.graph", "version": 1, "name": "e", "tensors": [],
                                "ops": [], "inputs": [], "outputs": []}))  # fmt: skip
    with pytest.raises(GraphFormatError, match="has no ops"):
        Graph.load(path)


def test_macs_are_derived_when_not_given_and_checked_when_given() -> None:
    op = Op("mm", OpKind.MATMUL, ("x", "w"), ("y",), {"batch": 2, "M": 3, "K": 4, "N": 5})
    assert op.macs == 120
    assert Op("n", OpKind.LAYERNORM, ("x",), ("y",), {"rows": 2, "length": 3}).macs == 0
    g = _mlp()
    g.replace_op(Op("fc1", OpKind.MATMUL, ("x", "w1"), ("h",), {"batch": 1, "M": 4, "K": 8, "N": 16}, macs=1))
    with pytest.raises(GraphFormatError, match=r"op 'fc1' \(matmul\): macs=1 does not match"):
        g.validate()


def test_a_failing_pass_is_named() -> None:
    from accelsim.lower.passes import run_passes

    def break_macs(g: Graph) -> Graph:
        out = g.copy()
        op = out.op("fc1")
        out.replace_op(Op(op.name, op.kind, op.inputs, op.outputs, op.attrs, macs=7))
        return out

    with pytest.raises(
        GraphFormatError, match=r"pass break_macs \(after: none\) left an invalid graph: op 'fc1'"
    ):
        run_passes(_mlp(), [break_macs])


def test_cycle_is_rejected() -> None:
    g = Graph("cyc")
    for n in "ab":
        g.add_tensor(Tensor(n, (1,)))
    g.add_op(Op("f", OpKind.ELTWISE, ("a",), ("b",)))
    g.add_op(Op("g", OpKind.ELTWISE, ("b",), ("a",)))
    with pytest.raises(GraphFormatError, match=r"has a cycle through \['f', 'g'\]"):
        g.validate()
    with pytest.raises(GraphFormatError, match="cycle"):
        list(g.ops())


def test_ops_order_is_topological_with_ties_in_insertion_order() -> None:
    # inserted consumer first: "late" consumes "m", which "early" produces after it was added
    g = Graph("order")
    for n in ("x", "m", "y", "z"):
        g.add_tensor(Tensor(n, (1, 4)))
    g.add_op(Op("late", OpKind.ACTIVATION, ("m",), ("y",), {"fn": "relu", "elements": 4}))
    g.add_op(Op("side", OpKind.ACTIVATION, ("x",), ("z",), {"fn": "relu", "elements": 4}))
    g.add_op(Op("early", OpKind.ACTIVATION, ("x",), ("m",), {"fn": "relu", "elements": 4}))
    # ready at first: side (inserted 2nd) and early (3rd); late only once early ran
    assert [op.name for op in g.ops()] == ["side", "early", "late"]
    assert g.predecessors("late") == ["early"] and g.successors("early") == ["late"]
    assert sorted(g.nx.edges) == [("early", "late")]
    g.add_tensor(Tensor("w", (1, 4)))
    g.add_op(Op("first", OpKind.ACTIVATION, ("w",), ("x",), {"fn": "relu", "elements": 4}))
    # an edit invalidates the cached order and the networkx view
    assert [op.name for op in g.ops()] == ["first", "side", "early", "late"]
    assert sorted(g.nx.successors("first")) == ["early", "side"]


def test_duplicate_producer_is_rejected() -> None:
    g = _mlp()
    with pytest.raises(GraphFormatError, match="already produced"):
        g.add_op(Op("again", OpKind.ACTIVATION, ("h",), ("a",)))


def test_dot_export_names_every_op() -> None:
    dot = _mlp().to_dot()
    assert dot.startswith('digraph "mlp" {')
    for name in ("fc1", "act", "fc2", "res"):
        assert f'"{name}" [label=' in dot
    assert '"fc1" -> "act" [label="1x4x16"]' in dot
