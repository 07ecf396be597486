"""1-D, 3-D and transposed convolutions, ``nn.Fold``, RMSNorm and slice assignments: each lowers to
ops the simulator and replay already know, with torch's MAC count, and replays to the module's output.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lower_testing import replay
from torch import nn

from accelsim.errors import UnsupportedOpError
from accelsim.eval.accuracy import torch_macs
from accelsim.eval.bittrue import execute
from accelsim.ir import MAC_KINDS, OpKind
from accelsim.lower import lower


class Fold(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.fold(x, (7, 7), 3, padding=1, stride=2)


class SliceWrite(nn.Module):
    """MViTv2's class-token variant: the logits past the class token get a term added in place."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.fc(x)
        a[:, 1:, 1:] = a[:, 1:, 1:] + 1.0
        return a.softmax(-1)


CASES = [
    # (module, input shape, kinds of the MAC ops, MACs by hand)
    (nn.Conv1d(4, 6, 3, padding=1), (2, 4, 10), [OpKind.CONV2D], 2 * 6 * 10 * 4 * 3),
    (nn.Conv1d(6, 6, 3, stride=2, groups=6), (1, 6, 11), [OpKind.DWCONV2D], 6 * 5 * 3),
    (nn.Conv1d(4, 4, 4, padding="same", bias=False), (1, 4, 9), [OpKind.CONV2D], 4 * 9 * 4 * 4),
    (nn.Conv3d(1, 5, (3, 3, 1), padding=(1, 1, 0)), (2, 1, 6, 6, 4), [OpKind.CONV2D], 2 * 5 * 6 * 6 * 4 * 9),
    (nn.Conv3d(3, 4, (1, 3, 3), stride=(1, 2, 2)), (1, 3, 2, 7, 7), [OpKind.CONV2D], 4 * 2 * 3 * 3 * 3 * 9),
    (nn.ConvTranspose2d(4, 6, 2, stride=2), (2, 4, 5, 5), [OpKind.MATMUL], 2 * 5 * 5 * 4 * 6 * 4),
    (nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), (1, 4, 4, 4), [OpKind.MATMUL],
     4 * 4 * 4 * 3 * 9),
    (Fold(), (2, 4 * 9, 16), [], 0),
    (nn.RMSNorm(8), (2, 3, 8), [], 0),
    (SliceWrite(), (2, 5, 8), [OpKind.MATMUL], 2 * 5 * 8 * 8),
]  # fmt: skip


@pytest.mark.parametrize(("model", "shape", "kinds", "macs"), CASES, ids=lambda v: type(v).__name__)
def test_lowers_with_torchs_macs_and_replays(
    model: nn.Module, shape: tuple[int, ...], kinds: list, macs: int
) -> None:
    torch.manual_seed(0)
    model = model.eval()
    g = lower(model, shape, keep_constants=True)
    x = torch.randn(shape)
    assert [op.kind for op in g.ops() if op.kind in MAC_KINDS] == kinds
    assert g.total_macs == macs == torch_macs(model, x)
    with torch.no_grad():
        torch.testing.assert_close(replay(g, x)[0], model(x), rtol=1e-5, atol=1e-5)


def test_rms_norm_is_a_layernorm_without_the_mean() -> None:
    model = nn.RMSNorm(8, eps=1e-3)
    with torch.no_grad():
        model.weight.uniform_(0.5, 2)
    g = lower(model, (2, 3, 8), keep_constants=True)
    (op,) = g.ops()
    assert (op.kind, op.attrs["norm"], op.attrs["rows"], op.attrs["length"], op.attrs["eps"]) == (
        OpKind.LAYERNORM, "rms", 6, 8, 1e-3,
    )  # fmt: skip
    # the bit-true executor runs it as RMSNorm (in float: the integer layernorm unit subtracts a mean)
    x = torch.randn(2, 3, 8)
    out = execute(g, {g.inputs[0]: x.numpy()})[g.outputs[0]]
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-5, atol=1e-5)


def test_col2im_adds_each_input_element_once() -> None:
    g = lower(Fold(), (2, 4 * 9, 16))
    (op,) = g.ops()
    assert (op.kind, op.attrs["fn"], op.attrs["elements"]) == (OpKind.ELTWISE, "col2im", 2 * 4 * 9 * 16)


@pytest.mark.parametrize(
    ("model", "shape"),
    [
        (Fold(), (2, 4 * 9, 16)),
        (nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), (1, 4, 4, 4)),
    ],
    ids=["fold", "conv_transpose2d"],
)
def test_the_bittrue_executor_runs_the_overlap_add(model: nn.Module, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    g = lower(model.eval(), shape, keep_constants=True)
    x = torch.randn(shape)
    out = execute(g, {g.inputs[0]: x.numpy()})[g.outputs[0]]
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-5, atol=1e-5)


class Conv3dFull(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv3d(2, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(x)


class SelectWrite(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        y[:, 0] = x[:, 1] + 1
        return y


@pytest.mark.parametrize(
    ("model", "shape", "message"),
    [
        (Conv3dFull(), (1, 2, 4, 4, 4), "conv3d with kernel [3, 3, 3] has no rule"),
        (nn.ConvTranspose2d(4, 4, 2, stride=2, groups=2), (1, 4, 3, 3), "grouped transposed convolution"),
        (SelectWrite(), (2, 3), "in-place copy into"),
    ],
    ids=["conv3d_cube", "grouped_transpose", "select_write"],
)
def test_refused_with_reason(model: nn.Module, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(UnsupportedOpError, match=re.escape(message)):
        lower(model, shape)
