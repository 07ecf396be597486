"""What one trial evaluates, and the adapters to the rest of accelsim (the one place that knows them).

A trial is a compression point plus a sweep of hardware points. The work splits in two tasks, so an
executor can run each in parallel and the expensive one is done once per compression point:

1. :func:`compress_task`: compress the model with the trial's recipe, measure its accuracy and lower
   it to a :class:`~accelsim.ir.Graph` (a :class:`CompressedPoint`, cached by recipe);
2. :func:`simulate_task`: simulate that Graph on every hardware point of the trial.

:func:`summarise` turns the design points into the trial's objective values and constraint
violation. A :class:`DesignEvaluator` does the actual compressing and simulating:
:class:`WorkloadEvaluator` for a real workload, and
:class:`accelsim.testing.SyntheticEvaluator` (analytic, no torch) for tests and benchmarks.
Nothing here imports optuna or ray.
"""

from __future__ import annotations

import copy
import hashlib
import math
import operator
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from accelsim._gc import collector_paused
from accelsim.config.compression import CompressionRecipe
from accelsim.config.dataflow import FamilyChoice
from accelsim.config.search import METRIC_DIRECTIONS, SearchSpace, TimingModel
from accelsim.config.workload import Workload
from accelsim.errors import AccelsimError
from accelsim.ir import Graph

if TYPE_CHECKING:
    from accelsim.config.hardware import HardwareConfig
    from accelsim.sim import GraphArrays

#: Metrics of a compression point, shared by all its hardware points: top-1 and the fidelity to the
#: uncompressed model (:class:`accelsim.eval.fidelity.Fidelity`).
COMPRESSION_METRICS: tuple[str, ...] = ("accuracy", "kl_div", "agreement", "sqnr_db")
#: Metrics a hardware simulation yields: every other metric of the space (:data:`METRIC_DIRECTIONS`).
HW_METRICS: tuple[str, ...] = tuple(m for m in METRIC_DIRECTIONS if m not in COMPRESSION_METRICS)
#: The report field behind a metric, where the names differ (the power figures are labelled
#: estimates in the report).
_REPORT_FIELDS = {
    "energy_mj": "energy_mj_estimate",
    "power_w": "power_w_estimate",
    "gops_per_watt": "gops_per_watt_estimate",
}
#: Every metric recorded per design point, in table order.
DESIGN_METRICS: tuple[str, ...] = (*COMPRESSION_METRICS, *HW_METRICS)


@dataclass(frozen=True)
class CompressedPoint:
    """A compression point after compress -> evaluate -> lower: what all its hardware points share."""

    accuracy: float
    graph: Graph
    info: dict[str, float] = field(default_factory=dict)  # e.g. macs, params of the compressed model
    #: ``kl_div``, ``agreement``, ``sqnr_db`` against the uncompressed model (a metric left out is
    #: NaN in the design table and the worst value for an objective)
    fidelity: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "fidelity": self.fidelity,
            "info": self.info,
            "graph": self.graph.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompressedPoint:
        # "fidelity" is required: a cache entry written before it existed is a miss, not NaN metrics
        return cls(
            float(data["accuracy"]),
            Graph.from_dict(data["graph"]),
            dict(data.get("info") or {}),
            {k: float(v) for k, v in data["fidelity"].items()},
        )


@dataclass(frozen=True)
class HardwareResult:
    """One simulation: the :data:`HW_METRICS`, and whether the design fits its board (else why not)."""

    metrics: dict[str, float]
    fits: bool
    overflow: str = ""


@dataclass(frozen=True)
class TaskError:
    """An :class:`~accelsim.errors.AccelsimError` raised inside a task, returned as a value.

    Tasks may run in another process (Ray); returning user errors keeps them apart from bugs,
    which propagate.
    """

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@runtime_checkable
class DesignEvaluator(Protocol):
    """Compresses/evaluates/lowers compression points and simulates hardware points.

    Implementations must pickle (Ray ships them to workers) and keep heavy state (a loaded model)
    out of the pickle, rebuilding it lazily in each process.
    """

    def identity(self) -> dict[str, Any]:
        """What, besides the recipe, determines a compression point's result (the cache key)."""
        ...

    def base_hardware(self) -> dict[str, Any]:
        """The base accelerator config as a plain dict; hardware knobs are dotted paths into it."""
        ...

    def check_hardware(self, config: Mapping[str, Any]) -> None:
        """Validate one hardware config dict; raise :class:`ConfigError` naming the bad field."""
        ...

    def compress(self, recipe: CompressionRecipe) -> CompressedPoint:
        """Compress the workload's model with ``recipe``, measure its accuracy, lower it."""
        ...

    def simulate(self, graph: Graph, configs: Sequence[Mapping[str, Any]]) -> list[HardwareResult]:
        """Simulate ``graph`` on every hardware config (a config that fails validation does not fit)."""
        ...


# -- tasks (module level so that executors can ship them) ----------------------------------------
def compress_task(evaluator: DesignEvaluator, recipe: CompressionRecipe) -> CompressedPoint | TaskError:
    """Run :meth:`DesignEvaluator.compress`, returning a user error as a :class:`TaskError`."""
    try:
        return evaluator.compress(recipe)
    except AccelsimError as e:
        return TaskError(type(e).__name__, str(e))


def simulate_task(
    evaluator: DesignEvaluator, graph: Graph, configs: Sequence[Mapping[str, Any]]
) -> list[HardwareResult] | TaskError:
    """Run :meth:`DesignEvaluator.simulate`, returning a user error as a :class:`TaskError`."""
    try:
        return evaluator.simulate(graph, configs)
    except AccelsimError as e:
        return TaskError(type(e).__name__, str(e))


# -- summarising a trial ------------------------------------------------------------------------
@dataclass(frozen=True)
class TrialOutcome:
    """The design points of one trial (columnar, JSON-ready) and what the optimizer is told."""

    designs: dict[str, Any]
    values: list[float]
    violation: float


#: The value told for an objective no design point produced (e.g. every hardware config invalid):
#: finite (Optuna fails a trial told NaN) and as bad as can be.
_WORST = {"maximize": 0.0, "minimize": 1e30}


def design_violation(space: SearchSpace, metrics: Mapping[str, float], fits: bool) -> float:
    """0 for a feasible design point; else 1 for not fitting the board plus each bound's relative miss."""
    v = 0.0 if fits else 1.0
    for name, bound in space.constraints.items():
        value = metrics.get(name, math.nan)
        v += bound.violation(value) if math.isfinite(value) else 1.0
    return v


def summarise(
    space: SearchSpace,
    point: CompressedPoint,
    hw_points: Sequence[Mapping[str, Any]],
    results: Sequence[HardwareResult],
) -> TrialOutcome:
    """Objective values and constraint violation of a trial from its hardware sweep.

    A trial's value for each objective is the best that objective reaches over the trial's
    *feasible* design points (each objective may take a different hardware point: the trial stands
    for the compression point, which is as good as the best hardware built for it). Its violation
    is the smallest violation of any design point, so a trial is feasible when at least one of its
    design points is. With no feasible design point, the values are the best over all of them, and
    NSGA-II ranks the trial behind every feasible one (Deb's constrained domination).
    """
    names = list(space.hardware.knobs)
    metrics_rows: list[list[float]] = []
    violations: list[float] = []
    for r in results:
        m = {"accuracy": point.accuracy, **point.fidelity, **r.metrics}
        metrics_rows.append([float(m.get(k, math.nan)) for k in DESIGN_METRICS])
        violations.append(design_violation(space, m, r.fits))
    designs = {
        "knobs": names,
        "hardware": [[p[n] for n in names] for p in hw_points],
        "metrics": list(DESIGN_METRICS),
        "values": metrics_rows,
        "fits": [r.fits for r in results],
        "overflow": [r.overflow for r in results],
        "violation": violations,
    }
    feasible = [i for i, v in enumerate(violations) if v <= 0.0]
    pool = feasible or list(range(len(results)))
    values: list[float] = []
    for obj in space.objectives:
        col = DESIGN_METRICS.index(obj)
        direction = METRIC_DIRECTIONS[obj]
        finite = [metrics_rows[i][col] for i in pool if math.isfinite(metrics_rows[i][col])]
        if not finite:
            values.append(_WORST[direction])
        else:
            values.append(max(finite) if direction == "maximize" else min(finite))
    violation = min(violations) if violations else 1.0
    return TrialOutcome(designs=designs, values=values, violation=violation)


# -- the adapter to the real workload ---------------------------------------------------------
#: The report's values of :data:`HW_METRICS`, as a tuple.
_hw_metric_values = operator.attrgetter(*(_REPORT_FIELDS.get(k, k) for k in HW_METRICS))


def _report_result(report: Any) -> HardwareResult:
    metrics = dict(zip(HW_METRICS, map(float, _hw_metric_values(report)), strict=False))  # one length
    if report.fits:
        return HardwareResult(metrics, True)
    overflow = report.overflow
    text = "; ".join(map(str, overflow)) if isinstance(overflow, list | tuple) else str(overflow or "")
    return HardwareResult(metrics, False, text)


def _unfit(reason: str) -> HardwareResult:
    return HardwareResult(metrics={k: math.nan for k in HW_METRICS}, fits=False, overflow=reason)


def accelsim_base_hardware(name_or_path: str) -> dict[str, Any]:
    """An accelerator config (name in ``hw_configs/`` or YAML path) as a plain dict: the fields its
    YAML sets, each knob's path among them or not.

    A field left to its default stays out: a default that follows the board (``packing`` from its
    DSP primitive, ``dram`` from its memory) must follow a ``board`` knob too, not keep the base
    board's value (a DSP58 board with the DSP48E2's INT8 packing).
    """
    from accelsim.config.hardware import HardwareConfig

    return HardwareConfig.load(name_or_path).model_dump(mode="json", exclude_unset=True)


def accelsim_check_hardware(config: Mapping[str, Any]) -> None:
    """Validate a hardware config dict as a ``HardwareConfig`` (one-line :class:`ConfigError`);
    its ``family`` section, if any, as :class:`~accelsim.config.dataflow.FamilyChoice`."""
    from accelsim.config._base import validate_config
    from accelsim.config.hardware import HardwareConfig
    from accelsim.search.families import split

    validate_config(HardwareConfig, split(config)[1], "hardware point")


#: Hardware config sections whose validated value depends on nothing else in the config.
_SELF_CONTAINED = ("board", "array", "packing", "buffers", "dram", "units", "epilogue")


def accelsim_simulate(graph: Graph, configs: Sequence[Mapping[str, Any]]) -> list[HardwareResult]:
    """``accelsim.sim.simulate_many`` over the configs that validate; the others do not fit.

    The graph is flattened once for the whole sweep; a config the simulator rejects (e.g. no
    packing entry for the graph's bit widths) is a design point that does not fit, with the reason.
    Points with a ``family`` section go through :func:`accelsim.search.families.simulate_points`
    (dataflow points allocated there, the rest back here).
    """
    from accelsim.search.families import FAMILY, simulate_points

    if any(FAMILY in c for c in configs):
        return simulate_points(graph, configs, accelsim_simulate)
    from accelsim.sim import compile_graph

    ga = compile_graph(graph)
    with collector_paused():
        return _simulate_points(ga, configs)


def _simulate_points(ga: GraphArrays, configs: Sequence[Mapping[str, Any]]) -> list[HardwareResult]:
    """:func:`accelsim_simulate` on the flattened graph, points without a ``family`` section."""
    from accelsim.sim import Report, simulate, simulate_many

    out: list[HardwareResult | None] = [None] * len(configs)
    valid = validate_points(configs, out)
    reports: list[Report | None]
    try:
        reports = list(simulate_many(ga, [hw for _, hw in valid]))
    except AccelsimError:
        # one point the simulator rejects would sink the whole batch: find it point by point
        reports = []
        for i, hw in valid:
            try:
                reports.append(simulate(ga, hw))
            except AccelsimError as e:
                out[i] = _unfit(f"{type(e).__name__}: {e}")
                reports.append(None)
    for (i, _), report in zip(valid, reports, strict=True):
        if report is not None:
            out[i] = _report_result(report)
    return [r for r in out if r is not None]


def validate_points(
    configs: Sequence[Mapping[str, Any]], unfit: list[HardwareResult | None] | None = None
) -> list[tuple[int, HardwareConfig]]:
    """Each config that validates as a :class:`~accelsim.config.hardware.HardwareConfig`, with its
    index; the reason each other one does not, in ``unfit`` (at its index), if given.

    Knobs copy only the sections they set, and a sweep's points share a section whose knobs have
    the same values (:func:`~accelsim.search.space.apply_knobs_many`): a section object shared by
    several points is validated once and its model reused (a model is taken as it is, so
    validating a point costs its new sections), and the points' configs share it too. Only
    sections that validate alone: an empty ``packing`` takes its board's default, so it is
    validated with each point.
    """
    from accelsim.config._base import validate_config
    from accelsim.config.hardware import HardwareConfig

    valid: list[tuple[int, HardwareConfig]] = []
    seen: dict[str, dict[int, Any]] = {name: {} for name in _SELF_CONTAINED}
    for i, cfg in enumerate(configs):
        data = dict(cfg)
        new: list[tuple[str, int]] = []
        for name, models in seen.items():
            part = data.get(name)
            if part:
                model = models.get(id(part))
                if model is not None:
                    data[name] = model
                elif isinstance(part, dict | list):
                    new.append((name, id(part)))
        try:
            hw = validate_config(HardwareConfig, data, "hardware point")
        except AccelsimError as e:
            if unfit is not None:
                unfit[i] = _unfit(f"{type(e).__name__}: {e}")
            continue
        valid.append((i, hw))
        for name, key in new:
            seen[name][key] = getattr(hw, name)
    return valid


#: Per-process cache of loaded workloads (model, data splits), keyed by the workload's JSON: a Ray
#: worker loads its model once, not once per task, and the evaluator itself stays small to pickle.
_ASSETS: dict[str, tuple[Any, Any]] = {}


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


class WorkloadEvaluator:
    """A real workload: ``accelsim.compress`` -> accuracy on the workload's test split ->
    ``accelsim.lower.lower_compressed`` (the workload pipeline's lowering, :mod:`accelsim.pipeline`),
    then ``accelsim.simulate`` on each hardware point.

    Compression and accuracy are :func:`accelsim.eval.compress_workload`, the step
    :func:`accelsim.eval.evaluate` runs, so a design point's accuracy is the one ``accelsim eval``
    reports for the same recipe.

    With ``timing``, the graph each hardware point simulates is the deployed architecture instead,
    compressed with the same structural recipe (:func:`accelsim.pipeline.timing_graph`), while
    accuracy still comes from the workload.

    Args:
        workload: a Workload YAML path or a :class:`~accelsim.config.workload.Workload` (its own
            recipe is ignored: the search supplies one per trial).
        hw_base: accelerator config name in ``hw_configs/`` or a YAML path.
        timing: the architecture to time (None: the workload's model).
        family: search both families (:mod:`accelsim.search.families`): the base config's
            ``family`` section (None: the overlay alone).
    """

    def __init__(
        self,
        workload: str | Workload,
        hw_base: str,
        timing: TimingModel | None = None,
        family: FamilyChoice | None = None,
    ) -> None:
        self._workload = workload if isinstance(workload, Workload) else Workload.load(workload)
        self._hw_base = hw_base
        self._family = family
        self._timing = timing
        self._base_hw: dict[str, Any] | None = None
        self._identity: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            data = self._workload.model_dump(mode="json")
            for key in ("recipe", "name"):
                data.pop(key, None)
            ckpt = self._workload.checkpoint
            # a retrained checkpoint must not hit the cache of the old one
            data["checkpoint_sha256"] = _file_digest(ckpt) if ckpt and Path(ckpt).is_file() else None
            data["timing"] = self._timing.model_dump(mode="json") if self._timing else None
            self._identity = data
        return dict(self._identity)

    def base_hardware(self) -> dict[str, Any]:
        if self._base_hw is None:
            self._base_hw = accelsim_base_hardware(self._hw_base)
            if self._family is not None:
                self._base_hw["family"] = self._family.model_dump(mode="json")
        return copy.deepcopy(self._base_hw)

    def check_hardware(self, config: Mapping[str, Any]) -> None:
        accelsim_check_hardware(config)

    def _assets(self) -> tuple[Any, Any]:
        from accelsim.eval import load_data, load_model

        key = self._workload.model_dump_json()
        if key not in _ASSETS:
            model = load_model(self._workload)
            _ASSETS[key] = (model, load_data(self._workload, model))
        return _ASSETS[key]

    def compress(self, recipe: CompressionRecipe) -> CompressedPoint:
        from accelsim.eval import compress_workload
        from accelsim.eval.accuracy import count_params
        from accelsim.lower import lower_compressed

        model, data = self._assets()
        cw = compress_workload(self._workload, recipe=recipe, model=model, data=data)
        acc, fid = cw.accuracy, cw.fidelity
        assert acc is not None and fid is not None  # measured: accuracy=True
        t2 = time.perf_counter()
        if self._timing is None:
            graph = lower_compressed(cw.model, recipe, tuple(cw.example.shape))
        else:
            from accelsim.pipeline import timing_graph

            graph = timing_graph(self._timing, recipe)
        t3 = time.perf_counter()
        info = {
            "top5": float(acc.top5),
            "macs": float(graph.total_macs),
            "params": float(count_params(cw.model)),
            "compress_s": cw.compress_seconds,
            "eval_s": cw.eval_seconds,
            "lower_s": round(t3 - t2, 3),
        }
        return CompressedPoint(accuracy=float(acc.top1), graph=graph, info=info, fidelity=fid.metrics())

    def simulate(self, graph: Graph, configs: Sequence[Mapping[str, Any]]) -> list[HardwareResult]:
        return accelsim_simulate(graph, configs)


def make_evaluator(space: SearchSpace) -> DesignEvaluator:
    """The evaluator of a space's workload."""
    return WorkloadEvaluator(space.workload, space.hardware.base, space.timing, space.hardware.family)


__all__ = [
    "COMPRESSION_METRICS",
    "DESIGN_METRICS",
    "HW_METRICS",
    "CompressedPoint",
    "DesignEvaluator",
    "HardwareResult",
    "TaskError",
    "TrialOutcome",
    "WorkloadEvaluator",
    "compress_task",
    "design_violation",
    "make_evaluator",
    "simulate_task",
    "summarise",
]
