"""numba's CPU target without SciPy's linear algebra at start-up.

The first call of any jitted function (a cache load included) makes numba import its whole CPU
target, ``numba.np.arraymath`` among it, whose import-time probe ``_HAVE_BLAS`` imports
``scipy.linalg`` to see whether a BLAS exists: ~0.3 s CPU, a quarter of a cold ``accelsim
simulate``, for kernels none of which calls BLAS. :func:`defer_blas_probe` imports that module
with the probe answering yes (SciPy is a dependency of accelsim, so the answer is the one the
probe would give); numba's linear-algebra functions still call the real probe when a kernel that
uses them is compiled, so ``np.dot`` in a kernel imports SciPy then, and works as before.
"""

from __future__ import annotations

import importlib
import sys


def _blas_present() -> None:
    """``numba.np.linalg.ensure_blas`` for the import-time probe only: it raises nothing."""


def defer_blas_probe() -> None:
    """Import ``numba.np.arraymath`` without its ``scipy.linalg`` import (a no-op once numba's
    CPU target is loaded). A numba without this probe (``ensure_blas`` moved) is left alone."""
    if "numba.np.arraymath" in sys.modules:
        return
    try:
        linalg = importlib.import_module("numba.np.linalg")
        real = getattr(linalg, "ensure_blas")  # noqa: B009 - numba's modules are untyped
    except (ImportError, AttributeError):  # pragma: no cover - another numba layout
        return
    setattr(linalg, "ensure_blas", _blas_present)  # noqa: B010
    try:
        importlib.import_module("numba.np.arraymath")
    finally:
        setattr(linalg, "ensure_blas", real)  # noqa: B010
