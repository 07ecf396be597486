"""Timing of a dataflow pipeline: the analytic steady state and the event-level run.

Analytic: with frames back to back, every stage runs its loop nest once per frame, so the
pipeline's initiation interval is at least the slowest stage's cycles per frame (its trip count
plus restart cycles); that stage is the bottleneck. The event run (:mod:`._kernel`) adds what
the analytic bound cannot see: the first frame's latency (fill through every stage, and stages
that need a whole tensor before they start) and back-pressure from FIFOs too shallow to decouple
neighbours, which can raise the interval above the bound. Where the FIFOs decouple the stages
the two agree (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.sim.dataflow import _kernel
from accelsim.sim.dataflow.kinds import SHAPE_FIELDS, STAGE_KINDS, Dims, StageKind
from accelsim.sim.dataflow.network import Pipeline


@dataclass(frozen=True)
class SteadyState:
    """The analytic bound: per-stage cycles per frame and the slowest stage."""

    stage_cycles: np.ndarray
    bottleneck: int

    @property
    def ii_cycles(self) -> int:
        return int(self.stage_cycles[self.bottleneck])


@dataclass(frozen=True)
class EventRun:
    """The event-level run of ``frames`` frames.

    Attributes:
        first_out: cycle the first output beat of frame 0 is written (cycle 0: the first cycle
            the first stage may issue).
        last_out: per frame, the cycle its last output beat is written.
        edge_first, edge_last: per edge and frame, its first / last beat's write cycle.
    """

    first_out: int
    last_out: np.ndarray
    edge_first: np.ndarray
    edge_last: np.ndarray

    @property
    def latency_cycles(self) -> int:
        """First frame, first input in to last output out (cycles 0 .. last_out[0] inclusive)."""
        return int(self.last_out[0]) + 1

    @property
    def ii_cycles(self) -> int:
        """Steady-state interval: the last two frames' last outputs apart."""
        return int(self.last_out[-1] - self.last_out[-2])


@dataclass(frozen=True)
class TripTable:
    """Every stage's shape fields as arrays, stages sorted by kind: times many parallelism choices
    of one pipeline without building a loop nest (the kinds' closed-form ``trips``)."""

    restart_cycles: int
    #: stage index of each sorted position; the kind groups are contiguous slices of it
    order: np.ndarray
    groups: tuple[tuple[StageKind, int, int], ...]
    dims: Dims

    @classmethod
    def of(cls, p: Pipeline) -> TripTable:
        kinds = [s.config.kind for s in p.stages]
        order = np.asarray(sorted(range(len(kinds)), key=lambda i: kinds[i]), np.int64)
        dims = {
            f: np.asarray([getattr(p.stages[i].config, f) or 0 for i in order], np.int64)
            for f in SHAPE_FIELDS
        }
        groups, start = [], 0
        for i in range(1, len(order) + 1):
            if i == len(order) or kinds[order[i]] != kinds[order[start]]:
                groups.append((STAGE_KINDS[kinds[order[start]]], start, i))
                start = i
        return cls(p.restart_cycles, order, tuple(groups), dims)

    def stage_cycles(self, **changes: np.ndarray) -> np.ndarray:
        """Cycles per frame of every stage (in pipeline order), with shape fields replaced by
        ``changes`` (arrays over all stages in pipeline order, e.g. ``cip=...``)."""
        d = {**self.dims, **{k: v[self.order] for k, v in changes.items()}}
        sorted_cycles = np.empty(self.order.size, np.int64)
        for kind, a, b in self.groups:
            sorted_cycles[a:b] = kind.trips({k: d[k][a:b] for k in kind.fields})
        out = np.empty_like(sorted_cycles)
        out[self.order] = sorted_cycles
        return out + self.restart_cycles


def steady_state(p: Pipeline) -> SteadyState:
    """The analytic steady state of ``p`` (microseconds: no event run)."""
    cyc = np.fromiter((s.trip_cycles + p.restart_cycles for s in p.stages), np.int64, len(p.stages))
    return SteadyState(cyc, int(np.argmax(cyc)))


def run_events(p: Pipeline, frames: int = 3) -> EventRun:
    """Run ``frames`` frames (>= 2) through the event kernel.

    Raises:
        AccelsimError: the pipeline deadlocks (a FIFO too shallow for a stage that must read a
            whole tensor before it writes, with its producer also feeding a stage it waits on).
    """
    if frames < 2:
        raise ValueError(f"frames must be >= 2 to measure an interval, got {frames}")
    a = p.arrays
    status, wfirst, wlast = _kernel.run_pipeline(
        a["ev_ptr"], a["ev_iter"], a["ev_edge"], a["ev_write"], a["ev_beat"], a["period"], a["lat"], a["slack"],
        a["e_src"], a["e_dst"], a["e_depth"], a["e_pp"], a["e_bpf"], frames,
    )  # fmt: skip
    if status != 0:
        raise AccelsimError("dataflow pipeline deadlocks: a FIFO is too shallow for the stages around it")
    out = p.sink_edge
    return EventRun(int(wfirst[out, 0]), wlast[out].copy(), wfirst, wlast)


__all__ = ["EventRun", "SteadyState", "TripTable", "run_events", "steady_state"]
