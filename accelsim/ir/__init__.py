"""The dataflow IR (no torch here: saved graphs load and simulate without it)."""

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
from accelsim.ir.quant import QuantParams

__all__ = [
    "MAC_KINDS",
    "MOVEMENT_KINDS",
    "Graph",
    "GraphSummary",
    "KindSummary",
    "Op",
    "OpKind",
    "QuantParams",
    "Tensor",
]
