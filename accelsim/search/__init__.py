"""Co-design search over compression and hardware (the only package that imports optuna and ray).

``accelsim.search(space, trials=..., out=...)`` runs NSGA-II over compression points, sweeps
hardware points per compression point, and writes the Pareto front of design points. See
:mod:`accelsim.search.optimizer` for the loop, :mod:`accelsim.search.storage` for where the
study lives (URLs, SQLite, the one-driver locks), :mod:`accelsim.search.space` for sampling,
:mod:`accelsim.search.objective` for what a trial evaluates and :mod:`accelsim.search.outputs` for
the files. The command line's printing and exit codes are :mod:`accelsim.cli`'s.
"""

from __future__ import annotations

from accelsim._callable import make_module_callable
from accelsim.search.objective import CompressedPoint, DesignEvaluator, HardwareResult, WorkloadEvaluator
from accelsim.search.optimizer import search
from accelsim.search.outputs import (
    DesignRecord,
    check_feasible,
    collect_designs,
    non_dominated,
    pareto_front,
    write_outputs,
)

make_module_callable(__name__, search)

__all__ = [
    "CompressedPoint",
    "DesignEvaluator",
    "DesignRecord",
    "HardwareResult",
    "WorkloadEvaluator",
    "check_feasible",
    "collect_designs",
    "non_dominated",
    "pareto_front",
    "search",
    "write_outputs",
]
