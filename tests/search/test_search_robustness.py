"""Interrupted and concurrent searches, and searches with nothing to show: on the synthetic evaluator."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

import accelsim.search.optimizer as optimizer
from accelsim.cli import main
from accelsim.config.compression import CompressionRecipe
from accelsim.errors import AccelsimError, ConfigError, DataError
from accelsim.search import search
from accelsim.search.objective import CompressedPoint
from accelsim.search.optimizer import lock_run
from accelsim.testing import SyntheticEvaluator


def _study(study: optuna.Study) -> list[tuple[Any, ...]]:
    """What "the same study" means: the COMPLETE trials' parameters, hardware sweeps and values, in order."""
    return [
        (t.params, t.values, t.user_attrs["designs"]) for t in study.get_trials(states=(TrialState.COMPLETE,))
    ]


@pytest.mark.parametrize("where", ["ask", "simulate", "tell"])
def test_a_resumed_search_is_the_uninterrupted_one(
    make_space: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    space = make_space()  # batches of 4
    whole = search(space, trials=10, out=tmp_path / "whole", evaluator=SyntheticEvaluator(), progress=False)

    calls = {"n": 0}
    target = {"ask": "suggest_compression", "simulate": "simulate_task", "tell": "summarise"}[where]
    original = getattr(optimizer, target)

    def interrupting(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 6:  # second batch: half asked, asked but not told, or half told
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(optimizer, target, interrupting)
    with pytest.raises(KeyboardInterrupt):
        search(space, trials=10, out=tmp_path / "cut", evaluator=SyntheticEvaluator(), progress=False)
    monkeypatch.setattr(optimizer, target, original)
    resumed = search(space, trials=10, out=tmp_path / "cut", evaluator=SyntheticEvaluator(), progress=False)

    interrupted = [t for t in resumed.trials if t.user_attrs.get("interrupted")]
    assert interrupted and all(t.state == TrialState.FAIL for t in interrupted)
    assert _study(resumed) == _study(whole)


def test_a_second_search_on_the_same_out_is_refused(make_space: Any, tmp_path: Path) -> None:
    refused = pytest.raises(AccelsimError, match=r"another accelsim search \(pid \d+\) is running")
    with lock_run(tmp_path / ".lock"), refused:  # the lock held as a running search holds it
        search(make_space(), trials=2, out=tmp_path, evaluator=SyntheticEvaluator(), progress=False)
    assert not (tmp_path / "study.db").exists()
    # the lock goes with its holder: the next run takes it
    search(make_space(), trials=2, out=tmp_path, evaluator=SyntheticEvaluator(), progress=False)


def test_a_second_search_on_the_same_sqlite_storage_is_refused(make_space: Any, tmp_path: Path) -> None:
    """Whichever way two runs name one SQLite file (one's default OUT/study.db, the other's
    --storage), both take the file's lock."""
    a = tmp_path / "a"
    a.mkdir()
    refused = pytest.raises(AccelsimError, match="another accelsim search")
    with lock_run(a / "study.db.lock"):  # as a run with --out a (default storage) holds it
        with refused:
            search(make_space(), trials=2, out=a, evaluator=SyntheticEvaluator(), progress=False)
        storage = f"sqlite:///{a / 'study.db'}"
        with refused:
            search(
                make_space(), trials=2, storage=storage, out=tmp_path / "b", evaluator=SyntheticEvaluator()
            )
        assert not (tmp_path / "b").exists()  # refused before its --out was made
        with refused:
            search(make_space(), trials=2, storage=storage, out=None, evaluator=SyntheticEvaluator())


@pytest.mark.parametrize(
    ("storage", "match"),
    [
        ("study.db", "not a database URL"),
        ("foo://x", "no SQLAlchemy driver for 'foo'"),
        ("sqlite:////no/such/folder/s.db", "no folder /no/such/folder"),
    ],
)
def test_bad_storage_fails_before_work(make_space: Any, tmp_path: Path, storage: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        search(make_space(), trials=2, storage=storage, out=tmp_path / "o", evaluator=SyntheticEvaluator())
    assert not (tmp_path / "o").exists()


class _Broken(SyntheticEvaluator):
    def compress(self, recipe: CompressionRecipe) -> CompressedPoint:
        raise DataError("checkpoint not found: ck.pt")


def test_a_search_whose_first_batch_fails_whole_stops_there(make_space: Any) -> None:
    space = make_space()
    with pytest.raises(AccelsimError, match=r"4 trials failed \(e\.g\. DataError: checkpoint not found"):
        search(space, trials=20, out=None, evaluator=_Broken(), progress=False)


def _space_yaml(tmp_path: Path, extra: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(
        "name: syn\nworkload: synthetic\npopulation_size: 2\nhw_points_per_trial: 4\n"
        "compression: {knobs: {quant.wbits: [4, 8]}}\n" + extra
    )
    return p


@pytest.mark.parametrize(
    ("extra", "code", "match"),
    [
        (
            "hardware: {knobs: {array.rows: [8, 16]}}\nconstraints: {accuracy: {min: 2.0}}\n",
            2,
            r"no design point meets the constraints: (\d+) of \1 fit the board, but accuracy >= 2.0 "
            r"\(\1 miss it, best 0\.\d+\); every point is in .*designs\.csv",
        ),
        (
            "hardware: {knobs: {array.rows: [64], array.cols: [64]}}\n",
            3,
            r"no design point of the 4 evaluated fits the board \(e\.g\. dsp \d+ > 2520\)",
        ),
    ],
)
def test_a_search_with_no_feasible_point_says_why(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: str,
    code: int,
    match: str,
) -> None:
    monkeypatch.setattr(optimizer, "make_evaluator", lambda space: SyntheticEvaluator())
    space = _space_yaml(tmp_path, extra)
    argv = ["search", "--space", str(space), "--trials", "4", "--out", str(tmp_path / "o")]
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("accelsim: error: ")
    assert re.search(match, err), err
    assert (tmp_path / "o" / "designs.csv").exists()  # the evaluated points are still written
