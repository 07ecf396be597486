"""End to end on the reference DeiT through the CLI: compress, measure, lower, simulate on ZCU102 knobs."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from accelsim.cli import main

SPACE = """
name: e2e
workload:
  model: ref_deit
  dataset: {kind: digits, max_images: 64, batch_size: 64}
compression:
  base: {quant: {abits: 8, calib_batches: 1}}
  knobs:
    quant.wbits: [4, 8]
hardware:
  base: zcu102
  knobs:
    array.rows: [16, 64]
    array.cols: [64]
    clock_mhz: [200.0]
hw_points_per_trial: 4
population_size: 2
objectives: [accuracy, fps, dsp_used]
"""


@pytest.mark.slow
def test_cli_search_on_the_reference_deit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    out = tmp_path / "out"
    args = ["search", "--space", str(space), "--trials", "2", "--out", str(out), "--seed", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "2 trials, 4 design points" in printed  # 2 hardware points: the grid of 2 is enumerated

    study = optuna.load_study(study_name="e2e", storage=f"sqlite:///{out / 'study.db'}")
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 2
    for t in trials:
        info = t.user_attrs["info"]
        assert info["macs"] > 0 and info["params"] > 0
        d = t.user_attrs["designs"]
        # 16x64 fits the ZCU102's 2520 DSPs, 64x64 (4096) does not
        assert d["hardware"] == [[16, 64, 200.0], [64, 64, 200.0]]
        assert d["fits"] == [True, False] and "dsp" in d["overflow"][1]
        assert 0.0 <= t.values[0] <= 1.0
    payload = json.loads((out / "pareto.json").read_text())
    assert payload["points"] and all(p["hardware"]["array"]["rows"] == 16 for p in payload["points"])
    assert {p["recipe"]["quant"]["wbits"] for p in payload["points"]} <= {4, 8}
    assert len(list((out / "cache").glob("*.json"))) == len({t.user_attrs["recipe_key"] for t in trials})

    # a second run of the same command finds the study complete and redoes nothing
    assert main(args) == 0
    assert len(optuna.load_study(study_name="e2e", storage=f"sqlite:///{out / 'study.db'}").trials) == 2
