"""The table of execution rules: a handler per op kind (MAC ops, units, hand-made graphs) and one
per ATen target (torch's semantics of the recorded call), and the choice between them for an op.

Rule modules register themselves; the package ``__init__`` imports them all to fill the tables.
A duplicate registration is a bug and raises at import. Lowering records each op's ATen
``target`` and its arguments in ``attrs["args"]``/``["kwargs"]``, a tensor argument as
``{"input": i}`` (accelsim/lower/context.py); :func:`_resolve` maps them back to input values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from accelsim.errors import UnsupportedOpError
from accelsim.eval.bittrue.formats import Value
from accelsim.ir.graph import MOVEMENT_KINDS, Op, OpKind

if TYPE_CHECKING:  # pragma: no cover
    from accelsim.eval.bittrue.executor import _Ctx

Handler = Callable[["_Ctx", Op, list[Value]], list[Value]]
_HANDLERS: dict[OpKind, Handler] = {}


def _register(*kinds: OpKind) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for k in kinds:
            if k in _HANDLERS:
                raise RuntimeError(f"op kind {k} already executed by {_HANDLERS[k].__qualname__}")
            _HANDLERS[k] = fn
        return fn

    return deco


AtenFn = Callable[["_Ctx", Op, list[Any], dict[str, Any], list[Value]], list[Value]]
_ATEN: dict[str, AtenFn] = {}


def _aten(*names: str) -> Callable[[AtenFn], AtenFn]:
    def deco(fn: AtenFn) -> AtenFn:
        for n in names:
            if n in _ATEN:
                raise RuntimeError(f"{n} already executed by {_ATEN[n].__qualname__}")
            _ATEN[n] = fn
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


def _aten_handler(fn: AtenFn) -> Handler:
    def run(ctx: _Ctx, op: Op, vals: list[Value]) -> list[Value]:
        args = _resolve(list(op.attrs.get("args") or []), vals)
        kw = _resolve(dict(op.attrs.get("kwargs") or {}), vals)
        if op.kind not in MOVEMENT_KINDS:
            ctx.stats.float_ops.add(op.name)
        return fn(ctx, op, args, kw, vals)

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
    if op.kind not in _KIND_FIRST and op.target in _ATEN:
        return _aten_handler(_ATEN[op.target])
    if op.kind in _HANDLERS and (op.kind in _KIND_FIRST or not op.target or op.target.startswith("accelsim")):
        return _HANDLERS[op.kind]
    raise UnsupportedOpError(
        f"op {op.name!r}: the bit-true executor has no rule for {op.kind.value!r} op {op.target or '(no target)'}"
        f" (ATen ops it runs: {len(_ATEN)}; see accelsim.eval.bittrue.executable_targets())"
    )


def executable_targets() -> list[str]:
    """The ATen targets the executor runs by their own semantics."""
    return sorted(_ATEN)


__all__ = ["executable_targets", "handler_for"]
