"""Low-rank factorisation: Eckart-Young error, exact MAC savings, target matching, bad recipes."""

from __future__ import annotations

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from accelsim.compress.lowrank import LowRankConv1x1, LowRankLinear, factorize_lowrank, svd_factors
from accelsim.config._base import validate_config
from accelsim.config.compression import LowRankConfig
from accelsim.errors import ConfigError
from accelsim.eval.accuracy import torch_macs

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_vit() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(
        img_size=32, patch_size=4, embed_dim=64, depth=2, num_heads=4, num_classes=10
    ).eval()


def macs(model: nn.Module, x: torch.Tensor) -> int:
    return torch_macs(model, x)  # torch's flop counter, math SDPA forced (version-independent)


def test_svd_factors_reach_the_eckart_young_error() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(48, 20, generator=g, dtype=torch.float64)
    s = torch.linalg.svdvals(w)
    for rank in (1, 5, 19, 20):
        up, down = svd_factors(w, rank)
        assert up.shape == (48, rank) and down.shape == (rank, 20)
        err = torch.linalg.matrix_norm(w - up @ down)
        assert float(err) == pytest.approx(float(s[rank:].pow(2).sum().sqrt()), abs=1e-9)
    # a rank-2 matrix is reproduced exactly at rank 2
    a, b = (
        torch.randn(48, 2, generator=g, dtype=torch.float64),
        torch.randn(2, 20, generator=g, dtype=torch.float64),
    )
    up, down = svd_factors(a @ b, 2)
    torch.testing.assert_close(up @ down, a @ b)


def test_mlp_factorisation_cuts_macs_exactly_and_keeps_the_function_close() -> None:
    model = tiny_vit()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    out = factorize_lowrank(model, LowRankConfig(rank_ratio=0.5, targets=["fc1", "fc2"]))
    fc1 = out.blocks[0].mlp.fc1
    assert isinstance(fc1, LowRankLinear) and fc1.rank == 32  # round(0.5 * min(256, 64))
    assert out.blocks[0].mlp.fc2.rank == 32
    # per token and block, fc1 and fc2 go from 64*256 to 32*(64+256) MACs each:
    # saved 2 * 6144 * 65 tokens * 2 blocks = 1,597,440 of 7,668,608
    assert macs(model, x[:1]) - macs(out, x[:1]) == 1_597_440
    # the full-rank factorisation is the identity (up to float rounding)
    full = factorize_lowrank(model, LowRankConfig(rank_ratio=1.0, targets=["qkv"]))
    assert isinstance(full.blocks[0].attn.qkv, nn.Linear)  # rank 64: 64*(64+192) >= 64*192, left dense
    w = model.blocks[0].mlp.fc1.weight.detach().double()
    err = torch.linalg.matrix_norm(w - fc1.up.weight.double() @ fc1.down.weight.double())
    s = torch.linalg.svdvals(w)
    assert float(err) == pytest.approx(float(s[32:].pow(2).sum().sqrt()), rel=1e-4)
    torch.testing.assert_close(fc1.up.bias, model.blocks[0].mlp.fc1.bias)
    assert out(x).shape == (2, 10)
    assert isinstance(model.blocks[0].mlp.fc1, nn.Linear)  # the input is untouched


def test_square_layers_are_left_dense_when_factorising_saves_nothing() -> None:
    model = tiny_vit()
    out = factorize_lowrank(model, LowRankConfig(rank_ratio=0.5, targets=["proj", "qkv"]))
    assert isinstance(out.blocks[0].attn.proj, nn.Linear)  # 32 * (64 + 64) == 64 * 64
    assert isinstance(out.blocks[0].attn.qkv, LowRankLinear)  # 32 * (64 + 192) < 64 * 192
    head = factorize_lowrank(model, LowRankConfig(rank_ratio=0.1, targets=["head"]))
    assert isinstance(head.head, LowRankLinear) and head.head.rank == 1


def test_efficientvit_qkv_convs_factorise_as_two_pointwise_convs() -> None:
    import timm

    torch.manual_seed(0)
    model = timm.create_model("efficientvit_b0", num_classes=10).eval()
    out = factorize_lowrank(model, LowRankConfig(rank_ratio=0.25, targets=["qkv"]))
    qkv = out.stages[2].blocks[1].context_module.main.qkv.conv
    assert isinstance(qkv, LowRankConv1x1) and qkv.rank == 16  # round(0.25 * min(192, 64))
    assert out(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_bad_lowrank_recipes_are_config_errors() -> None:
    model = tiny_vit()
    with pytest.raises(ConfigError, match=r"lowrank\.targets: 'attn_qk' has no weight matrix to factorise"):
        factorize_lowrank(model, LowRankConfig(targets=["attn_qk"]))
    with pytest.raises(
        ConfigError, match=r"lowrank\.targets: no layer of type \['conv'\] in VisionTransformer"
    ):
        factorize_lowrank(model, LowRankConfig(targets=["conv"]))
    with pytest.raises(ConfigError, match=r"rank_ratio: Input should be greater than 0"):
        validate_config(LowRankConfig, {"rank_ratio": 0})
    with pytest.raises(ConfigError, match=r"targets\.0: Input should be"):
        validate_config(LowRankConfig, {"targets": ["fc3"]})
