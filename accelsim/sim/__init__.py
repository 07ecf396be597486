"""The cycle-level simulator: map a Graph onto an accelerator, run its tiles, report.

The flow's three arrows, each a function with a typed input and output:
``map_graph(graph, hw) -> Schedule``, ``run(schedule) -> RunResult`` and
``build_report(schedule, result) -> Report``; ``simulate(graph, hw)`` is the three in a row and
``simulate_many(graph, hws)`` a sweep (the graph is flattened once); ``simulate_scalesim(cfg,
topology)`` takes SCALE-Sim inputs. No torch on this path: a saved graph simulates without it.

Layout: ``engines/`` (the systolic array's timing modes and the units beside it), ``reference/``
(the PE-level models the fast timing is checked against), ``scalesim/`` (SCALE-Sim's files in),
``_kernels.py`` (the Numba kernels and the codes they share).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from accelsim._lazy import lazy_exports
from accelsim._numba import defer_blas_probe

# before any kernel loads: no scipy.linalg import (accelsim/_numba.py)
defer_blas_probe()

# public name -> module that defines it, imported on first use: ``accelsim.sim.dataflow`` (which
# has no use for the overlay's mapper and kernels) is then imported without them
_LAZY: dict[str, str] = {
    "HardwareLike": "accelsim.sim.driver",
    "simulate": "accelsim.sim.driver",
    "simulate_many": "accelsim.sim.driver",
    "GraphArrays": "accelsim.sim.graph_arrays",
    "compile_graph": "accelsim.sim.graph_arrays",
    "map_graph": "accelsim.sim.mapping",
    "LayerRow": "accelsim.sim.report",
    "Report": "accelsim.sim.report",
    "build_report": "accelsim.sim.report",
    "RunResult": "accelsim.sim.schedule",
    "Schedule": "accelsim.sim.schedule",
    "run": "accelsim.sim.schedule",
    "save_trace": "accelsim.sim.trace",
}

if TYPE_CHECKING:  # pragma: no cover
    from accelsim.sim.driver import HardwareLike, simulate, simulate_many
    from accelsim.sim.graph_arrays import GraphArrays, compile_graph
    from accelsim.sim.mapping import map_graph
    from accelsim.sim.report import LayerRow, Report, build_report
    from accelsim.sim.schedule import RunResult, Schedule, run
    from accelsim.sim.trace import save_trace


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)


def simulate_scalesim(config_path: str | Path, topology_path: str | Path) -> Report:
    """Simulate a SCALE-Sim config (``.cfg``) and topology (``.csv``) as an accelsim design
    (``scalesim`` timing, so compute cycles equal SCALE-Sim's).

    Raises:
        ConfigError: malformed SCALE-Sim files (file, line and field named).
    """
    from accelsim.sim.driver import simulate
    from accelsim.sim.scalesim.bridge import arrays_from_topology, hardware_from_scalesim
    from accelsim.sim.scalesim.io import read_scalesim_config, read_scalesim_topology

    # load_scalesim's design and graph, the graph as its arrays directly (a few layers do not
    # amortise building a Graph and compiling it)
    hw = hardware_from_scalesim(read_scalesim_config(config_path))
    layers = read_scalesim_topology(topology_path)
    return simulate(arrays_from_topology(layers, Path(topology_path).stem), hw)


__all__ = [
    "GraphArrays",
    "HardwareLike",
    "LayerRow",
    "Report",
    "RunResult",
    "Schedule",
    "build_report",
    "compile_graph",
    "map_graph",
    "run",
    "save_trace",
    "simulate",
    "simulate_many",
    "simulate_scalesim",
]
