"""Long-tailed splits, head / mid / tail accuracy, teachers named in a workload, and the shipped
teacher and distilled checkpoints (their accuracy is what their JSON records)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from accelsim.config._base import validate_config
from accelsim.config.workload import DatasetConfig, TeacherConfig, Workload
from accelsim.errors import ConfigError, DataError
from accelsim.eval import load_teacher
from accelsim.eval.accuracy import class_group_accuracy, measure_accuracy, predict
from accelsim.eval.datasets import load_digits_splits, load_splits, long_tail_counts
from accelsim.models import CHECKPOINT_DIR, create_reference_model

WORKLOADS = Path(__file__).resolve().parents[2] / "workloads"


def test_long_tail_counts_by_hand() -> None:
    assert long_tail_counts(100, 3, 100.0) == [100, 10, 1]
    # digits: the rarest balanced class has 139 train images; 139 * 10^(-c/9), floored
    assert long_tail_counts(139, 10, 10.0) == [139, 107, 83, 64, 49, 38, 29, 23, 17, 13]
    assert long_tail_counts(139, 10, 100.0) == [139, 83, 49, 29, 17, 10, 6, 3, 2, 1]
    assert long_tail_counts(139, 10, 1.0) == [139] * 10


def test_long_tailed_digits_keep_a_balanced_test_split() -> None:
    balanced = load_digits_splits(8, in_chans=1)
    lt = load_digits_splits(8, in_chans=1, imbalance=100.0)
    y_train = lt.train.tensors[1]  # type: ignore[attr-defined]
    assert torch.bincount(y_train).tolist() == [139, 83, 49, 29, 17, 10, 6, 3, 2, 1]
    torch.testing.assert_close(lt.test.tensors[1], balanced.test.tensors[1])  # type: ignore[attr-defined]
    assert "imbalance 100: 139..1 per class" in lt.description and "339 train" in lt.description
    # the kept images are images of the balanced split, of their own class
    x_bal, y_bal = balanced.train.tensors  # type: ignore[attr-defined]
    first_tail = lt.train.tensors[0][y_train == 9][0]  # type: ignore[attr-defined]
    match = (x_bal == first_tail).flatten(1).all(1)
    assert int(match.sum()) >= 1 and set(y_bal[match].tolist()) == {9}


def test_long_tail_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"imbalance: Input should be greater than or equal to 1"):
        validate_config(DatasetConfig, {"imbalance": 0.5})
    with pytest.raises(ConfigError, match=r"imbalance: a long-tailed split is made of the offline kinds"):
        validate_config(DatasetConfig, {"kind": "imagefolder", "path": "/x", "imbalance": 10})
    with pytest.raises(DataError, match=r"dataset\.imbalance: a long-tailed split"):
        load_splits("imagefolder", img_size=8, path="/x", imbalance=10.0)


def test_head_mid_tail_accuracy_by_hand() -> None:
    # 10 classes, two test images each; right: class 0-2 both, 3-6 one of two, 7-9 none
    labels = torch.arange(10).repeat_interleave(2)
    pred = labels.clone()
    pred[6:14:2] = 0  # the first image of classes 3..6 is wrong
    pred[14:] = 0  # classes 7..9 all wrong
    acc = class_group_accuracy(torch.nn.functional.one_hot(pred, 10).float(), labels)
    assert acc == {"head": 1.0, "mid": 0.5, "tail": 0.0, "overall": 10 / 20}


def test_a_teacher_named_in_a_workload(tmp_path: Path) -> None:
    short = Workload.model_validate({"model": "ref_deit", "teacher": "ref_cnn"})
    assert short.teacher == TeacherConfig(model="ref_cnn", pretrained=True)
    p = tmp_path / "w.yaml"
    p.write_text("model: ref_deit\nteacher: {model: ref_cnn, checkpoint: t/cnn.pt}\n")
    assert Workload.load(p).teacher.checkpoint == str((tmp_path / "t" / "cnn.pt").resolve())  # type: ignore[union-attr]
    with pytest.raises(
        ConfigError, match=r"teacher: Value error, checkpoint: give the teacher a checkpoint or pretrained"
    ):
        validate_config(
            Workload, {"model": "ref_deit", "teacher": {"model": "x", "checkpoint": "a", "pretrained": True}}
        )
    with pytest.raises(ConfigError, match=r"teacher\.pretrain: unknown field"):
        validate_config(Workload, {"model": "ref_deit", "teacher": {"model": "ref_cnn", "pretrain": True}})
    assert load_teacher(short.model_copy(update={"teacher": None})) is None


@pytest.mark.parametrize("name", ["ref_cnn", "ref_cnn_lt10", "ref_cnn_lt100", "ref_deit_distilled"])
def test_shipped_teacher_and_distilled_checkpoints_measure_what_their_json_says(name: str) -> None:
    torch.set_num_threads(1)
    record = json.loads((CHECKPOINT_DIR / f"{name}.json").read_text())
    model = create_reference_model(name, pretrained=True)
    _, test = load_digits_splits(32).loaders(256)
    logits, labels = predict(model, test)
    assert measure_accuracy(model, test).correct1 == record["correct"]
    if "head_mid_tail" in record:
        assert class_group_accuracy(logits, labels) == pytest.approx(record["head_mid_tail"])
    assert record["checkpoint_bytes"] < 1_500_000


def test_the_workload_teacher_is_the_cnn_it_names() -> None:
    w = Workload.load(WORKLOADS / "ref_deit_distilled_prune50.yaml")
    teacher = load_teacher(w)
    assert type(teacher).__name__ == "ResNet" and not teacher.training  # type: ignore[union-attr]
    _, test = load_digits_splits(32).loaders(256)
    assert (
        measure_accuracy(teacher, test).top1
        == json.loads((CHECKPOINT_DIR / "ref_cnn.json").read_text())["accuracy"]
    )  # type: ignore[arg-type]


def test_compress_workload_distils_from_the_named_teacher(monkeypatch: pytest.MonkeyPatch) -> None:
    import accelsim.compress.distill as distill_module
    from accelsim.eval import compress_workload

    seen: list[str] = []

    def spy(
        student: torch.nn.Module, teacher: torch.nn.Module, train_data: object, cfg: object
    ) -> torch.nn.Module:
        seen.append(type(teacher).__name__)
        return student

    monkeypatch.setattr(distill_module, "distill", spy)
    w = Workload.load(WORKLOADS / "ref_deit_distilled_prune50.yaml")
    recipe = w.compression.model_copy(update={"prune": None})
    compress_workload(w, recipe=recipe, accuracy=False)
    compress_workload(w.model_copy(update={"teacher": None}), recipe=recipe, accuracy=False)
    assert seen == ["ResNet", "VisionTransformerDistilled"]  # the named CNN; else the model itself
