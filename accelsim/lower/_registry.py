"""The table of lowering rules: one function per ATen op (``OpOverload`` object, never a string).

Rule modules register themselves with :func:`register_lowering`; ``accelsim.lower`` imports
:mod:`accelsim.lower.rules` to fill the table (the shape of torch's ``register_decomposition``
and inductor's ``register_lowering``). A duplicate registration is a bug and raises at import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from accelsim.errors import UnsupportedOpError

if TYPE_CHECKING:  # pragma: no cover
    from torch import fx

    from accelsim.lower.context import LoweringContext

#: A rule takes the FX node and the context, emits zero or more Ops and returns the node's value.
LoweringFn = Callable[["fx.Node", "LoweringContext"], Any]

_LOWERINGS: dict[Any, LoweringFn] = {}


def register_lowering(*aten_ops: Any) -> Callable[[LoweringFn], LoweringFn]:
    """Register the decorated function as the rule of each of ``aten_ops``.

    Args:
        *aten_ops: ``torch.ops.aten.<op>.<overload>`` objects (or other FX call targets such as
            higher-order operators).

    Raises:
        RuntimeError: if an op already has a rule (two rules for one op is a bug, not a choice).
    """

    def deco(fn: LoweringFn) -> LoweringFn:
        for op in aten_ops:
            if isinstance(op, str):
                raise TypeError(f"register_lowering wants OpOverload objects, got the string {op!r}")
            if op in _LOWERINGS:
                raise RuntimeError(f"{op} already lowered by {_LOWERINGS[op].__qualname__}")
            _LOWERINGS[op] = fn
        return fn

    return deco


def get_lowering(target: Any, where: str = "") -> LoweringFn:
    """The rule of ``target``; :class:`UnsupportedOpError` naming the op (and ``where``) if none."""
    try:
        return _LOWERINGS[target]
    except (KeyError, TypeError):
        suffix = f" ({where})" if where else ""
        raise UnsupportedOpError(f"no lowering rule for ATen op {target}{suffix}") from None


def registered_ops() -> list[Any]:
    """Every op that has a rule, in registration order."""
    return list(_LOWERINGS)
