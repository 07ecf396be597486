"""Token reduction: static token counts per block, exact selection/merging, export, bad recipes."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from accelsim.compress.tokens import (
    attention_with_scores,
    evit_select,
    pool_kernel,
    reduce_tokens,
    semantic_grid,
    token_counts,
    tome_merge,
)
from accelsim.config._base import validate_config
from accelsim.config.compression import TokenConfig
from accelsim.errors import ConfigError

PATCHES = 64  # 32x32 image, 4x4 patches


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_vit(depth: int = 4, **kw: object) -> VisionTransformer:
    torch.manual_seed(0)
    args = dict(img_size=32, patch_size=4, embed_dim=32, depth=depth, num_heads=2, num_classes=10)
    args.update(kw)
    return VisionTransformer(**args).eval()  # type: ignore[arg-type]


def block_input_tokens(model: nn.Module, x: torch.Tensor) -> list[int]:
    seen: list[int] = []
    hooks = [b.register_forward_hook(lambda m, a, o: seen.append(a[0].shape[1])) for b in model.blocks]
    mlp_seen: list[int] = []
    hooks += [
        b.mlp.register_forward_hook(lambda m, a, o: mlp_seen.append(a[0].shape[1])) for b in model.blocks
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen + mlp_seen


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def test_evit_keep_half_halves_the_tokens_of_later_blocks(x: torch.Tensor) -> None:
    model = tiny_vit()
    reduced = reduce_tokens(
        model, TokenConfig(method="evit", keep_rate=0.5, at_blocks=[1], fuse_inattentive=False)
    )
    # block inputs 65, 65, then cls + 32; the MLP of block 1 already sees the reduced tokens
    blocks, mlps = [65, 65, 33, 33], [65, 33, 33, 33]
    assert block_input_tokens(reduced, x) == [*blocks, *mlps]
    assert token_counts(reduced) == [65, 65, 33, 33]
    fused = reduce_tokens(model, TokenConfig(method="evit", keep_rate=0.5, at_blocks=[1, 2]))
    # with the fused inattentive token: 1 + 32 + 1 = 34, then 1 + round(0.5 * 33) + 1 = 19
    assert token_counts(fused) == [65, 65, 34, 19] == block_input_tokens(fused, x)[:4]
    assert reduced(x).shape == fused(x).shape == (2, 10)
    assert all(type(b).__name__ == "Block" for b in model.blocks)  # the input is untouched
    assert list(reduced.state_dict()) == list(model.state_dict())  # module paths are kept


def test_evit_takes_one_keep_rate_per_block(x: torch.Tensor) -> None:
    """HeatViT's schedule: a rate per stage, each of the tokens reaching that block."""
    cfg = TokenConfig(method="evit", keep_rate=[0.5, 0.25], at_blocks=[1, 3], fuse_inattentive=False)
    assert cfg.keep_rates == [0.5, 0.25]
    reduced = reduce_tokens(tiny_vit(depth=5), cfg)
    # 64 patches -> round(0.5 * 64) = 32 at block 1 -> round(0.25 * 32) = 8 at block 3 (whose MLP
    # already sees them)
    assert token_counts(reduced) == [65, 65, 33, 33, 9] == block_input_tokens(reduced, x)[:5]
    with pytest.raises(
        ConfigError, match=r"keep_rate: a list needs one rate per block of at_blocks \(2\), got 1"
    ):
        validate_config(TokenConfig, {"keep_rate": [0.5], "at_blocks": [1, 3]})
    with pytest.raises(ConfigError, match=r"keep_rate: method 'pool' takes one rate"):
        validate_config(TokenConfig, {"method": "pool", "keep_rate": [0.5]})


def test_evit_at_the_last_block_leaves_the_class_token_output_unchanged(x: torch.Tensor) -> None:
    # the MLP is per token, so dropping tokens after the last attention cannot change token 0
    model = tiny_vit()
    reduced = reduce_tokens(model, TokenConfig(method="evit", keep_rate=0.25, at_blocks=[3]))
    torch.testing.assert_close(reduced(x), model(x))
    earlier = reduce_tokens(model, TokenConfig(method="evit", keep_rate=0.25, at_blocks=[1]))
    assert not torch.allclose(earlier(x), model(x), atol=1e-4)


def test_unfused_attention_matches_timm_attention(x: torch.Tensor) -> None:
    model = tiny_vit()
    tokens = model._pos_embed(model.patch_embed(x))
    attn = model.blocks[0].attn
    out, cls_attn, keys = attention_with_scores(attn, tokens)
    torch.testing.assert_close(out, attn(tokens))
    torch.testing.assert_close(cls_attn.sum(-1), torch.ones(2))  # a softmax row, mean over heads
    assert keys.shape == (2, 65, 16)


def test_evit_select_by_hand() -> None:
    # 1 prefix + 4 tokens with values 10, 20, 30, 40; class attention to them .1 .4 .2 .3
    x = torch.tensor([[[0.0], [10.0], [20.0], [30.0], [40.0]]])
    cls_attn = torch.tensor([[0.0, 0.1, 0.4, 0.2, 0.3]])
    out = evit_select(x, cls_attn, num_prefix=1, keep=2, fuse=True)
    # keep 20 (.4) and 40 (.3); fuse 10 and 30 weighted .1/.2: (1 + 6) / .3 = 23.33
    torch.testing.assert_close(out, torch.tensor([[[0.0], [20.0], [40.0], [70.0 / 3]]]))
    assert evit_select(x, cls_attn, 1, 2, fuse=False).shape == (1, 3, 1)


def test_tome_merge_by_hand() -> None:
    # prefix (5) + tokens t0..t3 = 1, 2, 3, 4 with keys t0 = [1, 0], t1 = [0, 1], t2 = [.6, .8],
    # t3 = [1, .05]. A = (t0, t2), B = (t1, t3). Cosines: t0-t1 0, t0-t3 1/sqrt(1.0025) = .99875,
    # t2-t1 .8, t2-t3 .64/1.00125 = .639. Best edges: t0->t3 (.99875), t2->t1 (.8); r = 1 merges
    # t0 into t3: (1 + 4) / 2 = 2.5. Output: prefix, unmerged A (t2), then B (t1, t3).
    metric = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [1.0, 0.05]]])
    x = torch.tensor([[[5.0], [1.0], [2.0], [3.0], [4.0]]])
    torch.testing.assert_close(
        tome_merge(x, metric, num_prefix=1, r=1), torch.tensor([[[5.0], [3.0], [2.0], [2.5]]])
    )
    # r = 2 also merges t2 into t1: (3 + 2) / 2
    torch.testing.assert_close(
        tome_merge(x, metric, num_prefix=1, r=2), torch.tensor([[[5.0], [2.5], [2.5]]])
    )


@pytest.mark.slow
@pytest.mark.parametrize("method", ["evit", "tome"])
def test_reduced_models_export_with_static_shapes(x: torch.Tensor, method: str) -> None:
    model = tiny_vit(depth=3)
    reduced = reduce_tokens(model, TokenConfig(method=method, keep_rate=0.5, at_blocks=[0, 1]))  # type: ignore[arg-type]
    exported = torch.export.export(reduced, (x,))
    torch.testing.assert_close(exported.module()(x), reduced(x))
    targets = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert {"aten.topk.default", "aten.gather.default"} <= targets
    expected = [65, 33, 17] if method == "tome" else [65, 34, 19]  # evit: 1 + round(33 / 2) + 1
    assert token_counts(reduced) == expected


def test_tome_halves_tokens_and_works_without_class_token(x: torch.Tensor) -> None:
    model = tiny_vit(class_token=False, global_pool="avg")
    reduced = reduce_tokens(model, TokenConfig(method="tome", keep_rate=0.5, at_blocks=[1]))
    assert block_input_tokens(reduced, x)[:4] == [64, 64, 32, 32]
    assert reduced(x).shape == (2, 10)


def test_bad_token_recipes_are_config_errors() -> None:
    model = tiny_vit()
    with pytest.raises(
        ConfigError, match=r"tokens\.at_blocks: block 4 does not exist \(the model has blocks 0\.\.3\)"
    ):
        reduce_tokens(model, TokenConfig(at_blocks=[4]))
    with pytest.raises(
        ConfigError, match=r"tokens\.keep_rate: ToMe merges at most 32 of the 64 tokens at block 1"
    ):
        reduce_tokens(model, TokenConfig(method="tome", keep_rate=0.3))
    with pytest.raises(ConfigError, match=r"tokens\.keep_rate: 0\.001 keeps 0 of the 64 tokens at block 1"):
        reduce_tokens(model, TokenConfig(keep_rate=0.001))
    with pytest.raises(ConfigError, match=r"tokens\.method: 'evit' ranks tokens by class-token attention"):
        reduce_tokens(tiny_vit(class_token=False, global_pool="avg"), TokenConfig())
    with pytest.raises(ConfigError, match=r"tokens: token reduction needs a timm VisionTransformer"):
        reduce_tokens(nn.Linear(2, 2), TokenConfig())
    with pytest.raises(ConfigError, match=r"keep_rate: Input should be less than or equal to 1"):
        validate_config(TokenConfig, {"keep_rate": 1.5})


@pytest.mark.slow
def test_lowered_graph_carries_the_reduced_token_counts() -> None:
    from accelsim.ir import OpKind
    from accelsim.lower import lower

    model = tiny_vit()
    graph = lower(reduce_tokens(model, TokenConfig(keep_rate=0.5, at_blocks=[1])), (1, 3, 32, 32))
    selects = [op for op in graph.ops() if op.kind == OpKind.TOKEN_SELECT and op.attrs["channels"] == 32]
    assert [(op.attrs["tokens_in"], op.attrs["tokens_out"]) for op in selects] == [(64, 32)]
    # token-by-weight matmuls (M = tokens) per block: 65 before the cut, 34 = 1 + 32 + 1 after it
    rows = {}
    for op in graph.ops():
        if op.kind == OpKind.MATMUL and op.attrs.get("operands") == "wa" and op.module.startswith("blocks."):
            rows.setdefault(op.module.split(".")[1], set()).add(op.attrs["M"])
    assert rows == {"0": {65}, "1": {65, 34}, "2": {34}, "3": {34}}


# -- grid pooling (EfficientViT) ----------------------------------------------------------------


def tiny_efficientvit() -> nn.Module:
    from timm.models.efficientvit_mit import EfficientVit

    torch.manual_seed(0)
    return EfficientVit(widths=(8, 16, 16, 32), depths=(1, 1, 1, 2), head_dim=8, head_widths=(32, 32)).eval()


@pytest.mark.parametrize(
    ("keep_rate", "kernel"),
    [(1.0, (1, 1)), (0.5, (1, 2)), (1 / 3, (1, 3)), (0.25, (2, 2)), (1 / 6, (2, 3)), (0.125, (2, 4))],
)
def test_pool_kernel_is_the_squarest_neighbourhood_of_1_over_keep_rate(
    keep_rate: float, kernel: tuple[int, int]
) -> None:
    assert pool_kernel(keep_rate) == kernel


def test_pool_averages_neighbouring_tokens_and_the_rest_of_the_model_is_unchanged() -> None:
    model = tiny_efficientvit()
    reduced = reduce_tokens(model, TokenConfig(method="pool", keep_rate=0.5, at_blocks=[3]))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    blocks = [blk for stage in model.stages for blk in stage.blocks]
    with torch.no_grad():
        h = model.stem(x)
        for blk in blocks[:3]:
            h = blk(h)
        b, c, rows, cols = h.shape
        assert (rows, cols) == (4, 4)
        h = h.reshape(b, c, rows, cols // 2, 2).mean(-1)  # each token with its right-hand neighbour
        for blk in blocks[3:]:
            h = blk(h)
        expected = model.forward_head(h)
        torch.testing.assert_close(reduced(x), expected, rtol=1e-5, atol=1e-6)
    assert reduced.state_dict().keys() == model.state_dict().keys()
    assert type(blocks[3]).__name__ == "EfficientVitBlock"  # the original is untouched


@pytest.mark.slow
def test_pool_halves_the_tokens_of_every_later_linear_attention_in_the_graph() -> None:
    from accelsim.ir import OpKind
    from accelsim.lower import lower

    model = tiny_efficientvit()
    reduced = reduce_tokens(model, TokenConfig(method="pool", keep_rate=0.5, at_blocks=[3]))

    def attention_tokens(m: nn.Module) -> list[int]:
        graph = lower(m, (1, 3, 64, 64))
        return [op.attrs["tokens"] for op in graph.ops() if op.kind == OpKind.LINEAR_ATTENTION]

    assert attention_tokens(model) == [16, 16]
    assert attention_tokens(reduced) == [8, 8]


def test_pool_at_an_odd_side_keeps_the_last_token() -> None:
    model = tiny_efficientvit()
    reduced = reduce_tokens(model, TokenConfig(method="pool", keep_rate=0.25, at_blocks=[3]))
    seen: list[tuple[int, ...]] = []
    blk = [b for stage in reduced.stages for b in stage.blocks][3]
    hook = blk.context_module.register_forward_hook(lambda m, a, o: seen.append(tuple(a[0].shape[-2:])))
    with torch.no_grad():
        reduced(torch.randn(1, 3, 96, 96))  # the grid at block 3 is 6x6 -> 3x3
        reduced(torch.randn(1, 3, 80, 80))  # 5x5 -> 3x3 (ceil)
    hook.remove()
    assert seen == [(3, 3), (3, 3)]


def test_bad_grid_token_recipes_are_config_errors() -> None:
    model = tiny_efficientvit()
    with pytest.raises(ConfigError, match=r"tokens\.method: EfficientVit keeps its tokens on a spatial grid"):
        reduce_tokens(model, TokenConfig(method="evit"))
    with pytest.raises(ConfigError, match=r"tokens\.keep_rate: 'pool' merges whole neighbourhoods.*got 0\.6"):
        reduce_tokens(model, TokenConfig(method="pool", keep_rate=0.6))
    with pytest.raises(ConfigError, match=r"tokens\.at_blocks: block 5 does not exist .*blocks 0\.\.4\)"):
        reduce_tokens(model, TokenConfig(method="pool", at_blocks=[5]))
    with pytest.raises(ConfigError, match=r"tokens\.method: 'pool' needs tokens on a spatial grid"):
        reduce_tokens(tiny_vit(), TokenConfig(method="pool"))


# -- semantic tokens (STViT) ------------------------------------------------------------------------


def semantic(tokens: int, at: int, **kw: object) -> TokenConfig:
    return TokenConfig(method="semantic", tokens=tokens, at=at, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tokens", "grid", "shape"),
    [
        (16, (14, 14), (4, 4)),
        (8, (4, 4), (2, 4)),
        (4, (4, 4), (2, 2)),
        (6, (8, 8), (2, 3)),
        (5, (8, 8), (1, 5)),
    ],
)
def test_semantic_grid_is_the_squarest_that_fits(
    tokens: int, grid: tuple[int, int], shape: tuple[int, int]
) -> None:
    assert semantic_grid(tokens, grid) == shape


def test_semantic_tokens_replace_the_patch_tokens_from_block_at(x: torch.Tensor) -> None:
    model = tiny_vit()
    reduced = reduce_tokens(model, semantic(4, at=1))
    # block 1 pools 64 patch tokens into 4; blocks 1 and 2 (the STGM) attend over cls + 4 + 64, and
    # from block 1 on every MLP sees cls + 4 tokens
    assert token_counts(reduced) == [65, 65, 69, 5]
    assert block_input_tokens(reduced, x) == [65, 65, 69, 5, 65, 5, 5, 5]
    assert reduced(x).shape == (2, 10)
    assert list(reduced.state_dict()) == list(model.state_dict())  # the blocks keep their weights
    one = reduce_tokens(model, semantic(4, at=2, stgm_layers=1))
    assert token_counts(one) == [65, 65, 65, 5]


def test_semantic_block_by_hand() -> None:
    # the first STGM block = pool the patch grid, then a timm Block whose queries are cls + semantic
    # tokens and whose keys/values are cls + semantic + patch tokens
    model = tiny_vit()
    reduced = reduce_tokens(model, semantic(4, at=0, stgm_layers=1, pool="avg"))
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        h = model.patch_drop(model._pos_embed(model.patch_embed(x)))
        cls, patches = h[:, :1], h[:, 1:]
        grid = patches.reshape(2, 2, 4, 2, 4, 32)  # 8x8 grid -> 2x2 cells of 4x4 patches
        pooled = grid.mean(dim=(2, 4)).reshape(2, 4, 32)
        z = torch.cat([cls, pooled, patches], dim=1)
        blk, attn = model.blocks[0], model.blocks[0].attn
        zn = blk.norm1(z)
        q = attn.qkv(zn[:, :5])[..., :32].reshape(2, 5, 2, 16).transpose(1, 2)
        kv = attn.qkv(zn)[..., 32:].reshape(2, 69, 2, 2, 16).permute(2, 0, 3, 1, 4)
        a = ((q * attn.scale) @ kv[0].transpose(-1, -2)).softmax(-1) @ kv[1]
        t = z[:, :5] + attn.proj(a.transpose(1, 2).reshape(2, 5, 32))
        t = t + blk.mlp(blk.norm2(t))
        for b in model.blocks[1:]:
            t = b(t)
        expected = model.forward_head(model.norm(t))
        torch.testing.assert_close(reduced(x), expected, rtol=1e-5, atol=1e-5)


def test_max_pool_takes_the_largest_patch_feature_of_each_cell() -> None:
    reduced: Any = reduce_tokens(tiny_vit(), semantic(4, at=0))
    blk = reduced.blocks[0]
    patches = torch.arange(64, dtype=torch.float32).reshape(1, 64, 1)  # row-major 8x8 grid
    # cells of 4x4 patches; the largest index of each is its bottom-right patch
    assert blk._pool(patches).flatten().tolist() == [27.0, 31.0, 59.0, 63.0]


def _macs_by_hand(tokens: list[tuple[int, int]], c: int = 32, heads: int = 2, classes: int = 10) -> int:
    """MACs of tiny_vit whose block i has (query tokens, key tokens); qkv runs over the keys."""
    hd = c // heads
    macs = 64 * (3 * 4 * 4) * c  # patch embedding: 64 patches of 3x4x4 pixels
    for q, k in tokens:
        macs += k * c * 3 * c  # qkv over every token the queries see
        macs += 2 * heads * q * k * hd  # q @ k^T and attn @ v
        macs += q * c * c + 2 * q * c * 4 * c  # proj, fc1, fc2
    return macs + c * classes


@pytest.mark.slow
def test_lowered_graph_carries_the_semantic_token_counts_and_macs() -> None:
    from accelsim.ir import OpKind
    from accelsim.lower import lower

    model = tiny_vit()
    full = lower(model, (1, 3, 32, 32))
    graph = lower(reduce_tokens(model, semantic(4, at=1)), (1, 3, 32, 32))
    assert full.total_macs == _macs_by_hand([(65, 65)] * 4)
    assert graph.total_macs == _macs_by_hand([(65, 65), (5, 69), (5, 69), (5, 5)])
    rows: dict[str, set[int]] = {}
    for op in graph.ops():
        if op.kind == OpKind.MATMUL and op.attrs.get("operands") == "wa" and op.module.startswith("blocks."):
            rows.setdefault(op.module.split(".")[1], set()).add(op.attrs["M"])
    # qkv over cls + 4 + 64 in the STGM, everything else over cls + 4
    assert rows == {"0": {65}, "1": {69, 5}, "2": {69, 5}, "3": {5}}
    pools = [op for op in graph.ops() if op.kind == OpKind.POOL and op.attrs["fn"] == "max"]
    assert [op.attrs["elements"] for op in pools] == [64 * 32]
    # and the simulator sees it: the same accelerator runs the reduced graph in fewer cycles
    from accelsim.config.hardware import HardwareConfig
    from accelsim.sim import simulate

    hw = HardwareConfig.load("zcu102")
    assert simulate(graph, hw).total_cycles < simulate(full, hw).total_cycles


def test_bad_semantic_recipes_are_config_errors() -> None:
    model = tiny_vit()
    with pytest.raises(ConfigError, match=r"tokens\.at: the 2-block semantic token generation from block 3"):
        reduce_tokens(model, semantic(4, at=3))
    with pytest.raises(ConfigError, match=r"tokens\.tokens: 64 semantic tokens do not reduce the 64 patch"):
        reduce_tokens(model, semantic(64, at=0))
    with pytest.raises(ConfigError, match=r"tokens\.tokens: 11 semantic tokens make no h x w grid"):
        reduce_tokens(model, semantic(11, at=0))
    with pytest.raises(ConfigError, match=r"method 'semantic' needs at \(S tokens from block k\)"):
        validate_config(TokenConfig, {"method": "semantic", "tokens": 4})
    with pytest.raises(
        ConfigError, match=r"method 'semantic' takes tokens, at, stgm_layers, pool; not keep_rate"
    ):
        validate_config(TokenConfig, {"method": "semantic", "tokens": 4, "at": 1, "keep_rate": 0.7})
    with pytest.raises(
        ConfigError, match=r"at, tokens: only method 'semantic' reads them \(method is 'evit'\)"
    ):
        validate_config(TokenConfig, {"tokens": 4, "at": 1})


def test_a_dumped_semantic_recipe_validates_again() -> None:
    # the search and EvalResult dump recipes with their defaults; they must read back the same
    from accelsim.config.compression import CompressionRecipe

    recipe = CompressionRecipe.model_validate({"tokens": {"method": "semantic", "tokens": 8, "at": 1}})
    assert CompressionRecipe.model_validate(recipe.model_dump(exclude_none=True)) == recipe
    evit = CompressionRecipe.model_validate({"tokens": {"keep_rate": 0.7}})
    assert CompressionRecipe.model_validate(evit.model_dump(exclude_none=True)) == evit
