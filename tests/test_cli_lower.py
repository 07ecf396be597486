"""``accelsim lower``: in-process through ``accelsim.cli.main``."""

from __future__ import annotations

import json

import pytest

from accelsim.cli import main
from accelsim.ir import Graph, OpKind


@pytest.mark.slow
def test_lower_deit_tiny_to_json(tmp_path, capsys) -> None:
    out = tmp_path / "g.json"
    assert main(["lower", "deit_tiny_patch16_224", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    g = Graph.load(out)
    assert g.total_macs == 1_253_683_200
    assert json.loads(out.read_text())["format"] == "accelsim.graph"


@pytest.mark.slow
def test_lower_efficientvit_table(capsys) -> None:
    assert main(["lower", "efficientvit_b1", "--format", "table", "--img-size", "128"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("graph efficientvit_b1:")
    assert "linear_attention" in text and "dwconv2d" in text and "conv2d" in text


def test_lower_dot_to_stdout(capsys) -> None:
    assert main(["lower", "test_vit", "--format", "dot", "--img-size", "32"]) == 0
    text = capsys.readouterr().out
    assert text.startswith('digraph "test_vit"') and "matmul" in text


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["lower", "deit_tinyy"], "did you mean 'deit_tiny_patch16_224'"),
        (["lower", "deit_tiny_patch16_224", "--img-size", "0"], "img_size must be a positive integer"),
        (["lower", "deit_tiny_patch16_224", "--wbits", "0"], "wbits must be an integer in 1..32"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], needle: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("accelsim: error: ") and needle in err
    assert err.count("\n") == 1


def test_kinds_in_json_are_known(tmp_path) -> None:
    out = tmp_path / "t.json"
    assert main(["lower", "test_vit", "--img-size", "32", "-o", str(out)]) == 0
    kinds = {op["kind"] for op in json.loads(out.read_text())["ops"]}
    assert kinds <= {k.value for k in OpKind} and "matmul" in kinds and "softmax" in kinds
