"""Progress bars for long work (calibration, fine-tuning epochs, distillation, evaluation,
bit-true execution, lowering, search): tqdm bars on a terminal only.

A bar shows when standard error is a terminal and nothing asked for quiet: ``accelsim -q`` (the
CLI calls :func:`set_quiet`) or ``ACCELSIM_QUIET=1`` in the environment. Piped or captured output
(CI, a notebook's log, tests) gets none, so logs carry no carriage-return noise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar of this process."""
    global _quiet
    _quiet = quiet


def enabled() -> bool:
    """Whether a bar would show now: a terminal on stderr, and quiet not asked for."""
    if _quiet or os.environ.get("ACCELSIM_QUIET", "") not in ("", "0"):
        return False
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def progress(
    iterable: Iterable[T], desc: str, *, total: int | None = None, limit: int | None = None, unit: str = "it"
) -> Iterator[T]:
    """``iterable`` behind a bar (when :func:`enabled`); the bar goes away when it ends.

    ``total`` defaults to ``len(iterable)`` where it has one; ``limit`` caps it, for a loop that
    stops after that many items.
    """
    if not enabled():
        yield from iterable
        return
    from tqdm.auto import tqdm

    if total is None:
        total = _len(iterable)
    if limit is not None:
        total = limit if total is None else min(total, limit)
    with tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True) as bar:
        yield from bar


def bar(total: int, desc: str, *, initial: int = 0, unit: str = "it", show: bool = True) -> Any:
    """A manually advanced bar (``.update(n)``, ``.set_postfix_str``; a context manager), shown
    when ``show`` and :func:`enabled`."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        disable=not (show and enabled()),
        dynamic_ncols=True,
    )


def _len(iterable: Iterable[Any]) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None
