"""The arithmetic of the simulated datapath, as the bit-true executor applies it.

An :class:`ArithmeticConfig` says how wide the accumulators are, how requantisation rounds, and
whether each special unit (softmax, GELU, layernorm, the linear-attention divisor) computes in
float or in its integer approximation. No torch here.

Example YAML::

    accumulator_bits: 24
    softmax: int
    gelu: lut
    hardswish: lut
    layernorm: int
    la_divisor: log2_shift
    overflow: raise
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from accelsim.config._base import Strict, load_config

if TYPE_CHECKING:  # pragma: no cover
    from accelsim.config.hardware import HardwareConfig


class ArithmeticConfig(Strict):
    """Integer semantics of the accelerator (see :mod:`accelsim.eval.bittrue` for the formats).

    Attributes:
        accumulator_bits: width of the MAC accumulators (two's complement). DSP48E2 has 48, most
            INT8 designs keep 32.
        requant_mantissa_bits: bits of the fixed-point requantisation multiplier ``m0`` (31 as in
            gemmlowp/TFLite's Q0.31 multiplier). ``accumulator_bits + requant_mantissa_bits`` must
            stay <= 63 so the product fits the int64 the executor computes in.
        requant_rounding: how ``(acc * m0) >> n`` rounds: ``half_up`` (add half then arithmetic
            shift, gemmlowp's rounding right shift for positive values), ``half_even`` or ``floor``
            (plain shift, the cheapest hardware).
        softmax: ``float`` or ``int`` (I-BERT's shift-based integer exp, Kim et al. 2021,
            arXiv:2101.01321, Alg. 2, then an integer division).
        gelu: ``float`` or ``lut`` (a ``2**lut_bits``-entry table over ``[-lut_range, lut_range]``,
            identity above and zero below the range).
        hardswish: ``float`` or ``lut`` (EfficientViT's activation, the same kind of table; exact
            at both tails, where hardswish is 0 below -3 and the identity above 3).
        layernorm: ``float`` or ``int`` (I-BERT's integer layernorm: integer mean, integer variance,
            integer square root, fixed-point affine).
        la_divisor: the linear-attention normaliser: ``log2_shift`` (divide by the nearest power of
            two, a shift) or ``true_divide``.
        overflow: ``raise`` an :class:`~accelsim.errors.AccumulatorOverflowError` on the first accumulator
            overflow, or ``report`` it (the value wraps as two's complement hardware would and the
            event is collected).
        unit_frac_bits: fractional bits of the fixed-point converter in front of an integer unit
            whose input is not already an integer tensor with one scale (float or per-channel).
        softmax_out_frac_bits: fractional bits of the integer softmax's probabilities before they
            are requantised to the output tensor's format.
        lut_bits: index bits of the activation tables.
        lut_range: the activation tables cover ``[-lut_range, lut_range]``.
    """

    accumulator_bits: int = Field(default=32, ge=8, le=48)
    requant_mantissa_bits: int = Field(default=31, ge=8, le=31)
    requant_rounding: Literal["half_up", "half_even", "floor"] = "half_up"
    softmax: Literal["float", "int"] = "int"
    gelu: Literal["float", "lut"] = "lut"
    hardswish: Literal["float", "lut"] = "lut"
    layernorm: Literal["float", "int"] = "int"
    la_divisor: Literal["log2_shift", "true_divide"] = "log2_shift"
    overflow: Literal["raise", "report"] = "raise"
    unit_frac_bits: int = Field(default=10, ge=2, le=20)
    softmax_out_frac_bits: int = Field(default=15, ge=4, le=24)
    lut_bits: int = Field(default=10, ge=4, le=16)
    lut_range: float = Field(default=6.0, gt=0.0, le=64.0)

    @model_validator(mode="after")
    def _product_fits_int64(self) -> ArithmeticConfig:
        total = self.accumulator_bits + self.requant_mantissa_bits
        if total > 63:
            raise ValueError(
                f"requant_mantissa_bits: accumulator_bits + requant_mantissa_bits must be <= 63 "
                f"(got {self.accumulator_bits} + {self.requant_mantissa_bits} = {total})"
            )
        return self

    @classmethod
    def float_units(cls, **overrides: object) -> ArithmeticConfig:
        """Integer MACs, but every special unit in float (the fake-quant model's semantics)."""
        base: dict[str, object] = {
            "softmax": "float",
            "gelu": "float",
            "hardswish": "float",
            "layernorm": "float",
        }
        base.update(overrides)
        return cls.model_validate(base)

    @classmethod
    def load(cls, path: str | Path) -> ArithmeticConfig:
        """Read an arithmetic YAML; errors are one-line :class:`~accelsim.errors.ConfigError`."""
        return load_config(path, cls)


def arithmetic_for(hw: HardwareConfig, base: ArithmeticConfig | None = None) -> ArithmeticConfig:
    """The datapath arithmetic a hardware config implies: its accumulator width
    (``buffers.acc_bits``, at most the 48 the executor emulates exactly) and its linear-attention
    divider (the unit's ``shift`` -> ``log2_shift``, ``true`` -> ``true_divide``; without the unit
    the normaliser runs on the vector unit, which divides: the log2 shift is the dedicated unit's
    saving); everything else from ``base``."""
    base = base or ArithmeticConfig()
    acc = min(hw.buffers.acc_bits, 48)
    upd: dict[str, Any] = {
        "accumulator_bits": acc,
        "requant_mantissa_bits": min(base.requant_mantissa_bits, 63 - acc),
    }
    la = hw.units.linear_attention
    upd["la_divisor"] = "log2_shift" if la is not None and la.divider == "shift" else "true_divide"
    return ArithmeticConfig.model_validate({**base.model_dump(), **upd})


__all__ = ["ArithmeticConfig", "arithmetic_for"]
