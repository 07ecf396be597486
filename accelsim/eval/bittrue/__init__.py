"""Bit-true execution of a :class:`~accelsim.ir.Graph` with the accelerator's integer arithmetic.

No torch here: a saved graph plus its weights sidecar (:mod:`accelsim.ir.sidecar`) executes on
NumPy and Numba alone. :func:`execute` runs a graph once, :func:`run_bittrue` runs images through
it in batches, :class:`Executor` keeps the quantised weights for repeated runs.

Layout, one job per module:

- :mod:`~accelsim.eval.bittrue.formats`: the number formats (:class:`IntVal`) and the conversions
  between them (quantise, requantise by a fixed-point multiplier, the units' fixed-point input);
- :mod:`~accelsim.eval.bittrue.executor`: the op-by-op run, its context and statistics;
- :mod:`~accelsim.eval.bittrue._registry`: the table of execution rules, one handler shape keyed by
  op kind or ATen target (:func:`register_handler`), and the choice of a rule for an op;
- :mod:`~accelsim.eval.bittrue.mac`: matmul, conv and linear attention on exact integer accumulators;
- :mod:`~accelsim.eval.bittrue.units`: softmax, norms, activations and element-wise ops as the
  special units compute them;
- :mod:`~accelsim.eval.bittrue.aten`: the NumPy semantics of the other ATen ops (data movement,
  reductions, pooling, top-k);
- :mod:`~accelsim.eval.bittrue._kernels`: the Numba kernels (numpy and numba only).

The integer arithmetic it shares with the hardware timing units (the linear-attention divider's
power-of-two rounding) lives in :mod:`accelsim.datapath`.
"""

from __future__ import annotations

# importing the rule modules fills the registry
from accelsim.eval.bittrue import aten, mac, units  # noqa: F401
from accelsim.eval.bittrue._registry import aten_args, executable_targets, handler_for, register_handler
from accelsim.eval.bittrue.executor import BittrueStats, Executor, OverflowEvent, execute, run_bittrue
from accelsim.eval.bittrue.formats import (
    IntVal,
    fixed_point_multiplier,
    log2_values,
    quantize_float,
    real,
    to_quant,
)
from accelsim.eval.bittrue.mac import _exact_matmul  # noqa: F401  (imported from here by tests)
from accelsim.eval.bittrue.units import gelu_ref, hardswish_ref

__all__ = [
    "BittrueStats",
    "Executor",
    "IntVal",
    "OverflowEvent",
    "aten_args",
    "executable_targets",
    "execute",
    "fixed_point_multiplier",
    "gelu_ref",
    "handler_for",
    "hardswish_ref",
    "log2_values",
    "quantize_float",
    "real",
    "register_handler",
    "run_bittrue",
    "to_quant",
]
