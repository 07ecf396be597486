"""The bit-true executor's table of rules: one handler shape keyed by op kind or ATen target,
duplicates refused, every kind covered, and the choice of a rule for an op."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from accelsim.errors import UnsupportedOpError
from accelsim.eval.bittrue import (
    BittrueStats,
    aten_args,
    executable_targets,
    execute,
    handler_for,
    register_handler,
)
from accelsim.eval.bittrue._registry import _HANDLERS
from accelsim.ir import Graph, Op, OpKind, Tensor


def _noop(ctx: Any, op: Op, vals: list[Any]) -> list[Any]:
    return vals


@pytest.mark.parametrize("key", [OpKind.MATMUL, "aten.permute.default"])
def test_a_second_rule_for_one_key_is_refused(key: OpKind | str) -> None:
    before = _HANDLERS[key]
    with pytest.raises(RuntimeError, match="already executed by _"):
        register_handler(key)(_noop)
    assert _HANDLERS[key] is before


@pytest.mark.parametrize("key", ["matmul", "permute", 3])
def test_a_key_that_is_neither_a_kind_nor_an_aten_target_is_refused(key: object) -> None:
    # "matmul" equals OpKind.MATMUL (a StrEnum) but is not one: only real kinds key kind rules
    before = dict(_HANDLERS)
    with pytest.raises(TypeError, match=r"OpKind or an 'aten\.<op>\.<overload>' target"):
        register_handler(key)(_noop)  # type: ignore[arg-type]
    assert before == _HANDLERS


@pytest.mark.parametrize("kind", list(OpKind))
def test_every_op_kind_has_a_rule(kind: OpKind) -> None:
    # a hand-made op (no ATen target) of any kind executes by its kind
    assert handler_for(Op("o", kind, ("x",), ("y",))) is _HANDLERS[kind]


def test_executable_targets_are_the_aten_keys() -> None:
    targets = executable_targets()
    assert targets == sorted(targets) and all(t.startswith("aten.") for t in targets)
    assert {"aten.permute.default", "aten.topk.default", "aten.avg_pool2d.default"} <= set(targets)
    assert not any(isinstance(t, OpKind) for t in targets)


def test_kind_first_ops_ignore_their_target_others_follow_it() -> None:
    # a matmul lowered from aten.mm keeps the IR's matmul semantics; a transpose follows its target
    mm = Op("mm", OpKind.MATMUL, ("a", "b"), ("c",), target="aten.mm.default")
    assert handler_for(mm) is _HANDLERS[OpKind.MATMUL]
    tr = Op("t", OpKind.TRANSPOSE, ("a",), ("b",), target="aten.permute.default")
    assert handler_for(tr) is _HANDLERS["aten.permute.default"]
    fused = Op("f", OpKind.TRANSPOSE, ("a",), ("b",), target="accelsim.fused")
    assert handler_for(fused) is _HANDLERS[OpKind.TRANSPOSE]
    with pytest.raises(UnsupportedOpError, match=r"'p'.*no rule for 'pool' op aten.cummax.default"):
        handler_for(Op("p", OpKind.POOL, ("a",), ("b",), target="aten.cummax.default"))


def test_aten_args_resolve_inputs_and_special_floats() -> None:
    op = Op(
        "o",
        OpKind.POOL,
        ("a", "b"),
        ("c",),
        {"args": [{"input": 1}, [{"input": 0}, 2], {"float": "-inf"}], "kwargs": {"keepdim": True}},
    )
    args, kw = aten_args(op, ["A", "B"])
    assert args == ["B", ["A", 2], float("-inf")] and kw == {"keepdim": True}
    assert aten_args(Op("n", OpKind.POOL, ("a",), ("b",)), ["A"]) == ([], {})


def test_a_computing_aten_op_counts_as_float_data_movement_as_neither() -> None:
    g = Graph("reduce")
    g.add_tensor(Tensor("x", (2, 3, 4)))
    g.add_tensor(Tensor("m", (2, 3, 1)))
    g.add_tensor(Tensor("y", (2, 3)))
    args = [{"input": 0}, [-1], True]
    g.add_op(Op("mean", OpKind.POOL, ("x",), ("m",), {"args": args, "fn": "mean"}, target="aten.mean.dim"))
    g.add_op(
        Op(
            "view",
            OpKind.RESHAPE,
            ("m",),
            ("y",),
            {"args": [{"input": 0}, [2, 3]]},
            target="aten.view.default",
        )
    )
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    stats = BittrueStats()
    y = execute(g, {"x": x}, stats=stats)["y"]
    np.testing.assert_array_equal(y, x.mean(axis=-1))
    assert stats.float_ops == {"mean"} and not stats.integer_ops
