"""numba's CPU target without SciPy's linear algebra at start-up.

The first call of any jitted function (a cache load included) makes numba import its whole CPU
target, ``numba.np.arraymath`` among it, whose import-time probe ``_HAVE_BLAS`` imports
``scipy.linalg`` to see whether a BLAS exists: ~0.3 s CPU, a quarter of a cold ``accelsim
simulate``, for kernels none of which calls BLAS. :func:`defer_blas_probe` has that module
imported with the probe answering yes (SciPy is a dependency of accelsim, so the answer is the one
the probe would give); numba's linear-algebra functions still call the real probe when a kernel
that uses them is compiled, so ``np.dot`` in a kernel imports SciPy then, and works as before.

It hooks the import (a one-shot finder on ``sys.meta_path``) rather than importing numba itself:
``import accelsim.sim`` stays free of numba until a kernel module is imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

_TARGET = "numba.np.arraymath"


def _blas_present() -> None:
    """``numba.np.linalg.ensure_blas`` for the import-time probe only: it raises nothing."""


class _ProbeDeferringLoader(importlib.abc.Loader):
    """The module's own loader, run with ``numba.np.linalg.ensure_blas`` answering yes."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        linalg = importlib.import_module("numba.np.linalg")
        real = getattr(linalg, "ensure_blas", None)
        if real is not None:
            setattr(linalg, "ensure_blas", _blas_present)  # noqa: B010 - numba's modules are untyped
        try:
            self._loader.exec_module(module)
        finally:
            if real is not None:
                setattr(linalg, "ensure_blas", real)  # noqa: B010
            # nothing of this wrapper stays behind
            module.__loader__ = self._loader
            if module.__spec__ is not None:
                module.__spec__.loader = self._loader


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``numba.np.arraymath`` once, as the other finders would, with the loader wrapped."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        _uninstall()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _ProbeDeferringLoader(spec.loader)
        return spec


_FINDER = _Finder()


def _uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def defer_blas_probe() -> None:
    """Have ``numba.np.arraymath`` imported without its ``scipy.linalg`` import whenever numba
    loads its CPU target (a no-op once it is loaded)."""
    if _TARGET not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
