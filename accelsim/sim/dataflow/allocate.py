"""Choose every stage's parallelism for a resource budget, FINN-folding style.

:func:`allocate` maps a lowered model (a :class:`~accelsim.ir.Graph`) onto one engine per op
(:func:`stages_from_graph`), starts every engine at one input and one output channel per beat,
then, as FINN's ``SetFolding`` and fpgaConvNet's greedy design-space exploration do, repeatedly
raises the slowest engine's parallelism to its next divisor step (``cip`` or ``cop`` of a matmul,
whichever costs fewer LUTs per cycle saved; ``cp`` of the others) while the design fits the
budget. A pipeline's throughput is its slowest stage's, so this balances the stages; it stops
when the slowest stage cannot take a step within the budget.

Every step re-times and re-costs one engine in closed form (the kinds' ``trips`` and
:func:`~accelsim.sim.dataflow.report.config_resources`), so DeiT-Tiny allocates in well under a
second. The plan is analytic: it has no width adapters between engines (their LUTs are not in
the budget check; the engines' input FIFOs are, with ``fifo_depth``), so it is timed by its
slowest engine, not run through the event kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accelsim.config.dataflow import StageConfig
from accelsim.config.hardware import HardwareConfig
from accelsim.errors import ConfigError
from accelsim.ir import Graph
from accelsim.ir.graph import OpKind
from accelsim.sim.dataflow import _trips
from accelsim.sim.dataflow.kinds import SHAPE_FIELDS, STAGE_KINDS
from accelsim.sim.dataflow.report import config_resources, fifo_resources


@dataclass(frozen=True)
class Budget:
    """Resources the pipeline may use (LUT, DSP, BRAM36, URAM)."""

    lut: int
    dsp: int
    bram36: int
    uram: int

    @classmethod
    def of_board(cls, hw: HardwareConfig) -> Budget:
        b = hw.board
        return cls(b.lut, b.dsp, b.bram36, b.uram)


@dataclass(frozen=True)
class Allocation:
    """The engines :func:`allocate` chose: ``units`` are engines that share their parallelism (a
    streamed-operand matmul and the cache that feeds it)."""

    units: tuple[tuple[StageConfig, ...], ...]
    ii_cycles: int
    fps: float
    bottleneck: str
    lut: int
    dsp: int
    bram36: int
    uram: int
    steps: int
    #: the least-parallel start already exceeds the budget when False
    fits: bool


def trip_cycles(s: StageConfig) -> int:
    """Cycles per frame of one stage, in closed form (no loop nest built)."""
    dims = np.asarray([getattr(s, f) or 0 for f in SHAPE_FIELDS], np.int64).reshape(-1, 1)
    return int(_trips.trip_count(STAGE_KINDS[s.kind].trips, dims))


def _shape(g: Graph, tensor: str) -> tuple[int, int]:
    shape = g.tensors[tensor].shape
    return math.prod(shape[:-1]), shape[-1]


def stages_from_graph(
    g: Graph, wbits: int | None, abits: int | None, tp: int = 1
) -> list[tuple[StageConfig, ...]]:
    """One engine per compute op of ``g``, at its least parallelism, grouped into units.

    ``wbits`` / ``abits`` None: each op's own, from its tensors' bits (a compression point's
    per-layer precision): the weight (second) and activation (first) operand of a matmul or
    convolution, the input of the others.

    Matmuls with a weight become ``matmul`` stages (a convolution: its patches as tokens); an
    activation x activation matmul becomes a ``matmul_act`` fed by a ``weight_cache`` holding its
    second operand, its heads side by side as output channels; layernorm and softmax their kinds
    (softmax rows = heads x tokens); activations and element-wise ops ``map`` stages. Data movement
    (and token selection) costs no engine.

    Raises:
        ConfigError: an op kind the dataflow family has no engine for.
    """
    units: list[tuple[StageConfig, ...]] = []
    unit: tuple[StageConfig, ...]
    for op in g.ops():
        a, name = op.attrs, op.name.replace(".", "_")
        ins = [g.tensors[t].bits for t in op.inputs]
        op_w = wbits if wbits is not None else (ins[1] if len(ins) > 1 else ins[0])
        op_a = abits if abits is not None else ins[0]
        common = {"wbits": op_w, "abits": op_a, "inputs": ["@in"], "tp": tp}
        if op.kind == OpKind.MATMUL:
            t, cin, cout = a["M"], a["K"], a["N"]
            mm = {"t": t, "cin": cin, "cip": 1, "cout": cout, "cop": 1}
            if a.get("operands", "wa") == "aa":
                mm["cout"] = cout * a.get("batch", 1)
                unit = (
                    StageConfig.model_validate({**common, **mm, "name": name, "kind": "matmul_act", "weights": "none"}),
                    StageConfig.model_validate({**common, **mm, "name": f"{name}_cache", "kind": "weight_cache", "weights": "lutram"}),
                )  # fmt: skip
            else:
                mm["t"] = t * a.get("batch", 1)
                unit = (StageConfig.model_validate({**common, **mm, "name": name, "kind": "matmul"}),)
        elif op.kind == OpKind.CONV2D:
            t = a["out_h"] * a["out_w"]
            mm = {"t": t, "cin": a["in_ch"] * a["kh"] * a["kw"], "cip": 1, "cout": a["out_ch"], "cop": 1}
            unit = (StageConfig.model_validate({**common, **mm, "name": name, "kind": "matmul"}),)
        elif op.kind in (OpKind.LAYERNORM, OpKind.SOFTMAX):
            el = {"t": a["rows"], "c": a["length"], "cp": 1}
            unit = (StageConfig.model_validate({**common, **el, "name": name, "kind": op.kind.value}),)
        elif op.kind in (OpKind.ACTIVATION, OpKind.ELTWISE):
            t, c = _shape(g, op.outputs[0])
            unit = (
                StageConfig.model_validate({**common, "t": t, "c": c, "cp": 1, "name": name, "kind": "map"}),
            )
        elif op.kind in (
            OpKind.RESHAPE,
            OpKind.TRANSPOSE,
            OpKind.CONCAT,
            OpKind.SLICE,
            OpKind.PAD,
            OpKind.GATHER,
            # token pruning keeps the top-k of scores earlier ops computed: a selection on the
            # stream, costed as data movement (an assumption); later engines see fewer tokens
            OpKind.TOKEN_SELECT,
        ):
            continue
        else:
            raise ConfigError(f"op {op.name!r}: no dataflow engine for kind {op.kind.value!r}")
        # an op on fewer tokens (the head's one) streams as many as it has
        units.append(tuple(s.model_copy(update={"tp": math.gcd(tp, s.t or 1)}) for s in unit))
    return units


def _steps(s: StageConfig) -> list[dict[str, int]]:
    """The next larger parallelism of ``s``: one divisor step of each field it has."""
    out = []
    for f, of in (("cip", "cin"), ("cop", "cout"), ("cp", "c")):
        cur, n = getattr(s, f), getattr(s, of)
        if cur is None or n is None:
            continue
        nxt = next((d for d in range(cur + 1, n + 1) if n % d == 0), None)
        if nxt is not None:
            out.append({f: nxt})
    return out


def allocate(
    g: Graph, hw: HardwareConfig, budget: Budget | None = None, wbits: int | None = 8, abits: int | None = 8, tp: int = 1,
    restart_cycles: int = 0, max_steps: int = 100_000, fifo_depth: int = 0,
) -> Allocation:  # fmt: skip
    """Balance one engine per op of ``g`` on ``hw``'s board at ``hw``'s clock (module docstring).

    Args:
        budget: resources to stay within (default: the whole board).
        wbits, abits: multiplier operand bits (None: each op's, from the graph). tp: tokens per
            beat (where it divides the tokens).
        restart_cycles: cycles per frame each engine spends outside its loop nest.
        fifo_depth: each engine's input FIFO, costed with the engine (its width grows with the
            engine's parallelism); 0: FIFOs not costed.
    """
    budget = budget or Budget.of_board(hw)
    units = [list(u) for u in stages_from_graph(g, wbits, abits, tp)]
    if not units:
        raise ConfigError(f"graph {g.name!r} has no op the dataflow family runs")
    cap = (budget.lut, budget.dsp, budget.bram36, budget.uram)

    def cost(u: list[StageConfig]) -> tuple[int, int, int, int]:
        rs = [config_resources(s, hw) for s in u]
        if fifo_depth:
            rs += [fifo_resources(fifo_depth, STAGE_KINDS[s.kind].beat_elems(s) * s.abits) for s in u]
        return (
            sum(r.lut for r in rs),
            sum(r.dsp for r in rs),
            sum(r.bram36 for r in rs),
            sum(r.uram for r in rs),
        )

    times = [max(trip_cycles(s) for s in u) for u in units]
    costs = [cost(u) for u in units]
    used = [sum(c[k] for c in costs) for k in range(4)]
    steps = 0
    while steps < max_steps:
        i = max(range(len(units)), key=times.__getitem__)
        best = None
        for change in _steps(units[i][0]):
            cand = [s.model_copy(update=change) for s in units[i]]
            c = cost(cand)
            new = [used[k] - costs[i][k] + c[k] for k in range(4)]
            t = max(trip_cycles(s) for s in cand)
            if t < times[i] and all(new[k] <= cap[k] for k in range(4)):
                key = (c[0] - costs[i][0] + c[1] * 100 + 1) / (times[i] - t)
                if best is None or key < best[0]:
                    best = (key, cand, c, new, t)
        if best is None:
            break  # the slowest engine cannot take a step within the budget: the interval is set
        _, units[i], costs[i], used, times[i] = best
        steps += 1
    i = max(range(len(units)), key=times.__getitem__)
    ii = times[i] + restart_cycles
    fits = all(used[k] <= cap[k] for k in range(4))
    return Allocation(
        tuple(tuple(u) for u in units),
        ii,
        hw.clock_mhz * 1e6 / ii,
        units[i][0].name,
        lut=used[0],
        dsp=used[1],
        bram36=used[2],
        uram=used[3],
        steps=steps,
        fits=fits,
    )


__all__ = ["Allocation", "Budget", "allocate", "stages_from_graph", "trip_cycles"]
