"""The dataflow IR (no torch here: saved graphs load and simulate without it)."""

from accelsim.ir.quant import QuantParams
from accelsim.ir.graph import (
    MAC_KINDS,
    MOVEMENT_KINDS,
    Graph,
    GraphSummary,
    KindSummary,
    Op,
    OpKind,
    Tensor,
)

__all__ = ["QuantParams", "MAC_KINDS", "MOVEMENT_KINDS", "Graph", "GraphSummary", "KindSummary", "Op", "OpKind", "Tensor"]
