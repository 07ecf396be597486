"""Small hand-computable graphs and hardware for the simulator tests."""

from __future__ import annotations

from typing import Any

from accelsim.config.hardware import HardwareConfig
from accelsim.ir import Graph, Op, OpKind, Tensor


def tiny_hw(**over: Any) -> HardwareConfig:
    """A 4x4 ws array (SCALE-Sim timing: the hand-computed cases below count its folds) at 100 MHz, 1 MAC/DSP, 4 B/cycle DRAM (0.4 GB/s), 10-cycle latency, 4-B bursts."""
    data: dict[str, Any] = {
        "name": "tiny",
        "board": "zcu102",
        "clock_mhz": 100,
        "array": {"rows": 4, "cols": 4, "dataflow": "ws", "timing": "scalesim"},
        "packing": {8: 1},
        "buffers": {"input_kib": 1, "weight_kib": 1, "output_kib": 1, "double_buffer": True},
        "dram": {"bandwidth_gbs": 0.4, "latency_cycles": 10, "burst_bytes": 4, "channels": 1},
        "units": {"vector": {"lanes": 4, "latency_cycles": 2}},
    }
    for dotted, v in over.items():
        node = data
        keys = dotted.split("__")
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = v
    return HardwareConfig.from_dict(data)


def matmul_graph(m: int, k: int, n: int) -> Graph:
    """x[m,k] @ w[k,n] -> y[m,n] (8-bit)."""
    g = Graph("mm")
    for t in (Tensor("x", (m, k)), Tensor("w", (k, n), weight=True), Tensor("y", (m, n))):
        g.add_tensor(t)
    g.add_op(
        Op("mm", OpKind.MATMUL, ("x", "w"), ("y",), {"batch": 1, "M": m, "K": k, "N": n}, macs=m * k * n)
    )
    return g


def chain_graph(m: int, k: int, hidden: int, act: bool = True) -> Graph:
    """fc1 (k -> hidden) [-> gelu] -> fc2 (hidden -> k): the MLP of a transformer block."""
    g = Graph("mlp")
    ts = [Tensor("x", (m, k)), Tensor("w1", (k, hidden), weight=True), Tensor("h", (m, hidden))]
    ts += [Tensor("a", (m, hidden))] if act else []
    ts += [Tensor("w2", (hidden, k), weight=True), Tensor("y", (m, k))]
    for t in ts:
        g.add_tensor(t)
    g.add_op(
        Op("fc1", OpKind.MATMUL, ("x", "w1"), ("h",), {"M": m, "K": k, "N": hidden}, macs=m * k * hidden)
    )
    src = "h"
    if act:
        g.add_op(Op("gelu", OpKind.ACTIVATION, ("h",), ("a",), {"fn": "gelu", "elements": m * hidden}))
        src = "a"
    g.add_op(
        Op("fc2", OpKind.MATMUL, (src, "w2"), ("y",), {"M": m, "K": hidden, "N": k}, macs=m * k * hidden)
    )
    return g
