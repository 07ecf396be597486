"""Graph passes: linear-attention fusion (and when it must not fire), dead-op removal."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from lower_testing import FakeQuant, replay
from torch import nn

from accelsim.ir import Graph, Op, OpKind, Tensor
from accelsim.lower import fuse_linear_attention, lower, remove_dead_ops
from accelsim.lower.passes import DEFAULT_PASSES, Pass


class ReluLinearAttention(nn.Module):
    """The kernel part of EfficientViT's LiteMLA on (B, heads, tokens, dim) inputs."""

    def __init__(self, pad_value: float = 1.0, reuse_q: bool = False, quant_q: bool = False) -> None:
        super().__init__()
        self.pad_value = pad_value
        self.reuse_q = reuse_q
        self.q_quant = FakeQuant(6, 0.02) if quant_q else nn.Identity()

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        k, v = q * 0.5, q + 1.0
        q = self.q_quant(torch.relu(q))
        k = torch.relu(k)
        v = F.pad(v, (0, 1), mode="constant", value=self.pad_value)
        out = q @ (k.transpose(-1, -2) @ v)
        out = out[..., :-1] / (out[..., -1:] + 1e-5)
        return out + q if self.reuse_q else out


def test_linear_attention_is_one_op() -> None:
    b, h, t, d = 2, 3, 10, 4
    g = lower(ReluLinearAttention(), (b, h, t, d), keep_constants=True)
    la = [op for op in g.ops() if op.kind == OpKind.LINEAR_ATTENTION]
    assert len(la) == 1
    op = la[0]
    assert (op.attrs["batch"], op.attrs["heads"], op.attrs["tokens"], op.attrs["head_dim"]) == (b, h, t, d)
    assert op.macs == 2 * b * h * t * d * (d + 1) == g.total_macs
    assert [g.op(g.producer(i)).attrs["fn"] for i in op.inputs[1:]] == ["mul", "add"]
    assert not any(o.kind in (OpKind.MATMUL, OpKind.ACTIVATION, OpKind.PAD) for o in g.ops())
    x = torch.randn(b, h, t, d)
    torch.testing.assert_close(replay(g, x)[0], ReluLinearAttention()(x))


def test_quantisation_inside_the_pattern_moves_to_the_fused_op() -> None:
    g = lower(ReluLinearAttention(quant_q=True), (1, 2, 6, 4))
    (op,) = [o for o in g.ops() if o.kind == OpKind.LINEAR_ATTENTION]
    assert op.attrs["quant"]["q"]["bits"] == 6 and op.attrs["quant"]["q"]["scale"] == pytest.approx(0.02)
    assert set(op.attrs["quant"]) == {"q"}
    assert all(t in g.tensors for t in g.quant)


def test_no_fusion_when_pattern_differs() -> None:
    # padding with zeros is not the k-sum trick; a ReLU(q) used elsewhere must stay
    for model in (ReluLinearAttention(pad_value=0.0), ReluLinearAttention(reuse_q=True)):
        g = lower(model, (1, 2, 6, 4))
        assert not any(op.kind == OpKind.LINEAR_ATTENTION for op in g.ops())
        assert sum(op.kind == OpKind.MATMUL for op in g.ops()) == 2


def _chain() -> Graph:
    g = Graph("chain")
    for name in ("x", "a", "b", "dead"):
        g.add_tensor(Tensor(name, (4,)))
    g.add_op(Op("op_a", OpKind.ACTIVATION, ("x",), ("a",), {"fn": "relu", "elements": 4}))
    g.add_op(Op("op_b", OpKind.ACTIVATION, ("a",), ("b",), {"fn": "gelu", "elements": 4}))
    g.add_op(Op("op_dead", OpKind.ACTIVATION, ("a",), ("dead",), {"fn": "silu", "elements": 4}))
    g.set_io(["x"], ["b"])
    return g


def test_remove_dead_ops_returns_a_new_graph() -> None:
    g = _chain()
    out = remove_dead_ops(g)
    assert [op.name for op in out.ops()] == ["op_a", "op_b"] and "dead" not in out.tensors
    assert len(g) == 3  # the input graph is unchanged


def test_fusion_pass_leaves_unrelated_graph_alone() -> None:
    g = _chain()
    assert fuse_linear_attention(g) == g


@pytest.fixture(scope="module")
def unpassed_linear_attention() -> Graph:
    """ReluLinearAttention lowered with no pass run (so the fusion has work to do)."""
    mp = pytest.MonkeyPatch()
    mp.setattr("accelsim.lower.frontend.run_passes", lambda g: g)
    try:
        return lower(ReluLinearAttention(), (1, 2, 6, 4))
    finally:
        mp.undo()


@pytest.mark.parametrize("pass_", list(dict.fromkeys(DEFAULT_PASSES)), ids=lambda p: p.__name__)
def test_a_default_pass_never_edits_its_input(pass_: Pass, unpassed_linear_attention: Graph) -> None:
    """Each pass on a graph it changes: the input's JSON is byte-identical afterwards."""
    fired = False
    for g in (_chain(), unpassed_linear_attention):
        before = g.to_json()
        out = pass_(g)
        assert g.to_json() == before
        fired |= out.to_json() != before
    assert fired  # each pass rewrote at least one of the graphs, so an edit in place would show
