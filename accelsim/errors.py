"""Every error accelsim raises on purpose derives from :class:`AccelsimError`.

The CLI turns these into one line on stderr and a non-zero exit; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import warnings
from typing import Any


class AccelsimError(Exception):
    """Base class of the errors a user can cause (bad input), as opposed to bugs."""


class ConfigError(AccelsimError, ValueError):
    """A YAML or pydantic config is invalid; the message names the field and what is allowed."""


class GraphFormatError(AccelsimError, ValueError):
    """A saved graph is corrupt, truncated or inconsistent."""


class UnsupportedOpError(AccelsimError, NotImplementedError):
    """Lowering met an ATen op (or an op kind) it has no rule for."""


class UnknownModelError(AccelsimError, KeyError):
    """A model name timm does not know; the message suggests close names."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class InputShapeError(AccelsimError, ValueError):
    """The input shape given to lowering does not suit the model."""


class ResourceError(AccelsimError):
    """A hardware design does not fit its board; the message names the overflowing resource.

    The simulator still reports such a design (``Report.fits`` False); the CLI raises this after
    printing it, and exits 3.
    """


class DataError(AccelsimError, FileNotFoundError):
    """A dataset path or checkpoint is missing or unreadable."""


class AccumulatorOverflowError(AccelsimError, ArithmeticError):
    """The bit-true executor saw an integer outgrow the datapath: an accumulator beyond its
    configured width, or a requantisation multiplier or exact sum beyond what it can represent."""


#: renamed errors, old name -> new; the old name still works and warns
DEPRECATED_NAMES = {"OverflowReport": "AccumulatorOverflowError"}


def deprecated_name(module: str, name: str) -> type[AccelsimError]:
    """The error an old ``name`` stands for, with a :class:`FutureWarning` naming the new one
    (a FutureWarning, as timm's renamed helpers give, so that script users see it too)."""
    new = DEPRECATED_NAMES[name]
    warnings.warn(f"{module}.{name} is deprecated; use {module}.{new}", FutureWarning, stacklevel=3)
    cls: type[AccelsimError] = globals()[new]
    return cls


def __getattr__(name: str) -> Any:
    if name in DEPRECATED_NAMES:
        return deprecated_name(__name__, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
