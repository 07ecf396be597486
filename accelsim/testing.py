"""Test doubles (not part of the public API): an analytic stand-in for a workload and the simulator.

:class:`SyntheticEvaluator` builds the :class:`~accelsim.ir.Graph` of a small ViT whose shapes and
bit widths follow the recipe (kept heads, MLP neurons and tokens, low-rank factors, per-op bits) with
the one graph builder (:func:`accelsim.ir.builders.vit_graph`), gives it an accuracy from a smooth
made-up penalty model, and times it on a roofline of a ``rows x cols`` array with the DSP48E2's real
packing table (its power: the power model's sum, :func:`accelsim.sim.power.xpe_power`, on a ZCU102's
coefficients for its DSPs and BRAM36). Its numbers are NOT a model of any real accelerator: it exists so that the search,
its storage, resume, executors and outputs can be tested (and benchmarked) in milliseconds without
torch, and so that a test can know what the front must look like. Real searches use
:class:`~accelsim.search.objective.WorkloadEvaluator`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from accelsim.config._base import Strict, validate_config
from accelsim.config.compression import CompressionRecipe
from accelsim.config.hardware import DEFAULT_PACKING, bram36_for_bytes, get_board, select_packing
from accelsim.errors import ConfigError
from accelsim.ir import Graph, Op, OpKind
from accelsim.ir.builders import vit_graph
from accelsim.search.objective import (
    HW_METRICS,
    CompressedPoint,
    HardwareResult,
    accelsim_base_hardware,
    accelsim_check_hardware,
    accelsim_simulate,
)


class SyntheticBoard(Strict):
    name: str = "synthetic"
    dsp: int = Field(default=2520, gt=0)
    bram36: int = Field(default=912, gt=0)


class SyntheticArray(Strict):
    rows: int = Field(default=32, gt=0)
    cols: int = Field(default=32, gt=0)


class SyntheticHardware(Strict):
    """The knobs of the synthetic roofline; the default board has a ZCU102's DSP and BRAM36 counts."""

    board: SyntheticBoard = Field(default_factory=SyntheticBoard)
    array: SyntheticArray = Field(default_factory=SyntheticArray)
    clock_mhz: float = Field(default=200.0, gt=0.0)
    dram_gbps: float = Field(default=19.2, gt=0.0)
    buffer_kib: int = Field(default=512, gt=0)
    vector_lanes: int = Field(default=16, gt=0)


def _pack(wbits: int, abits: int) -> int:
    """Products per DSP48E2 per cycle for these operands (the simulator's own default table)."""
    return select_packing(DEFAULT_PACKING["dsp48e2"], max(wbits, 1), max(abits, 1)).macs


class SyntheticEvaluator:
    """Analytic compression model, with the analytic roofline or accelsim's simulator for hardware.

    Args:
        depth: transformer blocks of the synthetic ViT.
        embed_dim: channels; ``heads`` of width 64 each.
        tokens: patch tokens (plus one class token).
        hardware: ``None`` for the :class:`SyntheticHardware` roofline; an accelerator config name
            or YAML path (e.g. ``"zcu102"``) to simulate the synthetic graph with
            :func:`accelsim.simulate` on that config and its knobs instead.
    """

    def __init__(
        self,
        depth: int = 4,
        embed_dim: int = 192,
        heads: int = 3,
        tokens: int = 196,
        hardware: str | None = None,
    ) -> None:
        self.depth, self.embed_dim, self.heads, self.tokens = depth, embed_dim, heads, tokens
        self.hardware = hardware

    def identity(self) -> dict[str, Any]:
        return {
            "synthetic": 1,
            "depth": self.depth,
            "embed_dim": self.embed_dim,
            "heads": self.heads,
            "tokens": self.tokens,
        }

    def base_hardware(self) -> dict[str, Any]:
        if self.hardware is not None:
            return accelsim_base_hardware(self.hardware)
        return SyntheticHardware().model_dump(mode="json")

    def check_hardware(self, config: Mapping[str, Any]) -> None:
        if self.hardware is not None:
            accelsim_check_hardware(config)
        else:
            validate_config(SyntheticHardware, dict(config), "hardware point")

    # -- compression ----------------------------------------------------------------------------
    def accuracy(self, recipe: CompressionRecipe) -> float:
        """A smooth made-up penalty model: 0.8 at FP32, lower with fewer bits and kept structures."""
        acc = 0.80
        if recipe.quant is not None:
            for op_type, weight in (
                ("qkv", 1.0),
                ("proj", 0.5),
                ("fc1", 1.0),
                ("fc2", 1.0),
                ("attn_qk", 0.7),
            ):
                wb, ab = recipe.quant.bits_for(op_type)
                acc -= weight * (0.004 * max(0, 8 - wb) ** 2 + 0.003 * max(0, 8 - ab) ** 2)
        if recipe.prune is not None:
            acc -= 0.25 * (1 - recipe.prune.heads_keep) ** 2 + 0.30 * (1 - recipe.prune.mlp_keep) ** 2
            acc -= 0.40 * (1 - recipe.prune.embed_keep) ** 2
        if recipe.tokens is not None:
            rates = recipe.tokens.keep_rates or [1.0]
            acc -= 0.20 * sum((1 - r) ** 2 for r in rates) / len(rates)
        if recipe.lowrank is not None:
            acc -= 0.20 * (1 - recipe.lowrank.rank_ratio) ** 2
        return round(max(0.0, acc), 6)

    def fidelity(self, recipe: CompressionRecipe) -> dict[str, float]:
        """Made-up fidelity to FP32 from the same penalty ``d = 0.8 - accuracy``: agreement ``1 - d``,
        KL ``d`` nats and SQNR ``-10 log10 d`` dB (capped like a real one), all monotone in ``d``."""
        from accelsim.eval.fidelity import sqnr_from_energies

        d = round(0.80 - self.accuracy(recipe), 6)
        return {"kl_div": d, "agreement": round(1.0 - d, 6), "sqnr_db": round(sqnr_from_energies(1.0, d), 6)}

    def compress(self, recipe: CompressionRecipe) -> CompressedPoint:
        graph = self.build_graph(recipe)
        return CompressedPoint(
            accuracy=self.accuracy(recipe),
            graph=graph,
            info={"macs": float(graph.total_macs)},
            fidelity=self.fidelity(recipe),
        )

    def build_graph(self, recipe: CompressionRecipe) -> Graph:
        """The synthetic ViT's Graph with the recipe's shapes and bits (:func:`vit_graph`)."""
        prune, tok, low, q = recipe.prune, recipe.tokens, recipe.lowrank, recipe.quant
        heads = max(1, round(self.heads * (prune.heads_keep if prune else 1.0)))
        if prune is not None and prune.heads_keep < 1.0 and heads == self.heads and self.heads > 1:
            heads -= 1  # any pruning below 1.0 removes at least one head, as a real pruner would
        dim = max(8, round(self.embed_dim * (prune.embed_keep if prune else 1.0)))
        hidden = max(8, round(4 * self.embed_dim * (prune.mlp_keep if prune else 1.0)))
        patch = 16
        return vit_graph(
            (dim, self.depth, heads),
            img_size=patch * math.isqrt(self.tokens),
            patch=patch,
            head_dim=64,
            hidden=hidden,
            bits_for=(q.bits_for if q is not None else lambda _: (16, 16)),
            token_keep=(tok.at_blocks, tok.keep_rates) if tok is not None else None,
            lowrank=(low.targets, low.rank_ratio) if low is not None else None,
            name="synthetic_vit",
        )

    # -- hardware -------------------------------------------------------------------------------
    def simulate(self, graph: Graph, configs: Sequence[Mapping[str, Any]]) -> list[HardwareResult]:
        if self.hardware is not None:
            return accelsim_simulate(graph, configs)
        ops = list(graph.ops())
        return [self._simulate_one(graph, ops, cfg) for cfg in configs]

    def _simulate_one(self, graph: Graph, ops: list[Op], config: Mapping[str, Any]) -> HardwareResult:
        from accelsim.sim.power import ResourceCounts, xpe_power  # the simulator package: on first use

        try:
            hw = validate_config(SyntheticHardware, dict(config), "hardware point")
        except ConfigError as e:
            return HardwareResult(dict.fromkeys(HW_METRICS, math.nan), fits=False, overflow=str(e))
        rows, cols = hw.array.rows, hw.array.cols
        bytes_per_cycle = hw.dram_gbps * 1e9 / (hw.clock_mhz * 1e6)
        cycles = array_cycles = dram_bytes = 0.0
        macs = 0
        for op in ops:
            if op.kind == OpKind.MATMUL:
                a = op.attrs
                w, x = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[0]]
                pack = _pack(w.bits, x.bits)
                folds = a["batch"] * math.ceil(a["M"] / rows) * math.ceil(a["N"] / (cols * pack))
                compute = folds * (a["K"] + rows + cols)
                # weights that do not fit the buffer are streamed from DRAM once per frame
                streamed = w.weight or w.nbytes > hw.buffer_kib * 1024
                memory = w.nbytes / bytes_per_cycle if streamed else 0.0
                cycles += max(compute, memory)
                array_cycles += compute
                dram_bytes += w.nbytes if streamed else 0
                macs += op.macs
            elif op.kind in (OpKind.SOFTMAX, OpKind.ACTIVATION):
                elements = op.attrs.get("elements", op.attrs.get("rows", 0) * op.attrs.get("length", 0))
                cycles += math.ceil(elements / hw.vector_lanes)
        latency_s = cycles / (hw.clock_mhz * 1e6)
        dsp = rows * cols + hw.vector_lanes
        # BRAM36 = max(capacity need, port need): one bank per array edge lane
        bram = max(bram36_for_bytes(hw.buffer_kib * 1024), rows + cols)
        gops = 2 * macs / latency_s / 1e9
        # power: the real model's sum on a ZCU102's coefficients, DSPs and buffers busy while the
        # array computes; the roofline counts no LUTs, so none are in it
        busy = min(array_cycles / cycles, 1.0)
        power = xpe_power(
            get_board("zcu102").power,
            hw.clock_mhz,
            ResourceCounts(dsp=dsp, bram36=bram),
            {"dsp": busy, "bram36": busy},
            dram_bytes_per_s=dram_bytes / latency_s,
            latency_s=latency_s,
            gops=gops,
        )
        metrics = {
            "fps": 1.0 / latency_s,
            "gops": gops,
            "gops_per_dsp": gops / dsp,
            "latency_ms": latency_s * 1e3,
            "dsp_used": float(dsp),
            "bram36_used": float(bram),
            "energy_mj": power.energy_mj,
            "power_w": power.total_w,
            "gops_per_watt": power.gops_per_w,
        }
        over = []
        if dsp > hw.board.dsp:
            over.append(f"dsp {dsp} > {hw.board.dsp}")
        if bram > hw.board.bram36:
            over.append(f"bram36 {bram} > {hw.board.bram36}")
        return HardwareResult(metrics, fits=not over, overflow="; ".join(over))


__all__ = ["SyntheticEvaluator", "SyntheticHardware"]
