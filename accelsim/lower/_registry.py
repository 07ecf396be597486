"""The table of lowering rules: one function per ATen op (``OpOverload`` object, never a string).

Rule modules register themselves with :func:`register_lowering`; ``accelsim.lower`` imports
:mod:`accelsim.lower.rules` to fill the table (the shape of torch's ``register_decomposition``
and inductor's ``register_lowering``). A duplicate registration is a bug and raises at import.

An op can also be *refused* on purpose (:func:`refuse_lowering`): lowering it is still an
:class:`UnsupportedOpError`, but one that says why (an LSTM is not a dataflow op of this IR),
so a user learns it is a limit, not a gap someone forgot.
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
#: ops refused on purpose, with the reason the error gives
_REFUSED: dict[Any, str] = {}


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
            if op in _REFUSED:
                raise RuntimeError(f"{op} is refused ({_REFUSED[op]}); it cannot also have a rule")
            _LOWERINGS[op] = fn
        return fn

    return deco


def refuse_lowering(*aten_ops: Any, reason: str) -> None:
    """Refuse ``aten_ops`` on purpose: lowering one raises :class:`UnsupportedOpError` with ``reason``.

    Raises:
        RuntimeError: if an op already has a rule or a refusal.
    """
    for op in aten_ops:
        if isinstance(op, str):
            raise TypeError(f"refuse_lowering wants OpOverload objects, got the string {op!r}")
        if op in _LOWERINGS or op in _REFUSED:
            raise RuntimeError(f"{op} already has a rule or a refusal")
        _REFUSED[op] = reason


def get_lowering(target: Any, where: str = "") -> LoweringFn:
    """The rule of ``target``; :class:`UnsupportedOpError` naming the op (and ``where``) if none,
    with the reason when the op is refused on purpose."""
    try:
        return _LOWERINGS[target]
    except (KeyError, TypeError):  # TypeError: an unhashable FX target
        pass
    suffix = f" ({where})" if where else ""
    try:
        reason = _REFUSED.get(target)
    except TypeError:
        reason = None
    because = f": {reason}" if reason else ""
    raise UnsupportedOpError(f"no lowering rule for ATen op {target}{suffix}{because}")


def refused_ops() -> dict[Any, str]:
    """Every op refused on purpose, with its reason."""
    return dict(_REFUSED)


def registered_ops() -> list[Any]:
    """Every op that has a rule, in registration order."""
    return list(_LOWERINGS)
