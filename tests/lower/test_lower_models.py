"""Lowering the required timm families: MACs against torch's flop counter, and the graph's shape."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from accelsim.eval.accuracy import torch_macs
from accelsim.ir import Graph, OpKind

REQUIRED_MODELS = [
    "deit_tiny_patch16_224",
    "deit_small_patch16_224",
    "deit_base_patch16_224",
    "deit_tiny_distilled_patch16_224",
    "deit_small_distilled_patch16_224",
    "deit_base_distilled_patch16_224",
    "vit_tiny_patch16_224",
    "vit_small_patch16_224",
    "vit_base_patch16_224",
    "swin_tiny_patch4_window7_224",
    "crossvit_9_240",
    "efficientvit_b0",
    "efficientvit_b1",
    "efficientvit_b2",
    "efficientvit_b3",
]


def flop_counter_macs(name: str, shape: list[int]) -> int:
    """FLOPs / 2 of one forward as ``torch.utils.flop_counter`` counts them (weights not needed).

    ``torch_macs`` forces the math SDPA backend, so the count does not depend on whether this
    torch's counter sees its fused attention kernel (torch 2.14's does not).
    """
    import timm

    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False).eval()
    return torch_macs(model, torch.zeros(shape, device="meta"))


@pytest.mark.slow
@pytest.mark.parametrize("name", REQUIRED_MODELS)
def test_macs_match_flop_counter(name: str, lowered: Callable[..., Graph]) -> None:
    g = lowered(name)
    ref = flop_counter_macs(name, g.meta["input_shape"])
    assert ref > 0
    assert g.total_macs + g.meta["folded_macs"] == ref  # exactly; none of these folds any MACs
    assert g.meta["folded_macs"] == 0
    # MACs sit only on MAC kinds, and every op is attributed to a module and an ATen target.
    assert all(
        op.macs == 0
        for op in g.ops()
        if op.kind not in {OpKind.MATMUL, OpKind.CONV2D, OpKind.DWCONV2D, OpKind.LINEAR_ATTENTION}
    )
    assert all(op.target for op in g.ops())
    assert all(op.module_type for op in g.ops())


def test_deit_tiny_macs_hand_computed(lowered: Callable[..., Graph]) -> None:
    """DeiT-Tiny at 224: 197 tokens, width 192, 12 blocks, 3 heads, MLP 768, 1000 classes."""
    g = lowered("deit_tiny_patch16_224")
    t, d, mlp = 197, 192, 768
    per_block = t * d * 3 * d + 2 * 3 * t * t * (d // 3) + t * d * d + 2 * t * d * mlp
    patch_embed = 196 * d * 3 * 16 * 16
    head = d * 1000
    assert g.total_macs == 12 * per_block + patch_embed + head == 1_253_683_200


def test_vit_attention_operands_and_module_paths(lowered: Callable[..., Graph]) -> None:
    g = lowered("deit_tiny_patch16_224")
    attn = [op for op in g.ops() if op.module.startswith("blocks.0.attn")]
    matmuls = [op for op in attn if op.kind == OpKind.MATMUL]
    by_module = {op.module: op for op in matmuls if op.module != "blocks.0.attn"}
    assert set(by_module) == {"blocks.0.attn.qkv", "blocks.0.attn.proj"}
    qkv = by_module["blocks.0.attn.qkv"]
    assert qkv.attrs["operands"] == "wa"
    assert (qkv.attrs["batch"], qkv.attrs["M"], qkv.attrs["K"], qkv.attrs["N"]) == (1, 197, 192, 576)
    assert qkv.inputs[1] == "blocks.0.attn.qkv.weight" and g.tensors[qkv.inputs[1]].weight
    assert qkv.module_type == "torch.nn.modules.linear.Linear"
    assert qkv.attrs["in_shapes"] == [[1, 197, 192], [576, 192], [576]]
    aa = [op for op in matmuls if op.module == "blocks.0.attn"]
    assert [op.attrs["operands"] for op in aa] == ["aa", "aa"]
    # q @ k^T then softmax then attn @ v, 3 heads of 64
    assert [(op.attrs["batch"], op.attrs["M"], op.attrs["K"], op.attrs["N"]) for op in aa] == [
        (3, 197, 64, 197),
        (3, 197, 197, 64),
    ]
    softmax = [op for op in attn if op.kind == OpKind.SOFTMAX]
    assert len(softmax) == 1 and softmax[0].attrs["rows"] == 3 * 197 and softmax[0].attrs["length"] == 197
    assert g.producer(softmax[0].inputs[0]) == aa[0].name and softmax[0].outputs[0] == aa[1].inputs[0]
    # no dropout, clone or alias survives
    assert not any("dropout" in op.target or "clone" in op.target for op in g.ops())
    assert g.tensors["input" if "input" in g.tensors else g.inputs[0]].shape == (1, 3, 224, 224)
    assert g.tensors[g.outputs[0]].shape == (1, 1000)


def test_cls_token_and_pos_embed_are_weights(lowered: Callable[..., Graph]) -> None:
    g = lowered("deit_tiny_patch16_224")
    cat = next(op for op in g.ops() if op.kind == OpKind.CONCAT)
    assert g.tensors[cat.inputs[0]].weight and cat.inputs[0].startswith("cls_token")
    add = next(op for op in g.ops() if op.kind == OpKind.ELTWISE and "pos_embed" in op.inputs)
    assert g.tensors["pos_embed"].weight and g.tensors["pos_embed"].shape == (1, 197, 192)
    assert add.attrs["fn"] == "add"


def test_bits_follow_arguments(lowered: Callable[..., Graph]) -> None:
    g = lowered("deit_tiny_patch16_224", wbits=4, abits=6)
    assert {t.bits for t in g.tensors.values() if t.weight} == {4}
    assert {t.bits for t in g.tensors.values() if not t.weight} == {6}
    assert g.meta["wbits"] == 4 and g.meta["abits"] == 6


def test_efficientvit_linear_attention_and_convs(lowered: Callable[..., Graph]) -> None:
    g = lowered("efficientvit_b1")
    la = [op for op in g.ops() if op.kind == OpKind.LINEAR_ATTENTION]
    # B1 has LiteMLA in stages 3 (3 blocks at 14x14) and 4 (4 blocks at 7x7)
    assert len(la) == 7
    assert all(op.module_type.endswith("LiteMLA") for op in la)
    first = la[0]
    # heads = 2 * 128 / 16 (multi-scale doubles them), tokens 14 * 14, head dim 16
    b, h, t, d = first.attrs["batch"], first.attrs["heads"], first.attrs["tokens"], first.attrs["head_dim"]
    assert (b, h, t, d) == (1, 16, 196, 16)
    assert first.macs == 2 * b * h * t * d * (d + 1)
    assert first.attrs["kernel"] == "relu" and first.attrs["eps"] == pytest.approx(1e-5)
    # no softmax, no loose attention matmul or ReLU kernel left inside LiteMLA
    assert not any(op.kind == OpKind.SOFTMAX for op in g.ops())
    assert not any(op.kind == OpKind.MATMUL and op.module_type.endswith("LiteMLA") for op in g.ops())
    assert not any(op.module.endswith("kernel_func") for op in g.ops())
    # multi-scale aggregation: a 5x5 depthwise conv and a grouped 1x1 conv stay ordinary ops
    agg = {op.module: op for op in g.ops() if ".aggreg." in op.module and op.module.startswith(first.module)}
    dw, grouped = agg[f"{first.module}.aggreg.0.0"], agg[f"{first.module}.aggreg.0.1"]
    assert dw.kind == OpKind.DWCONV2D and dw.attrs["kh"] == 5 and dw.attrs["groups"] == dw.attrs["in_ch"]
    assert grouped.kind == OpKind.CONV2D and grouped.attrs["groups"] == 3 * 8 and grouped.attrs["kh"] == 1
    # MBConv depthwise convs are dwconv2d; BatchNorm is folded away
    depth = [op for op in g.ops() if op.module.endswith("depth_conv.conv")]
    assert depth and all(op.kind == OpKind.DWCONV2D for op in depth)
    assert not any(op.kind == OpKind.BATCHNORM for op in g.ops())
    folded = [op for op in g.ops() if "folded_bn" in op.attrs]
    assert folded and all(op.inputs[1].endswith(":bn_folded") and op.attrs["bias"] for op in folded)


def test_swin_folds_relative_position_bias(lowered: Callable[..., Graph]) -> None:
    g = lowered("swin_tiny_patch4_window7_224")
    assert "layers.0.blocks.0.attn.relative_position_bias_table" not in g.tensors
    bias = [
        t
        for t in g.tensors.values()
        if t.name.startswith("layers.0.blocks.0.attn.relative_position_bias_table:")
    ]
    assert len(bias) == 1 and bias[0].weight and bias[0].shape == (1, 3, 49, 49)
    (consumer,) = g.consumers(bias[0].name)
    assert g.op(consumer).kind == OpKind.ELTWISE
    # shifted windows: a roll before and after the attention of every odd block
    rolls = [op for op in g.ops() if op.target == "aten.roll.default"]
    assert len(rolls) == 2 * (1 + 3 + 1) and all(op.kind == OpKind.GATHER for op in rolls)


def test_crossvit_has_both_branches(lowered: Callable[..., Graph]) -> None:
    g = lowered("crossvit_9_240")
    assert g.meta["input_shape"] == [1, 3, 240, 240]
    embeds = [op for op in g.ops() if op.kind == OpKind.CONV2D]
    assert sorted(op.module for op in embeds) == ["patch_embed.0.proj", "patch_embed.1.proj"]
    # the small branch sees the image resized to 224 (bicubic), which costs no MACs
    resize = [op for op in g.ops() if op.kind == OpKind.POOL and op.attrs["fn"] == "bicubic"]
    assert len(resize) == 1 and resize[0].macs == 0


def test_json_round_trip(lowered: Callable[..., Graph], tmp_path) -> None:
    for name in ("deit_tiny_patch16_224", "efficientvit_b1"):
        g = lowered(name)
        back = Graph.load(g.save(tmp_path / f"{name}.json"))
        assert back == g
        assert back.total_macs == g.total_macs
        assert [op.name for op in back.ops()] == [op.name for op in g.ops()]


def test_smaller_image_lowers(lowered: Callable[..., Graph]) -> None:
    g = lowered("deit_tiny_patch16_224", img_size=64)
    assert g.meta["input_shape"] == [1, 3, 64, 64]
    t, d, mlp = 17, 192, 768
    per_block = t * d * 3 * d + 2 * t * t * d + t * d * d + 2 * t * d * mlp
    assert g.total_macs == 12 * per_block + 16 * d * 3 * 256 + d * 1000
