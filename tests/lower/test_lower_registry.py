"""The rule table: keyed on OpOverload objects, duplicates and strings refused, unknown ops typed."""

from __future__ import annotations

import pytest
import torch

from accelsim.errors import UnsupportedOpError
from accelsim.lower import get_lowering, register_lowering, registered_ops
from accelsim.lower.rules.matmul import lower_linear

aten = torch.ops.aten


def test_rules_are_keyed_on_overload_objects() -> None:
    ops = registered_ops()
    assert all(isinstance(op, torch._ops.OpOverload) for op in ops)
    assert get_lowering(aten.linear.default) is lower_linear
    for op in (aten.matmul.default, aten.conv2d.default, aten.softmax.int, aten.layer_norm.default,
               aten.topk.default, aten.gather.default, aten.batch_norm.default):  # fmt: skip
        assert op in ops


def test_duplicate_registration_raises() -> None:
    with pytest.raises(RuntimeError, match=r"aten\.linear\.default already lowered by lower_linear"):
        register_lowering(aten.linear.default)(lambda node, ctx: None)
    assert get_lowering(aten.linear.default) is lower_linear


def test_string_keys_are_refused() -> None:
    with pytest.raises(TypeError, match="OpOverload objects"):
        register_lowering("aten.linear.default")(lambda node, ctx: None)


def test_unknown_op_is_unsupported() -> None:
    with pytest.raises(
        UnsupportedOpError, match=r"no lowering rule for ATen op aten.cumsum.default \(here\)"
    ):
        get_lowering(aten.cumsum.default, "here")
