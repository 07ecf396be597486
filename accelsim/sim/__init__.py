"""The cycle-level simulator: map a Graph onto an accelerator, run its tiles, report.

``simulate(graph, hw) -> Report`` for one design point, ``simulate_many(graph, hws)`` for a sweep
(the graph is flattened once), ``simulate_scalesim(cfg, topology)`` for SCALE-Sim inputs.
No torch on this path: a saved graph simulates without it.
"""

from __future__ import annotations

from pathlib import Path

from accelsim.sim.engine import simulate, simulate_many
from accelsim.sim.graph_arrays import GraphArrays, compile_graph
from accelsim.sim.report import LayerRow, Report


def simulate_scalesim(config_path: str | Path, topology_path: str | Path) -> Report:
    """Simulate a SCALE-Sim config (``.cfg``) and topology (``.csv``) as an accelsim design.

    Raises:
        ConfigError: malformed SCALE-Sim files (file, line and field named).
    """
    from accelsim.sim.scalesim_bridge import load_scalesim

    hw, graph = load_scalesim(config_path, topology_path)
    return simulate(graph, hw)


__all__ = [
    "GraphArrays",
    "LayerRow",
    "Report",
    "compile_graph",
    "simulate",
    "simulate_many",
    "simulate_scalesim",
]
