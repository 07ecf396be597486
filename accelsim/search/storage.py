"""Where a study lives: storage URLs, SQLite with write-ahead logging, and the one-driver locks.

Every storage is checked before any work (:func:`check_storage_url`): a URL SQLAlchemy cannot
parse, a driver that is not installed (named, with the package that provides it), an in-memory
SQLite database (each connection would see its own empty one), or a SQLite file that cannot be
created are one line, not a traceback half-way through a run.

One driver per study: :func:`lock_run` holds a run's ``--out`` folder and :func:`lock_database`
(with :func:`lock_created_database`) its SQLite file. A database's lock follows the file, not the name it was given: a symlink, a
hard link or a bind mount of the same file reaches the same lock (it is keyed on the file's
``st_dev``/``st_ino``; a file not yet made, on its real path).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna

from accelsim.errors import AccelsimError, ConfigError

#: ``pip install`` lines of the DB-API drivers SQLAlchemy picks for a URL without ``+driver``
_DRIVER_PACKAGES = {
    "psycopg": "'psycopg[binary]'",
    "psycopg2": "psycopg2-binary",
    "mysqldb": "mysqlclient",
    "pymysql": "pymysql",
    "asyncpg": "asyncpg",
}

_EXAMPLE = "e.g. sqlite:///runs/search/study.db or postgresql://USER@HOST/DB"


def _sqlite_wal(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for another URL or an in-memory database)."""
    if not url.startswith("sqlite:///"):
        return None
    name = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(name) if name and name != ":memory:" else None


def check_storage_url(url: str) -> None:
    """Refuse, before any work, a storage URL that SQLAlchemy cannot parse or has no installed
    driver for, an in-memory SQLite database, or a SQLite file that cannot be created.

    Raises:
        ConfigError: naming the URL, the driver and what to do.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"storage {url!r}: not a database URL ({_EXAMPLE})") from None
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(
            f"storage {url!r}: no SQLAlchemy driver for {parsed.drivername!r} (use sqlite, postgresql "
            f"or mysql; {_EXAMPLE})"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError:
        driver = str(getattr(dialect, "driver", "?"))
        package = _DRIVER_PACKAGES.get(driver, driver)
        raise ConfigError(
            f"storage {url!r}: SQLAlchemy opens {parsed.get_backend_name()} URLs with the {driver!r} "
            f"driver, which is not installed (pip install {package})"
        ) from None
    if parsed.get_backend_name() == "sqlite" and (
        parsed.database in (None, "", ":memory:") or "mode=memory" in url
    ):
        raise ConfigError(
            f"storage {url!r}: an in-memory SQLite database lives in one connection only; "
            "give a file (sqlite:///PATH) or leave --storage out (OUT/study.db)"
        )
    db = sqlite_path(url)
    if db is not None:
        if db.is_dir():
            raise ConfigError(f"storage {url!r}: {db} is a folder, not a database file")
        if not db.parent.is_dir():
            raise ConfigError(f"storage {url!r}: no folder {db.parent} for the database file")


def storage_error(url: str, e: BaseException) -> ConfigError:
    """One line for a database that failed under a run (unreachable, refused, full disk): from
    SQLAlchemy's error or Optuna's ``StorageInternalError`` around one."""
    if isinstance(e, optuna.exceptions.StorageInternalError) and e.__cause__ is not None:
        e = e.__cause__
    lines = str(getattr(e, "orig", None) or e).strip().splitlines()
    reason = lines[0] if lines else type(e).__name__
    db = sqlite_path(url)
    with contextlib.suppress(OSError):
        if db is not None and os.stat(db).st_nlink > 1:
            # SQLite names its write-ahead log after the name it was given, so two names of one
            # file open at once see two logs
            reason += f" ({db} has {os.stat(db).st_nlink} hard links: open it by one name only)"
    return ConfigError(f"storage {url!r}: {reason}")


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; SQLite files get write-ahead logging.

    WAL with ``synchronous=NORMAL`` commits without an fsync each time (2-3x faster here, and a
    trial commits ~20 times) yet loses nothing when the process is killed; only a power cut may
    drop the last commits (https://www.sqlite.org/wal.html), which a resume then redoes.

    Raises:
        ConfigError: a bad URL (:func:`check_storage_url`), or a database that cannot be opened
            (not a database file, unreachable server, refused login).
    """
    from sqlalchemy.exc import SQLAlchemyError

    check_storage_url(url)
    try:
        storage = optuna.storages.RDBStorage(url)
        if url.startswith("sqlite:"):
            from sqlalchemy import event

            event.listen(storage.engine, "connect", _sqlite_wal)
            storage.engine.dispose()  # reconnect through the listener
    except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as e:
        raise ConfigError(f"{storage_error(url, e)} (cannot open the database)") from None
    return storage


def default_storage(out: str | Path | None) -> optuna.storages.BaseStorage:
    """``sqlite:///OUT/study.db``, or an in-memory storage when there is no ``out``."""
    if out is None:
        return optuna.storages.InMemoryStorage()
    Path(out).mkdir(parents=True, exist_ok=True)
    return open_storage(f"sqlite:///{Path(out).resolve() / 'study.db'}")


def _refused(place: Path | str, holder: str) -> AccelsimError:
    return AccelsimError(
        f"{place}: another accelsim search (pid {holder}) is running on it; "
        "wait for it to finish, or give this one another --out/--storage"
    )


def _take(stack: contextlib.ExitStack, lock: Path, place: Path | str, remove: bool = False) -> None:
    """flock ``lock`` (made if missing) for as long as ``stack`` is open, and write our pid in it.

    Unbuffered writes: on a full disk the pid is not recorded, and nothing is left to fail later.
    With ``remove`` (the shared folder of database locks, which would otherwise gather a file per
    database ever searched), the holder deletes the file before it lets go. A process that opened
    the file before that then locks a name-less file: it sees that the name no longer leads to the
    file it locked, and opens the name again.
    """
    while True:
        try:
            try:
                fd, writable = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666), True
            except PermissionError:  # another user's lock file: reading it is enough to lock it
                fd, writable = os.open(lock, os.O_RDONLY), False
        except OSError as e:
            raise AccelsimError(f"{place}: cannot make its lock file {lock}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise _refused(place, holder or "?") from None
        if not remove or _names(lock, fd):
            break
        os.close(fd)  # its holder deleted it as we opened it: the name leads to a new file now
    stack.callback(os.close, fd)
    if remove and writable:  # runs before the close above: the file goes while still locked
        stack.callback(_unlink_quietly, lock)
    if writable:
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:  # a full disk: the lock is held, only the pid is not recorded
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise AccelsimError(
                    f"{place}: cannot write its lock file {lock}: {e.strerror or e}"
                ) from None


def _names(lock: Path, fd: int) -> bool:
    """Whether the name ``lock`` leads to the open file ``fd``."""
    try:
        st = os.stat(lock)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


def _unlink_quietly(lock: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(lock)


@contextlib.contextmanager
def lock_run(*places: Path) -> Iterator[None]:
    """Hold an exclusive lock on each of ``places`` (a ``.lock`` file) for the run.

    Two drivers on one study would ask and tell over each other (and write the same outputs); the
    second is refused at once instead. ``flock`` locks die with their process, so a killed run
    leaves nothing to clean up: the next one simply takes the lock. A lock file inside a folder is
    the same file whatever the folder is called, so ``OUT/.lock`` follows the folder.

    Raises:
        AccelsimError: another process holds one of the locks (the message gives its pid), or a
            lock file cannot be made.
    """
    with contextlib.ExitStack() as stack:
        for lock in places:
            try:
                lock.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise AccelsimError(f"{lock.parent}: cannot make the folder: {e.strerror or e}") from None
            _take(stack, lock, lock.parent)
        yield


def lock_dir() -> Path:
    """The host's folder of database locks (shared by every user: sticky, world-writable)."""
    d = Path(tempfile.gettempdir()) / "accelsim-locks"
    if not d.is_dir():
        with contextlib.suppress(FileExistsError):
            d.mkdir()
            os.chmod(d, 0o1777)
    return d


def database_locks(db: Path) -> list[Path]:
    """The lock files of the SQLite file ``db``: one keyed on its real path and, once it exists,
    one keyed on its identity (``st_dev``, ``st_ino``), which every link and mount of it shares."""
    real = os.path.realpath(db)
    locks = [lock_dir() / f"path-{hashlib.sha256(real.encode()).hexdigest()[:24]}.lock"]
    with contextlib.suppress(FileNotFoundError):
        st = os.stat(db)
        locks.append(lock_dir() / f"file-{st.st_dev}-{st.st_ino}.lock")
    return locks


@contextlib.contextmanager
def lock_database(db: Path) -> Iterator[bool]:
    """Hold the SQLite file ``db`` for the run, whatever name, link or mount reaches it: its real
    path's lock and, if it exists, its identity's. Take it before the database is opened (opening
    a file in use under another name in WAL mode is itself an error); once the file exists,
    :func:`lock_created_database` adds the identity lock of a file that did not exist here.
    Yields whether the identity lock was taken (the file existed).

    Raises:
        AccelsimError: another search holds the file (the message gives its pid).
    """
    with contextlib.ExitStack() as stack:
        locks = database_locks(db)
        for lock in locks:
            _take(stack, lock, db, remove=True)
        yield len(locks) > 1


@contextlib.contextmanager
def lock_created_database(db: Path) -> Iterator[None]:
    """The identity lock of ``db``, which :func:`lock_database` found missing: the file is made
    (empty: SQLite's new database) if nothing has made it yet.

    Raises:
        AccelsimError: the file cannot be made, or another search reached it first by another name.
    """
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        raise AccelsimError(f"{db}: cannot make the database file: {e.strerror or e}") from None
    with contextlib.ExitStack() as stack:
        for lock in database_locks(db)[1:]:
            _take(stack, lock, db, remove=True)
        yield


__all__ = [
    "check_storage_url",
    "database_locks",
    "default_storage",
    "lock_created_database",
    "lock_database",
    "lock_dir",
    "lock_run",
    "open_storage",
    "sqlite_path",
    "storage_error",
]
