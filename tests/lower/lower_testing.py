"""Test helpers: a float reference replay of a lowered graph with torch, and a tiny quantiser.

Every op is executed from its ``target`` and ``attrs["args"]``/``["kwargs"]`` with the weight
values of ``graph.constants``: if the replay equals the model's own output, the lowering kept
the semantics (folding, BatchNorm folding, fusion, elision) and recorded enough to re-execute.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from accelsim.ir import Graph, Op, QuantParams


class FakeQuant(nn.Module):
    """A minimal quantiser honouring the contract of ``accelsim/ir/quant.py``."""

    accelsim_quantizer = True

    def __init__(self, bits: int, scale: float) -> None:
        super().__init__()
        self.bits = bits
        self.register_buffer("scale", torch.tensor(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = 2 ** (self.bits - 1)
        return torch.clamp(torch.round(x / self.scale), -q, q - 1) * self.scale

    def qparams(self) -> QuantParams:
        return QuantParams(bits=self.bits, scale=np.array(float(self.scale)), zero_point=np.array(0))


def _resolve(target: str) -> Any:
    if target == "aten.view.default":  # contiguous() was elided: views may need a copy
        target = "aten.reshape.default"
    ns, name, overload = target.split(".")
    return getattr(getattr(getattr(torch.ops, ns), name), overload)


def _decode(v: Any, inputs: list[torch.Tensor]) -> Any:
    if isinstance(v, dict):
        if "input" in v:
            return inputs[v["input"]]
        if "dtype" in v:
            return getattr(torch, v["dtype"])
        if "float" in v:
            return float(v["float"])
        raise ValueError(f"unknown encoded argument {v}")
    if isinstance(v, list):
        return [_decode(x, inputs) for x in v]
    return v


def _linear_attention(op: Op, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    q, k = torch.relu(q), torch.relu(k)
    v = torch.nn.functional.pad(v, (0, 1), value=1.0)
    out = q @ (k.transpose(-1, -2) @ v)
    return out[..., :-1] / (out[..., -1:] + op.attrs["eps"])


def replay(graph: Graph, x: torch.Tensor) -> list[torch.Tensor]:
    """Run ``graph`` on input ``x``; returns the graph outputs in order."""
    values: dict[str, torch.Tensor] = {graph.inputs[0]: x}
    for name, c in graph.constants.items():
        values[name] = torch.from_numpy(c.copy())
    for op in graph.ops():
        ins = [values[t] for t in op.inputs]
        if op.target == "accelsim::linear_attention":
            out: Any = _linear_attention(op, *ins)
        else:
            args = _decode(op.attrs["args"], ins)
            kwargs = _decode(op.attrs.get("kwargs", {}), ins) if op.attrs.get("kwargs") else {}
            out = _resolve(op.target)(*args, **kwargs)
        outs = list(out) if isinstance(out, list | tuple) else [out]
        for name, v in zip(op.outputs, outs, strict=False):
            values[name] = v
    return [values[t] for t in graph.outputs]
