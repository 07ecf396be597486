"""numba for the simulator's kernels: their ``njit``, interpreted for one cold run, and numba's
CPU target without SciPy's linear algebra at start-up.

``njit`` is numba's, except in a process that called :func:`interpret_kernels` before the kernel
modules were imported: there it returns the Python function itself. Loading numba and its CPU
target costs ~0.55 s of CPU, the kernels of one simulate of a lowered ViT ~0.04-0.2 s as plain
Python (the same code, and the same results: the golden tests pass with ``NUMBA_DISABLE_JIT=1``,
and ``tests/test_cold_start.py`` compares the command line's report with the jitted one), so
``accelsim simulate graph.json`` runs them interpreted where the graph is small enough for that
to pay, and a dataflow design's analytic timing (which calls no kernel) never loads numba;
sweeps and the library always compile.

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
from typing import Any

#: the modules whose ``njit`` comes from here (numba's own imports elsewhere are not affected)
KERNEL_MODULES = (
    "accelsim.sim._kernels",
    "accelsim.sim._schedule_kernel",
    "accelsim.sim.engines.systolic",
    "accelsim.sim.dataflow._trips",
    "accelsim.sim.dataflow._kernel",
)
_interpreted = False


def interpret_kernels() -> bool:
    """Have this process run the kernels of :data:`KERNEL_MODULES` as plain Python (never
    importing numba for them); False, changing nothing, once one of them is imported."""
    global _interpreted
    if any(m in sys.modules for m in KERNEL_MODULES):
        return False
    _interpreted = True
    return True


def njit(*args: Any, **kwargs: Any) -> Any:
    """``numba.njit``, or the undecorated function after :func:`interpret_kernels`."""
    if _interpreted:
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return lambda func: func
    import numba

    return numba.njit(*args, **kwargs)


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
