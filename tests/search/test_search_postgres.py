"""The shared-storage path (what a Ray cluster's driver uses) on a real PostgreSQL server.

The server is started here: Debian's ``postgresql`` package (``initdb`` + ``pg_ctl``, as the
``postgres`` user when the tests run as root) on a free localhost port, in a throw-away folder;
``postgresql://`` URLs go through SQLAlchemy's default driver, psycopg 3 (``pip install
'psycopg[binary]'``). Where either is missing or the server does not start, the tests skip with one
line saying which.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from accelsim.errors import ConfigError
from accelsim.search import search
from accelsim.testing import SyntheticEvaluator


def _pg_bin(tool: str) -> str | None:
    found = shutil.which(tool)
    if found:
        return found
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    return hits[-1] if hits else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """``postgresql://accelsim@127.0.0.1:PORT/accelsim`` on a server of its own, stopped afterwards."""
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("PostgreSQL test: psycopg is not installed (pip install 'psycopg[binary]')")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL test: no initdb/pg_ctl (apt-get install postgresql)")
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("PostgreSQL test: running as root without runuser to become postgres")
        as_user = [runuser, "-u", "postgres", "--"]
    home = Path(tempfile.mkdtemp(prefix="accelsim-pg-"))
    home.chmod(0o755)
    data = home / "data"
    data.mkdir()
    if as_user:
        shutil.chown(home, "postgres")
        shutil.chown(data, "postgres")
    port = _free_port()
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    steps = [
        [*as_user, initdb, "-D", str(data), "-U", "accelsim", "--auth=trust", "--no-sync"],
        [
            *as_user,
            pg_ctl,
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(home / "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
    ]
    try:
        for cmd in steps:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
            if done.returncode != 0:
                why = (done.stderr.strip() or done.stdout.strip()).splitlines()
                pytest.skip(
                    f"PostgreSQL test: {Path(cmd[len(as_user)]).name} failed: {why[-1] if why else '?'}"
                )
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=accelsim dbname=postgres", autocommit=True
        ) as c:
            c.execute("CREATE DATABASE accelsim")
        yield f"postgresql://accelsim@127.0.0.1:{port}/accelsim"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, check=False
        )
        shutil.rmtree(home, ignore_errors=True)


def _study(study: Any) -> list[tuple[Any, ...]]:
    return [
        (t.params, t.values, t.user_attrs["designs"]) for t in study.get_trials(states=(TrialState.COMPLETE,))
    ]


def test_a_search_on_postgresql_is_the_sqlite_search_and_resumes_on_ray(
    postgres_url: str, make_space: Any, tmp_path: Path
) -> None:
    space = make_space()
    kw: dict[str, Any] = {"evaluator": SyntheticEvaluator(), "progress": False}
    on_sqlite = search(space, trials=6, out=tmp_path / "sqlite", **kw)
    first = search(space, trials=4, storage=postgres_url, out=tmp_path / "pg", **kw)
    assert len(first.get_trials(states=(TrialState.COMPLETE,))) == 4
    # the same command with a larger budget continues the study the server holds, here as the
    # README's cluster recipe runs it: a Ray driver on the shared database
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        resumed = search(space, trials=6, storage=postgres_url, out=tmp_path / "pg", backend="ray", **kw)
    finally:
        ray.shutdown()
    assert _study(resumed) == _study(on_sqlite)
    assert (tmp_path / "pg" / "pareto.csv").read_bytes() == (tmp_path / "sqlite" / "pareto.csv").read_bytes()
    with pytest.raises(ConfigError, match="made with another seed"):
        search(space, trials=6, storage=postgres_url, out=tmp_path / "pg2", seed=1, **kw)


def test_a_postgresql_server_that_refuses_is_one_line(
    postgres_url: str, make_space: Any, tmp_path: Path
) -> None:
    wrong_db = postgres_url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(
        ConfigError, match=r"storage .*no_such_db.*does not exist.*\(cannot open the database\)"
    ):
        search(make_space(), trials=2, storage=wrong_db, out=tmp_path / "o", evaluator=SyntheticEvaluator())
    assert not (tmp_path / "o").exists()
