"""Recurrent layers, refused on purpose.

Sequencer2D (Tatsunami & Taki, "Sequencer: Deep LSTM for Image Classification", NeurIPS 2022;
timm ``sequencer.py``, ``RNN2dBase``) mixes tokens with bidirectional LSTMs along rows and
columns. An LSTM step needs the previous step's hidden state, so a layer is a chain of ``T``
dependent small matrix-vector products with gates between them: not one dataflow op, and not
something the systolic-array model times. Lowering it as a GEMM of the same MACs would report a
latency no such accelerator reaches, so the refusal says so instead of guessing.
"""

from __future__ import annotations

import torch

from accelsim.lower._registry import refuse_lowering

aten = torch.ops.aten

RECURRENT_REASON = (
    "recurrent layers (LSTM, GRU, RNN) are not lowered: each time step waits for the previous "
    "hidden state, a sequential chain of small matrix-vector products that the dataflow IR and "
    "the systolic-array model do not describe"
)

refuse_lowering(
    aten.lstm.input, aten.lstm.data, aten.gru.input, aten.gru.data, aten.rnn_tanh.input,
    aten.rnn_tanh.data, aten.rnn_relu.input, aten.rnn_relu.data, aten.lstm_cell.default,
    aten.gru_cell.default, aten.rnn_tanh_cell.default, aten.rnn_relu_cell.default,
    reason=RECURRENT_REASON,
)  # fmt: skip
