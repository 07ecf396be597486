"""From a :class:`~accelsim.config.dataflow.DataflowConfig` to a flat pipeline: stages, edges and the
per-event arrays the kernel runs on.

Blocks are instantiated in ``network`` order (instance ``attn3`` is the fourth ``attn``... named
``<block><i>``), each block's ``@in`` joined to the previous block's output by a FIFO of
``link_depth``; the first block's ``@in`` is the always-ready source, the last block's output the
always-ready sink. A stage output port read by several stages is a fork: every write goes to
each of its FIFOs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from accelsim.config.dataflow import DataflowConfig, StageConfig
from accelsim.errors import ConfigError
from accelsim.sim.dataflow.kinds import Program, StageKind, checked_program

I64 = np.int64


@dataclass(frozen=True)
class Stage:
    """One engine of the flat pipeline: ``block`` instance + its config, kind and loop nest."""

    name: str
    block: str
    config: StageConfig
    kind: StageKind
    program: Program

    @property
    def trip_cycles(self) -> int:
        """Iterations of one frame's loop nest (its cycles per frame without stalls)."""
        return self.program.n_iter


@dataclass(frozen=True)
class Edge:
    """A stream: producer (stage index, output port; -1 = the source), consumer (stage index,
    input port; -1 = the sink), its buffer, and its beats per frame."""

    src: int
    src_port: int
    dst: int
    dst_port: int
    depth: int
    pingpong: bool
    beats: int


@dataclass(frozen=True)
class Pipeline:
    """The flat pipeline; ``restart_cycles`` per stage per frame come from the config."""

    stages: tuple[Stage, ...]
    edges: tuple[Edge, ...]
    restart_cycles: int
    backpressure: str = "issue"

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        """The kernel's inputs (:func:`accelsim.sim.dataflow._kernel.run_pipeline`)."""
        by_in: dict[tuple[int, int], int] = {}
        by_out: dict[tuple[int, int], list[int]] = {}
        for i, e in enumerate(self.edges):
            if e.dst >= 0:
                by_in[(e.dst, e.dst_port)] = i
            if e.src >= 0:
                by_out.setdefault((e.src, e.src_port), []).append(i)
        iters, edges, writes, beats, ptr = [], [], [], [], [0]
        for si, st in enumerate(self.stages):
            it_l, ed_l, wr_l, bt_l = [], [], [], []
            for port, arr in enumerate(st.program.reads):
                it_l.append(arr)
                ed_l.append(np.full(arr.size, by_in[(si, port)], I64))
                wr_l.append(np.zeros(arr.size, I64))
                bt_l.append(np.arange(arr.size, dtype=I64))
            for port, arr in enumerate(st.program.writes):
                for ed in by_out.get((si, port), []):
                    it_l.append(arr)
                    ed_l.append(np.full(arr.size, ed, I64))
                    wr_l.append(np.ones(arr.size, I64))
                    bt_l.append(np.arange(arr.size, dtype=I64))
            it = np.concatenate(it_l)
            order = np.argsort(it, kind="stable")
            iters.append(it[order])
            edges.append(np.concatenate(ed_l)[order])
            writes.append(np.concatenate(wr_l)[order])
            beats.append(np.concatenate(bt_l)[order])
            ptr.append(ptr[-1] + it.size)
        return {
            "ev_ptr": np.asarray(ptr, I64),
            "ev_iter": np.concatenate(iters),
            "ev_edge": np.concatenate(edges),
            "ev_write": np.concatenate(writes),
            "ev_beat": np.concatenate(beats),
            "period": np.asarray([s.trip_cycles + self.restart_cycles for s in self.stages], I64),
            "lat": np.asarray([s.config.latency for s in self.stages], I64),
            "slack": np.asarray(
                [s.config.latency if self.backpressure == "write" else 0 for s in self.stages], I64
            ),
            "e_src": np.asarray([e.src for e in self.edges], I64),
            "e_dst": np.asarray([e.dst for e in self.edges], I64),
            "e_depth": np.asarray([e.depth for e in self.edges], I64),
            "e_pp": np.asarray([int(e.pingpong) for e in self.edges], I64),
            "e_bpf": np.asarray([e.beats for e in self.edges], I64),
        }

    @property
    def sink_edge(self) -> int:
        """The edge into the sink (the network's output stream)."""
        return next(i for i, e in enumerate(self.edges) if e.dst < 0)


def build_pipeline(cfg: DataflowConfig) -> Pipeline:
    """Flatten ``cfg`` into stages and edges, checking every stage against the kinds table and
    that each stream's producer writes as many beats per frame as its consumer reads.

    Raises:
        ConfigError: a stage the table rejects, an output port that does not exist, a port left
            unread or a beat-count mismatch (named by stage and port).
    """
    stages: list[Stage] = []
    pending: list[tuple[int, int, int, int, int, bool]] = []  # src, sport, dst, dport, depth, pp
    prev_out: tuple[int, int] = (-1, 0)
    counts: dict[str, int] = {}
    # per stage config (a block's instances share theirs): its kind and loop nest, checked and
    # built once (HG-PIPE: 85 configs, 932 stages)
    built: dict[int, tuple[StageKind, Program]] = {}
    for entry in cfg.network:
        block = cfg.blocks[entry.block]
        for _ in range(entry.repeat):
            inst = f"{entry.block}{counts.get(entry.block, 0)}"
            counts[entry.block] = counts.get(entry.block, 0) + 1
            local: dict[str, int] = {}
            for sc in block.stages:
                where = f"dataflow.blocks.{entry.block}.{sc.name}"
                got = built.get(id(sc))
                if got is None:
                    got = built[id(sc)] = checked_program(sc, where)
                kind, program = got
                local[sc.name] = len(stages)
                stages.append(Stage(f"{inst}.{sc.name}", inst, sc, kind, program))
            for sc in block.stages:
                dst = local[sc.name]
                for port, inp in enumerate(sc.inputs):
                    name, _, p = inp.src.partition(":")
                    depth = inp.depth or (cfg.link_depth if name == "@in" else cfg.default_depth)
                    src, sport = prev_out if name == "@in" else (local[name], int(p or 0))
                    pending.append((src, sport, dst, port, depth, inp.buffer == "pingpong"))
            prev_out = (local[block.output], 0)
    pending.append((prev_out[0], prev_out[1], -1, 0, cfg.link_depth, False))
    edges = []
    for src, sport, dst, dport, depth, pp in pending:
        if src >= 0 and sport >= len(stages[src].program.writes):
            raise ConfigError(f"stage {stages[src].name!r} has no output port {sport}")
        out_beats = stages[src].program.writes[sport].size if src >= 0 else -1
        in_beats = stages[dst].program.reads[dport].size if dst >= 0 else out_beats
        if src < 0:
            out_beats = in_beats
        if out_beats != in_beats:
            raise ConfigError(
                f"stream {stages[src].name}:{sport} -> {stages[dst].name} input {dport}: "
                f"{out_beats} beats written per frame, {in_beats} read"
            )
        edges.append(Edge(src, sport, dst, dport, depth, pp, out_beats))
    used = {(e.src, e.src_port) for e in edges}
    for si, st in enumerate(stages):
        for port in range(len(st.program.writes)):
            if (si, port) not in used:
                raise ConfigError(f"stage {st.name!r}: output port {port} is read by no stage")
    return Pipeline(tuple(stages), tuple(edges), cfg.restart_cycles, cfg.backpressure)


__all__ = ["Edge", "Pipeline", "Stage", "build_pipeline"]
