"""``accelsim search``: bad input is one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelsim.cli import main


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workload: w.yaml\nobjectives: [speed]\n", "objectives.0: Input should be 'accuracy'"),
        (
            "workload: w.yaml\nhw_points_per_trial: 0\n",
            "hw_points_per_trial: Input should be greater than or equal to 1",
        ),
        ("workload: [\n", "invalid YAML"),
    ],
)
def test_bad_space_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(text)
    assert main(["search", "--space", str(space), "--trials", "2", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("accelsim: error: ") and message in err and err.count("\n") == 1


def test_trials_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("workload: w.yaml\n")
    assert main(["search", "--space", str(space), "--trials", "0", "--out", str(tmp_path / "out")]) == 2
    assert "trials: must be >= 1 (got 0)" in capsys.readouterr().err
