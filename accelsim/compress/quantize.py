"""Post-training fake quantisation of timm ViTs, following the IR contract of :mod:`accelsim.ir.quant`.

Every quantiser is a :class:`FakeQuantizer` module (``accelsim_quantizer = True``, ``qparams()``), so
lowering drops its bookkeeping ops and records its :class:`~accelsim.ir.quant.QuantParams` on the
tensor it quantises. What is quantised:

- ``nn.Linear`` / ``nn.Conv2d``: the input activation (per tensor) and the weight (symmetric, per
  output channel or, with ``weight_granularity: per_tensor``, one scale per tensor); the class is swapped in place to :class:`QuantLinear` / :class:`QuantConv2d`,
  so ``isinstance(m, nn.Linear)`` still holds and the weights are not copied.
- timm ``Attention``: q (already multiplied by ``head_dim ** -0.5``), k, v and the softmax output,
  with an explicit ``q @ k^T -> softmax -> @ v`` (no fused SDPA), so both activation x activation
  matmuls appear as plain matmuls in the lowered graph.
- EfficientViT ``LiteMLA``: ReLU(q), ReLU(k), v, and (with ``log2_attention``) the k-sum divisor as a
  log2 code, so that the division is a shift on the accelerator (EfficientViT, Cai et al., ICCV 2023,
  arXiv:2205.14756, uses ReLU linear attention; the log2 divisor is our hardware choice).
- BatchNorm after a convolution (EfficientViT's ``ConvNormAct``) is folded into the conv first,
  as an accelerator would do, so the quantised weights are the folded ones.

Calibrators for activations (per tensor): ``minmax`` (running range), ``percentile`` (clip at the
given percentile of a seeded sample of values) and ``mse`` (grid search of the clipping range that
minimises the quantisation MSE on the sample, as in e.g. Banner et al. 2019, arXiv:1810.05723).
Weights use min-max, or the MSE search with ``calibrator: mse`` (per channel, or over a seeded
sample of the tensor when per tensor).
Log2 quantisation of attention probabilities follows FQ-ViT (Lin et al., IJCAI 2022, arXiv:2111.13824):
``q = round(-log2(p))`` so that ``p @ v`` needs only shifts.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from timm.layers.attention import Attention, maybe_add_mask, resolve_self_attn_mask
from timm.models.efficientvit_mit import ConvNormAct, LiteMLA
from torch import nn

from accelsim._progress import progress
from accelsim.config.compression import QATConfig, QuantConfig
from accelsim.errors import ConfigError
from accelsim.ir.quant import QuantParams

log = logging.getLogger(__name__)

Calibrator = Literal["minmax", "percentile", "mse"]
#: Values kept per calibration batch per quantiser (a seeded random subsample): enough for a
#: 99.99th percentile to be meaningful, small enough that calibration stays cheap.
_SAMPLES_PER_BATCH = 1 << 15
#: Clipping ratios tried by the MSE calibrator (fractions of the min-max range).
_MSE_GRID = torch.linspace(0.2, 1.0, 41)
#: The largest filter-wise shift, 2^5 (the range Trio-ViT's code allows).
_MAX_FILTER_SHIFT = 5
#: Values the MSE search of one activation quantiser looks at.
_MSE_SAMPLES = 1 << 15


def _round(t: torch.Tensor) -> torch.Tensor:
    """Round half to even, like ``torch.round``/``np.round``, but vectorised (about 25x faster on CPU).

    Adding and subtracting 1.5 * 2**(mantissa bits) leaves the float rounded to an integer by the
    FPU's round-to-nearest-even; exact for ``|t| < 2**22`` (float32), and values beyond that are
    clipped by the quantiser anyway.
    """
    if t.dtype == torch.float32:
        magic = 12582912.0  # 1.5 * 2**23
    elif t.dtype == torch.float64:
        magic = 6755399441055744.0  # 1.5 * 2**52
    else:
        return torch.round(t)
    return (t + magic) - magic


def _pow2_ceil(scale: torch.Tensor) -> torch.Tensor:
    """The smallest power of two >= ``scale`` (rounding up never clips more than min-max would)."""
    return torch.exp2(torch.ceil(torch.log2(scale)))


class FakeQuantizer(nn.Module):
    """Quantise-dequantise one tensor; calibrates its range from data first when asked.

    Args:
        bits: code width, 2..16.
        symmetric: signed codes with zero point 0; otherwise unsigned codes with a zero point
            (an all-non-negative range, e.g. after ReLU or softmax, gets zero point 0 as well).
        axis: ``None`` for one scale per tensor, ``0`` for one per output channel (weights).
        mode: ``uniform``, or ``log2`` (non-negative values only: ``value = 2 ** -q * scale``).
        power_of_two: round the scale up to a power of two (shifts instead of multipliers).
        calibrator: how a range is chosen from the observed values.
        percentile: for ``calibrator="percentile"``.
        fixed_scale: a log2 quantiser with a data-independent scale (1.0 for probabilities).
        for_weights: quantises a weight (calibrated once from the weight itself, so activation
            calibration and data-free ranges leave it alone whatever its ``axis``).
        channel_scheme: how a per-channel activation range becomes scales (Trio-ViT, Shi et al.
            2024, arXiv:2405.03882): ``migrate`` centres each channel on its range's midpoint
            (per-channel zero point, one scale for the largest half-range: channel-wise
            migration); ``pow2_shift`` gives each channel the largest channel's scale divided by a
            power of two, 2^0..2^5 (filter-wise shifting). ``none``: a scale per channel.

    The straight-through estimator (Bengio et al. 2013, arXiv:1308.3432) passes gradients inside
    the clipping range, so the same module serves QAT.
    """

    accelsim_quantizer = True
    scale: torch.Tensor
    zero_point: torch.Tensor

    def __init__(
        self,
        bits: int,
        *,
        symmetric: bool,
        axis: int | None = None,
        mode: Literal["uniform", "log2"] = "uniform",
        power_of_two: bool = False,
        calibrator: Calibrator = "minmax",
        percentile: float = 99.99,
        fixed_scale: float | None = None,
        for_weights: bool = False,
        channel_scheme: Literal["none", "migrate", "pow2_shift"] = "none",
    ) -> None:
        super().__init__()
        if channel_scheme != "none" and (axis is None or not symmetric or mode != "uniform"):
            raise ConfigError(
                f"channel_scheme {channel_scheme!r} needs a symmetric uniform per-channel quantizer"
            )
        if not 2 <= bits <= 16:
            raise ConfigError(f"quantizer bits must be in 2..16, got {bits}")
        if mode == "log2" and axis is not None:
            raise ConfigError("log2 quantisation is per tensor only (axis must be None)")
        self.bits = bits
        self.symmetric = symmetric and mode == "uniform"
        self.axis = axis
        self.mode = mode
        self.power_of_two = power_of_two
        self.calibrator = calibrator
        self.percentile = percentile
        self.fixed_scale = fixed_scale
        self.for_weights = for_weights
        self.channel_scheme = channel_scheme
        self.calibrating = False
        self.enabled = True
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("zero_point", torch.zeros((), dtype=torch.int64))
        self._min: torch.Tensor | None = None
        self._max: torch.Tensor | None = None
        self._samples: list[torch.Tensor] = []
        self._gen = torch.Generator().manual_seed(0)
        self.calibrated = fixed_scale is not None
        if fixed_scale is not None:
            self.scale.fill_(fixed_scale)

    # -- integer range ---------------------------------------------------------------------
    @property
    def qmin(self) -> int:
        return -(2 ** (self.bits - 1)) if self.symmetric else 0

    @property
    def qmax(self) -> int:
        if self.mode == "log2":
            return 2**self.bits - 2  # the largest code means zero (contract of accelsim.ir.quant)
        return 2 ** (self.bits - 1) - 1 if self.symmetric else 2**self.bits - 1

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            self._observe(x.detach())
            return x
        if not self.enabled:
            return x
        return self.fake_quant(x)

    def _bshape(self, x: torch.Tensor) -> tuple[int, ...]:
        if self.axis is None:
            return ()
        shape = [1] * x.dim()
        shape[self.axis] = x.shape[self.axis]
        return tuple(shape)

    def fake_quant(self, x: torch.Tensor) -> torch.Tensor:
        """Quantise and dequantise ``x`` with the current scale and zero point."""
        scale = self.scale.reshape(self._bshape(x)).to(x.dtype)
        if self.mode == "log2":
            xn = torch.clamp(x / scale, min=torch.finfo(x.dtype).tiny)
            q = _round(-torch.log2(xn))
            y = torch.where((q > self.qmax) | (x <= 0), torch.zeros_like(x), torch.exp2(-q) * scale)
            if torch.is_grad_enabled() and x.requires_grad:
                y = x + (y - x).detach()
            return y
        zp = self.zero_point.reshape(self._bshape(x)).to(x.dtype)
        q = torch.clamp(_round(x / scale) + zp, self.qmin, self.qmax)
        y = (q - zp) * scale
        if torch.is_grad_enabled() and x.requires_grad:
            # clipped STE: gradient 1 inside the representable range, 0 where the value was clipped
            lo, hi = (self.qmin - zp) * scale, (self.qmax - zp) * scale
            xc = torch.minimum(torch.maximum(x, lo), hi)
            y = xc + (y - xc).detach()
        return y

    # -- calibration -----------------------------------------------------------------------
    def _observe(self, x: torch.Tensor) -> None:
        x = x.float()
        if self.axis is not None:
            flat = x.transpose(0, self.axis).reshape(x.shape[self.axis], -1)
            lo, hi = torch.aminmax(flat, dim=1)
        else:
            lo, hi = torch.aminmax(x)
            flat = x.reshape(-1)
            if flat.numel() > _SAMPLES_PER_BATCH:
                idx = torch.randint(0, flat.numel(), (_SAMPLES_PER_BATCH,), generator=self._gen)
                flat = flat[idx]
            self._samples.append(flat.clone())
        self._min = lo if self._min is None else torch.minimum(self._min, lo)
        self._max = hi if self._max is None else torch.maximum(self._max, hi)

    def calibrate_from(self, x: torch.Tensor) -> None:
        """Observe ``x`` once and fix the range (used for weights, which need no data)."""
        self._observe(x.detach())
        if self.axis is not None and self.calibrator == "mse":
            self._set_range_per_channel_mse(x.detach().float())
        else:
            self.finalize()

    def finalize(self) -> None:
        """Turn the observed values into ``scale`` and ``zero_point``; stop calibrating."""
        self.calibrating = False
        if self.fixed_scale is not None:
            self._reset_observations()
            return
        if self._min is None or self._max is None:
            # a quantiser outside the traced forward (e.g. a block that computes attention its own
            # way) never runs, so it has nothing to calibrate and nothing to contribute to the graph
            log.warning("a %d-bit quantizer saw no data during calibration; left uncalibrated", self.bits)
            return
        lo, hi = self._min, self._max
        if self.axis is None and self.calibrator != "minmax":
            samples = torch.cat(self._samples)
            if self.calibrator == "mse" and samples.numel() > _MSE_SAMPLES:
                # the grid search runs 41 fake-quants of the sample: keep it to a fixed, seeded size
                samples = samples[torch.randperm(samples.numel(), generator=self._gen)[:_MSE_SAMPLES]]
            if self.calibrator == "percentile":
                lo, hi = self._percentile_range(samples)
            else:
                lo, hi = self._mse_range(samples, lo, hi)
        self.set_range(lo, hi)
        self._reset_observations()

    def _reset_observations(self) -> None:
        self._min = self._max = None
        self._samples = []

    def _percentile_range(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.percentile / 100.0
        if self.symmetric:
            amax = torch.quantile(s.abs(), p)
            return -amax, amax
        return torch.quantile(s, 1.0 - p), torch.quantile(s, p)

    def _mse_range(
        self, s: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        best, best_err = (lo, hi), math.inf
        for c in _MSE_GRID.tolist():
            self.set_range(lo * c, hi * c)
            err = float(((self.fake_quant(s) - s) ** 2).mean())
            if err < best_err:
                best, best_err = (lo * c, hi * c), err
        return best

    def _set_range_per_channel_mse(self, w: torch.Tensor) -> None:
        flat = w.transpose(0, self.axis or 0).reshape(w.shape[self.axis or 0], -1)
        amax = flat.abs().max(dim=1).values.clamp(min=1e-12)
        best_c = torch.ones_like(amax)
        best_err = torch.full_like(amax, math.inf)
        for c in _MSE_GRID.tolist():
            scale = self._uniform_scale(-amax * c, amax * c)[0]
            q = torch.clamp(_round(flat / scale[:, None]), self.qmin, self.qmax)
            err = ((q * scale[:, None] - flat) ** 2).sum(dim=1)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_c = torch.where(better, torch.full_like(best_c, c), best_c)
        self.set_range(-amax * best_c, amax * best_c)
        self._reset_observations()
        self.calibrating = False

    def _uniform_scale(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # the range always contains 0, so that zero (padding, ReLU output) is exact
        lo = torch.minimum(lo, torch.zeros_like(lo))
        hi = torch.maximum(hi, torch.zeros_like(hi))
        scale = torch.maximum(-lo, hi) / self.qmax if self.symmetric else (hi - lo) / (self.qmax - self.qmin)
        scale = torch.clamp(scale, min=1e-8)
        if self.power_of_two:
            scale = _pow2_ceil(scale)
        if self.symmetric:
            zp = torch.zeros_like(scale, dtype=torch.int64)
        else:
            zp = torch.clamp(torch.round(-lo / scale), self.qmin, self.qmax).to(torch.int64)
        return scale, zp

    def _channel_scales(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel ``(scale, zero_point)`` of a ``channel_scheme`` (see the class docstring)."""
        if self.channel_scheme == "migrate":
            # Trio-ViT's Eq. 9 shifts by (max - min) / 2, the midpoint for a channel whose minimum
            # is 0; the midpoint centres any channel, so that is what is used here
            mid, half = (lo + hi) / 2, (hi - lo) / 2
            s = torch.clamp(half.max() / self.qmax, min=1e-8)
            if self.power_of_two:
                s = _pow2_ceil(s)
            return s.expand_as(mid).clone(), (-_round(mid / s)).to(torch.int64)
        amax = torch.maximum(-lo, hi).clamp(min=0)
        per_channel = torch.clamp(amax / self.qmax, min=1e-8)
        top = per_channel.max()
        if self.power_of_two:
            top = _pow2_ceil(top)
        # rounding the ratio's exponent down keeps each scale >= the channel's own: nothing clips
        k = torch.clamp(torch.floor(torch.log2(top / per_channel)), 0, _MAX_FILTER_SHIFT)
        return top * torch.exp2(-k), torch.zeros_like(k, dtype=torch.int64)

    def set_range(self, lo: torch.Tensor | float, hi: torch.Tensor | float) -> None:
        """Fix the representable range to ``[lo, hi]`` (scalars, or one value per channel)."""
        lo_t = torch.as_tensor(lo, dtype=torch.float32)
        hi_t = torch.as_tensor(hi, dtype=torch.float32)
        if self.mode == "log2":
            scale = torch.clamp(hi_t, min=1e-12)
            if self.power_of_two:
                scale = _pow2_ceil(scale)
            zp = torch.zeros_like(scale, dtype=torch.int64)
        elif self.channel_scheme != "none":
            scale, zp = self._channel_scales(lo_t, hi_t)
        else:
            scale, zp = self._uniform_scale(lo_t, hi_t)
        self.scale = scale.to(self.scale.device)
        self.zero_point = zp.to(self.zero_point.device)
        self.calibrated = True

    # -- IR contract -----------------------------------------------------------------------
    def qparams(self) -> QuantParams:
        """The hardware view of this quantiser (see :mod:`accelsim.ir.quant`)."""
        return QuantParams(
            bits=self.bits,
            scale=self.scale.detach().cpu().double().numpy(),
            zero_point=self.zero_point.detach().cpu().numpy().astype(np.int64),
            signed=self.symmetric,
            axis=self.axis,
            mode=self.mode,
            power_of_two=self.power_of_two,
        )

    def extra_repr(self) -> str:
        kind = "sym" if self.symmetric else "asym"
        ax = "per-tensor" if self.axis is None else f"per-channel(axis={self.axis})"
        return f"bits={self.bits}, {self.mode}, {kind}, {ax}, calibrator={self.calibrator}, pow2={self.power_of_two}"


# -- quantised layers (class swapped in place; parameters are not copied) ----------------------
class QuantLinear(nn.Linear):
    """``nn.Linear`` with a per-tensor input quantiser and a weight quantiser."""

    input_quantizer: FakeQuantizer
    weight_quantizer: FakeQuantizer
    op_type: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.input_quantizer(x), self.weight_quantizer(self.weight), self.bias)


class QuantConv2d(nn.Conv2d):
    """``nn.Conv2d`` with a per-tensor input quantiser and a weight quantiser."""

    input_quantizer: FakeQuantizer
    weight_quantizer: FakeQuantizer
    op_type: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.input_quantizer(x), self.weight_quantizer(self.weight), self.bias)


class QuantAttention(Attention):
    """timm ``Attention`` with q, k, v and the attention probabilities quantised.

    The forward is timm's non-fused path (explicit matmuls and softmax), with quantisers between.
    """

    q_quantizer: FakeQuantizer
    k_quantizer: FakeQuantizer
    v_quantizer: FakeQuantizer
    attn_quantizer: FakeQuantizer

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        B, N, _ = x.shape
        gate_fc = getattr(self, "gate", None)
        gate = gate_fc(x).sigmoid() if gate_fc is not None else None
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        q = self.q_quantizer(q * self.scale)
        k = self.k_quantizer(k)
        v = self.v_quantizer(v)
        attn = q @ k.transpose(-2, -1)
        attn = maybe_add_mask(attn, resolve_self_attn_mask(N, attn, attn_mask, is_causal))
        attn = attn.softmax(dim=-1)
        attn = self.attn_quantizer(self.attn_drop(attn))
        x = attn @ v
        x = x.transpose(1, 2).reshape(B, N, self.num_heads * self.head_dim)
        x = self.norm(x)
        if gate is not None:
            x = x * gate
        return self.proj_drop(self.proj(x))


class QuantLiteMLA(LiteMLA):
    """EfficientViT ``LiteMLA`` with ReLU(q), ReLU(k), v and (optionally) the divisor quantised."""

    q_quantizer: FakeQuantizer
    k_quantizer: FakeQuantizer
    v_quantizer: FakeQuantizer
    div_quantizer: nn.Module  # a FakeQuantizer (log2) or nn.Identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        qkv = self.qkv(x)
        multi = torch.cat([qkv, *[op(qkv) for op in self.aggreg]], dim=1)
        multi = multi.reshape(B, -1, 3 * self.dim, H * W).transpose(-1, -2)
        q, k, v = multi.chunk(3, dim=-1)
        q = self.q_quantizer(self.kernel_func(q))
        k = self.k_quantizer(self.kernel_func(k))
        v = F.pad(self.v_quantizer(v), (0, 1), mode="constant", value=1.0)
        kv = k.transpose(-1, -2) @ v
        out = q @ kv
        out = out[..., :-1] / self.div_quantizer(out[..., -1:] + self.eps)
        out = out.transpose(-1, -2).reshape(B, -1, H, W)
        return self.proj(out)


# -- model surgery -------------------------------------------------------------------------------
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm that directly follows a conv in EfficientViT's ``ConvNormAct``.

    In place; returns ``model``. The BatchNorm becomes ``nn.Identity`` and the conv gains a bias.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for m in model.modules():
        if (
            isinstance(m, ConvNormAct)
            and isinstance(m.norm, nn.BatchNorm2d)
            and isinstance(m.conv, nn.Conv2d)
        ):
            m.conv = fuse_conv_bn_eval(m.conv.eval(), m.norm.eval())
            m.norm = nn.Identity()
    return model


_LINEAR_TYPES = {"qkv": "qkv", "proj": "proj", "fc1": "fc1", "fc2": "fc2"}


def op_type_of(name: str, module: nn.Module, litemla_names: Iterable[str] = ()) -> str:
    """The recipe op type (``qkv``, ``fc1``, ``conv``, ...) of the Linear/Conv2d at ``name``.

    Examples:
        >>> from torch import nn
        >>> op_type_of("blocks.3.mlp.fc1", nn.Linear(2, 2))
        'fc1'
        >>> op_type_of("head", nn.Linear(2, 2))
        'head'
    """
    parts = name.split(".")
    if isinstance(module, nn.Conv2d):
        for lm in litemla_names:
            if name == f"{lm}.qkv.conv":
                return "qkv"
            if name == f"{lm}.proj.conv":
                return "proj"
        depthwise = module.groups > 1 and module.groups == module.in_channels
        return "dwconv" if depthwise else "conv"
    if parts[0] == "head":
        return "head"
    for p in reversed(parts):
        if p in _LINEAR_TYPES:
            return _LINEAR_TYPES[p]
    return "linear"


def _act_quantizer(cfg: QuantConfig, bits: int, *, symmetric: bool | None = None) -> FakeQuantizer:
    q = FakeQuantizer(
        bits,
        symmetric=cfg.symmetric_activations if symmetric is None else symmetric,
        power_of_two=cfg.power_of_two,
        calibrator=cfg.calibrator,
        percentile=cfg.percentile,
    )
    return q


def _pointwise_after_depthwise(model: nn.Module) -> set[str]:
    """Paths of the 1x1 convs that read a depthwise conv's output in EfficientViT's MBConv and
    DSConv (``depth_conv`` then ``point_conv``): Trio-ViT's filter-wise shifting targets their input."""
    out = set()
    for name, m in model.named_modules():
        dw, pw = getattr(m, "depth_conv", None), getattr(m, "point_conv", None)
        if isinstance(dw, ConvNormAct) and isinstance(pw, ConvNormAct):
            out.add(f"{name}.point_conv.conv" if name else "point_conv.conv")
    return out


def _channel_scheme(
    cfg: QuantConfig, name: str, op_type: str, pw_after_dw: set[str]
) -> Literal["none", "migrate", "pow2_shift"]:
    if cfg.channel_migration and op_type == "dwconv":
        return "migrate"
    if cfg.filter_shift and name in pw_after_dw:
        return "pow2_shift"
    return "none"


def _channel_quantizer(
    cfg: QuantConfig, bits: int, scheme: Literal["migrate", "pow2_shift"]
) -> FakeQuantizer:
    """A per-channel (axis 1) symmetric activation quantiser calibrated on min/max per channel."""
    return FakeQuantizer(
        bits,
        symmetric=True,
        axis=1,
        power_of_two=cfg.power_of_two,
        calibrator="minmax",
        channel_scheme=scheme,
    )


def _weight_quantizer(cfg: QuantConfig, bits: int) -> FakeQuantizer:
    return FakeQuantizer(
        bits,
        symmetric=True,
        axis=0 if cfg.weight_granularity == "per_channel" else None,
        for_weights=True,
        power_of_two=cfg.power_of_two,
        calibrator="mse" if cfg.calibrator == "mse" else "minmax",
    )


def _attach_quantizers(model: nn.Module, cfg: QuantConfig) -> None:
    """Swap Linear/Conv2d/Attention/LiteMLA classes in place and attach their quantisers."""
    named = list(model.named_modules())
    litemla_names = [n for n, m in named if type(m) is LiteMLA]
    pw_after_dw = _pointwise_after_depthwise(model)
    for name, m in named:
        if isinstance(m, FakeQuantizer):
            continue
        if type(m) is Attention:
            _, a_qk = cfg.bits_for("attn_qk")
            _, a_av = cfg.bits_for("attn_av")
            m.__class__ = QuantAttention
            m.add_module("q_quantizer", _act_quantizer(cfg, a_qk))
            m.add_module("k_quantizer", _act_quantizer(cfg, a_qk))
            m.add_module("v_quantizer", _act_quantizer(cfg, a_av))
            if cfg.log2_attention:
                probs = FakeQuantizer(a_av, symmetric=False, mode="log2", fixed_scale=1.0)
            else:
                probs = _act_quantizer(cfg, a_av, symmetric=False)
                # probabilities live in [0, 1]: a fixed range needs no data and keeps zero exact
                probs.set_range(0.0, 1.0)
                probs.fixed_scale = float(probs.scale)
            m.add_module("attn_quantizer", probs)
        elif type(m) is LiteMLA:
            _, a_la = cfg.bits_for("linear_attention")
            m.__class__ = QuantLiteMLA
            m.add_module("q_quantizer", _act_quantizer(cfg, a_la))
            m.add_module("k_quantizer", _act_quantizer(cfg, a_la))
            m.add_module("v_quantizer", _act_quantizer(cfg, a_la))
            div: nn.Module = (
                FakeQuantizer(a_la, symmetric=False, mode="log2", power_of_two=True, calibrator="minmax")
                if cfg.log2_attention
                else nn.Identity()
            )
            m.add_module("div_quantizer", div)
        elif type(m) in (nn.Linear, nn.Conv2d):
            op_type = op_type_of(name, m, litemla_names)
            wbits, abits = cfg.bits_for(op_type)
            m.__class__ = QuantLinear if isinstance(m, nn.Linear) else QuantConv2d
            m.op_type = op_type
            scheme = _channel_scheme(cfg, name, op_type, pw_after_dw)
            act = _act_quantizer(cfg, abits) if scheme == "none" else _channel_quantizer(cfg, abits, scheme)
            m.add_module("input_quantizer", act)
            wq = _weight_quantizer(cfg, wbits)
            m.add_module("weight_quantizer", wq)
            wq.calibrate_from(m.weight)


def quantizers(model: nn.Module) -> Iterator[tuple[str, FakeQuantizer]]:
    """Every fake quantiser in ``model`` with its module path."""
    for name, m in model.named_modules():
        if isinstance(m, FakeQuantizer):
            yield name, m


def _images(batch: Any) -> torch.Tensor:
    return batch[0] if isinstance(batch, list | tuple) else batch


def calibrate(model: nn.Module, calib_data: Iterable[Any], num_batches: int) -> int:
    """Run up to ``num_batches`` batches through ``model`` and fix every activation range.

    Returns the number of batches used. All activation quantisers observe float values in the same
    pass (no sequential, quantised-input calibration): cheap and deterministic.
    """
    acts = [q for _, q in quantizers(model) if not q.for_weights and q.fixed_scale is None]
    for q in acts:
        q.calibrating = True
    used = 0
    model.eval()
    with torch.no_grad():
        for batch in progress(calib_data, "calibrate", limit=num_batches, unit="batch"):
            if used >= num_batches:
                break
            model(_images(batch))
            used += 1
    if used == 0:
        raise ConfigError("quant.calibrate: calib_data yielded no batch")
    for q in acts:
        q.finalize()
    return used


def set_uncalibrated_ranges(model: nn.Module, cfg: QuantConfig) -> None:
    """Data-free ranges: every activation quantiser gets ``[-uncalibrated_range, uncalibrated_range]``."""
    r = cfg.uncalibrated_range
    for _, q in quantizers(model):
        if not q.for_weights and q.fixed_scale is None:
            q.set_range(-r, r) if q.mode == "uniform" else q.set_range(0.0, r)


def quantize_model(
    model: nn.Module,
    cfg: QuantConfig,
    *,
    calib_data: Iterable[Any] | None = None,
    train_data: Iterable[Any] | None = None,
) -> nn.Module:
    """Fake-quantise a copy of ``model`` as ``cfg`` says, calibrate it and optionally fine-tune (QAT).

    Args:
        model: a timm ViT/EfficientViT (possibly pruned); not modified.
        cfg: the ``quant`` section of a recipe.
        calib_data: ``(images, labels)`` batches; needed when ``cfg.calibrate``.
        train_data: ``(images, labels)`` batches; needed when ``cfg.qat`` is set.

    Returns:
        The quantised model in eval mode.

    Raises:
        ConfigError: calibration or QAT was asked for without data.
    """
    if cfg.calibrate and calib_data is None:
        raise ConfigError(
            "quant.calibrate: true needs calib_data (got None); set calibrate: false for data-free ranges"
        )
    if cfg.qat is not None and train_data is None:
        raise ConfigError("quant.qat: needs train_data (got None)")
    out = fold_batchnorm(copy.deepcopy(model).eval())
    _attach_quantizers(out, cfg)
    if cfg.calibrate:
        assert calib_data is not None
        used = calibrate(out, calib_data, cfg.calib_batches)
        log.info("calibrated %d quantizers on %d batches", sum(1 for _ in quantizers(out)), used)
    else:
        set_uncalibrated_ranges(out, cfg)
    if cfg.qat is not None:
        from accelsim.compress.qat import train_qat

        assert train_data is not None
        out = train_qat(out, train_data, cfg.qat)
    return out.eval()


def quant_summary(model: nn.Module) -> dict[str, QuantParams]:
    """``{quantiser path: QuantParams}`` of every quantiser in ``model`` (what lowering records)."""
    return {name: q.qparams() for name, q in quantizers(model)}


__all__ = [
    "FakeQuantizer",
    "QATConfig",
    "QuantAttention",
    "QuantConv2d",
    "QuantLinear",
    "QuantLiteMLA",
    "calibrate",
    "fold_batchnorm",
    "op_type_of",
    "quant_summary",
    "quantize_model",
    "quantizers",
]
