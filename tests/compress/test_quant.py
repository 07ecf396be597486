"""Fake quantisation: calibrators, power-of-two and log2 codes, the IR contract, layer rewrites."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from accelsim.compress.quantize import (
    FakeQuantizer,
    fold_batchnorm,
    op_type_of,
    quant_summary,
    quantize_model,
    quantizers,
)
from accelsim.config.compression import QATConfig, QuantConfig
from accelsim.eval.bittrue import quantize_float
from accelsim.ir.quant import QuantParams


def _calibrated(x: torch.Tensor, **kw: object) -> FakeQuantizer:
    q = FakeQuantizer(**kw)  # type: ignore[arg-type]
    q.calibrating = True
    q(x)
    q.finalize()
    return q


# 10,000 values spread evenly over [-1, 1] plus 10 outliers at 10: the range a calibrator picks
# decides whether the bulk or the outliers get the resolution
BULK_AND_OUTLIERS = torch.cat([torch.linspace(-1, 1, 10000), torch.full((10,), 10.0)])


def test_minmax_takes_the_full_range() -> None:
    q = _calibrated(BULK_AND_OUTLIERS, bits=4, symmetric=True, calibrator="minmax")
    assert float(q.scale) == pytest.approx(10 / 7)  # symmetric 4-bit: qmax = 7
    assert int(q.zero_point) == 0


def test_percentile_clips_the_outliers() -> None:
    q = _calibrated(BULK_AND_OUTLIERS, bits=4, symmetric=True, calibrator="percentile", percentile=99.9)
    # |x| sorted: the 99.9th percentile (position 0.999 * 10009 = 9998.99) falls inside the bulk,
    # between |x| values 0.9998 and 1.0 (linear interpolation)
    assert float(q.scale) == pytest.approx(1.0 / 7, rel=1e-3)


def test_mse_lies_between_and_minimises_error() -> None:
    x = BULK_AND_OUTLIERS
    mm = _calibrated(x, bits=4, symmetric=True, calibrator="minmax")
    mse = _calibrated(x, bits=4, symmetric=True, calibrator="mse")
    pc = _calibrated(x, bits=4, symmetric=True, calibrator="percentile", percentile=99.9)
    assert float(pc.scale) < float(mse.scale) < float(mm.scale)

    def err(q: FakeQuantizer) -> float:
        return float(((q.fake_quant(x) - x) ** 2).mean())

    # by hand: with min-max step s = 10/7 the bulk rounds to 0 for |x| < a = s/2 and to +-s above,
    # so its mean error is (a^3 + (s - a)^3 - (s - 1)^3) / 3 = (2a^3 - (s - 1)^3) / 3 on [0, 1];
    # the outliers (exactly 7 steps) cost nothing; the bulk is 10000 of the 10010 values
    s, a = 10 / 7, 5 / 7
    assert err(mm) == pytest.approx((2 * a**3 - (s - 1) ** 3) / 3 * 10000 / 10010, rel=1e-3)
    assert err(mse) < err(mm) and err(mse) < err(pc)


def test_asymmetric_range_and_zero_point() -> None:
    q = _calibrated(torch.tensor([-1.0, 0.0, 3.0]), bits=8, symmetric=False)
    # [-1, 3] over 255 steps; zero point round(1 / (4/255)) = round(63.75) = 64
    assert float(q.scale) == pytest.approx(4 / 255)
    assert int(q.zero_point) == 64
    # a non-negative range keeps zero point 0 (softmax, ReLU outputs)
    assert int(_calibrated(torch.tensor([0.5, 2.0]), bits=8, symmetric=False).zero_point) == 0


@settings(max_examples=30, deadline=None)
@given(
    st.floats(min_value=1e-3, max_value=1e3),
    st.integers(min_value=2, max_value=16),
    st.booleans(),
)
def test_power_of_two_scales_are_powers_of_two_and_never_clip_more(amax: float, bits: int, sym: bool) -> None:
    x = torch.tensor([-amax / 3, amax], dtype=torch.float32)
    p2 = _calibrated(x, bits=bits, symmetric=sym, power_of_two=True)
    plain = _calibrated(x, bits=bits, symmetric=sym)
    log2 = math.log2(float(p2.scale))
    assert log2 == round(log2)
    assert float(plain.scale) <= float(p2.scale) < 2 * float(plain.scale) * (1 + 1e-6)
    assert p2.qparams().power_of_two


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=2, max_value=16), st.booleans(), st.integers(min_value=0, max_value=2**31 - 1))
@example(bits=16, sym=False, seed=10899)  # a float32 .5 tie that CI found
def test_fake_quant_matches_qparams_formula(bits: int, sym: bool, seed: int) -> None:
    """The contract: value = (clamp(round(x / s) + zp, qmin, qmax) - zp) * s, recomputed from qparams()."""
    x = torch.randn(64, generator=torch.Generator().manual_seed(seed)) * 3
    q = _calibrated(x[:32], bits=bits, symmetric=sym)
    qp = q.qparams()
    # the division happens in the tensor's dtype (float32), as in the bit-true reader: at 16 bits a
    # float64 recomputation lands on the other side of a .5 tie now and then
    xs = x.numpy()
    codes = np.clip(np.rint(xs / np.float32(qp.scale)).astype(np.float64) + qp.zero_point, qp.qmin, qp.qmax)
    np.testing.assert_array_equal(codes, quantize_float(xs, qp))
    expected = (codes - qp.zero_point) * qp.scale
    np.testing.assert_allclose(
        q.fake_quant(x).double().numpy(), expected, rtol=1e-6, atol=1e-6 * float(qp.scale)
    )
    assert len(np.unique(codes)) <= 2**bits


def test_log2_codes_by_hand() -> None:
    q = FakeQuantizer(4, symmetric=False, mode="log2", fixed_scale=1.0)
    p = torch.tensor([1.0, 0.5, 0.3, 0.25, 0.1, 1e-9, 0.0])
    # -log2: 0, 1, 1.74 -> 2, 2, 3.32 -> 3, 29.9 -> beyond code 14 (2**4 - 2) -> zero, 0 -> zero
    expected = torch.tensor([1.0, 0.5, 0.25, 0.25, 0.125, 0.0, 0.0])
    assert torch.equal(q(p), expected)
    qp = q.qparams()
    assert (qp.mode, qp.bits, qp.signed, float(qp.scale)) == ("log2", 4, False, 1.0)


def test_qparams_contract_per_channel_weights() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(5, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2, 0, 0, 0], [0.5, 0, 0, 0, 0], [0, 0, -4, 0, 0]]))
    model = quantize_model(nn.Sequential(lin), QuantConfig(wbits=4, abits=8, calibrate=False))
    layer = model[0]
    assert not getattr(type(layer), "accelsim_quantizer", False)  # the layer is not a quantiser...
    wq = layer.weight_quantizer
    assert type(wq).accelsim_quantizer is True  # ...its quantisers are
    qp = wq.qparams()
    assert isinstance(qp, QuantParams)
    assert (qp.bits, qp.axis, qp.signed, qp.mode) == (4, 0, True, "uniform")
    # per-channel max |w| / 7: 2/7, 0.5/7, 4/7
    np.testing.assert_allclose(qp.scale, [2 / 7, 0.5 / 7, 4 / 7], rtol=1e-6)
    assert qp.zero_point.tolist() == [0, 0, 0]
    assert QuantParams.from_dict(qp.to_dict()) == qp
    aq = layer.input_quantizer.qparams()
    assert (aq.bits, aq.axis, aq.scale.shape) == (8, None, ())


def test_per_tensor_weights_share_one_scale_and_survive_activation_calibration() -> None:
    lin = nn.Linear(5, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2, 0, 0, 0], [0.25, 0, 0, 0, 0], [0, 0, -4, 0, 0]]))
    cfg = QuantConfig(wbits=4, abits=8, weight_granularity="per_tensor")
    calib = [(torch.randn(8, 5) * 10, torch.zeros(8))]  # activations 10x the weights' range
    layer = quantize_model(nn.Sequential(lin), cfg, calib_data=calib)[0]
    qp = layer.weight_quantizer.qparams()
    # one scale, max |w| / 7 over the whole tensor: the activation calibration did not touch it
    assert (qp.axis, qp.scale.shape) == (None, ())
    assert float(qp.scale) == pytest.approx(4 / 7, rel=1e-6)
    # the 0.25 row is below half an LSB of the shared scale: per tensor it rounds to 0, per channel not
    assert torch.equal(layer.weight_quantizer(lin.weight)[1], torch.zeros(5))
    per_channel = quantize_model(
        nn.Sequential(lin), cfg.model_copy(update={"weight_granularity": "per_channel"}), calib_data=calib
    )
    assert float(per_channel[0].weight_quantizer(lin.weight)[1, 0]) == pytest.approx(0.25)
    uncal = quantize_model(nn.Sequential(lin), cfg.model_copy(update={"calibrate": False}))[0]
    assert float(uncal.weight_quantizer.scale) == pytest.approx(4 / 7, rel=1e-6)  # not uncalibrated_range


def test_mixed_precision_per_op_type(ref_deit: tuple) -> None:
    model, _ = ref_deit
    cfg = QuantConfig(
        wbits=4, abits=6, calibrate=False, per_op={"head": {"wbits": 8, "abits": 8}, "attn_qk": {"abits": 5}}
    )
    q = quantize_model(model, cfg)
    assert q.head.weight_quantizer.bits == 8 and q.head.input_quantizer.bits == 8
    blk = q.blocks[0]
    assert blk.mlp.fc1.weight_quantizer.bits == 4 and blk.mlp.fc1.input_quantizer.bits == 6
    assert blk.attn.q_quantizer.bits == 5 and blk.attn.k_quantizer.bits == 5
    assert blk.attn.v_quantizer.bits == 6 and blk.attn.attn_quantizer.bits == 6
    assert type(model.blocks[0].attn).__name__ == "Attention"  # the input is untouched


@pytest.mark.parametrize(
    ("name", "module", "expected"),
    [
        ("blocks.0.attn.qkv", nn.Linear(2, 2), "qkv"),
        ("blocks.0.attn.proj", nn.Linear(2, 2), "proj"),
        ("blocks.0.mlp.fc2", nn.Linear(2, 2), "fc2"),
        ("blocks.0.mlp.fc1.down", nn.Linear(2, 2), "fc1"),  # a low-rank factor keeps its op type
        ("head", nn.Linear(2, 2), "head"),
        ("head.classifier.0", nn.Linear(2, 2), "head"),
        ("pre_logits.fc", nn.Linear(2, 2), "linear"),
        ("patch_embed.proj", nn.Conv2d(3, 4, 2), "conv"),
        ("stages.0.dw", nn.Conv2d(4, 4, 3, groups=4), "dwconv"),
        ("s.main.qkv.conv", nn.Conv2d(4, 12, 1), "qkv"),
    ],
)
def test_op_type_of(name: str, module: nn.Module, expected: str) -> None:
    assert op_type_of(name, module, litemla_names=["s.main"]) == expected


def test_quant_attention_is_timm_attention_when_quantisers_are_off(ref_deit: tuple) -> None:
    model, _ = ref_deit
    q = quantize_model(model, QuantConfig(calibrate=False))
    for _, fq in quantizers(q):
        fq.enabled = False
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(q(x), model(x), rtol=1e-5, atol=1e-5)


def test_quant_litemla_and_bn_folding_are_exact_when_quantisers_are_off(ref_efficientvit: tuple) -> None:
    model, _ = ref_efficientvit
    q = quantize_model(model, QuantConfig(calibrate=False, log2_attention=True))
    litemla = [m for m in q.modules() if type(m).__name__ == "QuantLiteMLA"]
    assert len(litemla) == 2 and all(m.div_quantizer.mode == "log2" for m in litemla)
    for _, fq in quantizers(q):
        fq.enabled = False
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(q(x), model(x), rtol=1e-4, atol=1e-4)


def test_fold_batchnorm_removes_conv_batchnorms(ref_efficientvit: tuple) -> None:
    import copy

    from timm.models.efficientvit_mit import ConvNormAct

    model, _ = ref_efficientvit
    folded = fold_batchnorm(copy.deepcopy(model))
    n_before = sum(isinstance(m, ConvNormAct) and isinstance(m.norm, nn.BatchNorm2d) for m in model.modules())
    assert n_before > 0
    assert not any(
        isinstance(m, ConvNormAct) and isinstance(m.norm, nn.BatchNorm2d) for m in folded.modules()
    )


def test_quant_summary_lists_every_quantiser(ref_deit: tuple) -> None:
    model, _ = ref_deit
    q = quantize_model(model, QuantConfig(calibrate=False))
    s = quant_summary(q)
    n_linear = sum(isinstance(m, nn.Linear) for m in model.modules())
    n_conv = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    n_attn = len(model.blocks)
    # two per Linear/Conv (input, weight) and four per attention (q, k, v, probabilities)
    assert len(s) == 2 * (n_linear + n_conv) + 4 * n_attn
    assert all(isinstance(v, QuantParams) for v in s.values())


def _tiny_qat_setup() -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=g)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    q = quantize_model(m, QuantConfig(wbits=3, abits=4), calib_data=[(x, y)])
    return q, [(x[:32], y[:32]), (x[32:], y[32:])]


def test_qat_ste_updates_weights_keeps_scales() -> None:
    from accelsim.compress.qat import train_qat

    q, data = _tiny_qat_setup()
    w0 = q[0].weight.detach().clone()
    s0 = q[0].weight_quantizer.scale.clone()
    train_qat(q, data, QATConfig(epochs=2, lr=1e-2))
    assert not torch.equal(q[0].weight, w0)
    assert torch.equal(q[0].weight_quantizer.scale, s0)
    assert not q.training
