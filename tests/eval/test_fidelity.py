"""Output fidelity to the FP32 model: the measures by hand, and on the reference DeiT where top-1 saturates."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from accelsim.eval.fidelity import SQNR_MAX_DB, fidelity, kl_divergence, sqnr_db, top1_agreement


def test_kl_of_identical_or_shifted_logits_is_zero_and_of_known_ones_by_hand() -> None:
    z = np.array([[1.0, 2.0, -3.0], [0.0, 0.0, 5.0]])
    assert kl_divergence(z, z) == 0.0
    assert kl_divergence(z, z + 7.0) == pytest.approx(0.0, abs=1e-12)  # softmax ignores a shift
    # row 1: p = (.5, .5), q = (.9, .1); row 2: p = q -> mean of 0.5 ln(.5/.9) + 0.5 ln(.5/.1) and 0
    p, q = np.log([[0.5, 0.5], [0.2, 0.8]]), np.log([[0.9, 0.1], [0.2, 0.8]])
    by_hand = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert kl_divergence(p, q) == pytest.approx(by_hand / 2, rel=1e-12)
    assert kl_divergence(q, p) != pytest.approx(kl_divergence(p, q))  # KL is not symmetric


def test_sqnr_of_a_known_perturbation() -> None:
    ref = np.array([[3.0, 4.0], [0.0, 0.0]])  # signal 25
    assert sqnr_db(ref, ref + np.array([[0.0, 0.5], [0.0, 0.0]])) == pytest.approx(20.0)  # noise 0.25
    assert sqnr_db(ref, ref * 0.9) == pytest.approx(20.0)  # noise 0.01 * 25
    assert sqnr_db(ref, ref + 5.0) == pytest.approx(10 * math.log10(25 / 100))  # noise 4 * 25: -6 dB
    assert sqnr_db(ref, ref) == SQNR_MAX_DB == pytest.approx(144.49, abs=0.01)  # float32's, not inf
    assert math.isnan(sqnr_db(np.zeros((2, 2)), np.ones((2, 2))))  # no signal, no ratio


def test_agreement_on_a_crafted_batch() -> None:
    ref = np.array([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 4.9, 0]])
    out = np.array([[9.0, 1, 1], [0, 1.0, 0], [3.0, 0, 0], [4.9, 5.0, 0]])  # rows 3 and 4 flip
    assert top1_agreement(ref, out) == 0.5
    f = fidelity(ref, out)
    assert (f.agreement, f.images) == (0.5, 4) and f.kl_div > 0 and f.sqnr_db < 10
    assert set(f.metrics()) == {"kl_div", "agreement", "sqnr_db"}
    with pytest.raises(ValueError, match="differ in shape"):
        fidelity(ref, out[:3])


# -- on the reference DeiT ----------------------------------------------------------------------
RECIPES: dict[str, dict[str, Any]] = {
    "fp32": {},
    "w8a8": {"quant": {"wbits": 8, "abits": 8, "calib_batches": 1}},
    "w4a4": {
        "quant": {"wbits": 4, "abits": 4, "calib_batches": 1, "per_op": {"head": {"wbits": 8, "abits": 8}}}
    },
    "w4a8": {"quant": {"wbits": 4, "abits": 8, "calib_batches": 1}},
    "w4a8_per_tensor": {
        "quant": {"wbits": 4, "abits": 8, "calib_batches": 1, "weight_granularity": "per_tensor"}
    },
}


@pytest.fixture(scope="module")
def deit_points(ref_deit: tuple) -> dict[str, Any]:
    """Each recipe compressed on ref_deit and measured on 128 test images (one 128-image batch)."""
    pytest.importorskip("torch")
    from accelsim.config.compression import CompressionRecipe
    from accelsim.config.workload import Workload
    from accelsim.eval import compress_workload, load_data
    from accelsim.models import CHECKPOINT_DIR

    model, _ = ref_deit
    w = Workload(
        model="ref_deit",
        checkpoint=str(CHECKPOINT_DIR / "ref_deit.pt"),
        dataset={"kind": "digits", "max_images": 128},
    )
    data = load_data(w, model)
    return {
        name: compress_workload(w, recipe=CompressionRecipe.model_validate(r), model=model, data=data)
        for name, r in RECIPES.items()
    } | {"workload": w, "model": model}


def test_fp32_is_its_own_reference_and_fewer_bits_lose_more(deit_points: dict[str, Any]) -> None:
    fp32 = deit_points["fp32"].fidelity
    assert (fp32.kl_div, fp32.agreement, fp32.sqnr_db, fp32.images) == (0.0, 1.0, SQNR_MAX_DB, 128)
    w8, w4 = deit_points["w8a8"].fidelity, deit_points["w4a4"].fidelity
    assert w8.sqnr_db > w4.sqnr_db + 10  # measured 38.1 vs 13.0 dB
    assert w4.kl_div > 10 * w8.kl_div  # measured 0.037 vs 0.00008 nats
    assert w8.agreement >= 0.99 and w4.agreement < 1.0
    # where top-1 saturates: W4A8 scores FP32's 97.7% on these images, 16 dB of logit SQNR below W8A8
    w4a8 = deit_points["w4a8"]
    assert w4a8.accuracy.top1 == deit_points["fp32"].accuracy.top1 == deit_points["w8a8"].accuracy.top1
    assert w4a8.fidelity.sqnr_db < w8.sqnr_db - 6


def test_per_tensor_w4_weights_lose_more_than_per_channel(deit_points: dict[str, Any]) -> None:
    per_channel, per_tensor = deit_points["w4a8"].fidelity, deit_points["w4a8_per_tensor"].fidelity
    assert per_tensor.sqnr_db < per_channel.sqnr_db - 1.0  # measured 21.2 vs 24.4 dB
    assert per_tensor.kl_div > per_channel.kl_div


def test_reference_logits_are_computed_once_and_leave_the_rng_alone(deit_points: dict[str, Any]) -> None:
    import torch

    from accelsim.eval import reference_logits

    w, model = deit_points["workload"], deit_points["model"]
    test = deit_points["fp32"].test
    first = reference_logits(w, model, test)
    state = torch.get_rng_state()
    again = reference_logits(w.model_copy(update={"name": "renamed"}), model, test)
    assert again is first  # the name and the recipe are not part of the reference
    assert torch.equal(torch.get_rng_state(), state)
    np.testing.assert_array_equal(first, deit_points["fp32"].logits)


def test_bittrue_per_layer_sqnr_against_the_float_graph(deit_points: dict[str, Any]) -> None:
    from accelsim.eval.bittrue.layers import layer_sqnr, lossiest
    from accelsim.lower import lower_compressed

    rows_of, images = {}, None
    for name in ("w8a8", "w4a4", "w4a8", "w4a8_per_tensor"):
        cw = deit_points[name]
        graph = lower_compressed(cw.model, cw.recipe, tuple(cw.example.shape), keep_constants=True)
        images = np.concatenate([x.numpy() for x, _ in cw.test])[:32]
        bt, flt, rows = layer_sqnr(graph, images, batch_size=32)
        # the float graph is the FP32 model (weights and BatchNorm folding included)
        assert sqnr_db(cw.reference[:32], flt) > 80.0
        assert sqnr_db(flt, bt) == pytest.approx(rows[-1].sqnr_db, abs=1e-3)  # the last op is the head
        rows_of[name] = rows
        weights = [graph.quant[t] for t, ten in graph.tensors.items() if ten.weight and t in graph.quant]
        per_tensor = name.endswith("per_tensor")
        # the lowering records the granularity the recipe asked for (the head is per_op, also 4-bit here)
        assert weights and all((q.axis is None) == per_tensor for q in weights if q.bits == 4)
    w8, w4 = rows_of["w8a8"], rows_of["w4a4"]
    assert [r.op for r in w8] == [r.op for r in w4]
    assert lossiest(w4, 1)[0].sqnr_db < lossiest(w8, 1)[0].sqnr_db
    assert np.median([r.sqnr_db for r in w4]) < np.median([r.sqnr_db for r in w8]) - 6
    assert all(r.kind not in {"reshape", "transpose"} for r in lossiest(w4, 5))
    # bit-true, too, one scale per weight tensor loses more at the logits than one per channel
    assert rows_of["w4a8_per_tensor"][-1].sqnr_db < rows_of["w4a8"][-1].sqnr_db - 1.0
