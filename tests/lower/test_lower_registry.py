"""The rule table: keyed on OpOverload objects, duplicates and strings refused, unknown ops typed,
recurrent layers refused with a reason."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from accelsim.errors import UnsupportedOpError
from accelsim.lower import (
    get_lowering,
    lower,
    refuse_lowering,
    refused_ops,
    register_lowering,
    registered_ops,
)
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


def test_refused_op_says_why() -> None:
    with pytest.raises(UnsupportedOpError) as e:
        get_lowering(aten.lstm.input, "here")
    msg = str(e.value)
    assert msg.startswith("no lowering rule for ATen op aten.lstm.input (here): recurrent layers")
    assert aten.lstm.input in refused_ops() and aten.lstm.input not in registered_ops()


def test_refusal_and_rule_exclude_each_other() -> None:
    with pytest.raises(RuntimeError, match="already has a rule or a refusal"):
        refuse_lowering(aten.linear.default, reason="no")
    with pytest.raises(RuntimeError, match="already has a rule or a refusal"):
        refuse_lowering(aten.lstm.input, reason="twice")
    with pytest.raises(RuntimeError, match=r"aten\.lstm\.input is refused \(recurrent layers"):
        register_lowering(aten.lstm.input)(lambda node, ctx: None)
    with pytest.raises(TypeError, match="OpOverload objects"):
        refuse_lowering("aten.lstm.input", reason="a string")


class RowLSTM(nn.Module):
    """Sequencer2D's token mixing in miniature: an LSTM along the rows of a (B, H, W, C) map."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(8, 4, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        y, _ = self.rnn(x.reshape(b * h, w, c))
        return self.fc(y.reshape(b, h, w, -1))


@pytest.mark.filterwarnings("ignore:The tensor attributes self.rnn._flat_weights")  # export, about LSTM
def test_lstm_is_refused_naming_op_module_and_reason() -> None:
    with pytest.raises(UnsupportedOpError) as e:
        lower(RowLSTM(), (1, 3, 5, 8))
    msg = str(e.value)
    assert "aten.lstm.input" in msg and "'rnn'" in msg and "torch.nn.modules.rnn.LSTM" in msg
    assert "each time step waits for the previous hidden state" in msg and "\n" not in msg
