"""Model growth: the partial mapping by hand, Mango's tensor-ring operator against the dense
operator it factorises, function preservation, stacking, operator training, bad configs."""

from __future__ import annotations

import itertools

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from accelsim.compress import compress
from accelsim.compress.grow import (
    GrowthShape,
    MangoOperator,
    build_target,
    grow_model,
    grown_parameters,
    growth_shape,
    partial_mapping,
)
from accelsim.config.compression import GrowConfig
from accelsim.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_vit(embed_dim: int = 32, depth: int = 2, **kw: object) -> VisionTransformer:
    torch.manual_seed(0)
    args = dict(img_size=16, patch_size=4, embed_dim=embed_dim, depth=depth, num_heads=embed_dim // 16)
    args.update(num_classes=10, **kw)
    model = VisionTransformer(**args).eval()  # type: ignore[arg-type]
    with torch.no_grad():  # timm zero-initialises biases and the class token: make every tensor count
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_partial_mapping_by_hand() -> None:
    # width 2 -> 5: target units copy source units 0 1 0 1 0 (unit 0 three times, unit 1 twice)
    out, inp, depth = partial_mapping(GrowthShape(2, 2, 5, 3, head_dim=1, mlp_ratio=1))
    assert out.tolist() == [[1, 0, 1, 0, 1], [0, 1, 0, 1, 0]]
    third, half = 1 / 3, 1 / 2
    torch.testing.assert_close(inp, torch.tensor([[third, 0, third, 0, third], [0, half, 0, half, 0]]))
    assert depth.tolist() == [[1, 0, 1], [0, 1, 0]]  # target blocks 0 1 2 <- source blocks 0 1 0


def test_operator_core_shapes() -> None:
    # the reference DeiT (96 wide, 4 blocks, MLP ratio 4) grown to 192 wide, 6 blocks
    op = MangoOperator(GrowthShape(96, 4, 192, 6, head_dim=32, mlp_ratio=4), rank=3)
    assert op.s_b.shape == (3, 12, 12, 3)  # Q, K, V, O + 4 + 4 MLP pieces
    assert op.s_o.shape == op.s_i.shape == (3, 96, 192, 3)
    assert op.s_l.shape == (3, 4, 6, 3)
    assert sum(p.numel() for p in op.parameters()) == 9 * (144 + 2 * 96 * 192 + 24)
    one = MangoOperator(GrowthShape(96, 4, 192, 6, head_dim=32, mlp_ratio=4))
    assert one.grow_matrices(torch.zeros(12, 96, 96, 4)).shape == (12, 192, 192, 6)


def test_tensor_ring_contraction_is_the_full_operator() -> None:
    # Mango: M2 = S vec(M1) with S[b1 o1 i1 l1, b2 o2 i2 l2] = tr(S_B[b1,b2] S_O[o1,o2] S_I[i1,i2] S_L[l1,l2]);
    # build the dense S term by term over the ring indices and compare with the contraction
    shape = GrowthShape(2, 2, 3, 3, head_dim=1, mlp_ratio=1)  # B = 6 pieces
    op = MangoOperator(shape, rank=2, init_noise=1.0, seed=3)
    rank = 2
    dense = torch.zeros(6, 2, 2, 2, 6, 3, 3, 3)
    for r1, r2, r3, r4 in itertools.product(range(rank), repeat=4):
        dense += torch.einsum(
            "ae,bf,cg,dh->abcdefgh",
            op.s_b[r1, :, :, r2],
            op.s_o[r2, :, :, r3],
            op.s_i[r3, :, :, r4],
            op.s_l[r4, :, :, r1],
        ).detach()
    m1 = torch.randn(6, 2, 2, 2, generator=torch.Generator().manual_seed(4))
    expected = (m1.reshape(1, -1) @ dense.reshape(48, -1)).reshape(6, 3, 3, 3)
    torch.testing.assert_close(op.grow_matrices(m1).detach(), expected, rtol=1e-5, atol=1e-5)


def test_width_growth_by_whole_copies_preserves_the_function(x: torch.Tensor) -> None:
    model = tiny_vit()
    for method in ("bert2bert", "mango"):  # Mango's operator starts at the partial mapping
        wide = grow_model(model, GrowConfig(embed_dim=64, depth=2, method=method, operator_steps=0))  # type: ignore[arg-type]
        assert wide.embed_dim == 64 and wide.blocks[0].attn.num_heads == 4  # type: ignore[union-attr]
        torch.testing.assert_close(wide(x), model(x), rtol=1e-4, atol=1e-5)
    # 32 -> 48: units copied once or not at all, so LayerNorm sees other statistics
    uneven = grow_model(model, GrowConfig(embed_dim=48, depth=2, method="bert2bert"))
    assert not torch.allclose(uneven(x), model(x), atol=1e-3)
    assert all(type(b).__name__ == "Block" for b in model.blocks) and model.embed_dim == 32


def test_depth_growth_stacks_the_blocks() -> None:
    model = tiny_vit()
    deep = grow_model(model, GrowConfig(embed_dim=32, depth=5, method="bert2bert"))
    src, out = model.state_dict(), deep.state_dict()
    for layer in range(5):
        for name, value in model.blocks[layer % 2].state_dict().items():
            torch.testing.assert_close(out[f"blocks.{layer}.{name}"], value, rtol=0, atol=0)
    for name in ("cls_token", "pos_embed", "patch_embed.proj.weight", "head.weight", "norm.bias"):
        torch.testing.assert_close(out[name], src[name], rtol=0, atol=0)


def _digits(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    from accelsim.eval.datasets import load_digits_splits

    train, _ = load_digits_splits(img_size=16).loaders(32, shuffle_train=True)
    return [b for b, _ in zip(train, range(n), strict=False)]


def test_every_core_gets_a_gradient_that_lowers_the_loss() -> None:
    from torch.func import functional_call

    model = tiny_vit()
    shape = growth_shape(model, GrowConfig(embed_dim=48, depth=3))
    op = MangoOperator(shape, rank=2, init_noise=1e-2)
    target = build_target(model, shape)
    g = torch.Generator().manual_seed(2)
    xb, yb = torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)

    def loss() -> torch.Tensor:
        return nn.functional.cross_entropy(functional_call(target, grown_parameters(model, op), (xb,)), yb)

    before = loss()
    before.backward()
    for name, p in op.named_parameters():  # the off-ring slices too: all source weights reach all targets
        assert p.grad is not None and float(p.grad[1, :, :, 1].abs().sum()) > 0, name
    with torch.no_grad():
        for p in op.parameters():
            p -= 1e-3 * p.grad / p.grad.norm()
    assert float(loss().detach()) < float(before.detach())
    assert all(p.grad is None for p in model.parameters())  # the source is not trained


@pytest.mark.slow
def test_the_operator_trains_inside_grow_model() -> None:
    model = tiny_vit()
    cfg = GrowConfig(embed_dim=48, depth=3, rank=2, operator_steps=3, operator_lr=1e-2)
    grown = grow_model(model, cfg, _digits(2))
    init = grow_model(model, cfg.model_copy(update={"operator_steps": 0}))
    assert isinstance(grown, VisionTransformer) and len(grown.blocks) == 3
    name = "blocks.2.mlp.fc2.weight"
    assert not torch.equal(grown.state_dict()[name], init.state_dict()[name])


def test_grow_is_the_first_recipe_step(x: torch.Tensor) -> None:
    model = tiny_vit()
    out = compress(model, {"grow": {"embed_dim": 64, "depth": 3, "method": "bert2bert"}})
    assert out.embed_dim == 64 and len(out.blocks) == 3  # type: ignore[union-attr]
    assert out(x).shape == (3, 10) and model.embed_dim == 32


@pytest.mark.slow
def test_the_grown_model_lowers_at_the_target_width_and_depth() -> None:
    from accelsim.ir import OpKind
    from accelsim.lower import lower

    grown = grow_model(tiny_vit(), GrowConfig(embed_dim=64, depth=3, method="bert2bert"))
    graph = lower(grown, (1, 3, 16, 16))
    qkv = [op for op in graph.ops() if op.kind == OpKind.MATMUL and op.module.endswith("attn.qkv")]
    # 16 patches + CLS, width 64 -> 3 x 64
    assert [(op.attrs["M"], op.attrs["K"], op.attrs["N"]) for op in qkv] == [(17, 64, 192)] * 3


def test_bad_growth_configs_are_config_errors() -> None:
    model = tiny_vit()
    with pytest.raises(
        ConfigError, match=r"grow\.embed_dim: must be at least the model's width 32 and a multiple"
    ):
        grow_model(model, GrowConfig(embed_dim=40, depth=2))
    with pytest.raises(ConfigError, match=r"grow\.embed_dim: .*\(got 16\)"):
        grow_model(model, GrowConfig(embed_dim=16, depth=2))
    with pytest.raises(ConfigError, match=r"grow\.depth: must be at least the model's depth 2 \(got 1\)"):
        grow_model(model, GrowConfig(embed_dim=32, depth=1))
    with pytest.raises(ConfigError, match=r"grow: needs a timm VisionTransformer \(got Linear\)"):
        grow_model(nn.Linear(2, 2), GrowConfig(embed_dim=32, depth=2))
    with pytest.raises(ConfigError, match=r"grow: the Mango operator trains on train_data \(got None\)"):
        grow_model(model, GrowConfig(embed_dim=64, depth=2))
