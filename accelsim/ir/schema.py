"""The IR's attribute schema per op kind, as data, and the checks :meth:`Graph.validate` runs.

Every op kind lists the attributes it needs (``required``) and the ones it may carry
(``optional``), each with the values it allows; MAC kinds also say how their MAC count follows
from their attributes, so a saved graph's ``macs`` field is checked against its shapes instead of
trusted (a wrong count would silently scale GOPS and utilisation). Attributes not listed are kept
and not checked (lowering records extras, such as ``in_shapes`` and the ATen ``args``).

No torch, no numba: :mod:`accelsim.ir.graph` imports this.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from accelsim.errors import GraphFormatError
from accelsim.ir.graph import MAX_DIM, MOVEMENT_KINDS, Op, OpKind


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


#: an op's MAC count: a product of dimensions, so beyond MAX_DIM, but inside int64 with room to sum
MAX_MACS = 2**62


def _pos(v: Any) -> bool:
    return _is_int(v) and 1 <= v <= MAX_DIM


def _nonneg(v: Any) -> bool:
    return _is_int(v) and 0 <= v <= MAX_DIM


def _pair(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if isinstance(v, list | tuple):
            return len(v) == 2 and all(check(x) for x in v)
        return check(v)

    return ok


def _number(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


def _one_of(*allowed: str) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        return v in allowed

    return ok


@dataclass(frozen=True)
class AttrSpec:
    """What one attribute may hold: a predicate and its description for the error message."""

    check: Callable[[Any], bool]
    allowed: str


POS = AttrSpec(_pos, f"a positive integer (at most {MAX_DIM})")
NONNEG = AttrSpec(_nonneg, f"a non-negative integer (at most {MAX_DIM})")
POS_PAIR = AttrSpec(_pair(_pos), f"a positive integer (at most {MAX_DIM}) or a pair of them")
NONNEG_PAIR = AttrSpec(_pair(_nonneg), f"a non-negative integer (at most {MAX_DIM}) or a pair of them")
TEXT = AttrSpec(lambda v: isinstance(v, str), "a string")
FLAG = AttrSpec(lambda v: isinstance(v, bool), "true or false")
NUMBER = AttrSpec(_number, "a finite number")
INT = AttrSpec(_is_int, "an integer")


@dataclass(frozen=True)
class KindSchema:
    """The attributes of one op kind and, for MAC kinds, its MAC count from them."""

    required: Mapping[str, AttrSpec]
    optional: Mapping[str, AttrSpec]
    macs: Callable[[Mapping[str, Any]], int] | None = None


def _matmul_macs(a: Mapping[str, Any]) -> int:
    return int(a.get("batch", 1) * a["M"] * a["K"] * a["N"])


def _conv_macs(a: Mapping[str, Any]) -> int:
    groups = a.get("groups", 1)
    return int(
        a.get("batch", 1) * a["out_h"] * a["out_w"] * a["out_ch"] * (a["in_ch"] // groups) * a["kh"] * a["kw"]
    )


def _dwconv_macs(a: Mapping[str, Any]) -> int:
    # a depthwise conv without ``groups`` has one group per input channel
    groups = a.get("groups", a["in_ch"])
    return int(
        a.get("batch", 1) * a["out_h"] * a["out_w"] * a["out_ch"] * (a["in_ch"] // groups) * a["kh"] * a["kw"]
    )


def _linear_attention_macs(a: Mapping[str, Any]) -> int:
    # ReLU(K)^T [V, 1] and ReLU(Q) (KV): T d (d+1) MACs each, per head
    d = a["head_dim"]
    return int(2 * a.get("batch", 1) * a["heads"] * a["tokens"] * d * (d + 1))


_CONV = {
    "required": {k: POS for k in ("in_ch", "out_ch", "in_h", "in_w", "out_h", "out_w", "kh", "kw")},
    "optional": {
        "batch": POS,
        "stride": POS_PAIR,
        "padding": NONNEG_PAIR,
        "dilation": POS_PAIR,
        "groups": POS,
        "bias": FLAG,
    },
}
_ROWS = {"rows": POS, "length": POS, "eps": NUMBER, "dim": INT}

#: The schema of every op kind.
SCHEMA: dict[OpKind, KindSchema] = {
    OpKind.MATMUL: KindSchema(
        {"M": POS, "K": POS, "N": POS},
        {
            "batch": POS,
            "operands": AttrSpec(_one_of("wa", "aa"), "'wa' or 'aa'"),
            "bias": FLAG,
            "weight_layout": TEXT,
        },
        _matmul_macs,
    ),
    OpKind.CONV2D: KindSchema(_CONV["required"], _CONV["optional"], _conv_macs),
    OpKind.DWCONV2D: KindSchema(_CONV["required"], _CONV["optional"], _dwconv_macs),
    OpKind.LINEAR_ATTENTION: KindSchema(
        {"heads": POS, "tokens": POS, "head_dim": POS},
        {"batch": POS, "kernel": TEXT, "eps": NUMBER},
        _linear_attention_macs,
    ),
    OpKind.SOFTMAX: KindSchema({}, _ROWS),
    OpKind.LAYERNORM: KindSchema({}, _ROWS),
    OpKind.BATCHNORM: KindSchema({}, _ROWS),
    OpKind.ACTIVATION: KindSchema({}, {"fn": TEXT, "elements": NONNEG}),
    OpKind.ELTWISE: KindSchema({}, {"fn": TEXT, "elements": NONNEG}),
    OpKind.POOL: KindSchema({}, {"fn": TEXT, "elements": NONNEG}),
    OpKind.TOKEN_SELECT: KindSchema({}, {"tokens_in": POS, "tokens_out": POS, "channels": POS}),
    **{k: KindSchema({}, {}) for k in MOVEMENT_KINDS},
}


def derived_macs(op: Op) -> int:
    """The MAC count an op's attributes give (0 for kinds without MACs, and where the attributes
    the count needs are missing or malformed: :func:`check_op` then names what is wrong)."""
    schema = SCHEMA.get(op.kind)
    if schema is None or schema.macs is None:
        return 0
    needed = {k: spec for k, spec in (*schema.required.items(), *schema.optional.items()) if k in op.attrs}
    if any(k not in op.attrs for k in schema.required) or not all(
        s.check(op.attrs[k]) for k, s in needed.items()
    ):
        return 0
    try:
        return schema.macs(op.attrs)
    except ZeroDivisionError:
        return 0


def check_op(op: Op) -> None:
    """Check one op's attributes against :data:`SCHEMA` and its MAC count against its shapes.

    Raises:
        GraphFormatError: naming the op, the attribute, its value and what is allowed.
    """
    schema = SCHEMA[op.kind]
    where = f"op {op.name!r} ({op.kind.value})"
    for key, spec in schema.required.items():
        if key not in op.attrs:
            raise GraphFormatError(f"{where}: missing attribute {key!r} ({spec.allowed})")
    for key, spec in (*schema.required.items(), *schema.optional.items()):
        if key in op.attrs and not spec.check(op.attrs[key]):
            raise GraphFormatError(
                f"{where}: attribute {key!r} must be {spec.allowed} (got {op.attrs[key]!r})"
            )
    if not (_is_int(op.macs) and 0 <= op.macs <= MAX_MACS):
        raise GraphFormatError(
            f"{where}: macs must be a non-negative integer, at most 2**62 (got {op.macs!r})"
        )
    if op.kind in (OpKind.CONV2D, OpKind.DWCONV2D) and "groups" in op.attrs:
        g, a = op.attrs["groups"], op.attrs
        if a["in_ch"] % g or a["out_ch"] % g:
            raise GraphFormatError(
                f"{where}: groups={g} does not divide in_ch={a['in_ch']}, out_ch={a['out_ch']}"
            )
    expected = schema.macs(op.attrs) if schema.macs is not None else 0
    if op.macs != expected:
        raise GraphFormatError(
            f"{where}: macs={op.macs} does not match its shapes ({expected} from its attributes)"
        )


__all__ = ["SCHEMA", "AttrSpec", "KindSchema", "check_op", "derived_macs"]
