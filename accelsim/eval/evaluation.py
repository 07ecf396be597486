"""Evaluating a workload: compress its model, measure top-1/top-5, MACs and parameters, the fidelity
against the uncompressed model (:mod:`accelsim.eval.fidelity`) and, on request, the bit-true
accuracy of the lowered graph. Loading the model and data is :mod:`accelsim.eval.loading`'s.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accelsim.config.compression import CompressionRecipe
from accelsim.config.workload import Workload
from accelsim.eval.loading import load_data, load_model, load_teacher

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    from accelsim.config.arithmetic import ArithmeticConfig
    from accelsim.eval.accuracy import Accuracy
    from accelsim.eval.bittrue.layers import LayerSqnr
    from accelsim.eval.datasets import DataSplits
    from accelsim.eval.fidelity import Fidelity
    from accelsim.ir import Graph


@dataclass(frozen=True)
class EvalResult:
    """What ``accelsim eval`` reports. Accuracies are fractions in [0, 1]."""

    workload: str
    model: str
    accuracy: float
    top5: float
    correct: int
    images: int
    macs: int
    macs_source: str  # "graph" (accelsim.lower), "torch" (FlopCounterMode) or "skipped"
    params: int
    dataset: str
    recipe: dict[str, Any] = field(default_factory=dict)
    compress_seconds: float = 0.0
    eval_seconds: float = 0.0
    fidelity: Fidelity | None = None  # the compressed model's logits against the FP32 model's
    bittrue: BittrueComparison | None = None  # with ``evaluate(..., bittrue=...)``
    teacher: str = ""  # what a distilling recipe learnt from ("" without distillation)
    recipe_text: str = ""  # the recipe as written (fields left at their defaults omitted)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """A short terminal table."""
        rows = [
            ("workload", self.workload),
            ("model", self.model),
            ("dataset", self.dataset),
            ("recipe", self.recipe_text or recipe_summary(self.recipe)),
            ("teacher", self.teacher or "none (no distillation)"),
            ("top-1", f"{100 * self.accuracy:.2f}%  ({self.correct}/{self.images})"),
            ("top-5", f"{100 * self.top5:.2f}%"),
            *([("vs FP32", self.fidelity.summary())] if self.fidelity is not None else []),
            ("MACs", f"{self.macs / 1e6:.3f} M  (from {self.macs_source})"),
            ("params", f"{self.params / 1e6:.3f} M"),
            ("time", f"compress {self.compress_seconds:.1f} s, eval {self.eval_seconds:.1f} s"),
        ]
        if self.bittrue is not None:
            rows.append(("bit-true", self.bittrue.summary()))
        width = max(len(k) for k, _ in rows)
        text = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
        if self.bittrue is not None and (more := self.bittrue.details()):
            text += "\n" + more
        return text


#: FP32 logits of each workload's test split (see :func:`reference_logits`), by workload identity.
_REFERENCE: dict[str, np.ndarray] = {}


def recipe_summary(recipe: dict[str, Any]) -> str:
    """One line for a recipe dict: ``quant(wbits=4, abits=4, calibrator=minmax); prune(...)``."""

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v)

    parts = []
    for section, body in recipe.items():
        if isinstance(body, dict):
            parts.append(f"{section}(" + ", ".join(f"{k}={value(v)}" for k, v in body.items()) + ")")
        else:
            parts.append(f"{section}={value(body)}")
    return "; ".join(parts) or "none (the uncompressed model)"


def teacher_summary(workload: Workload, recipe: CompressionRecipe) -> str:
    """What a distilling ``recipe`` learns from in ``workload`` ("" when it does not distil)."""
    if recipe.distill is None:
        return ""
    t = workload.teacher
    if t is None:
        return f"{workload.model} uncompressed (self-distillation)"
    weights = "pretrained" if t.pretrained else (t.checkpoint or "random weights")
    return f"{t.model} ({weights})"


def _reference_key(workload: Workload) -> str:
    """What determines the uncompressed model's test logits: the workload without its recipe and
    name, and the checkpoint file's size and time (a retrained checkpoint is another reference)."""
    data = workload.model_dump(mode="json")
    for key in ("recipe", "name"):
        data.pop(key, None)
    ckpt = workload.checkpoint
    if ckpt is not None and Path(ckpt).is_file():
        st = Path(ckpt).stat()
        data["checkpoint_stamp"] = [st.st_size, st.st_mtime_ns]
    return json.dumps(data, sort_keys=True, default=str)


def reference_logits(workload: Workload, model: nn.Module, test: DataLoader[Any]) -> np.ndarray:
    """The uncompressed ``model``'s logits on the ``test`` loader, computed once per workload.

    Every compression point of a search is compared with the same FP32 outputs, so they are cached
    in the process by workload identity (``model`` must be the workload's uncompressed model, as
    :func:`compress_workload` requires). The global torch RNG is left as it was, so a cache hit and a
    miss leave the same state for what runs next.
    """
    key = _reference_key(workload)
    hit = _REFERENCE.get(key)
    if hit is None:
        import torch

        from accelsim.eval.accuracy import predict

        with torch.random.fork_rng(devices=[]):
            hit = predict(model, test)[0].numpy()
        _REFERENCE[key] = hit
    return hit


@dataclass(frozen=True)
class CompressedWorkload:
    """A workload's model after :func:`compress_workload`: what ``accelsim eval``, ``accelsim simulate
    --workload`` and the search's :class:`~accelsim.search.objective.WorkloadEvaluator` share."""

    model: nn.Module  # the compressed model (eval mode)
    data: DataSplits
    test: DataLoader[Any]  # the test split at the workload's batch size, unshuffled
    example: torch.Tensor  # the first test image, batch of 1: the input shape to count or lower
    recipe: CompressionRecipe
    accuracy: Accuracy | None = None  # on ``test``; None when not measured
    compress_seconds: float = 0.0
    eval_seconds: float = 0.0
    reference: np.ndarray | None = None  # the FP32 model's logits on ``test`` (:func:`reference_logits`)
    logits: np.ndarray | None = None  # the compressed model's logits on ``test`` (with ``accuracy``)
    fidelity: Fidelity | None = None  # ``logits`` against ``reference`` (with ``accuracy``)


def compress_workload(
    workload: Workload,
    *,
    recipe: CompressionRecipe | None = None,
    model: nn.Module | None = None,
    data: DataSplits | None = None,
    accuracy: bool = True,
    reference: bool | None = None,
) -> CompressedWorkload:
    """Compress the workload's model (calibrating on the train split) and measure it on the test split.

    The one definition of "the compressed model of a workload": calibration on the unshuffled train
    split, fine-tuning/distillation on the seeded shuffled one, the workload's batch size and a
    seeded torch RNG, so every caller gets the same model for the same recipe.

    Args:
        workload: the workload.
        recipe: overrides the workload's recipe (the search varies it).
        model: the uncompressed model, if already loaded (not modified).
        data: the splits, if already loaded.
        accuracy: measure top-1/top-5 on the test split and the fidelity to the FP32 model
            (else ``accuracy``, ``logits`` and ``fidelity`` are None).
        reference: get the FP32 model's test logits (default: when ``accuracy``); the bit-true
            comparison needs them without the fake-quant accuracy.
    """
    import torch

    from accelsim.compress import compress
    from accelsim.eval.accuracy import predict, topk_correct
    from accelsim.eval.fidelity import fidelity

    recipe = recipe if recipe is not None else workload.compression
    if model is None:
        model = load_model(workload)
    if data is None:
        data = load_data(workload, model)
    bs = workload.dataset.batch_size
    calib, test = data.loaders(bs)
    train, _ = data.loaders(bs, shuffle_train=True)

    teacher = load_teacher(workload) if recipe.distill is not None else None
    t0 = time.perf_counter()
    torch.manual_seed(0)  # distillation/QAT/saliency draws: same recipe, same model
    compressed = compress(
        model, recipe, calib_data=calib, teacher=teacher if teacher is not None else model, train_data=train
    )
    t1 = time.perf_counter()
    # Iterating a DataLoader draws from the global torch RNG: keep the order (accuracy, then the
    # example) so that what runs next sees the same RNG state whatever the caller.
    acc, logits, fid = None, None, None
    ref = reference_logits(workload, model, test) if (accuracy if reference is None else reference) else None
    if accuracy:
        out, labels = predict(compressed, test)
        acc = topk_correct(out, labels)
        logits = out.numpy()
        assert ref is not None
        fid = fidelity(ref, logits)
    t2 = time.perf_counter()
    example = next(iter(test))[0][:1]
    return CompressedWorkload(
        model=compressed,
        data=data,
        test=test,
        example=example,
        recipe=recipe,
        accuracy=acc,
        compress_seconds=round(t1 - t0, 3),
        eval_seconds=round(t2 - t1, 3),
        reference=ref,
        logits=logits,
        fidelity=fid,
    )


@dataclass
class BittrueComparison:
    """The bit-true executor's logits next to the fake-quant model's and the FP32 model's, image by image.

    ``accuracy`` is the accuracy of the simulated hardware (the lowered graph run with the
    accelerator's integer arithmetic); ``accuracy_fake_quant`` the torch fake-quant model's;
    ``top1_agreement`` the fraction of images on which both predict the same class. ``vs_fp32`` is
    the bit-true logits' fidelity to the uncompressed model (``fake_quant_vs_fp32`` the fake-quant
    model's), ``layers`` the per-op SQNR against the same graph run in float32
    (:mod:`accelsim.eval.bittrue.layers`; ``layer_reference`` says so in the JSON).
    """

    accuracy: float
    accuracy_fake_quant: float
    top1_agreement: float
    max_logit_diff: float
    p99_logit_diff: float
    max_abs_logit_fake_quant: float
    images: int
    arithmetic: dict[str, Any] = field(default_factory=dict)
    overflows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    vs_fp32: Fidelity | None = None
    fake_quant_vs_fp32: Fidelity | None = None
    layer_reference: str = ""
    layers: list[LayerSqnr] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{100 * self.accuracy:.2f}% on {self.images} images (fake-quant {100 * self.accuracy_fake_quant:.2f}%, "
            f"top-1 agreement {100 * self.top1_agreement:.2f}%, |logit diff| p99 {self.p99_logit_diff:.4f} "
            f"max {self.max_logit_diff:.4f}; {self.seconds:.1f} s)"
        )

    def details(self, top: int = 5) -> str:
        """The fidelity to FP32 and the ``top`` lossiest ops, a few lines for the terminal."""
        from accelsim.eval.bittrue.layers import lossiest

        lines = []
        if self.vs_fp32 is not None:
            lines.append(f"bit-true vs FP32    {self.vs_fp32.summary()}")
        if self.fake_quant_vs_fp32 is not None:
            lines.append(f"fake-quant vs FP32  {self.fake_quant_vs_fp32.summary()}")
        worst = lossiest(self.layers, top)
        if worst:
            lines.append(f"lossiest ops (per-layer SQNR vs {self.layer_reference}):")
            width = max(len(r.op) for r in worst)
            for r in worst:
                bits = f"{r.bits}-bit" if r.bits is not None else "wide"  # an accumulator or a float unit
                lines.append(f"  {r.op:<{width}}  {r.kind:<10} {r.module:<24} {bits:<12} {r.sqnr_db:7.2f} dB")
        return "\n".join(lines)

    def save_sqnr_csv(self, path: str | Path) -> None:
        """The per-layer SQNR rows as CSV (graph order)."""
        import csv
        import io

        from accelsim._io import write_text_atomic

        buf = io.StringIO()
        cols = ["op", "kind", "module", "tensor", "bits", "sqnr_db", "signal", "noise"]
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        w.writerows(r.to_dict() for r in self.layers)
        write_text_atomic(path, buf.getvalue())


def compare_bittrue(
    cw: CompressedWorkload, graph: Graph, arith: ArithmeticConfig, batch_size: int = 256
) -> BittrueComparison:
    """Run ``graph`` (lowered from ``cw.model`` with its constants) bit-true on the test split and
    compare it with the fake-quant model image by image (the "evaluate -> bit-true" arrow), with the
    FP32 model (when ``cw.reference`` is set) and op by op with the same graph in float32."""
    import numpy as np

    from accelsim.eval.accuracy import predict
    from accelsim.eval.bittrue import BittrueStats
    from accelsim.eval.bittrue.layers import LAYER_REFERENCE, layer_sqnr
    from accelsim.eval.fidelity import fidelity

    if cw.logits is not None:
        fq = cw.logits
        y = np.concatenate([t.numpy() for _, t in cw.test])
    else:
        logits_fq, labels = predict(cw.model, cw.test)
        fq, y = logits_fq.numpy(), labels.numpy()
    images = np.concatenate([x.numpy() for x, _ in cw.test])
    stats = BittrueStats()
    t0 = time.perf_counter()
    logits_bt, _, layers = layer_sqnr(graph, images, arith, batch_size, stats=stats)
    seconds = round(time.perf_counter() - t0, 3)
    diff = np.abs(logits_bt - fq)
    ref = cw.reference
    return BittrueComparison(
        accuracy=float((logits_bt.argmax(1) == y).mean()),
        accuracy_fake_quant=float((fq.argmax(1) == y).mean()),
        top1_agreement=float((logits_bt.argmax(1) == fq.argmax(1)).mean()),
        max_logit_diff=float(diff.max()),
        p99_logit_diff=float(np.quantile(diff, 0.99)),
        max_abs_logit_fake_quant=float(np.abs(fq).max()),
        images=int(y.size),
        arithmetic=arith.model_dump(),
        overflows=[vars(e) for e in stats.overflows],
        seconds=seconds,
        vs_fp32=fidelity(ref, logits_bt) if ref is not None else None,
        fake_quant_vs_fp32=fidelity(ref, fq) if ref is not None else None,
        layer_reference=LAYER_REFERENCE,
        layers=layers,
    )


def evaluate(
    workload: Workload | str | Path,
    *,
    recipe: CompressionRecipe | None = None,
    model: nn.Module | None = None,
    data: DataSplits | None = None,
    macs: bool = True,
    bittrue: ArithmeticConfig | None = None,
) -> EvalResult:
    """Compress the workload's model (calibrating on the train split) and measure it on the test split.

    Args:
        workload: a :class:`Workload` or a path to its YAML.
        recipe: overrides the workload's recipe (the search varies it).
        model: the uncompressed model, if already loaded (not modified).
        data: the splits, if already loaded.
        macs: count MACs (lowers the compressed model once); ``False`` reports 0 from ``"skipped"``.
        bittrue: also run the lowered model bit-true with this datapath arithmetic
            (e.g. ``arithmetic_for(hw)``) and compare it with the fake-quant model
            (:func:`compare_bittrue`).

    Returns:
        Top-1/top-5 on the test split, MACs of one image, parameters (and the bit-true comparison).
    """
    from accelsim.eval.accuracy import count_macs, count_params

    if not isinstance(workload, Workload):
        workload = Workload.load(workload)
    cw = compress_workload(workload, recipe=recipe, model=model, data=data)
    acc = cw.accuracy
    assert acc is not None  # measured: accuracy=True
    n_macs, source = count_macs(cw.model, cw.example) if macs else (0, "skipped")
    comparison = None
    if bittrue is not None:
        from accelsim.lower import lower_compressed

        graph = lower_compressed(cw.model, cw.recipe, tuple(cw.example.shape), keep_constants=True)
        comparison = compare_bittrue(cw, graph, bittrue)
    return EvalResult(
        workload=workload.name,
        model=workload.model,
        accuracy=acc.top1,
        top5=acc.top5,
        correct=acc.correct1,
        images=acc.images,
        macs=n_macs,
        macs_source=source,
        params=count_params(cw.model),
        dataset=cw.data.description,
        recipe=cw.recipe.model_dump(exclude_none=True),
        compress_seconds=cw.compress_seconds,
        eval_seconds=cw.eval_seconds,
        fidelity=cw.fidelity,
        bittrue=comparison,
        teacher=teacher_summary(workload, cw.recipe),
        recipe_text=recipe_summary(cw.recipe.model_dump(exclude_unset=True, exclude_none=True)),
    )


def evaluate_workload(path: str | Path) -> EvalResult:
    """:func:`evaluate` the workload YAML at ``path`` (what ``accelsim eval --workload`` runs)."""
    return evaluate(Workload.load(path))


__all__ = [
    "BittrueComparison",
    "CompressedWorkload",
    "EvalResult",
    "compare_bittrue",
    "compress_workload",
    "evaluate",
    "evaluate_workload",
    "reference_logits",
]
