"""The layer-pipelined dataflow family: one engine per stage, stages joined by streams.

A dataflow accelerator is described the way a FINN or fpgaConvNet user describes a streaming
design: a list of stages (an op or a fused group of ops), each with its loop shape and its
parallelism (``tp`` tokens per beat, ``cip`` / ``cop`` input / output channels per beat, ``cp``
channels per beat for layernorm, softmax and element-wise stages), its multipliers (DSP or LUT,
costed by operand bits) and where its weights live; and the buffer between two stages: a FIFO of
``depth`` beats, or a ping-pong buffer of ``depth`` whole tensors (a consumer that needs the
whole tensor before it starts). Repeated structure (a transformer block) is written once as a
block and chained in ``network``::

    dataflow:
      blocks:
        mlp:
          stages:
            - {name: ln, kind: layernorm, t: 196, tp: 2, c: 192, cp: 1, inputs: ["@in"]}
            - {name: m1, kind: matmul, t: 196, tp: 2, cin: 192, cip: 12, cout: 768, cop: 24,
               inputs: [ln]}
          output: m1
      network: [{block: mlp, repeat: 12}]

A stage's ``inputs`` name producers in the same block (``name`` for output port 0, ``name:k``
for port k, e.g. the k-th head of a head split), ``@in`` for the block's input, each either a
bare string (a FIFO of ``default_depth``) or ``{from: name, depth: 8, buffer: fifo}``. The loop
nest, ports and resource terms of every ``kind`` are one table, :mod:`accelsim.sim.dataflow.kinds`;
the simulator checks each stage's fields against it.

No torch and no numba here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from accelsim.config._base import Strict

#: where a matmul's weights live: block RAM, UltraRAM, LUTs as distributed RAM, or nowhere (the
#: weights stream in from another stage: attention's QK^T and RV)
WeightMemory = Literal["bram", "uram", "lutram", "none"]


class StreamInput(Strict):
    """One input stream of a stage: its producer and the buffer in between.

    Attributes:
        src: the producer (``name`` or ``name:port`` in the block, or ``@in``).
        depth: FIFO depth in beats (``buffer: fifo``), or banks of a whole tensor each
            (``buffer: pingpong``, 2 = double buffering).
        buffer: ``fifo`` (the consumer reads a beat one cycle after it is written) or
            ``pingpong`` (the consumer reads any beat of a frame once the producer has written all
            of it; the producer writes frame f once the consumer has read all of frame f - depth).
    """

    src: str = Field(min_length=1, alias="from")
    depth: int | None = Field(default=None, ge=1, le=1 << 24)
    buffer: Literal["fifo", "pingpong"] = "fifo"

    model_config = Strict.model_config | {"populate_by_name": True}


class StageConfig(Strict):
    """One engine of the pipeline. Which shape fields a ``kind`` needs is in its table entry
    (:data:`accelsim.sim.dataflow.kinds.STAGE_KINDS`); the others must stay unset.

    Attributes:
        name: unique in its block.
        kind: the stage kind (``matmul``, ``matmul_act``, ``weight_cache``, ``layernorm``,
            ``softmax``, ``map``, ``pack``, ``unpack``, ``split``, ``merge``, ``select``,
            ``serialize``, ``reorder``).
        t, tp: tokens per frame and tokens per beat.
        cin, cip, cout, cop: input / output channels and channels per beat (matmuls).
        c, cp: channels and channels per beat (layernorm, softmax, element-wise, adapters).
        h: heads (``split``, ``merge``). top: tokens per output beat (``reorder``).
        keep: tokens kept per frame (``select``, e.g. the class token).
        mult: ``lut`` multipliers (costed by operand bits) or ``dsp`` (packed by the board's
            DSP primitive). wbits, abits: the multiplier's operand bits.
        weights: where a matmul's weights live.
        latency: pipeline depth in cycles, issue to output beat written.
        inputs: the input streams (:class:`StreamInput`), in the kind's port order.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    kind: str = Field(min_length=1)
    t: int | None = Field(default=None, ge=1)
    tp: int | None = Field(default=None, ge=1)
    cin: int | None = Field(default=None, ge=1)
    cip: int | None = Field(default=None, ge=1)
    cout: int | None = Field(default=None, ge=1)
    cop: int | None = Field(default=None, ge=1)
    c: int | None = Field(default=None, ge=1)
    cp: int | None = Field(default=None, ge=1)
    h: int | None = Field(default=None, ge=1)
    top: int | None = Field(default=None, ge=1)
    keep: int | None = Field(default=None, ge=1)
    mult: Literal["lut", "dsp"] = "lut"
    wbits: int = Field(default=8, ge=1, le=32)
    abits: int = Field(default=8, ge=1, le=32)
    weights: WeightMemory = "bram"
    latency: int = Field(default=4, ge=1, le=1024)
    inputs: tuple[StreamInput, ...] = ()

    @field_validator("inputs", mode="before")
    @classmethod
    def _bare_names(cls, v: object) -> object:
        if isinstance(v, list | tuple):
            return [{"from": x} if isinstance(x, str) else x for x in v]
        return v


class BlockConfig(Strict):
    """A group of stages written once and instantiated in ``network`` (a transformer block)."""

    stages: tuple[StageConfig, ...] = Field(min_length=1)
    #: the stage whose output port 0 is the block's output
    output: str = Field(min_length=1)

    @model_validator(mode="after")
    def _names_resolve(self) -> BlockConfig:
        names = [s.name for s in self.stages]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"stages: name {dup[0]!r} used twice")
        if self.output not in names:
            raise ValueError(
                f"output: {self.output!r} is not a stage of the block (stages: {', '.join(names)})"
            )
        for s in self.stages:
            for i in s.inputs:
                src = i.src.split(":")[0]
                if src != "@in" and src not in names:
                    raise ValueError(
                        f"stage {s.name!r}: input {i.src!r} is neither '@in' nor a stage of the block"
                    )
        return self


class NetworkEntry(Strict):
    """``repeat`` copies of a block, chained one after another."""

    block: str = Field(min_length=1)
    repeat: int = Field(default=1, ge=1, le=1024)


class DataflowConfig(Strict):
    """The dataflow accelerator: blocks of stages and the chain of blocks (see module docstring).

    Attributes:
        blocks: the block types by name.
        network: the chain, input to output; a bare name is one instance.
        default_depth: FIFO depth of an input that does not give one (HLS's default stream is 2).
        link_depth: FIFO depth between two chained blocks.
        restart_cycles: cycles every stage spends per frame outside its pipelined loop nest (an
            HLS dataflow process's start state per invocation: ``ap_ctrl_chain`` blocks measure
            trip + 1).
        backpressure: when a write needs room in its FIFO: ``issue``, the iteration takes a
            credit when it issues, so beats in the producer's pipeline count against the depth
            (the stage-pair spec, ``SPEC_dataflow_stage.md``, what the hand-written RTL does);
            ``write``, the full flag is checked at the write itself and a full FIFO stalls the
            whole pipeline then (an HLS pipeline's stream write).
    """

    blocks: dict[str, BlockConfig] = Field(min_length=1)
    network: tuple[NetworkEntry, ...] = Field(min_length=1)
    default_depth: int = Field(default=2, ge=1)
    link_depth: int = Field(default=2, ge=1)
    restart_cycles: int = Field(default=0, ge=0, le=1024)
    backpressure: Literal["issue", "write"] = "issue"

    @field_validator("network", mode="before")
    @classmethod
    def _bare_blocks(cls, v: object) -> object:
        if isinstance(v, list | tuple):
            return [{"block": x} if isinstance(x, str) else x for x in v]
        return v

    @model_validator(mode="after")
    def _blocks_exist(self) -> DataflowConfig:
        for e in self.network:
            if e.block not in self.blocks:
                raise ValueError(
                    f"network: unknown block {e.block!r} (blocks: {', '.join(sorted(self.blocks))})"
                )
        return self


class FamilyChoice(Strict):
    """Which architecture family a search's hardware point builds (``hardware.family`` of a search
    space; its fields are knobs ``family.kind``, ``family.budget``, ...).

    Attributes:
        kind: ``overlay`` (the base config's array and units) or ``dataflow`` (one engine per op
            of the lowered model, sized by :func:`accelsim.sim.dataflow.allocate` on the base
            config's board and clock; its array fields are unused).
        budget: fraction of the board's LUT, DSP, BRAM36 and URAM the dataflow allocator may use.
        fifo_depth: depth of each engine's input FIFO (costed in the resources; the allocator's
            analytic interval assumes FIFOs that decouple the engines).
        tp: tokens per beat of every engine (where it divides the op's tokens).
        restart_cycles: cycles per frame each engine spends outside its loop nest.
    The operand bits of each engine come from the compression point (the lowered graph's tensors).
    """

    kind: Literal["overlay", "dataflow"] = "overlay"
    budget: float = Field(default=1.0, gt=0.0, le=1.0)
    fifo_depth: int = Field(default=2, ge=1, le=1 << 20)
    tp: int = Field(default=1, ge=1, le=1024)
    restart_cycles: int = Field(default=1, ge=0, le=1 << 20)


__all__ = ["BlockConfig", "DataflowConfig", "FamilyChoice", "NetworkEntry", "StageConfig", "StreamInput"]
