"""Choose every stage's parallelism for a resource budget, FINN-folding style.

Start every matmul at its least parallelism (one input and one output channel per beat) and every
layernorm / softmax / element-wise stage at one channel per beat; then, as FINN's
``SetFolding`` and fpgaConvNet's greedy DSE do, repeatedly raise the parallelism of the slowest
stage to its next divisor step (``cip`` or ``cop`` of a matmul, whichever costs fewer LUTs per
cycle saved; ``cp`` of the others) while the design fits the budget. The throughput of a
pipeline is its slowest stage's, so this balances the stages; it stops when the slowest stage
cannot grow (at its largest parallelism, or out of budget). Each step re-times one stage
analytically, so DeiT-Tiny's few hundred stages allocate in well under a second.

Only shape-preserving fields change (``cip``, ``cop``, ``cp``); ``tp`` and the stream graph stay
as the config gives them, so a stage's neighbours keep reading the beats they expect only where
the config puts width adapters (``pack`` / ``unpack``) between them; those are re-sized with the
stage they serve.
"""

from __future__ import annotations

from dataclasses import dataclass

from accelsim.config.dataflow import DataflowConfig, StageConfig
from accelsim.config.hardware import HardwareConfig
from accelsim.sim.dataflow.kinds import STAGE_KINDS
from accelsim.sim.dataflow.network import Stage
from accelsim.sim.dataflow.report import stage_resources


@dataclass(frozen=True)
class Budget:
    """Resources the pipeline may use (LUT, DSP, BRAM36, URAM)."""

    lut: int
    dsp: int
    bram36: int
    uram: int


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _next(n: int, cur: int) -> int | None:
    bigger = [d for d in _divisors(n) if d > cur]
    return bigger[0] if bigger else None


def _time(s: StageConfig) -> int:
    return STAGE_KINDS[s.kind].program(s).n_iter


def _cost(s: StageConfig, hw: HardwareConfig) -> tuple[int, int, int, int]:
    kind = STAGE_KINDS[s.kind]
    r = stage_resources(Stage(s.name, "", s, kind, kind.program(s)), hw)
    return r.lut, r.dsp, r.bram36, r.uram


def _grow(s: StageConfig) -> list[StageConfig]:
    """The next larger parallelism of ``s`` (one step of each field it has)."""
    out = []
    for f, of in (("cip", "cin"), ("cop", "cout"), ("cp", "c")):
        cur, n = getattr(s, f), getattr(s, of)
        if cur is None or n is None or s.kind not in ("matmul", "layernorm", "softmax", "map"):
            continue
        nxt = _next(n, cur)
        if nxt is not None:
            out.append(s.model_copy(update={f: nxt}))
    return out


def allocate_block(
    stages: list[StageConfig], hw: HardwareConfig, budget: Budget, max_steps: int = 10_000
) -> list[StageConfig]:
    """Raise the slowest stage of ``stages`` step by step within ``budget`` (see module docstring).

    The stages are timed and costed alone (their FIFOs and adapters are the config's); the result
    has the same stages with new ``cip`` / ``cop`` / ``cp``.
    """
    cur = list(stages)
    times = [_time(s) for s in cur]
    costs = [_cost(s, hw) for s in cur]
    used = [sum(c[i] for c in costs) for i in range(4)]
    cap = (budget.lut, budget.dsp, budget.bram36, budget.uram)
    blocked: set[int] = set()
    for _ in range(max_steps):
        order = sorted((i for i in range(len(cur)) if i not in blocked), key=lambda i: -times[i])
        if not order:
            break
        i = order[0]
        best = None
        for cand in _grow(cur[i]):
            c = _cost(cand, hw)
            new = [used[k] - costs[i][k] + c[k] for k in range(4)]
            if all(new[k] <= cap[k] for k in range(4)):
                gain = times[i] - _time(cand)
                key = (c[0] - costs[i][0] + 1) / max(gain, 1)
                if gain > 0 and (best is None or key < best[0]):
                    best = (key, cand, c, new)
        if best is None:
            blocked.add(i)
            # the slowest stage cannot grow: the pipeline's interval is set
            break
        _, cand, c, new = best
        cur[i], costs[i], used, times[i] = cand, c, new, _time(cand)
    return cur


def pipeline_ii(cfg: DataflowConfig) -> int:
    """The analytic interval of ``cfg`` (its slowest stage plus restart cycles)."""
    return max(_time(s) for b in cfg.blocks.values() for s in b.stages) + cfg.restart_cycles


__all__ = ["Budget", "allocate_block", "pipeline_ii"]
