"""Group norm (a layernorm over groups) and vector norms: op shapes, replay in torch, the
bit-true executor on the decomposition, and the float rule for norms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lower_testing import replay
from torch import nn

from accelsim.config.arithmetic import ArithmeticConfig
from accelsim.eval.accuracy import torch_macs
from accelsim.eval.bittrue import BittrueStats, execute
from accelsim.ir import Graph, OpKind
from accelsim.lower import lower


class ConvGroupNorm(nn.Module):
    def __init__(self, groups: int, affine: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.norm = nn.GroupNorm(groups, 12, eps=1e-5, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


def _randomised(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-1, 1)
    return model.eval()


@pytest.mark.parametrize("groups", [1, 3, 12])
def test_group_norm_is_a_layernorm_over_groups(groups: int) -> None:
    model = _randomised(ConvGroupNorm(groups))
    g = lower(model, (2, 3, 5, 7), keep_constants=True)
    ops = [op for op in g.ops() if op.module == "norm"]
    assert [(op.kind, op.target) for op in ops] == [
        (OpKind.RESHAPE, "aten.reshape.default"),
        (OpKind.LAYERNORM, "aten.layer_norm.default"),
        (OpKind.RESHAPE, "aten.reshape.default"),
        (OpKind.ELTWISE, "aten.mul.Tensor"),
        (OpKind.ELTWISE, "aten.add.Tensor"),
    ]
    reshape, ln, _, mul, add = ops
    length = 12 // groups * 5 * 7
    assert g.tensors[reshape.outputs[0]].shape == (2, groups, length)
    assert (ln.attrs["rows"], ln.attrs["length"], ln.attrs["groups"]) == (2 * groups, length, groups)
    assert ln.attrs["eps"] == 1e-5 and ln.macs == 0 and len(ln.inputs) == 1  # the affine is not the norm's
    # the affine parameters stay C values, viewed (C, 1, 1) so they broadcast over space
    assert g.tensors[mul.inputs[1]].shape == (12, 1, 1) and g.tensors[mul.inputs[1]].weight
    assert g.tensors[add.inputs[1]].shape == (12, 1, 1) and add.outputs == tuple(g.outputs)
    assert mul.attrs["elements"] == add.attrs["elements"] == 2 * 12 * 5 * 7
    x = torch.randn(2, 3, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(replay(g, x)[0], model(x), rtol=1e-6, atol=1e-6)
    assert g.total_macs == torch_macs(model, x) == 2 * 12 * 5 * 7 * 3 * 3 * 3


def test_group_norm_without_affine_ends_at_the_reshape() -> None:
    model = _randomised(ConvGroupNorm(4, affine=False))
    g = lower(model, (1, 3, 4, 4), keep_constants=True)
    kinds = [op.kind for op in g.ops() if op.module == "norm"]
    assert kinds == [OpKind.RESHAPE, OpKind.LAYERNORM, OpKind.RESHAPE]
    x = torch.randn(1, 3, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(replay(g, x)[0], model(x), rtol=1e-6, atol=1e-6)


def test_group_norm_runs_in_the_bittrue_executor() -> None:
    """The decomposition is made of ops the executor runs by their own semantics: in float units
    it is torch's group norm; with the integer layernorm (I-BERT) it stays within 1e-3 of it."""
    model = _randomised(ConvGroupNorm(3))
    g = lower(model, (2, 3, 5, 7), keep_constants=True)
    x = torch.randn(2, 3, 5, 7)
    with torch.no_grad():
        ref = model(x).numpy()
    (name,) = g.outputs
    fl = execute(g, {g.inputs[0]: x.numpy()}, ArithmeticConfig.float_units())[name]
    np.testing.assert_allclose(fl, ref, rtol=1e-5, atol=1e-5)
    # batch 4 through a graph lowered at batch 2: the reshapes scale with the leading dimension
    x4 = torch.cat([x, -x])
    with torch.no_grad():
        ref4 = model(x4).numpy()
    fl4 = execute(g, {g.inputs[0]: x4.numpy()}, ArithmeticConfig.float_units())[name]
    np.testing.assert_allclose(fl4, ref4, rtol=1e-5, atol=1e-5)
    integer = execute(g, {g.inputs[0]: x.numpy()}, ArithmeticConfig())[name]
    assert np.abs(integer - ref).max() < 1e-3 * np.abs(ref).max()  # measured 1.4e-4


class CosineAttention(nn.Module):
    """SwinV2's scaled cosine attention (timm ``swin_transformer_v2.py`` ``WindowAttention``):
    L2-normalised q and k, a learned per-head logit scale clamped at log(100), then softmax."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.logit_scale = nn.Parameter(torch.log(10 * torch.rand(heads, 1, 1) + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        attn = attn * torch.clamp(self.logit_scale, max=math.log(1.0 / 0.01)).exp()
        return attn.softmax(dim=-1) @ v


def test_cosine_attention_norms_and_logit_scale() -> None:
    torch.manual_seed(0)
    model = CosineAttention().eval()
    g = lower(model, (2, 7, 16), keep_constants=True)
    norms = [op for op in g.ops() if op.kind == OpKind.POOL]
    assert len(norms) == 2 and all(op.target == "aten.linalg_vector_norm.default" for op in norms)
    for op in norms:  # one sweep over (B, heads, T, head_dim), one norm per token and head
        assert op.attrs == {**op.attrs, "fn": "norm", "ord": 2.0, "dim": [3], "keepdim": True}
        assert op.attrs["elements"] == 2 * 2 * 7 * 8 and op.macs == 0
        assert g.tensors[op.outputs[0]].shape == (2, 2, 7, 1)
    # F.normalize's divide by max(norm, eps), broadcast over head_dim
    clamps = [op for op in g.ops() if op.kind == OpKind.ACTIVATION and op.attrs["fn"] == "clamp_min"]
    assert [g.producer(op.inputs[0]) for op in clamps] == [op.name for op in norms]
    # the logit scale: clamp and exp of a parameter fold into one per-head weight of an eltwise mul
    (scale,) = [
        op for op in g.ops() if op.kind == OpKind.ELTWISE and any(g.tensors[t].weight for t in op.inputs)
    ]
    (w,) = [t for t in scale.inputs if g.tensors[t].weight]
    assert scale.attrs["fn"] == "mul" and g.tensors[w].shape == (2, 1, 1) and w.startswith("logit_scale:")
    expected = torch.clamp(model.logit_scale, max=math.log(100.0)).exp().detach().numpy()
    np.testing.assert_allclose(g.constants[w], expected, rtol=1e-6)
    x = torch.randn(2, 7, 16)
    assert g.total_macs == torch_macs(model, x)
    with torch.no_grad():
        torch.testing.assert_close(replay(g, x)[0], model(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "attrs"),
    [
        ({"ord": 1, "dim": (1, 2)}, {"ord": 1.0, "dim": [1, 2], "keepdim": False}),
        ({"ord": float("inf"), "dim": -1, "keepdim": True}, {"ord": "inf", "dim": [2], "keepdim": True}),
        ({}, {"ord": 2.0, "dim": None, "keepdim": False}),
    ],
)
def test_vector_norm_orders_and_axes(kwargs: dict, attrs: dict) -> None:
    class Norm(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.linalg.vector_norm(x * 2.0, **kwargs)

    g = lower(Norm(), (2, 3, 4))
    (op,) = [op for op in g.ops() if op.kind == OpKind.POOL]
    assert {k: op.attrs[k] for k in attrs} == attrs and op.attrs["elements"] == 24
    assert Graph.from_dict(json.loads(json.dumps(g.to_dict(), allow_nan=False))) == g  # strict JSON
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(replay(g, x)[0], Norm()(x), rtol=1e-6, atol=1e-6)


def test_bittrue_executor_runs_cosine_attention_norms_in_float() -> None:
    """The executor has no integer square root: a vector norm runs in float, is recorded as such,
    and the cosine attention around it matches torch."""
    torch.manual_seed(0)
    model = CosineAttention().eval()
    g = lower(model, (1, 7, 16), keep_constants=True)
    x = torch.randn(1, 7, 16)
    stats = BittrueStats()
    (out,) = execute(g, {g.inputs[0]: x.numpy()}, ArithmeticConfig.float_units(), stats=stats).values()
    norms = {op.name for op in g.ops() if op.attrs.get("fn") == "norm"}
    assert norms and norms <= stats.float_ops
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-4, atol=1e-5)
