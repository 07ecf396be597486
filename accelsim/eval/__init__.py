"""Accuracy of a workload: load model and weights, compress, measure top-1/top-5, MACs and parameters,
and the output fidelity against the uncompressed model (:mod:`accelsim.eval.fidelity`).

``evaluate(workload)`` is the whole API (:func:`compress_workload` is its compression step, shared
with ``accelsim simulate --workload`` and the search); the search can pass an already built ``model`` and
``data`` (and a ``recipe`` that overrides the workload's) so that each is built once.

``accelsim.eval`` is two steps: :mod:`accelsim.eval.loading` (the model, teacher and data of a
workload) and :mod:`accelsim.eval.evaluation` (compress, measure, compare bit-true).
"""

from __future__ import annotations

from accelsim.eval.evaluation import (
    BittrueComparison,
    CompressedWorkload,
    EvalResult,
    compare_bittrue,
    compress_workload,
    evaluate,
    evaluate_workload,
    recipe_summary,
    reference_logits,
    teacher_summary,
)
from accelsim.eval.loading import load_data, load_model, load_teacher

__all__ = [
    "BittrueComparison",
    "CompressedWorkload",
    "EvalResult",
    "compare_bittrue",
    "compress_workload",
    "evaluate",
    "evaluate_workload",
    "load_data",
    "load_model",
    "load_teacher",
    "recipe_summary",
    "reference_logits",
    "teacher_summary",
]
