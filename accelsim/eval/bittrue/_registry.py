"""The table of execution rules, one handler shape for all: a rule per op kind (MAC ops, units,
hand-made graphs) or per ATen target (torch's semantics of the recorded call), and the choice of one.

Rule modules register themselves with :func:`register_handler`; the package ``__init__`` imports
them all to fill the table. A duplicate registration is a bug and raises at import. Lowering
records each op's ATen ``target`` and its arguments in ``attrs["args"]``/``["kwargs"]``, a tensor
argument as ``{"input": i}`` (accelsim/lower/context.py); :func:`aten_args` maps them back to the
op's input values.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from accelsim.errors import UnsupportedOpError
from accelsim.eval.bittrue.formats import Value
from accelsim.ir.graph import MOVEMENT_KINDS, Op, OpKind

if TYPE_CHECKING:  # pragma: no cover
    from accelsim.eval.bittrue.executor import _Ctx

#: A rule takes the run's context, the op and its input values, and returns its output values.
Handler = Callable[["_Ctx", Op, list[Value]], list[Value]]

#: keyed by OpKind, or by an ATen target as lowering records it in ``Op.target``
#: (``"aten.permute.default"``); no kind's value starts with ``aten.``, so the two never meet
_HANDLERS: dict[OpKind | str, Handler] = {}


def register_handler(*keys: OpKind | str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the rule of each of ``keys``.

    Args:
        *keys: op kinds (the rule executes the IR's semantics, from the op's attrs) or ATen targets
            ``"aten.<op>.<overload>"`` (the rule executes torch's semantics of the recorded call;
            :func:`aten_args` gives it the arguments).

    Raises:
        TypeError: a key is neither an :class:`OpKind` nor an ATen target.
        RuntimeError: a key already has a rule (two rules for one op is a bug, not a choice).
    """

    def deco(fn: Handler) -> Handler:
        for k in keys:
            if not isinstance(k, OpKind) and not (isinstance(k, str) and k.startswith("aten.")):
                raise TypeError(
                    f"register_handler wants an OpKind or an 'aten.<op>.<overload>' target, got {k!r}"
                )
            if k in _HANDLERS:
                raise RuntimeError(f"{k!r} already executed by {_HANDLERS[k].__qualname__}")
            _HANDLERS[k] = fn
        return fn

    return deco


def _resolve(a: Any, vals: list[Value]) -> Any:
    """``{"input": i}`` -> the op's i-th input value; ``{"float": "inf"}`` -> inf; lists mapped."""
    if isinstance(a, dict):
        if "input" in a:
            return vals[int(a["input"])]
        if "float" in a:
            return float(a["float"])
        return a
    if isinstance(a, list | tuple):
        return [_resolve(x, vals) for x in a]
    return a


def aten_args(op: Op, vals: list[Value]) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments of ``op``'s recorded ATen call, tensor arguments
    resolved to the op's input values ``vals``."""
    return _resolve(list(op.attrs.get("args") or []), vals), _resolve(
        dict(op.attrs.get("kwargs") or {}), vals
    )


def _counted_as_float(fn: Handler) -> Handler:
    """``fn`` with its op recorded among the float ops: torch's semantics of a computing ATen op
    (pooling, reduction, top-k) run on real values. Data movement is neither float nor integer."""

    @functools.wraps(fn)
    def run(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
        ctx.stats.float_ops.add(op.name)
        return fn(ctx, op, vals)

    return run


#: kinds whose semantics are the IR's own (attrs), whatever ATen op they came from
_KIND_FIRST = frozenset(
    {
        OpKind.MATMUL,
        OpKind.CONV2D,
        OpKind.DWCONV2D,
        OpKind.LINEAR_ATTENTION,
        OpKind.SOFTMAX,
        OpKind.LAYERNORM,
        OpKind.BATCHNORM,
        OpKind.ACTIVATION,
        OpKind.ELTWISE,
    }
)


def handler_for(op: Op) -> Handler:
    """The rule that executes ``op``: by kind for MAC ops and units, by ATen target otherwise."""
    if op.kind not in _KIND_FIRST and op.target.startswith("aten.") and op.target in _HANDLERS:
        fn = _HANDLERS[op.target]
        return fn if op.kind in MOVEMENT_KINDS else _counted_as_float(fn)
    if op.kind in _HANDLERS and (op.kind in _KIND_FIRST or not op.target or op.target.startswith("accelsim")):
        return _HANDLERS[op.kind]
    raise UnsupportedOpError(
        f"op {op.name!r}: the bit-true executor has no rule for {op.kind.value!r} op {op.target or '(no target)'}"
        f" (ATen ops it runs: {len(executable_targets())}; see accelsim.eval.bittrue.executable_targets())"
    )


def executable_targets() -> list[str]:
    """The ATen targets the executor runs by their own semantics."""
    return sorted(k for k in _HANDLERS if not isinstance(k, OpKind))


__all__ = ["Handler", "aten_args", "executable_targets", "handler_for", "register_handler"]
