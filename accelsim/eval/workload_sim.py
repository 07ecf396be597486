"""``accelsim simulate --workload FILE [--accuracy]``: timing of the compressed model on an
accelerator, plus the accuracy of the simulated hardware next to the fake-quant torch accuracy.

The workload's model is compressed exactly as ``accelsim eval`` does (same calibration data, same
seed), lowered with its weights, and simulated; with ``accuracy`` the lowered graph is executed
bit-true (:mod:`accelsim.eval.bittrue`) on the workload's test split with the accelerator's
arithmetic, and compared image by image with the fake-quant model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from accelsim.config.arithmetic import ArithmeticConfig

if TYPE_CHECKING:  # pragma: no cover
    from accelsim.config.hardware import HardwareConfig
    from accelsim.sim import Report, Schedule


def arithmetic_for(hw: HardwareConfig, base: ArithmeticConfig | None = None) -> ArithmeticConfig:
    """The datapath arithmetic a hardware config implies: its accumulator width
    (``buffers.acc_bits``, at most the 48 the executor emulates exactly) and its linear-attention
    divider (the unit's ``shift`` -> ``log2_shift``, ``true`` -> ``true_divide``; without the unit
    the normaliser runs on the vector unit, which divides: the log2 shift is the dedicated unit's
    saving); everything else from ``base``."""
    base = base or ArithmeticConfig()
    acc = min(hw.buffers.acc_bits, 48)
    upd: dict[str, Any] = {
        "accumulator_bits": acc,
        "requant_mantissa_bits": min(base.requant_mantissa_bits, 63 - acc),
    }
    la = hw.units.linear_attention
    upd["la_divisor"] = "log2_shift" if la is not None and la.divider == "shift" else "true_divide"
    return ArithmeticConfig.model_validate({**base.model_dump(), **upd})


@dataclass
class WorkloadReport:
    """The simulator's :class:`~accelsim.sim.Report` of the workload plus its accuracies.

    ``accuracy`` is bit-true (the simulated hardware), ``accuracy_fake_quant`` the torch
    fake-quant model's, ``top1_agreement`` the fraction of test images on which both predict the
    same class; all None without ``accuracy``.
    """

    workload: str
    report: Report
    schedule: Schedule
    accuracy: float | None = None
    accuracy_fake_quant: float | None = None
    top1_agreement: float | None = None
    max_logit_diff: float | None = None
    p99_logit_diff: float | None = None
    max_abs_logit_fake_quant: float | None = None
    images: int = 0
    arithmetic: dict[str, Any] = field(default_factory=dict)
    overflows: list[dict[str, Any]] = field(default_factory=list)
    bittrue_seconds: float = 0.0

    @property
    def fits(self) -> bool:
        return bool(self.report.fits)

    def to_dict(self) -> dict[str, Any]:
        d = self.report.to_dict()
        d.update(
            workload=self.workload,
            accuracy=self.accuracy,
            accuracy_fake_quant=self.accuracy_fake_quant,
            top1_agreement=self.top1_agreement,
            max_logit_diff=self.max_logit_diff,
            p99_logit_diff=self.p99_logit_diff,
            max_abs_logit_fake_quant=self.max_abs_logit_fake_quant,
            accuracy_images=self.images,
            arithmetic=self.arithmetic,
            overflows=self.overflows,
            bittrue_seconds=self.bittrue_seconds,
        )
        return d

    def table(self) -> str:
        lines = [self.report.table()]
        if self.accuracy is not None:
            lines.append(
                f"accuracy on {self.images} test images: bit-true {100 * self.accuracy:.2f}%   "
                f"fake-quant {100 * (self.accuracy_fake_quant or 0):.2f}%   "
                f"top-1 agreement {100 * (self.top1_agreement or 0):.2f}%   "
                f"|logit diff| p99 {self.p99_logit_diff:.4f} max {self.max_logit_diff:.4f}   "
                f"({self.bittrue_seconds:.1f} s bit-true)"
            )
        return "\n".join(lines)

    def save_csv(self, path: str) -> None:
        self.report.save_csv(path)


def simulate_workload(
    workload_path: str | Path,
    hw: str = "zcu102",
    accuracy: bool = False,
    *,
    arith: ArithmeticConfig | str | Path | None = None,
    batch_size: int = 256,
) -> WorkloadReport:
    """Compress, lower and simulate a workload on ``hw``; with ``accuracy``, also run it bit-true.

    Args:
        workload_path: a workload YAML (model + weights + recipe + dataset).
        hw: an accelerator config name in ``hw_configs/`` or a YAML path.
        accuracy: measure bit-true and fake-quant accuracy on the workload's test split.
        arith: the datapath arithmetic (a config or a YAML path); default: derived from ``hw``
            by :func:`arithmetic_for`.
        batch_size: images per bit-true batch.

    Raises:
        ConfigError: a bad workload, hardware or arithmetic config.
        DataError: a missing checkpoint or dataset.
        AccumulatorOverflowError: an accumulator overflowed (with ``overflow: raise``).
    """
    from accelsim.config.hardware import HardwareConfig
    from accelsim.config.workload import Workload
    from accelsim.eval import compress_workload
    from accelsim.eval.accuracy import predict
    from accelsim.eval.bittrue import BittrueStats, run_bittrue
    from accelsim.lower import lower
    from accelsim.sim import build_report, map_graph, run

    workload = Workload.load(workload_path)
    hw_cfg = HardwareConfig.load(hw)
    if isinstance(arith, str | Path):
        arith = ArithmeticConfig.load(arith)
    arith = arith if arith is not None else arithmetic_for(hw_cfg)
    # the compression step of accelsim.evaluate: the same compressed model (accuracy comes below)
    cw = compress_workload(workload, accuracy=False)
    compressed, test = cw.model, cw.test
    graph = lower(compressed, tuple(cw.example.shape), keep_constants=accuracy, name=workload.name)
    schedule = map_graph(graph, hw_cfg)
    report = build_report(schedule, run(schedule))
    out = WorkloadReport(workload.name, report, schedule, arithmetic=arith.model_dump())
    if not accuracy:
        return out
    logits_fq, labels = predict(compressed, test)
    images = np.concatenate([x.numpy() for x, _ in test])
    stats = BittrueStats()
    t0 = time.perf_counter()
    logits_bt = run_bittrue(graph, images, arith, batch_size, stats=stats)
    out.bittrue_seconds = round(time.perf_counter() - t0, 3)
    y = labels.numpy()
    fq = logits_fq.numpy()
    out.images = int(y.size)
    out.accuracy = float((logits_bt.argmax(1) == y).mean())
    out.accuracy_fake_quant = float((fq.argmax(1) == y).mean())
    out.top1_agreement = float((logits_bt.argmax(1) == fq.argmax(1)).mean())
    diff = np.abs(logits_bt - fq)
    out.max_logit_diff = float(diff.max())
    out.p99_logit_diff = float(np.quantile(diff, 0.99))
    out.max_abs_logit_fake_quant = float(np.abs(fq).max())
    out.overflows = [vars(e) for e in stats.overflows]
    return out


__all__ = ["WorkloadReport", "arithmetic_for", "simulate_workload"]
