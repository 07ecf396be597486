"""The workload pipeline: compress -> lower -> simulate (-> bit-true) of a workload, in one place.

``accelsim simulate --workload FILE [--accuracy]`` and :class:`~accelsim.search.objective.WorkloadEvaluator`
run a workload through the same three steps: :func:`accelsim.eval.compress_workload` (the compressed
model, with the same calibration data and seed as ``accelsim eval``),
:func:`accelsim.lower.lower_compressed` (the one rule for the bits of uncovered tensors) and the
simulator; with ``accuracy`` the lowered graph also runs bit-true with the accelerator's arithmetic
(:func:`accelsim.eval.compare_bittrue`). Latency-aware pruning lowers its candidates the same way
(:func:`accelsim.compress.prune.simulator_latency_fn`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from accelsim.config.arithmetic import ArithmeticConfig
    from accelsim.config.compression import CompressionRecipe
    from accelsim.config.hardware import HardwareConfig
    from accelsim.config.search import TimingModel
    from accelsim.eval import BittrueComparison
    from accelsim.ir import Graph
    from accelsim.sim import Report, Schedule


@dataclass
class WorkloadReport:
    """The simulator's :class:`~accelsim.sim.Report` of a workload, the schedule it came from (for
    the trace) and, with ``accuracy``, the bit-true comparison."""

    workload: str
    report: Report
    schedule: Schedule
    bittrue: BittrueComparison | None = None

    @property
    def fits(self) -> bool:
        return bool(self.report.fits)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = self.report.to_dict()
        d["workload"] = self.workload
        d["bittrue"] = asdict(self.bittrue) if self.bittrue is not None else None
        return d

    def table(self) -> str:
        lines = [self.report.table()]
        if self.bittrue is not None:
            lines.append(f"accuracy bit-true {self.bittrue.summary()}")
            if more := self.bittrue.details():
                lines.append(more)
        return "\n".join(lines)

    def save_csv(self, path: str) -> None:
        self.report.save_csv(path)

    def save_sqnr_csv(self, path: str) -> None:
        """The bit-true per-layer SQNR table (needs ``accuracy``)."""
        from accelsim.errors import AccelsimError

        if self.bittrue is None:
            raise AccelsimError("the per-layer SQNR table needs the bit-true run (--accuracy)")
        self.bittrue.save_sqnr_csv(path)


def simulate_workload(
    workload_path: str | Path,
    hw: str | HardwareConfig = "zcu102",
    accuracy: bool = False,
    *,
    arith: ArithmeticConfig | str | Path | None = None,
    batch_size: int = 256,
) -> WorkloadReport:
    """Compress, lower and simulate a workload on ``hw``; with ``accuracy``, also run it bit-true.

    Args:
        workload_path: a workload YAML (model + weights + recipe + dataset).
        hw: an accelerator config, its name in ``hw_configs/`` or a YAML path.
        accuracy: measure bit-true and fake-quant accuracy on the workload's test split.
        arith: the datapath arithmetic (a config or a YAML path); default: derived from ``hw``
            by :func:`accelsim.config.arithmetic.arithmetic_for`.
        batch_size: images per bit-true batch.

    Raises:
        ConfigError: a bad workload, hardware or arithmetic config.
        DataError: a missing checkpoint or dataset.
        AccumulatorOverflowError: an accumulator overflowed (with ``overflow: raise``).
    """
    from accelsim.config.arithmetic import ArithmeticConfig, arithmetic_for
    from accelsim.config.hardware import HardwareConfig
    from accelsim.config.workload import Workload
    from accelsim.eval import compare_bittrue, compress_workload
    from accelsim.lower import lower_compressed
    from accelsim.sim import build_report, map_graph, run

    workload = Workload.load(workload_path)
    hw_cfg = hw if isinstance(hw, HardwareConfig) else HardwareConfig.load(hw)
    if isinstance(arith, str | Path):
        arith = ArithmeticConfig.load(arith)
    arith = arith if arith is not None else arithmetic_for(hw_cfg)
    # the FP32 logits only for the bit-true comparison: the timing alone needs neither
    cw = compress_workload(workload, accuracy=False, reference=accuracy)
    graph = lower_compressed(
        cw.model, cw.recipe, tuple(cw.example.shape), keep_constants=accuracy, name=workload.name
    )
    schedule = map_graph(graph, hw_cfg)
    out = WorkloadReport(workload.name, build_report(schedule, run(schedule)), schedule)
    if accuracy:
        out.bittrue = compare_bittrue(cw, graph, arith, batch_size)
    return out


def timing_graph(timing: TimingModel, recipe: CompressionRecipe, *, seed: int = 0) -> Graph:
    """The deployed architecture ``timing.model`` compressed as ``recipe`` says, lowered: what a
    search times when its accuracy comes from a proxy workload (:class:`~accelsim.config.search.TimingModel`).

    The model has random weights (seeded): the shapes, which are all timing needs, follow from the
    recipe's ratios alone. Pruning ranks by magnitude on those weights (a gradient saliency is
    replaced by magnitude: the kept counts are the same, only which units differ; latency-aware
    pruning's per-layer split is not searched again), calibration
    sees random images of the model's input size, and the training steps (distillation, QAT) are
    dropped: they leave the shapes as they are.

    Raises:
        ConfigError: the recipe grows the model (it would no longer be ``timing.model``).
        UnknownModelError: ``timing.model`` is not a timm model.
    """
    import torch

    from accelsim.compress import compress
    from accelsim.errors import ConfigError
    from accelsim.lower import lower_compressed
    from accelsim.models import create_timm_model

    if recipe.grow is not None:
        raise ConfigError(f"timing: recipe.grow changes the architecture; {timing.model!r} is fixed")
    kwargs: dict[str, Any] = {} if timing.num_classes is None else {"num_classes": timing.num_classes}
    torch.manual_seed(seed)
    model = create_timm_model(timing.model, timing.img_size, where="timing.img_size", **kwargs)
    cfg: dict[str, Any] = getattr(model, "pretrained_cfg", None) or {}
    c, h, w = cfg.get("input_size", (3, 224, 224))
    if timing.img_size is not None:
        h = w = timing.img_size
    structural = recipe.model_copy(
        update={
            "distill": None,
            "quant": recipe.quant.model_copy(update={"qat": None}) if recipe.quant else None,
            "prune": recipe.prune.model_copy(update={"saliency": "magnitude", "latency_aware": False})
            if recipe.prune
            else None,
        }
    )
    g = torch.Generator().manual_seed(seed)
    calib = [(torch.randn(2, c, h, w, generator=g), torch.zeros(2, dtype=torch.long))]
    compressed = compress(model, structural, calib_data=calib)
    return lower_compressed(compressed, structural, (1, c, h, w), name=timing.model)


__all__ = ["WorkloadReport", "simulate_workload", "timing_graph"]
