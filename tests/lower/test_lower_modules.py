"""Lowering hand-written modules: quantiser contract, token selection, folding, errors, replay."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lower_testing import FakeQuant, replay
from torch import nn

from accelsim.errors import ConfigError, InputShapeError, UnknownModelError, UnsupportedOpError
from accelsim.eval.accuracy import torch_macs
from accelsim.ir import OpKind
from accelsim.lower import lower


class QuantMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.act_q = FakeQuant(4, 0.05)
        self.fc2 = nn.Linear(16, 4)
        self.w_q = FakeQuant(3, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act_q(self.fc1(x))
        return F.linear(h, self.w_q(self.fc2.weight), self.fc2.bias)


def test_quantiser_ops_are_dropped_and_bits_recorded() -> None:
    g = lower(QuantMLP(), (2, 8))
    assert [(op.kind, op.module) for op in g.ops()] == [(OpKind.MATMUL, "fc1"), (OpKind.MATMUL, "")]
    fc1, fc2 = g.ops()
    h = fc1.outputs[0]
    assert fc2.inputs == (h, "fc2.weight", "fc2.bias")
    assert g.tensors[h].bits == 4 and g.quant[h] == QuantMLP().act_q.qparams()
    assert g.tensors["fc2.weight"].bits == 3 and g.quant["fc2.weight"].bits == 3
    assert g.tensors["fc1.weight"].bits == 8 and "fc1.weight" not in g.quant
    assert not any(op.target in ("aten.round.default", "aten.clamp.default") for op in g.ops())
    assert g.total_macs == 2 * 8 * 16 + 2 * 16 * 4


class TokenPrune(nn.Module):
    """Keeps the ``keep`` highest-scoring tokens, the way token reduction does."""

    def __init__(self, dim: int = 16, keep: int = 5) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)
        self.fc = nn.Linear(dim, dim)
        self.keep = keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.score(x).squeeze(-1)
        idx = scores.topk(self.keep, dim=1).indices
        kept = torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        return self.fc(kept)


def test_topk_gather_lower_to_token_select() -> None:
    g = lower(TokenPrune(), (2, 12, 16))
    sel = [op for op in g.ops() if op.kind == OpKind.TOKEN_SELECT]
    assert [op.attrs["fn"] for op in sel] == ["topk", "gather"]
    topk, gather = sel
    assert (topk.attrs["batch"], topk.attrs["tokens_in"], topk.attrs["tokens_out"], topk.attrs["channels"]) == (
        2, 12, 5, 1,
    )  # fmt: skip
    assert (gather.attrs["tokens_in"], gather.attrs["tokens_out"], gather.attrs["channels"]) == (12, 5, 16)
    fc = next(op for op in g.ops() if op.module == "fc")
    assert fc.attrs["M"] == 2 * 5  # later layers see the kept tokens only
    assert g.total_macs == 2 * 12 * 16 + 2 * 5 * 16 * 16


class IndexPrune(TokenPrune):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = self.score(x).squeeze(-1).topk(self.keep, dim=1).indices
        batch = torch.arange(x.shape[0]).unsqueeze(-1)
        return self.fc(x[batch, idx])


def test_advanced_indexing_is_token_select() -> None:
    g = lower(IndexPrune(), (2, 12, 16))
    gather = [op for op in g.ops() if op.kind == OpKind.TOKEN_SELECT and op.attrs["fn"] == "gather"]
    assert len(gather) == 1 and gather[0].attrs["tokens_out"] == 5


class ConvBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.dw(self.bn(self.conv(x)))))


def test_batchnorm_folds_into_conv_numerically() -> None:
    torch.manual_seed(0)
    model = ConvBN().eval()
    with torch.no_grad():  # non-trivial statistics
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2)
        model.bn.weight.uniform_(0.5, 2)
        model.bn.bias.uniform_(-1, 1)
    g = lower(model, (1, 3, 10, 10), keep_constants=True)
    kinds = [op.kind for op in g.ops()]
    assert kinds == [OpKind.CONV2D, OpKind.DWCONV2D, OpKind.ACTIVATION, OpKind.POOL]
    conv = next(g.ops())
    assert conv.attrs["folded_bn"] == "bn" and conv.attrs["bias"] is True
    assert conv.macs == 8 * 10 * 10 * 3 * 3 * 3
    assert set(g.constants) == {t for op in g.ops() for t in op.inputs if g.tensors[t].weight}
    x = torch.randn(1, 3, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(replay(g, x)[0], model(x), rtol=1e-5, atol=1e-5)


def test_lowering_leaves_the_callers_module_as_it_was() -> None:
    model = ConvBN().train()
    lower(model, (1, 3, 8, 8))
    assert model.training and model.bn.training


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "img_size"),
    [("deit_tiny_patch16_224", 64), ("efficientvit_b0", 64), ("swin_tiny_patch4_window7_224", 112)],
)
def test_replay_with_constants_matches_model(name: str, img_size: int) -> None:
    """Executing the graph op by op from targets, args and constants reproduces the model."""
    import timm

    torch.manual_seed(0)
    kwargs = {} if name.startswith("efficientvit") else {"img_size": img_size}
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    g = lower(model, (1, 3, img_size, img_size), keep_constants=True)
    weights = {t.name for t in g.tensors.values() if t.weight}
    assert set(g.constants) == weights
    assert all(g.constants[n].shape == g.tensors[n].shape for n in weights)
    x = torch.randn(1, 3, img_size, img_size)
    with torch.no_grad():
        torch.testing.assert_close(replay(g, x)[0], model(x), rtol=1e-4, atol=1e-4)


class Cumsum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(4, 4), CumsumInner())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class CumsumInner(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x, dim=1)


def test_unsupported_op_names_op_and_module() -> None:
    with pytest.raises(UnsupportedOpError) as e:
        lower(Cumsum(), (1, 4))
    msg = str(e.value)
    assert "aten.cumsum.default" in msg and "'inner.1'" in msg and "CumsumInner" in msg
    assert "\n" not in msg


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(UnknownModelError) as e:
        lower("deit_tiny_patch16")
    assert "deit_tiny_patch16_224" in str(e.value) and "did you mean" in str(e.value)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"input_shape": (1, 1, 224, 224)}, "1 channels, the model takes 3"),
        ({"input_shape": (224, 224)}, "must be (N, C, H, W)"),
        ({"input_shape": (1, 3, 0, 224)}, "positive integers"),
        ({"img_size": 0}, "img_size must be a positive integer"),
        ({"batch": 0}, "batch must be a positive integer"),
        ({"input_shape": (1, 3, 64, 64), "img_size": 32}, "disagrees with img_size=32"),
    ],
)
def test_bad_input_shapes_are_input_shape_errors(kwargs: dict, needle: str) -> None:
    with pytest.raises(InputShapeError) as e:
        lower("deit_tiny_patch16_224", **kwargs)
    assert needle in str(e.value)


def test_input_shape_the_model_rejects() -> None:
    with pytest.raises(InputShapeError) as e:
        lower("deit_tiny_patch16_224", input_shape=(1, 3, 100, 100))
    assert "[1, 3, 100, 100]" in str(e.value) and "[1, 3, 224, 224]" in str(e.value)


def test_module_without_cfg_needs_input_shape() -> None:
    with pytest.raises(InputShapeError, match="input_shape is required"):
        lower(nn.Linear(4, 4))


@pytest.mark.parametrize("bits", [0, 33, 2.5])
def test_bad_bits_are_config_errors(bits: object) -> None:
    with pytest.raises(ConfigError, match=r"wbits must be an integer in 1\.\.32"):
        lower(nn.Linear(4, 4), (1, 4), wbits=bits)  # type: ignore[arg-type]


def test_keep_constants_needs_real_weights() -> None:
    with torch.device("meta"):
        model = nn.Linear(4, 4)
    with pytest.raises(ConfigError, match="real weights"):
        lower(model, (1, 4), keep_constants=True)


def test_weight_transpose_is_folded_and_matmul_flattens_batch() -> None:
    class XW(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(6, 5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.w.t()

    model = XW()
    g = lower(model, (2, 3, 5), keep_constants=True)
    (op,) = g.ops()
    assert op.kind == OpKind.MATMUL and op.attrs["operands"] == "wa"
    assert (op.attrs["batch"], op.attrs["M"], op.attrs["K"], op.attrs["N"]) == (1, 6, 5, 6)
    assert op.inputs[1].startswith("w:") and g.tensors[op.inputs[1]].shape == (5, 6)
    np.testing.assert_array_equal(g.constants[op.inputs[1]], model.w.detach().numpy().T)
    assert "w" not in g.tensors
    x = torch.randn(2, 3, 5)
    torch.testing.assert_close(replay(g, x)[0], model(x).detach())


class FusedAttention(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2, masked: bool = False) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.heads = heads
        self.mask = nn.Parameter(torch.randn(1, 1, 7, 7)) if masked else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask)


@pytest.mark.parametrize("masked", [False, True])
def test_sdpa_is_decomposed_like_unfused_attention(masked: bool) -> None:
    model = FusedAttention(masked=masked)
    g = lower(model, (2, 7, 16), keep_constants=True)
    kinds = [op.kind for op in g.ops() if op.module == ""]
    expected = [OpKind.TRANSPOSE, OpKind.MATMUL, OpKind.ELTWISE] + [OpKind.ELTWISE] * masked
    assert kinds[-len(expected) - 2 :] == [*expected, OpKind.SOFTMAX, OpKind.MATMUL]
    aa = [op for op in g.ops() if op.kind == OpKind.MATMUL and op.attrs["operands"] == "aa"]
    assert [(op.attrs["batch"], op.attrs["M"], op.attrs["K"], op.attrs["N"]) for op in aa] == [
        (4, 7, 8, 7),
        (4, 7, 7, 8),
    ]
    x = torch.randn(2, 7, 16)
    # the oracle forces the math SDPA backend: torch 2.14's counter skips the fused CPU kernel
    assert g.total_macs == torch_macs(model, x)
    with torch.no_grad():
        ref = model(x)
    torch.testing.assert_close(replay(g, x)[0], ref)


class Overwrite(nn.Module):
    """MViTv2's write-back of the relative-position sum over the logits (timm ``mvitv2.py``
    ``cal_rel_pos_type``); ``offset=1`` is its class-token variant, a true slice assignment."""

    def __init__(self, offset: int) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.fc(x)
        o = self.offset
        attn[:, o:, o:] = attn[:, o:, o:] * 2.0 + 1.0
        return attn.softmax(-1)


def test_copy_over_a_whole_tensor_is_its_new_value() -> None:
    model = Overwrite(0).eval()
    g = lower(model, (1, 3, 4), keep_constants=True)
    assert [op.target for op in g.ops()] == [
        "aten.linear.default", "aten.mul.Tensor", "aten.add.Tensor", "aten.softmax.int",
    ]  # fmt: skip
    # the softmax reads what was written, not the linear's output
    (softmax,) = [op for op in g.ops() if op.kind == OpKind.SOFTMAX]
    assert g.op(g.producer(softmax.inputs[0])).target == "aten.add.Tensor"
    x = torch.randn(1, 3, 4)
    with torch.no_grad():
        torch.testing.assert_close(replay(g, x)[0], model(x), rtol=1e-6, atol=1e-6)


def test_copy_into_a_slice_rebuilds_the_tensor() -> None:
    """The class-token variant: the untouched row and column and the written block are concatenated
    back, and the softmax reads that."""
    model = Overwrite(1).eval()
    g = lower(model, (1, 3, 4), keep_constants=True)
    (softmax,) = [op for op in g.ops() if op.kind == OpKind.SOFTMAX]
    written = g.op(g.producer(softmax.inputs[0]))
    assert (written.kind, written.attrs["args"][1]) == (OpKind.CONCAT, 1)  # rows: [class row, the rest]
    assert g.total_macs == 3 * 4 * 6
    x = torch.randn(1, 3, 4)
    with torch.no_grad():
        torch.testing.assert_close(replay(g, x)[0], model(x), rtol=1e-6, atol=1e-6)


class LateView(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.fc(x)
        v = a.view(-1)  # taken before the copy, read after it: sees the new values in eager torch
        a.copy_(a * 3.0)
        return v + 1.0


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        (LateView(), "in-place copy over 'linear' while its view 'view' is read after it has no rule"),
    ],
)
def test_copies_a_dataflow_graph_cannot_express_are_refused(model: nn.Module, needle: str) -> None:
    with pytest.raises(UnsupportedOpError, match=re.escape(needle)):
        lower(model.eval(), (1, 3, 4))


class PositionMLP(nn.Module):
    """A position bias computed from a constant table by an MLP, as SwinV2's continuous position
    bias (timm ``swin_transformer_v2.py`` ``cpb_mlp``): weights only, so it folds."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("coords", torch.randn(5, 2))
        self.cpb = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + self.cpb(self.coords)


def test_folded_macs_are_recorded() -> None:
    model = PositionMLP().eval()
    g = lower(model, (1, 5, 3), keep_constants=True)
    assert [op.kind for op in g.ops()] == [OpKind.MATMUL, OpKind.ELTWISE]
    assert g.meta["folded_macs"] == 5 * 2 * 16 + 5 * 16 * 3
    x = torch.randn(1, 5, 3)
    assert g.total_macs == 5 * 3 * 3 and g.total_macs + g.meta["folded_macs"] == torch_macs(model, x)
    with torch.no_grad():
        torch.testing.assert_close(replay(g, x)[0], model(x), rtol=1e-6, atol=1e-6)


class Affine(nn.Module):
    """ResMLP's affine (timm ``mlp_mixer.py`` ``Affine``): ``beta + alpha * x`` via ``addcmul``."""

    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.alpha, self.beta = nn.Parameter(torch.randn(6)), nn.Parameter(torch.randn(6))
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta, self.alpha, x, value=self.value)


class Windows(nn.Module):
    """TNT's pixel patches (``nn.Unfold``) and HaloNet's blocks (``Tensor.unfold``), pooled along
    the tokens as Next-ViT's ``nn.AvgPool1d`` does."""

    def __init__(self) -> None:
        super().__init__()
        self.unfold = nn.Unfold(kernel_size=2, stride=2)
        self.pool = nn.AvgPool1d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.unfold(x)  # (1, 3 * 4, 16)
        blocks = x.unfold(2, 4, 2).unfold(3, 4, 2).reshape(1, 3 * 9, 16)  # overlapping 4x4 windows
        return self.pool(torch.cat([patches, blocks], dim=1))


@pytest.mark.parametrize(
    ("model", "shape", "targets"),
    [
        (Affine(), (2, 5, 6), ["aten.mul.Tensor", "aten.add.Tensor"]),
        (Affine(0.5), (2, 5, 6), ["aten.mul.Tensor", "aten.mul.Tensor", "aten.add.Tensor"]),
        (
            Windows(),
            (1, 3, 8, 8),
            ["aten.im2col.default", "aten.unfold.default", "aten.unfold.default", "aten.reshape.default",
             "aten.cat.default", "aten.avg_pool1d.default"],
        ),
    ],
)  # fmt: skip
def test_affine_windows_and_1d_pooling(model: nn.Module, shape: tuple[int, ...], targets: list[str]) -> None:
    torch.manual_seed(0)
    g = lower(model.eval(), shape, keep_constants=True)
    assert [op.target for op in g.ops()] == targets
    assert all(
        op.kind == OpKind.GATHER for op in g.ops() if op.target.endswith(("im2col.default", "unfold.default"))
    )
    if "aten.avg_pool1d.default" in targets:
        pool = next(op for op in g.ops() if op.kind == OpKind.POOL)
        assert pool.attrs == {**pool.attrs, "fn": "avg", "kernel": [2], "elements": 1 * 39 * 8 * 2}
    x = torch.randn(shape)
    assert g.total_macs == torch_macs(model, x) == 0
    with torch.no_grad():
        torch.testing.assert_close(replay(g, x)[0], model(x), rtol=1e-6, atol=1e-6)


def test_bittrue_executor_refuses_windows_and_1d_pooling_clearly() -> None:
    """im2col/unfold and avg_pool1d have no executor rule yet: each says so, by op and target."""
    from accelsim.eval.bittrue import handler_for

    g = lower(Windows().eval(), (1, 3, 8, 8), keep_constants=True)
    refused = [
        op for op in g.ops() if op.target.endswith(("im2col.default", "unfold.default", "avg_pool1d.default"))
    ]
    assert len(refused) == 4
    for op in refused:
        with pytest.raises(
            UnsupportedOpError, match=rf"no rule for '{op.kind.value}' op {re.escape(op.target)}"
        ):
            handler_for(op)
