"""Workloads, evaluate(), the `accelsim eval` command and its error paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelsim.cli import main
from accelsim.config.workload import Workload
from accelsim.errors import ConfigError, DataError, UnknownModelError
from accelsim.eval import evaluate, load_model
from accelsim.models import CHECKPOINT_DIR, create_reference_model, list_reference_models

WORKLOADS = Path(__file__).resolve().parents[2] / "workloads"


def test_workload_resolves_paths_relative_to_yaml(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("quant: {wbits: 4}\n")
    p = tmp_path / "w.yaml"
    p.write_text(
        "model: ref_deit\ncheckpoint: ck/x.pt\nrecipe: r.yaml\ndataset: {kind: digits, max_images: 10}\n"
    )
    w = Workload.load(p)
    assert w.name == "w"
    assert w.checkpoint == str((tmp_path / "ck" / "x.pt").resolve())
    assert w.compression.quant is not None and w.compression.quant.wbits == 4
    assert w.dataset.max_images == 10


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("model: ref_deit\ndataset: {kind: imagefolder}\n", "dataset.path"),
        ("model: ref_deit\ndataset: {kind: cifar}\n", "dataset.kind"),
        ("model: ref_deit\ncheckpoint: a.pt\npretrained: true\n", "checkpoint"),
        ("model: ref_deit\nrecipe: {quant: {abits: 1}}\n", "quant.abits"),
        ("model: ref_deit\nbatchsize: 3\n", "batchsize"),
    ],
)
def test_bad_workload_is_a_config_error(text: str, field: str, tmp_path: Path) -> None:
    p = tmp_path / "w.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        Workload.load(p)


def test_missing_checkpoint_is_a_data_error(tmp_path: Path) -> None:
    w = Workload(model="ref_deit", checkpoint=str(tmp_path / "missing.pt"))
    with pytest.raises(DataError, match=r"checkpoint not found: .*missing\.pt"):
        load_model(w)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="unreadable"):
        create_reference_model("ref_deit", checkpoint=bad)
    with pytest.raises(DataError, match="does not fit"):
        create_reference_model("ref_efficientvit", checkpoint=CHECKPOINT_DIR / "ref_deit.pt")


def test_missing_dataset_is_a_data_error(tmp_path: Path) -> None:
    w = Workload(
        model="ref_deit",
        checkpoint=str(CHECKPOINT_DIR / "ref_deit.pt"),
        dataset={"kind": "imagefolder", "path": str(tmp_path / "no_such_dir")},
    )
    with pytest.raises(DataError, match="no_such_dir"):
        evaluate(w)


def test_unknown_model_lists_reference_names() -> None:
    with pytest.raises(UnknownModelError, match="ref_cnn, ref_cnn_lt10, ref_cnn_lt100, ref_deit, "):
        create_reference_model("ref_vgg")
    assert list_reference_models() == [
        "ref_cnn",
        "ref_cnn_lt10",
        "ref_cnn_lt100",
        "ref_deit",
        "ref_deit_distilled",
        "ref_efficientvit",
    ]
    with pytest.raises(UnknownModelError, match="not_a_model_xyz"):
        load_model(Workload(model="not_a_model_xyz"))


def test_cli_eval_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    record = json.loads((CHECKPOINT_DIR / "ref_deit.json").read_text())
    assert main(["eval", "--workload", str(WORKLOADS / "ref_deit_fp32.yaml"), "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert {"accuracy", "top5", "macs", "params"} <= set(d)
    assert d["accuracy"] == pytest.approx(record["accuracy"])
    assert d["params"] == record["params"] and d["macs"] > 0 and d["images"] == 360
    assert "top-1" in capsys.readouterr().out


def test_cli_eval_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "w.yaml"
    p.write_text(f"model: ref_deit\ncheckpoint: {tmp_path / 'gone.pt'}\n")
    assert main(["eval", "--workload", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("accelsim: error: checkpoint not found") and err.count("\n") == 1
