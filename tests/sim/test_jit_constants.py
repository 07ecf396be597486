"""No jitted function reads a constant that another module defines.

Numba compiles a global int (or float, tuple, array) into the machine code as a constant, and its
on-disk cache is invalidated only when the jitted function's own source file changes. A code
imported from another module and changed there would keep its old value in the cached kernel (a
review experiment gave a stale result that way), so every such constant must be defined in the
module that compiles it, or passed as an argument.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import types
from pathlib import Path

import numpy as np
from numba.core.registry import CPUDispatcher

import accelsim

_FROZEN = (int, float, tuple, np.ndarray, np.integer, np.floating)


def _jit_modules() -> list[types.ModuleType]:
    """Every accelsim module that imports numba (importing the others would pull in torch)."""
    root = Path(accelsim.__file__).parent
    mods = []
    for info in pkgutil.walk_packages([str(root)], "accelsim."):
        path = root.joinpath(*info.name.split(".")[1:])
        src = path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"
        if src.exists() and "numba" in src.read_text():
            mods.append(importlib.import_module(info.name))
    return mods


def _defined_here(module: types.ModuleType) -> set[str]:
    """Names a module assigns at its top level (not the ones it imports)."""
    tree = ast.parse(inspect.getsource(module))
    names: set[str] = set()
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        for t in targets:
            names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _global_names(c)
    return names


def _imported_constants(module: types.ModuleType) -> list[str]:
    here = _defined_here(module)
    bad = []
    for name, obj in vars(module).items():
        if not isinstance(obj, CPUDispatcher) or obj.py_func.__module__ != module.__name__:
            continue
        g = obj.py_func.__globals__
        for ref in sorted(_global_names(obj.py_func.__code__)):
            if ref in g and isinstance(g[ref], _FROZEN) and not isinstance(g[ref], bool) and ref not in here:
                bad.append(f"{module.__name__}.{name} reads {ref}")
    return bad


def test_jitted_code_reads_only_its_own_modules_constants() -> None:
    mods = _jit_modules()
    names = {m.__name__ for m in mods}
    # the scan must see the kernels it guards
    assert {
        "accelsim.sim._kernels",
        "accelsim.sim._schedule_kernel",
        "accelsim.sim.engines.systolic",
    } <= names
    bad = [b for m in mods for b in _imported_constants(m)]
    assert bad == []


def test_the_scan_catches_an_imported_constant() -> None:
    """The check above is not vacuous: a module whose jitted function reads an imported code."""
    mod = types.ModuleType("fake_kernels")
    src = "from accelsim.sim._kernels import ENG_ARRAY\nLOCAL = 3\ndef f(x):\n    return x == ENG_ARRAY or x == LOCAL\n"
    exec(compile(src, "<fake>", "exec"), mod.__dict__)
    from numba import njit

    mod.f = njit(mod.f)  # type: ignore[attr-defined]
    mod.f.py_func.__module__ = mod.__name__  # type: ignore[attr-defined]
    inspect_getsource = inspect.getsource
    try:
        inspect.getsource = lambda m: src if m is mod else inspect_getsource(m)  # type: ignore[assignment]
        assert _imported_constants(mod) == ["fake_kernels.f reads ENG_ARRAY"]
    finally:
        inspect.getsource = inspect_getsource  # type: ignore[assignment]
