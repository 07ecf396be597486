"""The layer-pipelined dataflow family: one engine per stage, stages joined by streams.

- :mod:`.kinds`: the stage kinds, one table (loop nest, closed-form trip count, ports, work,
  resource terms per kind);
- :mod:`.network`: a :class:`~accelsim.config.dataflow.DataflowConfig` flattened into stages,
  streams and the event arrays;
- :mod:`._trips` (Numba): every kind's closed-form trip count, one dispatcher over flat arrays;
- :mod:`._kernel` (Numba) and :mod:`.timing`: the analytic steady state, the closed-form first
  frame (the default report's) and the event-level run (back-pressure on every frame);
- :mod:`.report`: resources, metrics, :func:`simulate_dataflow` (the family's ``simulate``);
- :mod:`.allocate`: every engine's parallelism for a lowered model and a resource budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accelsim._lazy import lazy_exports

# public name -> module that defines it, imported on first use: ``accelsim simulate`` of a
# dataflow design loads the report's modules, not the allocator's (nor the IR it reads)
_LAZY = {
    "Allocation": "accelsim.sim.dataflow.allocate",
    "Budget": "accelsim.sim.dataflow.allocate",
    "allocate": "accelsim.sim.dataflow.allocate",
    "DataflowReport": "accelsim.sim.dataflow.report",
    "simulate_dataflow": "accelsim.sim.dataflow.report",
}

if TYPE_CHECKING:  # pragma: no cover
    from accelsim.sim.dataflow.allocate import Allocation, Budget, allocate
    from accelsim.sim.dataflow.report import DataflowReport, simulate_dataflow


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)


__all__ = ["Allocation", "Budget", "DataflowReport", "allocate", "simulate_dataflow"]
