"""Reading input files and writing output files.

Every text file accelsim reads goes through :func:`read_text`: UTF-8, or UTF-16/UTF-32/UTF-8 with
a byte-order mark (what Windows editors save), and bytes that decode as none of them are one line
naming the file and the offending byte, not a ``UnicodeDecodeError``.

Every file accelsim writes goes through :func:`write_text_atomic` (or :func:`write_bytes_atomic`):
the data lands in a temporary file next to the target and is renamed over it, so a run that fails
or is killed half-way leaves the previous file (or none), never a truncated one.
:func:`check_outputs` vets every output path of a command before it starts, so a bad one fails the
run before any work and before any other output is written.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from accelsim.errors import AccelsimError

#: byte-order marks, longest first (UTF-32-LE's starts with UTF-16-LE's)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode(data: bytes, source: str, error: type[AccelsimError] = AccelsimError) -> str:
    """``data`` as text: decoded by its byte-order mark, else as UTF-8.

    Raises:
        error: the bytes are not valid in that encoding (the message names ``source``, the byte
            offset and the usual cause).
    """
    encoding, start = "utf-8", 0
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding, start = name, len(bom)
            break
    try:
        return data[start:].decode(encoding)
    except UnicodeDecodeError as e:
        raise error(
            f"{source}: not valid {encoding.upper()} text (byte 0x{data[start + e.start]:02x} at offset "
            f"{start + e.start}); save it as UTF-8 (a Latin-1 or other 8-bit file is not read)"
        ) from None


def read_text(path: str | Path, error: type[AccelsimError] = AccelsimError, what: str = "read") -> str:
    """The text of ``path`` (see :func:`decode`).

    Raises:
        error: the file is missing or unreadable (``"{path}: cannot {what}: ..."``), or not text.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise error(f"{path}: cannot {what}: {e.strerror or e}{_close_files(path)}") from None
    except OSError as e:
        raise error(f"{path}: cannot {what}: {e.strerror or e}") from None
    return decode(data, str(path), error)


def _close_files(path: Path) -> str:
    """``; did you mean 'dir/close.yaml'?`` for a missing file with a close name in its folder."""
    from accelsim._names import suggest

    try:
        names = [p.name for p in path.parent.iterdir() if p.is_file()]
    except OSError:
        return ""
    close = suggest(path.name, names)
    return f"; did you mean {' or '.join(repr(str(path.parent / c)) for c in close)}?" if close else ""


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _inside(a: Path, folder: Path) -> bool:
    try:
        return folder.is_dir() and a.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _check_writable_folder(folder: Path, label: str) -> None:
    # A trial file is the only test that answers for /proc, read-only mounts and root alike
    # (os.access says yes to root everywhere).
    import tempfile  # here: a command that writes nothing (a cold simulate) never loads it

    try:
        fd, tmp = tempfile.mkstemp(prefix=".accelsim-probe.", dir=folder)
    except OSError as e:
        raise AccelsimError(f"{label}: cannot write in {folder}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(tmp)


def check_outputs(
    outputs: Mapping[str, str | Path | None],
    inputs: Iterable[str | Path | None] = (),
    folders: Mapping[str, str | Path | None] | None = None,
) -> None:
    """Refuse, before any work, output paths that would fail or destroy something.

    ``outputs`` maps an option (``"--json"``) to the file it names, ``folders`` one to a folder
    that is created if missing; ``None`` values are skipped. ``inputs`` are every file and folder
    the run reads, those its input files name included (a workload's checkpoint, recipe, teacher
    and dataset folder: :meth:`~accelsim.config.workload.Workload.files`). An output that is an
    input or lies in an input folder, two outputs that are the same file, a file that is a folder
    (or a folder that is a file), and a place that cannot be written are each one line naming the
    option and the path.

    Raises:
        AccelsimError: the first such problem.
    """
    given = [(flag, Path(p)) for flag, p in outputs.items() if p is not None]
    dirs = [(flag, Path(p)) for flag, p in (folders or {}).items() if p is not None]
    ins = [Path(p) for p in inputs if p is not None]
    for flag, p in given + dirs:
        for i in ins:
            if _same_file(p, i):
                raise AccelsimError(f"{flag} {p}: is an input of this run; write the output elsewhere")
            if _inside(p, i):
                raise AccelsimError(
                    f"{flag} {p}: is in {i}, an input folder of this run; write the output elsewhere"
                )
    seen: list[tuple[str, Path]] = []
    for flag, p in given + dirs:
        for other_flag, other in seen:
            if _same_file(p, other):
                raise AccelsimError(f"{other_flag} and {flag} name the same file ({p}); give each its own")
        seen.append((flag, p))
    for flag, p in given:
        if p.is_dir():
            raise AccelsimError(f"{flag} {p}: is a folder, not a file")
        folder = p.parent if str(p.parent) else Path(".")
        if not folder.is_dir():
            raise AccelsimError(f"{flag} {p}: no folder {folder} to write it in")
        _check_writable_folder(folder, f"{flag} {p}")
    for flag, p in dirs:
        if p.exists() and not p.is_dir():
            raise AccelsimError(f"{flag} {p}: is a file, not a folder")
        existing = p
        while not existing.exists():  # the nearest folder that exists is where mkdir will write
            existing = existing.parent
        if not existing.is_dir():
            raise AccelsimError(f"{flag} {p}: {existing} is a file, not a folder")
        _check_writable_folder(existing, f"{flag} {p}")


def strict_json(data: Any, **kwargs: Any) -> str:
    """``json.dumps(data)`` as strict JSON: a NaN or infinity (a metric of a design that did not
    run, a rate over zero time) becomes ``null``, not ``NaN`` text that other JSON readers reject."""
    return json.dumps(_finite(data), allow_nan=False, **kwargs)


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, then rename).

    Raises:
        AccelsimError: the folder does not exist or is not writable, or ``path`` is a folder.
    """
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`write_text_atomic`)."""
    path = Path(path)
    if path.is_dir():
        raise AccelsimError(f"{path}: is a folder, not a file")
    try:
        tmp = _stage(path, data)
    except OSError as e:
        raise AccelsimError(f"{path}: cannot write: {e.strerror or e}") from None
    try:
        os.replace(tmp, path)
    except BaseException as e:  # a failed rename, or a Ctrl-C before it: no temporary file left
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise AccelsimError(f"{path}: cannot write: {e.strerror or e}") from None
        raise
    return path


#: the manifest :func:`write_files_atomic` writes last into the folder
MANIFEST = "outputs.json"


def write_files_atomic(
    folder: str | Path, files: Mapping[str, bytes], manifest: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """Write ``files`` (name -> bytes) into ``folder`` as one set, then the manifest
    ``outputs.json`` (``manifest`` plus each file's SHA-256).

    Each file is written to a temporary file beside its target first; only when all are written
    are they renamed into place, one after the other, and the manifest last. A run that fails or
    is killed while the files are made leaves the previous set as it was; the renames take
    microseconds, and a set a kill split there does not match its manifest.

    Raises:
        AccelsimError: a file cannot be written (nothing of the new set is then in place).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise AccelsimError(f"{folder}: cannot make the folder: {e.strerror or e}") from None
    staged: dict[str, str] = {}
    try:
        for name, data in files.items():
            staged[name] = _stage(folder / name, data)
        for name, tmp in staged.items():
            os.replace(tmp, folder / name)
    except OSError as e:
        raise AccelsimError(f"{folder}: cannot write the outputs: {e.strerror or e}") from None
    finally:
        for tmp in staged.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    import hashlib

    sums = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    write_text_atomic(folder / MANIFEST, json.dumps({**(manifest or {}), "sha256": sums}, indent=1) + "\n")
    return {name: folder / name for name in files}


def _stage(path: Path, data: bytes) -> str:
    """``data`` in a temporary file beside ``path`` (its mode what a plain open() would give)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else "."
    )
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp
