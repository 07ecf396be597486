"""Published accelerators against their papers: predict each figure a config's ``reference:``
section holds, and how far each of the config's assumptions moves the prediction.

``benchmarks/published.py`` prints the table; the configs are in ``hw_configs/published/`` and the
section's schema in :mod:`accelsim.config.reference`. Lowering a timm model needs torch (imported
only when a graph is not in the cache)::

    from accelsim.published import check_design
    for row in check_design(HardwareConfig.load("published/efficientvit_fpga")):
        print(row.figure.metric, row.predicted, row.ratio, row.most_sensitive)
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelsim.config._base import get_path
from accelsim.config.hardware import HardwareConfig, list_configs
from accelsim.config.reference import Assumption, PublishedFigure
from accelsim.errors import ConfigError
from accelsim.ir import Graph
from accelsim.ir.graph import FORMAT_VERSION
from accelsim.sim import Report, simulate
from accelsim.sim.resources import estimate_resources

#: a prediction within this fraction of a pinned design's figure meets the fidelity goal
GOAL = 0.15
#: power is held to a looser goal, wherever a paper gives it: an estimator's coefficients and
#: toggle rates are averages over designs (UG440), and papers rarely say what their W counts
POWER_GOAL = 0.25
POWER_METRICS = frozenset({"power_w", "gops_per_watt"})


@dataclass(frozen=True)
class Variation:
    """One alternative of one assumption and what it predicts."""

    assumption: Assumption
    values: tuple[Any, ...]
    predicted: float
    fits: bool

    @property
    def label(self) -> str:
        return ", ".join(f"{f}={_short(v)}" for f, v in zip(self.assumption.fields, self.values, strict=True))


@dataclass(frozen=True)
class FigureCheck:
    """A published figure, the config's prediction of it and the assumptions' effect on it."""

    design: str
    figure: PublishedFigure
    pinned: bool
    predicted: float
    report: Report
    variations: tuple[Variation, ...]

    @property
    def ratio(self) -> float:
        """Predicted / published (for a latency, below 1 means the prediction is faster)."""
        return self.predicted / self.figure.value

    @property
    def goal(self) -> float:
        """The fraction this figure is held to: :data:`POWER_GOAL` for power, else :data:`GOAL`."""
        return POWER_GOAL if self.figure.metric in POWER_METRICS else GOAL

    @property
    def meets_goal(self) -> bool | None:
        """Within :attr:`goal` of the figure; None where the paper pins neither the design nor,
        for a power figure, gives it (every power figure is checked)."""
        if not (self.pinned or self.figure.metric in POWER_METRICS):
            return None
        return abs(self.ratio - 1.0) <= self.goal

    @property
    def most_sensitive(self) -> Variation | None:
        """The alternative that moves the prediction furthest (by ratio, either way)."""
        fitting = [v for v in self.variations if v.fits and v.predicted > 0]
        if not fitting:
            return None
        return max(fitting, key=lambda v: abs(math.log(v.predicted / self.predicted)))


def published_designs() -> list[str]:
    """The overlay configs in ``hw_configs/published/`` (names for :meth:`HardwareConfig.load`).
    Dataflow designs (HG-PIPE) are checked against their RTL by ``tests/sim/dataflow`` and
    ``benchmarks/bench_dataflow.py`` instead."""
    names = [n for n in list_configs() if n.startswith("published/")]
    return [n for n in names if HardwareConfig.load(n).dataflow is None]


def figure_graph(figure: PublishedFigure, cache_dir: Path | None = None) -> Graph:
    """The graph a figure is about: the timm model (random weights: timing needs only shapes),
    compressed as the figure says, lowered at its bits; cached as JSON in ``cache_dir``.

    Raises:
        UnknownModelError: not a timm model.
        ConfigError: a bad compression section.
    """
    from accelsim import __version__

    key = json.dumps(
        [figure.model, figure.wbits, figure.abits, figure.compression, __version__, FORMAT_VERSION],
        sort_keys=True,
    )
    path = None
    if cache_dir is not None:
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        path = Path(cache_dir) / f"{figure.model}-{digest}.json"
        if path.is_file():
            return Graph.load(path)
    import timm

    from accelsim.compress import compress
    from accelsim.lower import lower

    model = timm.create_model(figure.model, pretrained=False).eval()
    if figure.compression is not None:
        model = compress(model, figure.compression)
    graph = lower(model, wbits=figure.wbits, abits=figure.abits, name=figure.model)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        graph.save(path)
    return graph


def measure(report: Report, metric: str) -> float:
    """The figure ``metric`` (:data:`accelsim.config.reference.Metric`) of a simulation."""
    if metric == "best_layer_gops":
        # a layer's GOPS over the cycles it held its engine (compute + stalls), as a paper's
        # "up to" figure reads one layer's throughput
        t = report.layer_table
        cycles = t.compute_cycles + t.stall_cycles
        ok = (cycles > 0) & (t.macs > 0)
        if not ok.any():
            return 0.0
        return float((2.0 * t.macs[ok] * report.clock_mhz / cycles[ok] / 1e3).max())
    if metric == "power_w":
        return report.power_w_estimate
    if metric == "gops_per_watt":
        return report.gops_per_watt_estimate
    return float(getattr(report, metric))


def alternatives(hw: HardwareConfig, assumption: Assumption) -> list[tuple[Any, ...]]:
    """The values ``assumption`` could as well have had: its ``vary`` list, or by default half and
    double a number and the other value of a switch (a one-field assumption)."""
    if assumption.vary is not None:
        return [tuple(v) if isinstance(assumption.field, list) else (v,) for v in assumption.vary]
    (dotted,) = assumption.fields
    value = get_path(hw.model_dump(), dotted)
    if isinstance(value, bool):
        return [(not value,)]
    if isinstance(value, int):
        return [(v,) for v in sorted({max(1, value // 2), value * 2})]
    if isinstance(value, float):
        return [(value / 2,), (value * 2,)]
    raise ConfigError(f"reference.assumptions: {dotted!r} is not a number or a switch; give vary")


def check_design(
    hw: HardwareConfig, *, cache_dir: Path | None = None, graphs: dict[str, Graph] | None = None
) -> list[FigureCheck]:
    """Predict every figure of ``hw.reference`` and each assumption's alternatives.

    Args:
        hw: a config with a ``reference:`` section.
        cache_dir: where lowered graphs are kept between runs.
        graphs: graphs already at hand, by figure model name (skips lowering; tests use them).

    Raises:
        ConfigError: ``hw`` has no reference section, or an alternative is not a valid config.
    """
    ref = hw.reference
    if ref is None:
        raise ConfigError(f"{hw.name}: no reference section (a published design has one)")
    if hw.dataflow is not None:
        raise ConfigError(f"{hw.name}: a dataflow design; benchmarks/bench_dataflow.py checks it")
    variants = [
        (a, values, hw.with_changes(**dict(zip(a.fields, values, strict=True))))
        for a in ref.assumptions
        for values in alternatives(hw, a)
    ]
    checks = []
    for fig in ref.figures:
        graph = (graphs or {}).get(fig.model) or figure_graph(fig, cache_dir)
        report = simulate(graph, hw)
        variations = tuple(
            Variation(a, values, measure(simulate(graph, alt), fig.metric), estimate_resources(alt).fits)
            for a, values, alt in variants
        )
        checks.append(FigureCheck(hw.name, fig, ref.pinned, measure(report, fig.metric), report, variations))
    return checks


def _short(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return str(value)


__all__ = [
    "GOAL",
    "POWER_GOAL",
    "POWER_METRICS",
    "FigureCheck",
    "Variation",
    "alternatives",
    "check_design",
    "figure_graph",
    "measure",
]
