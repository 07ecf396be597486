"""Quantisation parameters of a tensor, as the hardware sees them (no torch here).

The contract between compression, lowering and the bit-true executor:

- A fake-quantiser module in a compressed model sets the class attribute
  ``accelsim_quantizer = True`` and has a method ``qparams() -> QuantParams``.
- Lowering drops the ATen ops traced inside such a module (they are bookkeeping, not work on
  the accelerator), passes its input tensor through, and records ``qparams()`` in
  ``Graph.quant`` under the name of the tensor it quantises, whose ``bits`` it sets.
- The bit-true executor reads ``Graph.quant`` to turn float tensors into integers.

``value = (q - zero_point) * scale`` for ``mode="uniform"`` (``scale`` a power of two when
``power_of_two``); for ``mode="log2"``, ``value = sign * 2 ** (-q) * scale`` (q = 0 .. 2**bits - 2,
the largest code meaning zero), as used for attention probabilities and the linear-attention divisor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from accelsim.errors import GraphFormatError


@dataclass(frozen=True, eq=False)
class QuantParams:
    bits: int
    scale: np.ndarray  # shape () per tensor, or (channels,) along ``axis``
    zero_point: np.ndarray  # same shape as scale, integers
    signed: bool = True
    axis: int | None = None
    mode: Literal["uniform", "log2"] = "uniform"
    power_of_two: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 32:
            raise GraphFormatError(f"quant bits must be in 1..32, got {self.bits}")
        object.__setattr__(self, "scale", np.asarray(self.scale, dtype=np.float64))
        object.__setattr__(self, "zero_point", np.asarray(self.zero_point, dtype=np.int64))
        if self.scale.shape != self.zero_point.shape:
            raise GraphFormatError(
                f"scale shape {self.scale.shape} != zero_point shape {self.zero_point.shape}"
            )
        if self.mode not in ("uniform", "log2"):
            raise GraphFormatError(f"quant mode must be 'uniform' or 'log2', got {self.mode!r}")

    @property
    def qmin(self) -> int:
        return -(2 ** (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "bits": self.bits,
            "scale": self.scale.tolist(),
            "zero_point": self.zero_point.tolist(),
            "signed": self.signed,
            "axis": self.axis,
            "mode": self.mode,
            "power_of_two": self.power_of_two,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantParams:
        return cls(
            bits=int(d["bits"]),
            scale=np.asarray(d["scale"], dtype=np.float64),
            zero_point=np.asarray(d["zero_point"], dtype=np.int64),
            signed=bool(d.get("signed", True)),
            axis=d.get("axis"),
            mode=d.get("mode", "uniform"),
            power_of_two=bool(d.get("power_of_two", False)),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QuantParams) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]
