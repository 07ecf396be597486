"""Structured pruning: exact MAC savings, function preservation, saliency by hand, bad recipes."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from accelsim.compress._saliency import ParamSlice, gradient_saliency, magnitude_saliency
from accelsim.compress.prune import Site, build_sites, plan_pruning, prune_model, select_units
from accelsim.config._base import validate_config
from accelsim.config.compression import PruneConfig
from accelsim.errors import ConfigError
from accelsim.eval.accuracy import torch_macs

# tiny ViT: 32x32 image, 4x4 patches -> 64 patches + cls = 65 tokens, dim 64, 4 heads of 16, MLP 256
N, C, HEADS, HD, HID, CLASSES = 65, 64, 4, 16, 256, 10


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_vit(seed: int = 0, **kw: object) -> VisionTransformer:
    torch.manual_seed(seed)
    args = dict(img_size=32, patch_size=4, embed_dim=C, depth=2, num_heads=HEADS, num_classes=CLASSES)
    args.update(kw)
    return VisionTransformer(**args).eval()  # type: ignore[arg-type]


def macs(model: nn.Module, x: torch.Tensor) -> int:
    return torch_macs(model, x)  # torch's flop counter, math SDPA forced (version-independent)


def vit_macs(c: int, heads: int, hidden: int, depth: int = 2, tokens: int = N) -> int:
    """Hand count: patch embed + per block (qkv, q k^T, attn v, proj, fc1, fc2) + classifier."""
    a = heads * HD
    patch = 64 * c * 3 * 4 * 4
    block = tokens * c * 3 * a + 2 * tokens * tokens * a + tokens * a * c + 2 * tokens * c * hidden
    return patch + depth * block + c * CLASSES


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, 3, 32, 32, generator=g), torch.tensor([0, 3, 7, 9])


def test_half_heads_and_mlp_halve_block_macs(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = tiny_vit()
    x = batch[0][:1]
    assert macs(model, x) == vit_macs(C, HEADS, HID) == 7_668_608
    pruned = prune_model(model, PruneConfig(heads_keep=0.5, mlp_keep=0.5))
    # the blocks' MACs halve exactly: 2 * 3,735,680 -> 2 * 1,867,840; patch embed and head stay
    assert macs(pruned, x) == vit_macs(C, 2, 128) == 3_932_928
    assert [b.attn.num_heads for b in pruned.blocks] == [2, 2]
    assert [b.attn.head_dim for b in pruned.blocks] == [HD, HD]
    assert pruned.blocks[0].attn.qkv.weight.shape == (3 * 2 * HD, C)
    assert pruned.blocks[0].mlp.fc2.weight.shape == (C, 128)
    assert pruned(batch[0]).shape == (4, CLASSES)


def test_embedding_channels_shrink_the_whole_residual_stream(
    batch: tuple[torch.Tensor, torch.Tensor],
) -> None:
    model = tiny_vit()
    pruned = prune_model(model, PruneConfig(heads_keep=0.5, mlp_keep=0.5, embed_keep=0.5))
    assert macs(pruned, batch[0][:1]) == vit_macs(32, 2, 128) == 2_236_864
    assert pruned.cls_token.shape == (1, 1, 32) and pruned.pos_embed.shape == (1, N, 32)
    assert pruned.patch_embed.proj.out_channels == 32 and pruned.norm.normalized_shape == (32,)
    assert pruned.head.in_features == 32 and pruned.embed_dim == pruned.num_features == 32
    exported = torch.export.export(pruned, (batch[0],))
    torch.testing.assert_close(exported.module()(batch[0]), pruned(batch[0]))


def test_input_model_is_not_modified(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = tiny_vit()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prune_model(
        model, PruneConfig(heads_keep=0.5, mlp_keep=0.25, embed_keep=0.75, saliency="hessian"), [batch]
    )
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def _masked_reference(model: VisionTransformer, keep: dict[str, torch.Tensor]) -> VisionTransformer:
    """The unpruned model with the pruned heads' proj columns and neurons' fc2 columns zeroed."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for i, blk in enumerate(ref.blocks):
            heads = keep.get(f"blocks.{i}.attn")
            if heads is not None:
                mask = torch.zeros(HEADS, HD)
                mask[heads] = 1
                blk.attn.proj.weight *= mask.reshape(1, -1)
            neurons = keep.get(f"blocks.{i}.mlp")
            if neurons is not None:
                mask = torch.zeros(blk.mlp.fc2.in_features)
                mask[neurons] = 1
                blk.mlp.fc2.weight *= mask
    return ref


@pytest.mark.parametrize("saliency", ["magnitude", "taylor", "hessian"])
@pytest.mark.parametrize("scope", ["layer", "global", "cross_type"])
def test_pruned_model_equals_masked_original(
    batch: tuple[torch.Tensor, torch.Tensor], saliency: str, scope: str
) -> None:
    model = tiny_vit()
    cfg = PruneConfig(heads_keep=0.5, mlp_keep=0.5, saliency=saliency, scope=scope)  # type: ignore[arg-type]
    _, plan = plan_pruning(copy.deepcopy(model), cfg, [batch])
    pruned = prune_model(model, cfg, [batch])
    torch.testing.assert_close(pruned(batch[0]), _masked_reference(model, plan.keep)(batch[0]))
    if scope != "cross_type":  # the per-type ratios fix the totals
        assert plan.kept("head") == 4 and plan.kept("neuron") == 256


def test_hessian_and_taylor_saliency_match_hand_computation() -> None:
    # toy: logits z = W x with W = [[1, 2], [0, -1]], x = [1, 1], label 0 -> z = [3, -1]
    # dL/dW = (softmax(z) - e_0) x^T; with p1 = 1 / (1 + e^4): row 0 gets -p1, row 1 gets +p1
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, -1.0]]))
    x, y = torch.tensor([[1.0, 1.0]]), torch.tensor([0])
    rows = [(ParamSlice(lin, "weight", 0, torch.arange(2).unsqueeze(1)), 2)]
    p1 = 1 / (1 + math.exp(4))
    hessian = gradient_saliency(lin, [(rows[0][0:1], 2)], [(x, y)], "hessian")[0]
    taylor = gradient_saliency(lin, [(rows[0][0:1], 2)], [(x, y)], "taylor")[0]
    # (sum w g)^2: row 0: ((1 + 2) * -p1)^2 = 9 p1^2; row 1: (-1 * p1)^2 = p1^2
    torch.testing.assert_close(hessian, torch.tensor([9 * p1**2, p1**2], dtype=torch.float64))
    # sum |w g|: row 0: 3 p1; row 1: p1
    torch.testing.assert_close(taylor, torch.tensor([3 * p1, p1], dtype=torch.float64))
    # two batches: the mean of the per-batch squares, not the square of the mean gradient
    x2, y2 = (
        torch.tensor([[1.0, 0.0]]),
        torch.tensor([1]),
    )  # z = [1, 0], label 1: g1 = -(1 - q) e1, q = 1/(1+e)
    q = 1 / (1 + math.exp(-1))  # softmax([1, 0])[0]
    both = gradient_saliency(lin, [(rows[0][0:1], 2)], [(x, y), (x2, y2)], "hessian")[0]
    # batch 2: g row 0 = [q, 0] -> (1 * q)^2; g row 1 = [q - 1, 0] -> (0 * ...)^2 = 0
    torch.testing.assert_close(both, torch.tensor([(9 * p1**2 + q**2) / 2, p1**2 / 2], dtype=torch.float64))
    assert lin.weight.grad is None
    # magnitude: L2 and L1 row norms
    torch.testing.assert_close(
        magnitude_saliency(rows[0][0:1], 2), torch.tensor([5**0.5, 1.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        magnitude_saliency(rows[0][0:1], 2, "l1"), torch.tensor([3.0, 1.0], dtype=torch.float64)
    )


def test_vit_head_saliency_gathers_exactly_the_heads_weights(
    batch: tuple[torch.Tensor, torch.Tensor],
) -> None:
    model = tiny_vit()
    sites = build_sites(model, batch[0], embed=True)
    head_site = next(s for s in sites if s.path == "blocks.1.attn")
    score = gradient_saliency(model, [(head_site.slices, head_site.units)], [batch], "hessian")[0]
    # reference: autograd, then pick head h's q/k/v rows and proj columns by hand
    model.zero_grad()
    nn.functional.cross_entropy(model(batch[0]), batch[1]).backward()
    attn = model.blocks[1].attn
    a = HEADS * HD
    for h in range(HEADS):
        rows = [s * a + h * HD + d for s in range(3) for d in range(HD)]
        cols = list(range(h * HD, (h + 1) * HD))
        wg = (attn.qkv.weight * attn.qkv.weight.grad)[rows].sum() + (attn.qkv.bias * attn.qkv.bias.grad)[
            rows
        ].sum()
        wg = wg + (attn.proj.weight * attn.proj.weight.grad)[:, cols].sum()
        assert float(score[h]) == pytest.approx(float(wg.detach()) ** 2, rel=1e-5)
    model.zero_grad(set_to_none=True)
    assert [s.units for s in sites] == [HEADS, HID, HEADS, HID, C]
    # MACs one unit costs: a head (qkv rows + proj cols + its two attention matmuls), a neuron
    assert head_site.unit_macs == N * (3 * HD * C + HD * C) + 2 * N * N * HD
    assert sites[1].unit_macs == N * 2 * C


def _fake_site(kind: str, path: str, units: int) -> Site:
    return Site(kind, path, units, [], 1.0)


def test_cross_type_ranking_cuts_the_cheapest_saliency_per_cost() -> None:
    sites = [_fake_site("head", "h", 4), _fake_site("neuron", "n", 8)]
    scores = [torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0.05, 0.1, 0.15, 0.2, 0.5, 0.6, 0.7, 0.8])]
    costs = [10.0, 1.0]  # saliency per cost: heads 0.1..0.4, neurons 0.05..0.8
    plan = select_units(sites, scores, costs, PruneConfig(heads_keep=0.5, mlp_keep=0.5, scope="cross_type"))
    # target = 2 heads * 10 + 4 neurons * 1 = 24; ascending: n0 .05 (1), n1 .1 (2), h0 .1 (12),
    # n2 .15 (13), n3 .2 (14), h1 .2 (24) -> done
    assert plan.keep["h"].tolist() == [2, 3]
    assert plan.keep["n"].tolist() == [4, 5, 6, 7]
    # global within a type: one ranking over both head sites, each keeps at least its best
    sites = [_fake_site("head", "a", 4), _fake_site("head", "b", 4)]
    scores = [torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0.1, 0.2, 0.3, 0.4])]
    plan = select_units(sites, scores, [1.0, 1.0], PruneConfig(heads_keep=0.5, scope="global"))
    assert plan.keep["a"].tolist() == [1, 2, 3] and plan.keep["b"].tolist() == [3]


def test_latency_aware_pruning_cuts_where_latency_is_saved(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    calls: list[list[int]] = []

    def stub_latency(m: nn.Module) -> float:
        # a stand-in for the simulator: block 0's heads are 10x dearer than block 1's
        heads = [b.attn.num_heads for b in m.blocks]
        calls.append(heads)
        return 10.0 * heads[0] + 1.0 * heads[1] + 100.0

    model = tiny_vit()
    cfg = PruneConfig(heads_keep=0.5, scope="global", latency_aware=True, hw="zcu102")
    pruned = prune_model(model, cfg, latency_fn=stub_latency)
    assert [b.attn.num_heads for b in pruned.blocks] == [1, 3]
    # one call for the base model, one probe per head site (each cut by its per-layer 2 heads)
    assert calls == [[4, 4], [2, 4], [4, 2]]
    plain = prune_model(model, PruneConfig(heads_keep=0.5, scope="global"))
    assert sum(b.attn.num_heads for b in plain.blocks) == 4


@pytest.mark.slow
def test_efficientvit_mbconv_and_litemla_pruning_preserves_kept_paths() -> None:
    import timm

    torch.manual_seed(0)
    model = timm.create_model("efficientvit_b0", num_classes=CLASSES).eval()
    x = torch.randn(2, 3, 32, 32)
    cfg = PruneConfig(heads_keep=0.5, mlp_keep=0.5)
    sites, plan = plan_pruning(copy.deepcopy(model), cfg, None)
    pruned = prune_model(model, cfg)
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for site in sites:
            mod = ref.get_submodule(site.path)
            keep = plan.keep[site.path]
            if site.kind == "neuron":  # zero the point-wise conv's inputs from pruned hidden channels
                mask = torch.zeros(site.units)
                mask[keep] = 1
                mod.point_conv.conv.weight *= mask.reshape(1, -1, 1, 1)
            else:  # zero the projection's inputs from pruned heads, at every scale
                d, heads = mod.dim, site.units
                mask = torch.zeros(1 + len(mod.aggreg), heads, d)
                mask[:, keep] = 1
                mod.proj.conv.weight *= mask.reshape(1, -1, 1, 1)
    torch.testing.assert_close(pruned(x), ref(x), rtol=1e-4, atol=1e-5)
    mla = pruned.stages[2].blocks[1].context_module.main
    assert mla.qkv.conv.out_channels == 3 * 2 * mla.dim and mla.aggreg[0][1].groups == 3 * 2
    assert macs(pruned, x[:1]) < macs(model, x[:1])


def test_bad_recipes_are_config_errors(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = tiny_vit()
    with pytest.raises(
        ConfigError, match=r"prune\.heads_keep: 0\.1 keeps round\(0\.1 \* 4\) = 0 heads of blocks\.0\.attn"
    ):
        prune_model(model, PruneConfig(heads_keep=0.1))
    with pytest.raises(ConfigError, match=r"prune\.heads_keep: 0\.1 keeps 1 of 8 heads in 2 sites"):
        prune_model(model, PruneConfig(heads_keep=0.1, scope="global"))
    with pytest.raises(ConfigError, match=r"prune\.saliency: 'hessian' needs calibration batches"):
        prune_model(model, PruneConfig(mlp_keep=0.5, saliency="hessian"))
    with pytest.raises(ConfigError, match=r"prune\.latency_aware: needs a latency_fn"):
        prune_model(model, PruneConfig(mlp_keep=0.5, latency_aware=True, hw="zcu102"))
    with pytest.raises(ConfigError, match=r"prune: model type Sequential is not supported"):
        prune_model(nn.Sequential(nn.Linear(2, 2)), PruneConfig(mlp_keep=0.5))
    with pytest.raises(ConfigError, match=r"heads_keep: Input should be greater than 0"):
        validate_config(PruneConfig, {"heads_keep": 0.0})
    with pytest.raises(ConfigError, match=r"heads_kept: unknown field"):
        validate_config(PruneConfig, {"heads_kept": 0.5})
    with pytest.raises(ConfigError, match=r"hw: latency_aware pruning needs a hardware config"):
        validate_config(PruneConfig, {"latency_aware": True})


def test_embed_pruning_of_efficientvit_is_refused() -> None:
    import timm

    model = timm.create_model("efficientvit_b0", num_classes=CLASSES)
    with pytest.raises(
        ConfigError, match=r"prune\.embed_keep: embedding-channel pruning supports VisionTransformer"
    ):
        prune_model(model, PruneConfig(embed_keep=0.5))


def test_distilled_deit_prunes_dist_token_and_head(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    from timm.models.deit import VisionTransformerDistilled

    torch.manual_seed(0)
    model = VisionTransformerDistilled(
        img_size=32, patch_size=4, embed_dim=C, depth=2, num_heads=HEADS, num_classes=CLASSES
    ).eval()
    pruned = prune_model(model, PruneConfig(embed_keep=0.5, heads_keep=0.75))
    assert pruned.dist_token.shape == (1, 1, 32) and pruned.head_dist.in_features == 32
    assert [b.attn.num_heads for b in pruned.blocks] == [3, 3]
    assert pruned(batch[0]).shape == (4, CLASSES)


@pytest.mark.slow
def test_lowered_graph_macs_drop_by_the_hand_computed_amount() -> None:
    from accelsim.lower import lower

    model = tiny_vit()
    base = lower(model, (1, 3, 32, 32)).total_macs
    pruned = lower(prune_model(model, PruneConfig(heads_keep=0.5, mlp_keep=0.5)), (1, 3, 32, 32)).total_macs
    assert (base, pruned) == (vit_macs(C, HEADS, HID), vit_macs(C, 2, 128)) == (7_668_608, 3_932_928)
    both = prune_model(model, PruneConfig(heads_keep=0.5, mlp_keep=0.5, embed_keep=0.5))
    assert lower(both, (1, 3, 32, 32)).total_macs == vit_macs(32, 2, 128)


def test_latency_aware_cross_type_meets_the_uniform_cuts_latency() -> None:
    calls = []

    def tiled_latency(m: nn.Module) -> float:
        # a tile-quantised stand-in for the simulator: cost steps every 64 neurons and 2 heads,
        # so the per-site linear table over-promises and the plan must be topped up
        calls.append(1)
        return float(
            sum(
                5 * math.ceil(b.mlp.fc1.out_features / 64) + 40 * math.ceil(b.attn.num_heads / 2)
                for b in m.blocks
            )
        )

    model = tiny_vit()
    cfg = PruneConfig(heads_keep=0.5, mlp_keep=0.5, scope="cross_type", latency_aware=True, hw="zcu102")
    pruned = prune_model(model, cfg, latency_fn=tiled_latency)
    # base 2 * (5 * 4 + 40 * 2) = 200; the uniform cut (2 heads, 128 neurons per block) = 2 * (10 + 40)
    assert tiled_latency(model) == 200.0
    assert tiled_latency(pruned) <= 100.0
    # base + 4 site probes + the uniform cut + at least two measured plans
    assert len(calls) - 2 >= 1 + 4 + 1 + 2
    assert pruned(torch.zeros(1, 3, 32, 32)).shape == (1, CLASSES)


@pytest.mark.slow
def test_latency_aware_pruning_with_the_simulator_is_no_slower_than_uniform() -> None:
    from accelsim.compress.prune import simulator_latency_fn

    model = tiny_vit()
    cycles = simulator_latency_fn("zcu102", None, (1, 3, 32, 32))
    aware = prune_model(
        model,
        PruneConfig(heads_keep=0.5, mlp_keep=0.5, scope="cross_type", latency_aware=True, hw="zcu102"),
        latency_fn=cycles,
    )
    uniform = prune_model(model, PruneConfig(heads_keep=0.5, mlp_keep=0.5))
    assert cycles(aware) <= cycles(uniform) < cycles(model)
