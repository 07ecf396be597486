"""The executor: runs a Graph op by op, each through the rule the registry gives it, converting
every result to its tensor's format; also the run's context and statistics.

MAC ops accumulate exactly and are checked against the two's complement range of
``accumulator_bits``: beyond it the executor raises :class:`~accelsim.errors.AccumulatorOverflowError`
naming the op and the largest magnitude (or, with ``overflow: report``, wraps the value as
hardware would and records an :class:`OverflowEvent`). Only the final sum is checked: a two's
complement accumulator that wraps on the way still ends right.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from accelsim._progress import progress
from accelsim.config.arithmetic import ArithmeticConfig
from accelsim.errors import AccumulatorOverflowError, GraphFormatError
from accelsim.eval.bittrue._registry import handler_for
from accelsim.eval.bittrue.formats import Value, real, to_quant
from accelsim.ir.graph import Graph, Op


@dataclass
class OverflowEvent:
    """An accumulator that left its range (``overflow: report``): the op, where in it, the largest
    magnitude reached and the range's limit."""

    op: str
    max_abs: int
    limit: int
    where: str


@dataclass
class BittrueStats:
    """What an execution observed: accumulator overflows (``overflow: report``) and the ops that ran in integers."""

    overflows: list[OverflowEvent] = field(default_factory=list)
    integer_ops: set[str] = field(default_factory=set)
    float_ops: set[str] = field(default_factory=set)


@dataclass
class _Ctx:
    """What a handler sees of the run besides its op and inputs: the graph, the arithmetic, the
    statistics being collected, and the batch factor of this run."""

    graph: Graph
    arith: ArithmeticConfig
    stats: BittrueStats
    batch_factor: int = 1

    def check_acc(self, op: Op, acc: np.ndarray, where: str = "accumulator") -> np.ndarray:
        """Raise (or record and wrap) when ``acc`` (exact integers, int64 or float64) leaves the accumulator range."""
        bits = self.arith.accumulator_bits
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if acc.size == 0:
            return acc.astype(np.int64)
        amax, amin = float(acc.max()), float(acc.min())
        if amax <= hi and amin >= lo:
            return acc.astype(np.int64)
        worst = int(max(abs(amax), abs(amin)))
        if self.arith.overflow == "raise":
            raise AccumulatorOverflowError(
                f"op {op.name!r} ({op.kind.value}): {where} reaches {worst} "
                f"(needs {worst.bit_length() + 1} bits), beyond the {bits}-bit range [{lo}, {hi}]"
            )
        self.stats.overflows.append(OverflowEvent(op.name, worst, hi, where))
        a = acc.astype(np.int64)  # |acc| < 2**53 here, exact
        return ((a - lo) & ((1 << bits) - 1)) + lo

    def shape_of(self, tensor: str) -> tuple[int, ...]:
        """The graph's shape of ``tensor``, its leading (batch) dimension scaled to this run's batch."""
        shape = list(self.graph.tensors[tensor].shape)
        if shape and self.batch_factor != 1:
            shape[0] *= self.batch_factor
        return tuple(shape)


class Executor:
    """A graph prepared for repeated bit-true execution (weights quantised once)."""

    def __init__(self, graph: Graph, arith: ArithmeticConfig | None = None) -> None:
        self.graph = graph
        self.arith = arith or ArithmeticConfig()
        self.ops = list(graph.ops())
        self._handlers = [handler_for(op) for op in self.ops]
        self.weights: dict[str, Value] = {}
        for name, t in graph.tensors.items():
            if not t.weight or not graph.consumers(name):
                continue
            if name not in graph.constants:
                raise GraphFormatError(
                    f"weight tensor {name!r} has no value: lower with keep_constants=True, "
                    "or load the sidecar with accelsim.ir.sidecar.load_constants(graph, json_path)"
                )
            val = np.asarray(graph.constants[name])
            self.weights[name] = self._weight_value(name, val)
        # free each activation after its last consumer
        last: dict[str, int] = {}
        for i, op in enumerate(self.ops):
            for tname in op.inputs:
                last[tname] = i
        self._free_after: list[list[str]] = [[] for _ in self.ops]
        outs = set(graph.outputs)
        for tname, i in last.items():
            if tname not in outs and tname not in self.weights:
                self._free_after[i].append(tname)

    def _weight_value(self, name: str, val: np.ndarray) -> Value:
        qp = self.graph.quant.get(name)
        if qp is None or not np.issubdtype(val.dtype, np.floating):
            return val.astype(np.float32) if np.issubdtype(val.dtype, np.floating) else val
        return to_quant(val.astype(np.float32), qp, self.arith)

    def run(
        self, inputs: Mapping[str, np.ndarray], stats: BittrueStats | None = None
    ) -> dict[str, np.ndarray]:
        """Execute once; returns the real (float32) values of the graph outputs."""
        env, ctx = self.start(inputs, stats)
        for i in range(len(self.ops)):
            self.step(i, env, ctx)
        return {t: real(env[t]) for t in self.graph.outputs}

    def start(
        self, inputs: Mapping[str, np.ndarray], stats: BittrueStats | None = None
    ) -> tuple[dict[str, Value], _Ctx]:
        """The environment (weights and quantised inputs) and context of a run, before its first op.

        :meth:`run` is ``start`` then :meth:`step` over every op; stepping two executors of the same
        graph side by side compares them op by op (:func:`accelsim.eval.bittrue.layers.layer_sqnr`).
        """
        g = self.graph
        stats = stats if stats is not None else BittrueStats()
        missing = [n for n in g.inputs if n not in inputs]
        if missing:
            raise GraphFormatError(f"graph {g.name!r}: missing input(s) {missing} (inputs: {g.inputs})")
        env: dict[str, Value] = dict(self.weights)
        factor = 1
        for name in g.inputs:
            x = np.asarray(inputs[name], dtype=np.float32)
            want = g.tensors[name].shape
            if x.shape[1:] != tuple(want[1:]) or (want and want[0] and x.shape[0] % want[0]):
                raise GraphFormatError(f"input {name!r}: shape {x.shape}, graph expects {want} (any batch)")
            factor = x.shape[0] // want[0] if want and want[0] else 1
            qp = g.quant.get(name)
            env[name] = to_quant(x, qp, self.arith) if qp is not None else x
        return env, _Ctx(g, self.arith, stats, factor)

    def step(self, i: int, env: dict[str, Value], ctx: _Ctx) -> None:
        """Run op ``i`` (in :attr:`ops` order) on ``env``: its outputs in, dead activations out."""
        g = self.graph
        op = self.ops[i]
        vals = [env[t] for t in op.inputs]
        outs = self._handlers[i](ctx, op, vals)
        if len(outs) != len(op.outputs):
            raise GraphFormatError(f"op {op.name!r}: produced {len(outs)} values for outputs {op.outputs}")
        for t, v in zip(op.outputs, outs, strict=True):
            qp = g.quant.get(t)
            env[t] = to_quant(v, qp, self.arith) if qp is not None else v
        for t in self._free_after[i]:
            env.pop(t, None)


def execute(
    graph: Graph,
    inputs: Mapping[str, np.ndarray],
    arith: ArithmeticConfig | None = None,
    *,
    stats: BittrueStats | None = None,
) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``inputs`` with the accelerator's arithmetic.

    Args:
        graph: a graph with its weights in ``graph.constants`` (lowering with ``keep_constants``
            or :func:`accelsim.ir.sidecar.load_constants`), quantisation in ``graph.quant``.
        inputs: the graph inputs by name; any batch size that is a multiple of the graph's.
        arith: the datapath's arithmetic (default: :class:`ArithmeticConfig` defaults).
        stats: filled with overflow events (``overflow: report``) and which ops ran in integers.

    Returns:
        The graph outputs by name, as float32 real values.

    Raises:
        AccumulatorOverflowError: an accumulator exceeded ``arith.accumulator_bits`` (``overflow: raise``).
        GraphFormatError: a weight has no value, or an input is missing or mis-shaped.
        UnsupportedOpError: an op kind has no execution rule.
    """
    return Executor(graph, arith).run(inputs, stats)


def batching(
    graph: Graph, images: np.ndarray, batch_size: int, caller: str
) -> tuple[str, str, np.ndarray, int]:
    """How a single-input, single-output graph runs ``images`` in batches: its input and output
    names, the images as float32 and the batch size (a multiple of the graph's own batch).

    Raises:
        GraphFormatError: the graph has several inputs or outputs, or the images do not split
            into the graph's batch.
    """
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise GraphFormatError(
            f"{caller} needs one input and one output, graph {graph.name!r} has {graph.inputs} -> {graph.outputs}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    (name,) = graph.inputs
    (out,) = graph.outputs
    b0 = max(graph.tensors[name].shape[0], 1)
    images = np.asarray(images, dtype=np.float32)
    if images.shape[0] % b0:
        raise GraphFormatError(f"{images.shape[0]} images is not a multiple of the graph's batch {b0}")
    return name, out, images, max(b0, batch_size // b0 * b0)


def run_bittrue(
    graph: Graph,
    images: np.ndarray,
    arith: ArithmeticConfig | None = None,
    batch_size: int = 256,
    *,
    stats: BittrueStats | None = None,
) -> np.ndarray:
    """Logits of ``images`` (N, C, H, W) through a single-input, single-output graph, in batches."""
    name, out, images, bs = batching(graph, images, batch_size, "run_bittrue")
    ex = Executor(graph, arith)
    starts = progress(range(0, images.shape[0], bs), "bit-true", unit="batch")
    parts = [ex.run({name: images[i : i + bs]}, stats)[out] for i in starts]
    return np.concatenate(parts) if parts else np.zeros((0,), np.float32)


__all__ = ["BittrueStats", "Executor", "OverflowEvent", "execute", "run_bittrue"]
