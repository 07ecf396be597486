"""Writing output files: whole or not at all.

Every file accelsim writes goes through :func:`write_text_atomic`: the text lands in a temporary
file next to the target and is renamed over it, so a run that fails or is killed half-way leaves
the previous file (or none), never a truncated one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from accelsim.errors import AccelsimError


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, then rename).

    Raises:
        AccelsimError: the folder does not exist or is not writable, or ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise AccelsimError(f"{path}: is a folder, not a file")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise AccelsimError(f"{path}: cannot write: {e.strerror or e}") from None
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise AccelsimError(f"{path}: cannot write: {e.strerror or e}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
