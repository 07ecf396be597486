"""Trio-ViT's PTQ parts (Shi et al. 2024, arXiv:2405.03882): channel-wise migration of depthwise
inputs and filter-wise shifting of the pointwise inputs after them, on hand-made channel ranges."""

from __future__ import annotations

import pytest
import torch
from timm.models.efficientvit_mit import MBConv
from torch import nn

from accelsim.compress.quantize import FakeQuantizer, quantize_model
from accelsim.config.compression import QuantConfig
from accelsim.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

#: three channels of an NCHW activation: [0, 4], [-1, 1] and [10, 12] (far from symmetric)
RANGES = [(0.0, 4.0), (-1.0, 1.0), (10.0, 12.0)]


def _channels() -> torch.Tensor:
    x = torch.stack([torch.linspace(lo, hi, 64).reshape(8, 8) for lo, hi in RANGES])
    return x[None]


def _calibrated(scheme: str) -> FakeQuantizer:
    q = FakeQuantizer(8, symmetric=True, axis=1, channel_scheme=scheme)  # type: ignore[arg-type]
    q.calibrating = True
    q(_channels())
    q.finalize()
    return q


def test_migration_centres_each_channel_under_one_scale() -> None:
    q = _calibrated("migrate")
    s = 2.0 / 127  # the largest half-range, 2, over the symmetric 8-bit code range
    assert torch.allclose(q.scale, torch.full((3,), s))
    assert q.zero_point.tolist() == [round(-2.0 / s), 0, round(-11.0 / s)]
    x = _channels()
    err = (q.fake_quant(x) - x).abs().max()
    assert float(err) <= s / 2 + 1e-6
    qp = q.qparams()
    assert qp.axis == 1 and qp.signed and qp.zero_point.tolist() == q.zero_point.tolist()
    # one symmetric per-tensor scale would have to reach 12: six times the step
    plain = FakeQuantizer(8, symmetric=True)
    plain.set_range(-12.0, 12.0)
    assert float((plain.fake_quant(x) - x).abs().max()) > 5 * float(err)


def test_filter_shift_scales_are_powers_of_two_of_the_largest() -> None:
    q = _calibrated("pow2_shift")
    top = 12.0 / 127
    # |x| reaches 4, 1 and 12: ratios 3, 12 and 1 round down to 2^1, 2^3 and 2^0
    assert torch.allclose(q.scale, torch.tensor([top / 2, top / 8, top]))
    assert q.zero_point.tolist() == [0, 0, 0]
    x = _channels()
    assert torch.all((q.fake_quant(x) - x).abs() <= q.scale.reshape(1, 3, 1, 1) / 2 + 1e-6)


def test_shift_is_capped_at_two_to_the_fifth() -> None:
    q = FakeQuantizer(8, symmetric=True, axis=1, channel_scheme="pow2_shift")
    q.set_range(torch.tensor([-100.0, -0.01]), torch.tensor([100.0, 0.01]))
    assert q.scale.tolist() == pytest.approx([100 / 127, 100 / 127 / 32])


def test_recipe_options_reach_the_right_convs() -> None:
    torch.manual_seed(0)
    block = nn.Sequential(MBConv(8, 8, expand_ratio=2)).eval()
    x = torch.randn(4, 8, 6, 6)
    cfg = QuantConfig(symmetric_activations=True, channel_migration=True, filter_shift=True)
    q = quantize_model(block, cfg, calib_data=[(x, None)])
    mb = q[0]
    assert mb.depth_conv.conv.input_quantizer.channel_scheme == "migrate"
    assert mb.point_conv.conv.input_quantizer.channel_scheme == "pow2_shift"
    assert mb.inverted_conv.conv.input_quantizer.channel_scheme == "none"
    plain = quantize_model(block, QuantConfig(symmetric_activations=True), calib_data=[(x, None)])
    with torch.no_grad():
        ref = block(x)
        assert float((q(x) - ref).abs().max()) < 0.1 * float(ref.abs().max())
        assert plain(x).shape == q(x).shape
    with pytest.raises(ValueError, match="calibrate: true"):
        QuantConfig(channel_migration=True, calibrate=False)
    with pytest.raises(ConfigError, match="channel_scheme"):
        FakeQuantizer(8, symmetric=False, axis=1, channel_scheme="migrate")
