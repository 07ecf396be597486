"""Interrupted and concurrent searches, and searches with nothing to show: on the synthetic evaluator."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

import accelsim.search.optimizer as optimizer
import accelsim.search.storage as storage
from accelsim.cli import main
from accelsim.config.compression import CompressionRecipe
from accelsim.errors import AccelsimError, ConfigError, DataError
from accelsim.search import search
from accelsim.search.objective import CompressedPoint
from accelsim.search.storage import lock_database, lock_run
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
    with lock_database(a / "study.db"):  # as a run with --out a (default storage) holds it
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


@pytest.mark.parametrize("link", ["symlink", "hardlink", "symlinked-folder"])
def test_the_database_lock_follows_the_file_not_its_name(make_space: Any, tmp_path: Path, link: str) -> None:
    """A second driver reaching a running study's SQLite file by another name is refused."""
    first = tmp_path / "first"
    search(make_space(), trials=1, out=first, evaluator=SyntheticEvaluator(), progress=False)
    db = first / "study.db"
    other = tmp_path / "other"
    other.mkdir()
    if link == "symlink":
        (other / "alias.db").symlink_to(db)
        alias = other / "alias.db"
    elif link == "hardlink":
        (other / "alias.db").hardlink_to(db)
        alias = other / "alias.db"
    else:
        (other / "dir").symlink_to(first, target_is_directory=True)
        alias = other / "dir" / "study.db"
    # as the first run holds it, by its own name
    with lock_database(db), pytest.raises(AccelsimError, match="another accelsim search"):
        search(make_space(), trials=2, storage=f"sqlite:///{alias}", out=tmp_path / "b",
               evaluator=SyntheticEvaluator(), progress=False)  # fmt: skip
    assert not (tmp_path / "b").exists()
    if link == "hardlink":
        # SQLite names its write-ahead log after the name it is given: while this process still
        # has the first study open, the alias cannot be opened (a second process could)
        with pytest.raises(ConfigError, match=r"disk I/O error.*2 hard links: open it by one name only"):
            search(make_space(), trials=2, storage=f"sqlite:///{alias}", evaluator=SyntheticEvaluator())
        return
    # the lock goes with its holder: the alias resumes the study
    study = search(make_space(), trials=2, storage=f"sqlite:///{alias}", evaluator=SyntheticEvaluator(),
                   progress=False)  # fmt: skip
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2


@pytest.mark.parametrize(
    ("storage", "match"),
    [
        ("study.db", "not a database URL"),
        ("foo://x", "no SQLAlchemy driver for 'foo'"),
        ("sqlite:///:memory:", "in-memory SQLite"),
        ("sqlite://", "in-memory SQLite"),
        ("sqlite:////no/such/folder/s.db", "no folder /no/such/folder"),
    ],
)
def test_bad_storage_fails_before_work(make_space: Any, tmp_path: Path, storage: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        search(make_space(), trials=2, storage=storage, out=tmp_path / "o", evaluator=SyntheticEvaluator())
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("storage", "module", "package"),
    [
        # SQLAlchemy 2.1 opens postgresql:// with psycopg 3 (not psycopg2)
        ("postgresql://u@localhost/db", "psycopg", "'psycopg[binary]'"),
        ("postgresql+psycopg2://u@localhost/db", "psycopg2", "psycopg2-binary"),
        ("mysql://u@localhost/db", "MySQLdb", "mysqlclient"),
    ],
)
def test_a_storage_without_its_driver_names_the_package(
    make_space: Any, tmp_path: Path, storage: str, module: str, package: str
) -> None:
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    driver = storage.split(":")[0].split("+")[-1]
    expected = {"postgresql": "psycopg", "mysql": "mysqldb"}.get(driver, driver)
    match = f"the '{expected}' driver, which is not installed \\(pip install {re.escape(package)}\\)"
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
    captured = capsys.readouterr()
    assert captured.out == ""  # the error line alone, no summary of an empty front before it
    err = captured.err.strip().splitlines()[-1]
    assert err.startswith("accelsim: error: ")
    assert re.search(match, err), err
    assert (tmp_path / "o" / "designs.csv").exists()  # the evaluated points are still written


def _files(out: Path) -> dict[str, bytes]:
    names = ("pareto.csv", "pareto.json", "pareto.png", "designs.csv", "report.md")
    return {n: (out / n).read_bytes() for n in names}


def test_a_kill_while_the_outputs_are_written_leaves_the_previous_set(
    make_space: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outputs are one set: the manifest names each file's hash, and a run killed while it
    makes its files leaves the previous run's set whole (not new and old files side by side)."""
    import hashlib
    import json

    import accelsim._io as io_mod

    space = make_space()
    search(space, trials=2, out=tmp_path, evaluator=SyntheticEvaluator(), progress=False)
    first = _files(tmp_path)
    manifest = json.loads((tmp_path / "outputs.json").read_text())
    assert manifest["complete_trials"] == 2
    assert manifest["sha256"] == {n: hashlib.sha256(b).hexdigest() for n, b in first.items()}

    staged = {"n": 0}
    original = io_mod._stage

    def killed_at_the_fourth(path: Path, data: bytes) -> str:
        staged["n"] += 1
        if staged["n"] == 4:
            raise KeyboardInterrupt
        return original(path, data)

    monkeypatch.setattr(io_mod, "_stage", killed_at_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        search(space, trials=4, out=tmp_path, evaluator=SyntheticEvaluator(), progress=False)
    assert _files(tmp_path) == first  # the three files made are not in place
    assert json.loads((tmp_path / "outputs.json").read_text()) == manifest
    assert not list(tmp_path.glob(".*.tmp"))  # and their temporary files are gone
    monkeypatch.setattr(io_mod, "_stage", original)
    search(space, trials=4, out=tmp_path, evaluator=SyntheticEvaluator(), progress=False)
    second = json.loads((tmp_path / "outputs.json").read_text())
    assert second["complete_trials"] == 4
    assert second["sha256"] == {n: hashlib.sha256(b).hexdigest() for n, b in _files(tmp_path).items()}


@pytest.fixture
def full_disk(tmp_path: Path) -> Any:
    """A 128 KiB tmpfs filled up (needs root and a mount permission; skipped with one line elsewhere)."""
    import shutil
    import subprocess

    mnt = tmp_path / "full"
    mnt.mkdir()
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        pytest.skip("full-disk test: needs root and mount(8) for a small tmpfs")
    done = subprocess.run([mount, "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"full-disk test: cannot mount a tmpfs here ({done.stderr.decode().strip()[:80]})")
    try:
        with contextlib.suppress(OSError), open(mnt / "fill", "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def test_a_full_disk_under_out_is_one_line(make_space: Any, full_disk: Path) -> None:
    with pytest.raises(ConfigError, match=r"storage .*study\.db.: database or disk is full"):
        search(make_space(), trials=2, out=full_disk / "o", evaluator=SyntheticEvaluator(), progress=False)


def test_database_locks_leave_no_files_behind(tmp_path: Path) -> None:
    """The shared lock folder would gather a file per database ever searched: a lock's holder
    deletes its file as it lets go."""
    db = tmp_path / "study.db"
    db.touch()
    locks = storage.database_locks(db)
    assert len(locks) == 2
    with lock_database(db):
        assert all(lock.exists() for lock in locks)
    assert not any(lock.exists() for lock in locks)


def test_a_lock_file_deleted_as_it_is_taken_is_taken_again(tmp_path: Path, monkeypatch: Any) -> None:
    """A process that opened a lock file just before its holder deleted it and let go locks a
    name-less file: it must open the name again, or two runs would each hold "the" lock."""
    db = tmp_path / "study.db"
    flock, deleted = fcntl.flock, []

    def flock_after_the_holder_left(fd: int, op: int) -> None:
        if not deleted:  # as the previous holder: delete the file, then let go
            (lock,) = storage.database_locks(db)
            lock.unlink()
            deleted.append(lock)
        flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock_after_the_holder_left)
    with lock_database(db):
        monkeypatch.setattr(fcntl, "flock", flock)
        assert deleted[0].exists()  # the name leads to the file this run holds
        with pytest.raises(AccelsimError, match="another accelsim search"), lock_database(db):
            pass
