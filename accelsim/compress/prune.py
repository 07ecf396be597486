"""Structured pruning of timm ViTs into physically smaller dense models.

What can be pruned (a *site* is one prunable dimension, a *unit* one structure in it):

- ``VisionTransformer`` / ``VisionTransformerDistilled`` (DeiT) with timm ``Block`` + ``Attention`` +
  ``Mlp``: attention heads per block (qkv rows of the head's q, k and v + proj columns; ``num_heads``
  shrinks, ``head_dim`` stays), MLP hidden neurons per block (fc1 rows, fc2 columns), and embedding
  channels of the residual stream (one site for the whole model: patch embedding, class/distillation
  tokens, position embedding, every norm, qkv/fc1 input columns, proj/fc2 output rows, layer scales
  and the classifier inputs).
- ``EfficientVit`` (MIT): the hidden channels of every ``MBConv`` (``mlp_keep``) and the heads of
  every ``LiteMLA`` (``heads_keep``). Its embedding channels change from stage to stage, so
  ``embed_keep`` is not supported there.

Units are ranked by a saliency (:mod:`accelsim.compress._saliency`) and the lowest are cut, per
block (``scope: layer``), per structure type across blocks (``global``), or over all structure types
together (``cross_type``). For the global rankings the saliency is divided by the unit's cost -- the
MACs it removes, or with ``latency_aware`` the simulator latency it removes -- so a score means
"loss increase per unit of cost saved" and heads, neurons and channels compare on one scale. This is
NViT's global Hessian-aware ranking with its latency-aware regularisation (Yang et al., "Global
Vision Transformer Pruning with Hessian-Aware Saliency", CVPR 2023, arXiv:2110.04869), in the
saliency-per-latency (knapsack ratio) form of HALP (Shen et al., "Structural Pruning via
Latency-Saliency Knapsack", NeurIPS 2022). ``cross_type`` removes units in that order until the
removed cost reaches what the per-type ratios would remove block by block.

The latency of a unit is measured, not modelled: for each site one candidate with that site cut
by its per-layer amount is timed with ``latency_fn`` (the caller builds it from ``accelsim.lower``
and ``accelsim.simulate``), giving a per-site lookup table of latency saved per unit, as NViT's
latency lookup table does. A cut that saves no cycles on the given array (e.g. it does not change
the number of tiles) makes its units nearly free to keep. Latency is not linear in the units cut
(tile boundaries), so the latency-aware ``cross_type`` plan is then measured and its budget raised
until it is no slower than the uniform per-layer cut of the same ratios.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from accelsim.compress._saliency import ParamSlice, gradient_saliency, magnitude_saliency
from accelsim.config.compression import CompressionRecipe, PruneConfig
from accelsim.errors import ConfigError

log = logging.getLogger(__name__)

#: config field that sets the keep ratio of each structure type
KIND_FIELD = {"head": "heads_keep", "neuron": "mlp_keep", "channel": "embed_keep"}


@dataclass
class Site:
    """One prunable dimension of a model: ``units`` structures whose weights ``slices`` locate."""

    kind: str  # "head" | "neuron" | "channel"
    path: str
    units: int
    slices: list[ParamSlice]
    unit_macs: float  # MACs per image that one unit costs
    post: Callable[[int], None] = field(repr=False, default=lambda kept: None)


@dataclass(frozen=True)
class PrunePlan:
    """Which units each site keeps (sorted indices), by site path and kind."""

    keep: dict[str, Tensor]
    kinds: dict[str, str]

    def kept(self, kind: str) -> int:
        return sum(int(v.numel()) for p, v in self.keep.items() if self.kinds[p] == kind)


def _round(x: float) -> int:
    # half-up, not Python's banker's rounding: 0.5 of 5 heads keeps 3, as a reader expects
    return math.floor(x + 0.5)


def _arange(units: int, per: int, stride: int | None = None, offset: int = 0) -> Tensor:
    """Index matrix: unit ``u`` owns ``offset + u*stride + [0, per)`` (stride defaults to ``per``)."""
    stride = per if stride is None else stride
    return offset + torch.arange(units).unsqueeze(1) * stride + torch.arange(per).unsqueeze(0)


def _norm_slices(norm: nn.Module, index: Tensor) -> list[ParamSlice]:
    out = []
    for attr in ("weight", "bias", "running_mean", "running_var"):
        if isinstance(getattr(norm, attr, None), Tensor):
            out.append(ParamSlice(norm, attr, 0, index))
    return out


def _wb_slices(mod: nn.Module, dim: int, index: Tensor, bias: bool) -> list[ParamSlice]:
    out = [ParamSlice(mod, "weight", dim, index)]
    if bias and isinstance(getattr(mod, "bias", None), Tensor):
        out.append(ParamSlice(mod, "bias", 0, index))
    return out


def _set_norm_size(norm: nn.Module, size: int) -> None:
    if isinstance(norm, nn.LayerNorm):
        norm.normalized_shape = (size,)


def _fix_meta(mod: nn.Module) -> None:
    """Make a module's shape attributes agree with its (sliced) tensors."""
    if isinstance(mod, nn.Linear):
        mod.out_features, mod.in_features = mod.weight.shape
    elif isinstance(mod, nn.Conv2d):
        mod.out_channels = mod.weight.shape[0]
        mod.in_channels = mod.weight.shape[1] * mod.groups
    elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
        ref = mod.weight if mod.weight is not None else mod.running_mean
        if ref is not None:
            mod.num_features = ref.shape[0]


# -- model families ---------------------------------------------------------------------------
def _record_shapes(model: nn.Module, mods: Sequence[nn.Module], sample: Tensor) -> dict[int, tuple[Any, Any]]:
    """(input shape, output shape) of each module in ``mods`` on one forward of ``sample``."""
    shapes: dict[int, tuple[Any, Any]] = {}

    def hook(m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        shapes[id(m)] = (tuple(args[0].shape), tuple(out.shape) if isinstance(out, Tensor) else None)

    handles = [m.register_forward_hook(hook) for m in mods]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(sample)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return shapes


def _model_family(model: nn.Module) -> str:
    from timm.models.efficientvit_mit import EfficientVit
    from timm.models.vision_transformer import VisionTransformer

    if isinstance(model, VisionTransformer):
        return "vit"
    if isinstance(model, EfficientVit):
        return "efficientvit"
    raise ConfigError(
        f"prune: model type {type(model).__name__} is not supported "
        "(supported: VisionTransformer, VisionTransformerDistilled, EfficientVit)"
    )


def default_sample(model: Any) -> Tensor:
    """A one-image input of the model's configured size (used to count tokens and MACs)."""
    pe: Any = getattr(model, "patch_embed", None)
    img = getattr(pe, "img_size", None)
    if img is not None:
        return torch.zeros(1, getattr(pe.proj, "in_channels", 3), *img)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    c, h, w = cfg.get("input_size", (3, 224, 224))
    return torch.zeros(1, c, h, w)


def _vit_sites(model: Any, sample: Tensor) -> list[Site]:
    from timm.layers import Attention, Mlp
    from timm.models.vision_transformer import Block

    blocks = list(model.blocks)
    for i, blk in enumerate(blocks):
        if type(blk) is not Block or type(blk.attn) is not Attention or type(blk.mlp) is not Mlp:
            raise ConfigError(
                f"prune: blocks.{i} is {type(blk).__name__}/{type(getattr(blk, 'attn', None)).__name__}; "
                "supported: timm Block with Attention and Mlp"
            )
    if getattr(model, "attn_pool", None) is not None:
        raise ConfigError(
            "prune: VisionTransformer with attention pooling (global_pool='map') is not supported"
        )
    shapes = _record_shapes(model, [m for b in blocks for m in (b.attn, b.mlp)] + [model.patch_embed], sample)
    sites: list[Site] = []
    for i, blk in enumerate(blocks):
        attn, mlp = blk.attn, blk.mlp
        tokens = shapes[id(attn)][0][1]
        dim, heads, hd = attn.qkv.in_features, attn.num_heads, attn.head_dim
        a_dim = heads * hd
        rows = torch.cat([_arange(heads, hd, offset=s * a_dim) for s in range(3)], dim=1)
        cols = _arange(heads, hd)
        slices = _wb_slices(attn.qkv, 0, rows, bias=True) + _wb_slices(attn.proj, 1, cols, bias=False)
        if attn.gate is not None:
            slices += _wb_slices(attn.gate, 0, cols, bias=True)
        if not isinstance(attn.norm, nn.Identity):
            slices += _norm_slices(attn.norm, cols)
        head_macs = tokens * ((3 + (attn.gate is not None)) * hd * dim + hd * attn.proj.out_features)
        head_macs += 2 * tokens * tokens * hd  # q k^T and attn v of one head

        def post_head(kept: int, attn: Any = attn) -> None:
            attn.num_heads = kept
            attn.attn_dim = kept * attn.head_dim
            _set_norm_size(attn.norm, attn.attn_dim)

        sites.append(Site("head", f"blocks.{i}.attn", heads, slices, float(head_macs), post_head))

        hidden = mlp.fc1.out_features
        nidx = _arange(hidden, 1)
        slices = _wb_slices(mlp.fc1, 0, nidx, bias=True) + _wb_slices(mlp.fc2, 1, nidx, bias=False)
        if not isinstance(mlp.norm, nn.Identity):
            slices += _norm_slices(mlp.norm, nidx)
        n_mlp = shapes[id(mlp)][0][1]

        def post_mlp(kept: int, mlp: Any = mlp) -> None:
            _set_norm_size(mlp.norm, kept)

        sites.append(
            Site(
                "neuron",
                f"blocks.{i}.mlp",
                hidden,
                slices,
                float(n_mlp * (dim + mlp.fc2.out_features)),
                post_mlp,
            )
        )

    # the residual stream: every tensor with an embedding-channel axis
    dim = model.embed_dim
    cidx = _arange(dim, 1)
    pe = model.patch_embed
    slices = _wb_slices(pe.proj, 0, cidx, bias=True)
    norms: list[nn.Module] = []
    out_shape = shapes[id(pe)][1]
    positions = math.prod(out_shape[1:-1])  # (B, N, C) or NHWC (B, H, W, C)
    ch_macs = positions * pe.proj.weight[0].numel()
    for name in ("cls_token", "reg_token", "dist_token", "pos_embed"):
        if isinstance(getattr(model, name, None), Tensor):
            slices.append(ParamSlice(model, name, 2, cidx))
    for norm in (getattr(pe, "norm", None), model.norm_pre, model.norm, model.fc_norm):
        if norm is not None and not isinstance(norm, nn.Identity):
            slices += _norm_slices(norm, cidx)
            norms.append(norm)
    for blk in blocks:
        attn, mlp = blk.attn, blk.mlp
        n_attn, n_mlp = shapes[id(attn)][0][1], shapes[id(mlp)][0][1]
        for norm in (blk.norm1, blk.norm2):
            slices += _norm_slices(norm, cidx)
            norms.append(norm)
        slices += _wb_slices(attn.qkv, 1, cidx, bias=False) + _wb_slices(attn.proj, 0, cidx, bias=True)
        ch_macs += n_attn * (attn.qkv.out_features + attn.proj.in_features)
        if attn.gate is not None:
            slices += _wb_slices(attn.gate, 1, cidx, bias=False)
            ch_macs += n_attn * attn.gate.out_features
        slices += _wb_slices(mlp.fc1, 1, cidx, bias=False) + _wb_slices(mlp.fc2, 0, cidx, bias=True)
        ch_macs += n_mlp * (mlp.fc1.out_features + mlp.fc2.in_features)
        for ls in (blk.ls1, blk.ls2):
            if isinstance(getattr(ls, "gamma", None), Tensor):
                slices.append(ParamSlice(ls, "gamma", 0, cidx))
    for head in (model.head, getattr(model, "head_dist", None)):
        if isinstance(head, nn.Linear):
            slices += _wb_slices(head, 1, cidx, bias=False)
            ch_macs += head.out_features

    def post_channel(kept: int) -> None:
        for norm in norms:
            _set_norm_size(norm, kept)
        model.embed_dim = model.num_features = kept
        if hasattr(model, "head_hidden_size"):
            model.head_hidden_size = kept
        if hasattr(pe, "embed_dim"):
            pe.embed_dim = kept

    sites.append(Site("channel", "embed", dim, slices, float(ch_macs), post_channel))
    return sites


def _efficientvit_sites(model: Any, sample: Tensor) -> list[Site]:
    from timm.models.efficientvit_mit import LiteMLA, MBConv

    named: list[tuple[str, Any]] = [
        (n, m) for n, m in model.named_modules() if isinstance(m, MBConv | LiteMLA)
    ]
    probe: list[nn.Module] = []
    for _, m in named:
        probe += [m.inverted_conv, m.depth_conv] if isinstance(m, MBConv) else [m]
    shapes = _record_shapes(model, probe, sample)
    sites: list[Site] = []
    for name, m in named:
        if isinstance(m, MBConv):
            inv, dw, pw = m.inverted_conv, m.depth_conv, m.point_conv
            mid = inv.conv.out_channels
            idx = _arange(mid, 1)
            slices = _wb_slices(inv.conv, 0, idx, bias=True) + _wb_slices(dw.conv, 0, idx, bias=True)
            for norm in (inv.norm, dw.norm):
                if not isinstance(norm, nn.Identity):
                    slices += _norm_slices(norm, idx)
            slices += _wb_slices(pw.conv, 1, idx, bias=False)
            _, c_in, h, w = shapes[id(inv)][0]
            _, _, ho, wo = shapes[id(dw)][1]
            kk = dw.conv.weight[0].numel()
            macs = h * w * c_in + ho * wo * kk + ho * wo * pw.conv.out_channels

            def post_mb(kept: int, dwc: nn.Conv2d = dw.conv) -> None:
                dwc.groups = kept

            sites.append(Site("neuron", name, mid, slices, float(macs), post_mb))
        else:
            d = m.dim
            heads = m.qkv.conv.out_channels // (3 * d)
            scales = len(m.aggreg)
            # qkv channels are laid out head-major: head h owns [h*3d, (h+1)*3d) (q, k, v of the head)
            qidx = _arange(heads, 3 * d)
            slices = _wb_slices(m.qkv.conv, 0, qidx, bias=True)
            if not isinstance(m.qkv.norm, nn.Identity):
                slices += _norm_slices(m.qkv.norm, qidx)
            for agg in m.aggreg:
                slices += _wb_slices(agg[0], 0, qidx, bias=True) + _wb_slices(agg[1], 0, qidx, bias=True)
            # the projection reads (1 + scales) * heads groups of d channels, scale-major
            pidx = torch.cat([_arange(heads, d, offset=s * heads * d) for s in range(1 + scales)], dim=1)
            slices += _wb_slices(m.proj.conv, 1, pidx, bias=False)
            _, c_in, h, w = shapes[id(m)][0]
            hw = h * w
            macs = hw * c_in * 3 * d
            macs += sum(hw * 3 * d * (agg[0].weight[0].numel() + d) for agg in m.aggreg)
            macs += (1 + scales) * (2 * hw * d * (d + 1) + hw * d * m.proj.conv.out_channels)

            def post_mla(kept: int, m: Any = m) -> None:
                for agg in m.aggreg:
                    agg[0].groups = 3 * kept * m.dim
                    agg[1].groups = 3 * kept

            sites.append(Site("head", name, heads, slices, float(macs), post_mla))
    return sites


def build_sites(model: nn.Module, sample: Tensor | None = None, *, embed: bool = True) -> list[Site]:
    """The prunable sites of ``model`` (heads and neurons per block, then the embedding channels)."""
    family = _model_family(model)
    sample = default_sample(model) if sample is None else sample[:1]
    if family == "vit":
        sites = _vit_sites(model, sample)
        return sites if embed else [s for s in sites if s.kind != "channel"]
    return _efficientvit_sites(model, sample)


def apply_site(site: Site, keep: Tensor) -> None:
    """Cut ``site`` down to the units ``keep`` (in place)."""
    keep = torch.sort(keep.to(torch.int64)).values
    touched: dict[int, nn.Module] = {}
    for s in site.slices:
        t = s.tensor()
        if t is None:
            continue
        # sorted flat indices give the new layout for every layout we handle (interleaved q/k/v
        # rows, scale-major projection inputs) because each keeps the original order
        flat = torch.sort(s.index[keep].reshape(-1)).values.to(t.device)
        new = t.detach().index_select(s.dim, flat).clone()
        if isinstance(t, nn.Parameter):
            setattr(s.module, s.attr, nn.Parameter(new, requires_grad=t.requires_grad))
        else:
            s.module._buffers[s.attr] = new
        touched[id(s.module)] = s.module
    site.post(int(keep.numel()))
    for mod in touched.values():
        _fix_meta(mod)


# -- ranking ----------------------------------------------------------------------------------
def _layer_keep(site: Site, ratio: float) -> int:
    k = _round(ratio * site.units)
    if k < 1:
        field_ = KIND_FIELD[site.kind]
        raise ConfigError(
            f"prune.{field_}: {ratio} keeps round({ratio} * {site.units}) = 0 {site.kind}s of {site.path}; "
            f"at least 1 must stay (use {field_} >= {0.5 / site.units:.3g})"
        )
    return k


def uniform_cut_cost(sites: Sequence[Site], costs: Sequence[float], cfg: PruneConfig) -> float:
    """The cost the per-type ratios remove when every site is cut layer by layer."""
    ratios = {k: getattr(cfg, f) for k, f in KIND_FIELD.items()}
    return sum(
        (s.units - _layer_keep(s, ratios[s.kind])) * c
        for s, c in zip(sites, costs, strict=True)
        if ratios[s.kind] < 1.0
    )


def _topk_sorted(scores: Tensor, k: int) -> Tensor:
    # stable: ties keep the lower index, so equal scores prune deterministically from the end
    order = torch.sort(-scores, stable=True).indices
    return torch.sort(order[:k]).values


def select_units(
    sites: Sequence[Site],
    scores: Sequence[Tensor],
    costs: Sequence[float],
    cfg: PruneConfig,
    *,
    budget: float | None = None,
) -> PrunePlan:
    """Decide which units each site keeps.

    Args:
        sites: the model's prunable sites.
        scores: raw saliency per unit of each site (higher = more important).
        costs: cost of one unit of each site (MACs or latency saved by removing it), > 0.
        cfg: ratios and scope.
        budget: ``cross_type`` only: the cost to remove (default: what the per-type ratios remove
            layer by layer).

    Returns:
        The plan (sites whose type keeps everything are absent).

    Raises:
        ConfigError: a ratio would leave a block (or the model) with no unit of some type.
    """
    ratios = {k: getattr(cfg, f) for k, f in KIND_FIELD.items()}
    active = [i for i, s in enumerate(sites) if ratios[s.kind] < 1.0]
    keep: dict[str, Tensor] = {}
    kinds = {s.path: s.kind for s in sites}
    if cfg.scope == "layer":
        for i in active:
            keep[sites[i].path] = _topk_sorted(scores[i], _layer_keep(sites[i], ratios[sites[i].kind]))
        return PrunePlan(keep, kinds)

    if cfg.scope == "global":
        for kind in KIND_FIELD:
            ids = [i for i in active if sites[i].kind == kind]
            if not ids:
                continue
            total = sum(sites[i].units for i in ids)
            budget = _round(ratios[kind] * total)
            if budget < len(ids):
                f = KIND_FIELD[kind]
                raise ConfigError(
                    f"prune.{f}: {ratios[kind]} keeps {budget} of {total} {kind}s in {len(ids)} sites; "
                    "each site needs at least 1"
                )
            # every site keeps its best unit, the rest compete on saliency per cost
            chosen = {i: {int(torch.argmax(scores[i]))} for i in ids}
            pool = [
                (float(scores[i][u]) / costs[i], i, u)
                for i in ids
                for u in range(sites[i].units)
                if u not in chosen[i]
            ]
            pool.sort(key=lambda t: (-t[0], t[1], t[2]))
            for _, i, u in pool[: budget - len(ids)]:
                chosen[i].add(u)
            for i in ids:
                keep[sites[i].path] = torch.tensor(sorted(chosen[i]), dtype=torch.int64)
        return PrunePlan(keep, kinds)

    # cross_type: one ranking of all active units by saliency per cost; cut until the cost the
    # per-type ratios would remove layer by layer is removed
    target = budget if budget is not None else uniform_cut_cost(sites, costs, cfg)
    order = sorted(
        ((float(scores[i][u]) / costs[i], i, u) for i in active for u in range(sites[i].units)),
        key=lambda t: (t[0], t[1], -t[2]),
    )
    left = {i: sites[i].units for i in active}
    removed: dict[int, set[int]] = {i: set() for i in active}
    cut = 0.0
    for _, i, u in order:
        if cut >= target * (1 - 1e-9):
            break
        if left[i] <= 1:
            continue
        removed[i].add(u)
        left[i] -= 1
        cut += costs[i]
    for i in active:
        if removed[i]:
            keep[sites[i].path] = torch.tensor(
                [u for u in range(sites[i].units) if u not in removed[i]], dtype=torch.int64
            )
    return PrunePlan(keep, kinds)


# -- saliency and cost ------------------------------------------------------------------------
def site_saliency(
    model: nn.Module, sites: Sequence[Site], cfg: PruneConfig, batches: Sequence[tuple[Tensor, Tensor]]
) -> list[Tensor]:
    """Raw saliency per unit of each site under ``cfg.saliency`` (float64)."""
    if cfg.saliency == "magnitude":
        return [magnitude_saliency(s.slices, s.units, cfg.magnitude_norm) for s in sites]
    if not batches:
        raise ConfigError(
            f"prune.saliency: {cfg.saliency!r} needs calibration batches (images, labels); got none "
            "(use saliency: magnitude to prune without data)"
        )
    return gradient_saliency(model, [(s.slices, s.units) for s in sites], batches, cfg.saliency)


def latency_costs(
    model: nn.Module,
    sites: Sequence[Site],
    cfg: PruneConfig,
    latency_fn: Callable[[nn.Module], float],
    sample: Tensor | None,
) -> list[float]:
    """Latency saved per unit of each site, measured by cutting that site alone (lookup table).

    One call of ``latency_fn`` for the unpruned model plus one per site whose type is pruned. A
    site whose cut saves nothing gets a tiny positive cost, so its units rank as cheap to keep.
    """
    base = float(latency_fn(model))
    if not math.isfinite(base) or base <= 0:
        raise ConfigError(f"prune.latency_aware: latency_fn returned {base} for the unpruned model")
    floor = base * 1e-9
    ratios = {k: getattr(cfg, f) for k, f in KIND_FIELD.items()}
    costs: list[float] = []
    for i, site in enumerate(sites):
        if ratios[site.kind] >= 1.0 or site.units < 2:
            costs.append(floor)
            continue
        n_cut = max(1, site.units - _layer_keep(site, ratios[site.kind]))
        n_cut = min(n_cut, site.units - 1)
        cand = copy.deepcopy(model)
        cand_site = build_sites(cand, sample)[i]
        apply_site(cand_site, torch.arange(site.units - n_cut))
        saved = base - float(latency_fn(cand))
        costs.append(max(saved, floor) / n_cut)
        log.debug("latency probe %s: -%d units saves %.4g", site.path, n_cut, saved)
    return costs


def simulator_latency_fn(
    hw: Any, recipe: CompressionRecipe | None = None, input_shape: tuple[int, ...] | None = None
) -> Callable[[nn.Module], float]:
    """A ``latency_fn`` for :func:`prune_model`: the simulated cycles of a candidate on ``hw``.

    Args:
        hw: a :class:`~accelsim.config.hardware.HardwareConfig`, or a config name/path for
            ``HardwareConfig.load`` (e.g. ``PruneConfig.hw``).
        recipe: the whole recipe being applied: its quantisation sets the bits the candidate is
            lowered with (:func:`accelsim.lower.lower_compressed`, as everywhere else).
        input_shape: the model input ``(N, C, H, W)`` to lower with (default: the model's own,
            from its ``pretrained_cfg``).

    Returns:
        ``model -> total cycles`` via ``accelsim.lower.lower_compressed`` and ``accelsim.simulate``.
    """
    from accelsim.config.hardware import HardwareConfig
    from accelsim.lower import lower_compressed
    from accelsim.sim import simulate

    config = hw if isinstance(hw, HardwareConfig) else HardwareConfig.load(hw)

    def latency(model: nn.Module) -> float:
        graph = lower_compressed(model, recipe, tuple(input_shape) if input_shape else None)
        return float(simulate(graph, config).total_cycles)

    return latency


# -- entry point ------------------------------------------------------------------------------
def plan_pruning(
    model: nn.Module,
    cfg: PruneConfig,
    calib_data: Iterable[tuple[Tensor, Tensor]] | None = None,
    *,
    latency_fn: Callable[[nn.Module], float] | None = None,
) -> tuple[list[Site], PrunePlan]:
    """Sites of ``model`` and the units to keep, without changing ``model``'s structure."""
    family = _model_family(model)
    if cfg.embed_keep < 1.0 and family != "vit":
        raise ConfigError(
            f"prune.embed_keep: embedding-channel pruning supports VisionTransformer models only "
            f"(got {type(model).__name__}); use 1.0"
        )
    batches: list[tuple[Tensor, Tensor]] = []
    if calib_data is not None:
        for b, batch in enumerate(calib_data):
            if b >= cfg.calib_batches:
                break
            batches.append((batch[0], batch[1]))
    sample = batches[0][0][:1] if batches else None
    sites = build_sites(model, sample, embed=cfg.embed_keep < 1.0)
    scores = site_saliency(model, sites, cfg, batches)
    if cfg.latency_aware:
        if latency_fn is None:
            raise ConfigError(
                "prune.latency_aware: needs a latency_fn (compress() builds one from prune.hw); got None"
            )
        costs = latency_costs(model, sites, cfg, latency_fn, sample)
        if cfg.scope == "cross_type":
            return sites, _meet_latency(model, sites, scores, costs, cfg, latency_fn, sample)
    else:
        costs = [max(s.unit_macs, 1.0) for s in sites]
    return sites, select_units(sites, scores, costs, cfg)


def _apply_plan(model: nn.Module, plan: PrunePlan, sample: Tensor | None) -> nn.Module:
    cand = copy.deepcopy(model)
    for site in sorted(build_sites(cand, sample), key=lambda s: s.kind == "channel"):
        if site.path in plan.keep and plan.keep[site.path].numel() < site.units:
            apply_site(site, plan.keep[site.path])
    return cand


def _meet_latency(
    model: nn.Module,
    sites: Sequence[Site],
    scores: Sequence[Tensor],
    costs: Sequence[float],
    cfg: PruneConfig,
    latency_fn: Callable[[nn.Module], float],
    sample: Tensor | None,
    rounds: int = 6,
) -> PrunePlan:
    """Cross-type plan whose measured latency is at most that of the uniform per-layer cut.

    The per-site table is linear, but latency is not (tile boundaries), so the plan is measured
    and the budget raised by the shortfall until the target is met (at most ``rounds`` times).
    """
    uniform = select_units(sites, scores, costs, replace_scope(cfg, "layer"))
    target = float(latency_fn(_apply_plan(model, uniform, sample)))
    budget = uniform_cut_cost(sites, costs, cfg)
    plan = select_units(sites, scores, costs, cfg, budget=budget)
    for _ in range(rounds):
        got = float(latency_fn(_apply_plan(model, plan, sample)))
        log.debug("latency-aware plan: %.6g (target %.6g, budget %.6g)", got, target, budget)
        if got <= target:
            return plan
        budget += got - target
        plan = select_units(sites, scores, costs, cfg, budget=budget)
    log.warning(
        "latency-aware pruning: target %.6g not met after %d rounds; using the uniform cut", target, rounds
    )
    return uniform


def replace_scope(cfg: PruneConfig, scope: str) -> PruneConfig:
    """``cfg`` with another ranking scope (configs are frozen)."""
    return cfg.model_copy(update={"scope": scope})


def prune_model(
    model: nn.Module,
    cfg: PruneConfig,
    calib_data: Iterable[tuple[Tensor, Tensor]] | None = None,
    *,
    latency_fn: Callable[[nn.Module], float] | None = None,
) -> nn.Module:
    """A structurally pruned, physically smaller dense copy of ``model``.

    Args:
        model: a timm VisionTransformer/DeiT or EfficientVit (not modified).
        cfg: keep ratios, saliency, scope and latency awareness.
        calib_data: ``(images, labels)`` batches; the first ``cfg.calib_batches`` give the
            gradients of the ``taylor`` and ``hessian`` saliencies (unused by ``magnitude``).
        latency_fn: latency of a candidate model (seconds or cycles, any positive unit); needed
            when ``cfg.latency_aware``.

    Returns:
        A new module with fewer heads / neurons / channels; same input and output shapes.

    Raises:
        ConfigError: an unsupported model, a ratio that would remove every unit of a block, a
            gradient saliency without data, or latency awareness without ``latency_fn``.
    """
    work = copy.deepcopy(model)
    sites, plan = plan_pruning(work, cfg, calib_data, latency_fn=latency_fn)
    # heads and neurons first: their slices and the channel slices touch disjoint tensor axes
    for site in sorted(sites, key=lambda s: s.kind == "channel"):
        if site.path in plan.keep and plan.keep[site.path].numel() < site.units:
            apply_site(site, plan.keep[site.path])
    kept = {k: 0 for k in KIND_FIELD}
    for site in sites:
        kept[site.kind] += int(plan.keep[site.path].numel()) if site.path in plan.keep else site.units
    log.info("pruned %s: kept %s", type(model).__name__, ", ".join(f"{n} {k}s" for k, n in kept.items() if n))
    return work


__all__ = [
    "PrunePlan",
    "Site",
    "apply_site",
    "build_sites",
    "plan_pruning",
    "prune_model",
    "select_units",
    "simulator_latency_fn",
]
