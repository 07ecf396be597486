"""Accuracy of the shipped reference models: FP32 as recorded, W8A8 close to it, calibration matters."""

from __future__ import annotations

import pytest
import torch

from accelsim.config.workload import Workload
from accelsim.eval import EvalResult, evaluate
from accelsim.eval.accuracy import count_params, measure_accuracy, topk_correct
from accelsim.models import CHECKPOINT_DIR

MODELS = ["ref_deit", "ref_efficientvit"]


def test_topk_by_hand() -> None:
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.2], [0.3, 0.3, 0.4]])
    labels = torch.tensor([1, 2, 0])
    acc = topk_correct(logits, labels)  # top-5 with 3 classes is top-3: always right
    assert (acc.correct1, acc.correct5, acc.images) == (1, 3, 3)
    assert acc.top1 == pytest.approx(1 / 3)


@pytest.mark.parametrize("name", MODELS)
def test_checkpoints_are_small_and_recorded(name: str) -> None:
    import json

    ckpt = CHECKPOINT_DIR / f"{name}.pt"
    assert ckpt.stat().st_size < 3_000_000
    record = json.loads((CHECKPOINT_DIR / f"{name}.json").read_text())
    assert record["accuracy"] >= 0.90 and record["test_images"] == 360


@pytest.mark.parametrize("fixture", ["ref_deit", "ref_efficientvit"])
def test_fp32_accuracy_is_the_recorded_one(fixture: str, digits32, request) -> None:
    model, record = request.getfixturevalue(fixture)
    _, test = digits32.loaders(256)
    acc = measure_accuracy(model, test)
    assert acc.correct1 == record["correct"]
    assert acc.top1 == pytest.approx(record["accuracy"])
    assert count_params(model) == record["params"]


_CACHE: dict[tuple[str, str], EvalResult] = {}
WORKLOADS = CHECKPOINT_DIR.parent


def _result(name: str, recipe: str, request: pytest.FixtureRequest) -> EvalResult:
    """The shipped workload ``<name>_<recipe>.yaml`` evaluated once per session (``_uncal``: its
    quant recipe with ``calibrate: false``), on the session's model and data fixtures."""
    key = (name, recipe)
    if key not in _CACHE:
        model, _ = request.getfixturevalue(name)
        data = request.getfixturevalue("digits32")
        w = Workload.load(WORKLOADS / f"{name}_{recipe.removesuffix('_uncal')}.yaml")
        r = w.compression
        if recipe.endswith("_uncal"):
            assert r.quant is not None
            r = r.model_copy(update={"quant": r.quant.model_copy(update={"calibrate": False})})
        _CACHE[key] = evaluate(w, recipe=r, model=model, data=data, macs=False)
    return _CACHE[key]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_w8a8_within_one_point_of_fp32(name: str, request) -> None:
    fp32 = _result(name, "fp32", request)
    w8a8 = _result(name, "w8a8", request)
    assert abs(w8a8.accuracy - fp32.accuracy) <= 0.01
    # quantisation keeps every parameter, except that a BatchNorm after a conv is folded into it
    # (its weight and bias go, the conv gains a bias if it had none)
    from timm.models.efficientvit_mit import ConvNormAct
    from torch import nn

    model, _ = request.getfixturevalue(name)
    folded = [
        m
        for m in model.modules()
        if isinstance(m, ConvNormAct) and isinstance(m.norm, nn.BatchNorm2d) and isinstance(m.conv, nn.Conv2d)
    ]
    removed = sum(2 * m.norm.num_features - (m.conv.bias is None) * m.norm.num_features for m in folded)
    assert w8a8.params == fp32.params - removed
    assert (removed > 0) == (name == "ref_efficientvit")


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_w4a4_needs_calibration(name: str, request) -> None:
    cal = _result(name, "w4a4", request)
    uncal = _result(name, "w4a4_uncal", request)
    # measured: 95.3% vs 77.2% (DeiT), 97.8% vs 81.1% (EfficientViT); 4 bits need calibrated ranges
    assert cal.accuracy - uncal.accuracy >= 0.10
    assert cal.accuracy >= _result(name, "fp32", request).accuracy - 0.05


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_tokens50_costs_at_most_five_points(name: str, request) -> None:
    # measured: DeiT (EViT at block 1) 94.4% vs 97.8%; EfficientViT (grid pooling before the LiteMLA
    # blocks) 98.6% vs 98.9%; neither fine-tuned
    tokens = _result(name, "tokens50", request)
    assert tokens.accuracy >= _result(name, "fp32", request).accuracy - 0.05


@pytest.mark.parametrize("model", ["ref_deit", "ref_efficientvit"])
@pytest.mark.parametrize("recipe", ["fp32", "w8a8", "w4a8", "w4a4", "prune50", "tokens50"])
def test_every_reference_recipe_ships_and_validates(model: str, recipe: str) -> None:
    w = Workload.load(WORKLOADS / f"{model}_{recipe}.yaml")
    assert w.model == model and w.dataset.kind == "digits"
