"""Per-layer SQNR: every op's bit-true output against the same graph run in float32.

The reference is the same Graph with its quantisers removed (``Graph.quant`` empty) and float
units (softmax, GELU, layernorm, true division), run by the same executor on the same images: for a
recipe that only quantises, those are the FP32 model's tensors (its weights, BatchNorm folded as
the accelerator folds it); for a pruned or token-reduced model they are the compressed structure
in float, so the table isolates what the integer datapath loses. Errors accumulate along the
graph, as in a float-vs-quantised comparison with PyTorch's Numeric Suite
(``torch.ao.ns.fx.utils.compute_sqnr``): an op's SQNR includes what reached its inputs.

Both executors step through the ops side by side, so no intermediate is kept beyond its last use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from accelsim.config.arithmetic import ArithmeticConfig
from accelsim.errors import GraphFormatError
from accelsim.eval.bittrue.executor import BittrueStats, Executor, batching
from accelsim.eval.bittrue.formats import real
from accelsim.eval.fidelity import sqnr_from_energies
from accelsim.ir.graph import MOVEMENT_KINDS, Graph

#: What the per-layer SQNR is measured against, as reports name it.
LAYER_REFERENCE = "the same graph in float32 (quantisers removed, float units)"

#: The reference's arithmetic: every unit in float, nothing that rounds to a power of two.
FLOAT_ARITHMETIC = ArithmeticConfig(
    softmax="float",
    gelu="float",
    hardswish="float",
    layernorm="float",
    la_divisor="true_divide",
    overflow="report",
)


@dataclass(frozen=True)
class LayerSqnr:
    """The SQNR of one op's (first float) output over all images."""

    op: str
    kind: str
    module: str
    tensor: str
    bits: int | None  # the output's code width when it is quantised; None: an accumulator or float ("wide")
    sqnr_db: float
    signal: float  # sum of the reference's squares
    noise: float  # sum of the squared differences

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def float_graph(graph: Graph) -> Graph:
    """``graph`` without its quantisers: every tensor float32, the weights at their float values."""
    g = graph.copy()
    g.quant = {}
    return g


def layer_sqnr(
    graph: Graph,
    images: np.ndarray,
    arith: ArithmeticConfig | None = None,
    batch_size: int = 256,
    *,
    stats: BittrueStats | None = None,
) -> tuple[np.ndarray, np.ndarray, list[LayerSqnr]]:
    """Run ``graph`` bit-true and in float32 side by side on ``images``.

    Returns:
        The bit-true logits, the float graph's logits and one :class:`LayerSqnr` per op with a
        float output (in graph order). Ops whose reference output is all zeros have no SQNR and are
        left out.
    """
    name, out, images, bs = batching(graph, images, batch_size, "layer_sqnr")
    q_ex = Executor(graph, arith)
    f_ex = Executor(float_graph(graph), FLOAT_ARITHMETIC)
    if images.shape[0] == 0:
        raise GraphFormatError("layer_sqnr: no images")
    n = len(q_ex.ops)
    signal = np.zeros(n)
    noise = np.zeros(n)
    measured = np.zeros(n, dtype=bool)
    q_logits, f_logits = [], []
    for s in range(0, images.shape[0], bs):
        batch = {name: images[s : s + bs]}
        q_env, q_ctx = q_ex.start(batch, stats)
        f_env, f_ctx = f_ex.start(batch, BittrueStats())
        for i, op in enumerate(q_ex.ops):
            q_ex.step(i, q_env, q_ctx)
            f_ex.step(i, f_env, f_ctx)
            ref = np.asarray(real(f_env[op.outputs[0]]))
            if not np.issubdtype(ref.dtype, np.floating):
                continue  # indices (top-k) are not a signal with a noise
            got = np.asarray(real(q_env[op.outputs[0]]), dtype=np.float64)
            r = ref.astype(np.float64)
            signal[i] += float((r * r).sum())
            noise[i] += float(((r - got) ** 2).sum())
            measured[i] = True
        q_logits.append(real(q_env[out]))
        f_logits.append(real(f_env[out]))
    rows = []
    for i, op in enumerate(q_ex.ops):
        if not measured[i] or signal[i] <= 0.0:
            continue
        t = op.outputs[0]
        rows.append(
            LayerSqnr(
                op=op.name,
                kind=op.kind.value,
                module=op.module,
                tensor=t,
                bits=graph.tensors[t].bits if t in graph.quant else None,
                sqnr_db=round(sqnr_from_energies(float(signal[i]), float(noise[i])), 3),
                signal=float(signal[i]),
                noise=float(noise[i]),
            )
        )
    return np.concatenate(q_logits), np.concatenate(f_logits), rows


def lossiest(rows: list[LayerSqnr], k: int = 5) -> list[LayerSqnr]:
    """The ``k`` rows of lowest SQNR among ops that compute (data movement repeats its input's SQNR)."""
    compute = [r for r in rows if r.kind not in {m.value for m in MOVEMENT_KINDS}]
    return sorted(compute, key=lambda r: r.sqnr_db)[:k]


__all__ = ["FLOAT_ARITHMETIC", "LAYER_REFERENCE", "LayerSqnr", "float_graph", "layer_sqnr", "lossiest"]
