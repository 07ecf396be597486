"""The compression recipe: which growth, quantisation, pruning, token reduction, low-rank and distillation to apply.

A :class:`CompressionRecipe` is a strict pydantic model (a typo is an error), loaded from YAML with
:meth:`CompressionRecipe.load` and applied by :func:`accelsim.compress`. Every section is optional;
an empty recipe is the identity (FP32). No torch here: recipes are read by the search and the CLI too.

Example (``workloads/ref_deit_w4a8.yaml`` holds one inline)::

    quant:
      wbits: 4
      abits: 8
      per_op: {head: {wbits: 8}}
      calibrator: percentile
    prune: {heads_keep: 0.5, mlp_keep: 0.5}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from accelsim.config._base import Strict, load_config

#: Weight/activation bit width: 2..16 (below 2 a uniform quantiser has no zero and a sign; above 16
#: fake-quant in float32 is no longer exact).
Bits = Annotated[int, Field(ge=2, le=16)]
#: A keep/rank ratio in (0, 1]: 1.0 keeps everything, 0 would remove the structure entirely.
Ratio = Annotated[float, Field(gt=0.0, le=1.0)]

#: The op types that mixed precision can address. They name what the op *does* in a ViT, so a recipe
#: applies to DeiT and EfficientViT alike: ``qkv``/``proj`` (attention in/out projections), ``fc1``/``fc2``
#: (MLP), ``attn_qk``/``attn_av`` (the two activation x activation attention matmuls), ``conv``/``dwconv``
#: (dense and depthwise convolutions, incl. the patch embedding), ``linear_attention`` (EfficientViT's
#: LiteMLA aggregation), ``head`` (the classifier), ``linear`` (any other Linear layer).
OpType = Literal[
    "qkv", "proj", "fc1", "fc2", "attn_qk", "attn_av", "conv", "dwconv", "linear_attention", "head", "linear"
]
OP_TYPES: tuple[str, ...] = OpType.__args__  # type: ignore[attr-defined]


class BitsOverride(Strict):
    """Bits of one op type; a field left out keeps the recipe-wide default."""

    wbits: Bits | None = None
    abits: Bits | None = None


class QATConfig(Strict):
    """Quantisation-aware fine-tuning after calibration.

    ``ste``: straight-through estimator (Bengio et al. 2013, arXiv:1308.3432): the rounding has
    gradient 1 inside the clipping range. ``fogzo``: First-Order-Guided Zeroth-Order gradient descent
    (Yang & Aamodt, NeurIPS 2025, arXiv:2510.23926; :mod:`accelsim.compress.qat`): the quantised
    weights' gradient is a finite difference of the true quantised loss along ``fogzo_samples``
    directions that mix the STE direction (weight ``beta``) with unit-variance noise, ``beta``
    decaying linearly from 1 to ``fogzo_beta_min`` over the run.
    """

    epochs: int = Field(default=1, ge=1, le=100)
    lr: float = Field(default=1e-4, gt=0.0)
    method: Literal["ste", "fogzo"] = "ste"
    max_batches: int | None = Field(default=None, ge=1)
    fogzo_samples: int = Field(default=1, ge=1, le=64)
    #: the last step's trust in the STE direction; ``(1 - beta_min) * d`` (d: quantised weights) is
    #: the noise part's squared norm against the STE part's 1, so useful values sit close to 1
    fogzo_beta_min: float = Field(default=1.0 - 1e-6, ge=0.0, le=1.0)


class QuantConfig(Strict):
    """Post-training fake quantisation (+ optional QAT).

    Weights are quantised symmetric, per output channel (``weight_granularity: per_channel``, one
    scale per row of the MAC array's weights) or with one scale for the whole tensor
    (``per_tensor``: a single requantisation multiplier per layer, cheaper epilogue, larger error
    where channel ranges differ; Nagel et al. 2021, arXiv:2106.08295, discuss the
    trade-off); activations per tensor (asymmetric unless ``symmetric_activations``). Attention probabilities may use log2 codes (``log2_attention``), as do
    the divisors of EfficientViT's linear attention.
    """

    wbits: Bits = 8
    abits: Bits = 8
    per_op: dict[OpType, BitsOverride] = Field(default_factory=dict)
    calibrator: Literal["minmax", "percentile", "mse"] = "minmax"
    weight_granularity: Literal["per_channel", "per_tensor"] = "per_channel"
    percentile: float = Field(default=99.99, gt=50.0, le=100.0)
    power_of_two: bool = False
    log2_attention: bool = False
    symmetric_activations: bool = False
    calibrate: bool = True
    #: Data-free activation range ``[-r, r]`` used when ``calibrate`` is false (the fixed-point format
    #: a designer would pick without looking at data; LayerNorm outputs mostly fall inside +-4).
    uncalibrated_range: float = Field(default=4.0, gt=0.0)
    calib_batches: int = Field(default=4, ge=1)
    #: Trio-ViT's channel-wise migration (Shi et al. 2024, arXiv:2405.03882): every depthwise
    #: conv's input channel is centred on its calibrated range's midpoint (a per-channel zero point
    #: the conv's bias absorbs) under one symmetric scale
    channel_migration: bool = False
    #: Trio-ViT's filter-wise shifting: the input of a pointwise conv after a depthwise one gets
    #: per-channel scales at power-of-two ratios (2^0..2^5) to the largest, applied as shifts
    filter_shift: bool = False
    qat: QATConfig | None = None

    @model_validator(mode="after")
    def _channel_schemes_need_data(self) -> QuantConfig:
        if (self.channel_migration or self.filter_shift) and not self.calibrate:
            raise ValueError(
                "quant.channel_migration / quant.filter_shift need calibrated per-channel ranges "
                "(calibrate: true)"
            )
        return self

    def bits_for(self, op_type: str) -> tuple[int, int]:
        """(wbits, abits) of ``op_type`` after the ``per_op`` override."""
        o = self.per_op.get(op_type)  # type: ignore[call-overload]
        wbits = o.wbits if o is not None and o.wbits is not None else self.wbits
        abits = o.abits if o is not None and o.abits is not None else self.abits
        return wbits, abits


class PruneConfig(Strict):
    """Structured pruning: the fraction of heads, MLP hidden neurons and embedding channels kept."""

    heads_keep: Ratio = 1.0
    mlp_keep: Ratio = 1.0
    embed_keep: Ratio = 1.0
    saliency: Literal["magnitude", "taylor", "hessian"] = "magnitude"
    #: ``layer``: every block keeps its ratio; ``global``: one ranking per structure type across
    #: blocks; ``cross_type``: one ranking over heads, neurons and channels together (NViT), cutting
    #: the compute (or latency) the per-type ratios would cut.
    scope: Literal["layer", "global", "cross_type"] = "layer"
    magnitude_norm: Literal["l1", "l2"] = "l2"
    latency_aware: bool = False
    hw: str | None = None
    calib_batches: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _hw_for_latency(self) -> PruneConfig:
        if self.latency_aware and self.hw is None:
            raise ValueError("hw: latency_aware pruning needs a hardware config name or path (got None)")
        return self


class TokenConfig(Strict):
    """Token reduction with static counts.

    ``evit`` and ``tome`` keep ``keep_rate`` of a ViT's patch tokens at each of ``at_blocks`` (one
    rate for all, or a list with one per block: HeatViT, Dong et al., HPCA 2023, learns a keep rate
    per stage; each rate is of the tokens reaching that block); ``pool``
    averages neighbouring tokens of a spatial grid (timm EfficientVit, whose convolutions need the
    grid), with ``keep_rate = 1/n``. ``semantic`` (STViT, Chang et al., CVPR 2023) replaces the patch
    tokens by ``tokens`` semantic tokens from block ``at`` on: they are pooled from the patch grid
    and refined by attention over the patch tokens in ``stgm_layers`` blocks, and every later block
    runs on them alone::

        tokens: {method: semantic, tokens: 16, at: 4}     # DeiT-S: 4 blocks on 196 tokens, then 16
    """

    method: Literal["evit", "tome", "pool", "semantic"] = "evit"
    keep_rate: Ratio | list[Ratio] = 0.5
    at_blocks: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [1])
    #: EViT: fuse the dropped (inattentive) tokens into one extra token, weighted by CLS attention.
    fuse_inattentive: bool = True
    #: ``semantic``: the number S of semantic tokens (the patch grid is pooled to the squarest
    #: ``h x w = S`` grid that fits it).
    tokens: int | None = Field(default=None, ge=1)
    #: ``semantic``: the first block of the semantic token generation module (blocks before it see
    #: every patch token).
    at: int | None = Field(default=None, ge=0)
    #: ``semantic``: blocks whose semantic-token queries attend to the patch tokens (the paper's
    #: two-layer STGM); the blocks after them see the semantic (and prefix) tokens only.
    stgm_layers: int = Field(default=2, ge=1)
    #: ``semantic``: how the patch grid is pooled into the initial semantic tokens (STViT's code
    #: pools with ``adaptive_max_pool2d``).
    pool: Literal["max", "avg"] = "max"

    @model_validator(mode="after")
    def _fields_of_the_method(self) -> TokenConfig:
        # a field counts as given when it differs from its default, so a dumped recipe validates again
        defaults = {
            name: f.get_default(call_default_factory=True) for name, f in type(self).model_fields.items()
        }

        def given(*names: str) -> list[str]:
            return sorted(n for n in names if getattr(self, n) != defaults[n])

        if self.method == "semantic":
            missing = [f for f in ("tokens", "at") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"method 'semantic' needs {' and '.join(missing)} (S tokens from block k)")
            stray = given("keep_rate", "at_blocks", "fuse_inattentive")
            if stray:
                raise ValueError(
                    f"method 'semantic' takes tokens, at, stgm_layers, pool; not {', '.join(stray)}"
                )
        elif stray := given("tokens", "at", "stgm_layers", "pool"):
            raise ValueError(
                f"{', '.join(stray)}: only method 'semantic' reads them (method is {self.method!r})"
            )
        if isinstance(self.keep_rate, list):
            if self.method == "pool":
                raise ValueError("keep_rate: method 'pool' takes one rate (1/n), not a list")
            if len(self.keep_rate) != len(self.at_blocks):
                raise ValueError(
                    f"keep_rate: a list needs one rate per block of at_blocks "
                    f"({len(self.at_blocks)}), got {len(self.keep_rate)}"
                )
        return self

    def rate_at(self, block: int) -> float:
        """The keep rate at ``block`` (one of ``at_blocks``)."""
        if isinstance(self.keep_rate, list):
            return self.keep_rate[self.at_blocks.index(block)]
        return self.keep_rate

    @property
    def keep_rates(self) -> list[float]:
        """One keep rate per block of ``at_blocks``, in that order."""
        return [self.rate_at(b) for b in self.at_blocks]


class LowRankConfig(Strict):
    """SVD factorisation of the Linear layers of the named op types, keeping ``rank_ratio`` of the rank."""

    rank_ratio: Ratio = 0.5
    targets: list[OpType] = Field(default_factory=lambda: ["fc1", "fc2"])  # type: ignore[arg-type]


class ClassBalanceConfig(Strict):
    """Class-balanced re-weighting of the distillation loss, deferred (DeiT-LT's weighted distillation).

    Class ``c`` with ``n_c`` training images weighs ``(1 - beta) / (1 - beta ** n_c)`` (the inverse
    "effective number" of Cui et al., CVPR 2019, arXiv:1901.05555), normalised to a mean of 1; the
    weights switch on at epoch ``from_epoch`` (deferred re-weighting, DRW: Cao et al., NeurIPS 2019,
    arXiv:1906.07413; DeiT-LT trains 1,100 of 1,200 CIFAR epochs unweighted).
    """

    beta: float = Field(default=0.9999, ge=0.0, lt=1.0)
    from_epoch: int = Field(default=0, ge=0)


class DistillConfig(Strict):
    """Fine-tuning from a teacher: logit KD (Hinton et al. 2015, arXiv:1503.02531) or DeiT's
    distillation token (Touvron et al. 2021, arXiv:2012.12877), optionally as in DeiT-LT.

    ``kind``: ``soft`` (KL at ``temperature``), ``hard`` (cross-entropy on the teacher's argmax) or
    ``none`` (no teacher: the distillation head, if any, learns the labels, as DeiT-LT's baseline);
    unset: ``hard`` through the distillation token, ``soft`` without it. ``augment``: the images
    student and teacher see (``strong``, ``cutmix``: DeiT-LT's out-of-distribution views,
    :mod:`accelsim.compress.augment`). ``class_balance``: re-weights the distillation loss for the
    tail classes. ``schedule``: constant learning rate, or linear warm-up then cosine decay
    (training from scratch).
    """

    epochs: int = Field(default=1, ge=1, le=1000)
    lr: float = Field(default=1e-4, gt=0.0)
    temperature: float = Field(default=4.0, gt=0.0)
    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    use_dist_token: bool = False
    kind: Literal["soft", "hard", "none"] | None = None
    augment: Literal["none", "shift", "strong", "cutmix"] = "none"
    class_balance: ClassBalanceConfig | None = None
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_epochs: int = Field(default=0, ge=0)
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    seed: int = 0
    max_batches: int | None = Field(default=None, ge=1)
    weight_decay: float = Field(default=0.0, ge=0.0)

    @property
    def loss_kind(self) -> Literal["soft", "hard", "none"]:
        """``kind`` with its default resolved."""
        if self.kind is not None:
            return self.kind
        return "hard" if self.use_dist_token else "soft"

    @model_validator(mode="after")
    def _balance_needs_a_teacher(self) -> DistillConfig:
        if self.class_balance is not None and self.loss_kind == "none":
            raise ValueError("class_balance: re-weights the distillation loss; kind 'none' has none")
        if self.warmup_epochs >= self.epochs and self.warmup_epochs > 0:
            raise ValueError(f"warmup_epochs: {self.warmup_epochs} must be below epochs ({self.epochs})")
        return self


class GrowConfig(Strict):
    """Grow the model into a wider and deeper ViT before anything else (:mod:`accelsim.compress.grow`).

    ``mango``: every target weight a linear function of all source weights through a multi-linear
    (tensor-ring) operator of ring rank ``rank``, trained ``operator_steps`` steps on the task loss
    (Pan et al., "Reusing Pretrained Models by Multi-linear Operators for Efficient Training",
    NeurIPS 2023). ``bert2bert``: the partial mapping it is compared with, width by
    function-preserving unit copies and depth by stacking (Chen et al., ACL 2022). The grown model is
    then trained like any other by the recipe's ``distill`` step (``kind: none`` trains it on the
    labels alone).
    """

    embed_dim: int = Field(ge=1)
    depth: int = Field(ge=1)
    method: Literal["mango", "bert2bert"] = "mango"
    rank: int = Field(default=1, ge=1, le=8)
    operator_steps: int = Field(default=100, ge=0)
    #: Adam's learning rate for the cores. Adam moves every core entry, the zeros of the partial
    #: mapping too, by about this much per step; on the reference DeiT (96 -> 192 wide, 4 -> 6
    #: blocks) 1e-3 ended 100 steps at a training loss of 0.20, 1e-4 at 0.12.
    operator_lr: float = Field(default=1e-4, gt=0.0)
    #: Off-diagonal ring slices of the operator start as N(0, init_noise^2) (rank > 1 only).
    init_noise: float = Field(default=1e-2, ge=0.0)
    seed: int = 0


class CompressionRecipe(Strict):
    """What :func:`accelsim.compress` applies, in the order grow -> prune -> lowrank -> tokens -> distill -> quant."""

    grow: GrowConfig | None = None
    quant: QuantConfig | None = None
    prune: PruneConfig | None = None
    tokens: TokenConfig | None = None
    lowrank: LowRankConfig | None = None
    distill: DistillConfig | None = None

    @classmethod
    def load(cls, path: str | Path) -> CompressionRecipe:
        """Read a recipe YAML; errors are one-line :class:`~accelsim.errors.ConfigError` naming the field."""
        return load_config(path, cls)

    @property
    def is_identity(self) -> bool:
        """True when the recipe changes nothing (the FP32 baseline)."""
        return all(getattr(self, f) is None for f in type(self).model_fields)


__all__ = [
    "OP_TYPES",
    "BitsOverride",
    "ClassBalanceConfig",
    "CompressionRecipe",
    "DistillConfig",
    "GrowConfig",
    "LowRankConfig",
    "OpType",
    "PruneConfig",
    "QATConfig",
    "QuantConfig",
    "TokenConfig",
]
