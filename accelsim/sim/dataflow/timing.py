"""Timing of a dataflow pipeline: the analytic steady state and the event-level run.

Analytic: with frames back to back, every stage runs its loop nest once per frame, so the
pipeline's initiation interval is at least the slowest stage's cycles per frame (its trip count
plus restart cycles); that stage is the bottleneck. The event run (:mod:`._kernel`) adds what
the analytic bound cannot see: the first frame's latency (fill through every stage, and stages
that need a whole tensor before they start) and back-pressure from FIFOs too shallow to decouple
neighbours, which can raise the interval above the bound. Where the FIFOs decouple the stages
the two agree (tested).

The first frame has a closed form too (:func:`first_frame`): without back-pressure an in-order
II = 1 stage issues iteration q at ``q + max(0, max over its reads j <= q of (beat_j's write + 1
- iter_j))``, a prefix maximum over its read events, so one pass over the stages in stream order
times every beat of frame 0 in NumPy. Back-pressure only delays, so this is a lower bound of the
event run's latency, and equal to it where every write of frame 0 already has its FIFO credit in
that schedule (checked beat by beat: :attr:`FirstFrame.exact`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim.config.dataflow import StageConfig
from accelsim.errors import AccelsimError
from accelsim.sim.dataflow import _kernel, _trips
from accelsim.sim.dataflow.kinds import SHAPE_FIELDS, STAGE_KINDS
from accelsim.sim.dataflow.network import Pipeline

I64 = np.int64


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
    """Every stage's kind code and shape fields as flat arrays: times many parallelism choices of
    one pipeline in one jitted call (:func:`accelsim.sim.dataflow._trips.trip_counts`) without
    building a loop nest."""

    restart_cycles: int
    codes: np.ndarray
    #: shape fields (rows, :data:`~accelsim.sim.dataflow.kinds.SHAPE_FIELDS` order) x stages
    dims: np.ndarray

    @classmethod
    def of(cls, p: Pipeline) -> TripTable:
        return cls.of_configs([s.config for s in p.stages], p.restart_cycles)

    @classmethod
    def of_configs(cls, configs: Sequence[StageConfig], restart_cycles: int = 0) -> TripTable:
        codes = np.asarray([STAGE_KINDS[c.kind].trips for c in configs], I64)
        dims = np.asarray([[getattr(c, f) or 0 for c in configs] for f in SHAPE_FIELDS], I64)
        return cls(restart_cycles, codes, dims.reshape(len(SHAPE_FIELDS), len(configs)))

    def stage_cycles(self, **changes: np.ndarray) -> np.ndarray:
        """Cycles per frame of every stage (in pipeline order), with shape fields replaced by
        ``changes`` (arrays over all stages in pipeline order, e.g. ``cip=...``)."""
        return self.slowest(**changes)[1]

    def slowest(self, **changes: np.ndarray) -> tuple[int, np.ndarray]:
        """The slowest stage's index and every stage's cycles per frame (:meth:`stage_cycles`)."""
        dims = self.dims
        if changes:
            dims = dims.copy()
            for k, v in changes.items():
                dims[_FIELD_ROW[k]] = v
        out = np.empty(self.codes.size, I64)
        worst = _trips.trip_counts(self.codes, dims, self.restart_cycles, out)
        return int(worst), out


_FIELD_ROW = {f: i for i, f in enumerate(SHAPE_FIELDS)}


def steady_state(p: Pipeline) -> SteadyState:
    """The analytic steady state of ``p`` (microseconds: no event run)."""
    cyc = np.fromiter((s.trip_cycles + p.restart_cycles for s in p.stages), np.int64, len(p.stages))
    return SteadyState(cyc, int(np.argmax(cyc)))


@dataclass(frozen=True)
class FirstFrame:
    """Frame 0 in closed form (:func:`first_frame`).

    Attributes:
        first_out, latency_cycles: as :class:`EventRun`'s (the first output beat's write cycle;
            last output's + 1).
        exact: every FIFO write had its credit in the unbounded schedule, so the event run
            gives the same cycles; False: ``latency_cycles`` is a lower bound.
    """

    first_out: int
    latency_cycles: int
    exact: bool


def first_frame(p: Pipeline, max_passes: int = 64) -> FirstFrame:
    """Frame 0's first and last output without the event kernel (module docstring).

    A pass times every stage in stream order from its inputs' write cycles and from the FIFO
    credits its writes waited for in the previous pass (none in the first); passes repeat until
    no write lacks its credit (then the schedule is the event kernel's: ``exact``), at most
    ``max_passes`` (then the latency is a lower bound)."""
    by_in: dict[tuple[int, int], int] = {}
    by_out: dict[tuple[int, int], list[int]] = {}
    for i, e in enumerate(p.edges):
        if e.dst >= 0:
            by_in[(e.dst, e.dst_port)] = i
        by_out.setdefault((e.src, e.src_port), []).append(i)
    # FIFOs whose depth can bind in frame 0, and the cycles a write may issue before its credit
    bounded = [
        i for i, e in enumerate(p.edges) if e.src >= 0 and e.dst >= 0 and not e.pingpong and e.beats > e.depth
    ]
    slack = {i: p.stages[p.edges[i].src].config.latency if p.backpressure == "write" else 0 for i in bounded}
    order = _stream_order(p, by_in)
    state = _FrameZero(p, by_in, by_out, slack)
    for _ in range(max_passes):
        state.run_pass(order)
        # beat k's write needs beat k - depth read a cycle before its issue (+ slack)
        late = [i for i in bounded if state.late(i, p.edges[i].depth)]
        state.credited.update(late)
        if not late:
            break
    out = state.written[p.sink_edge]
    assert out is not None, "the sink is fed by a stage"
    cycles, off = out
    return FirstFrame(int(cycles[0]) + off, int(cycles[-1]) + off + 1, not late)


def _stream_order(p: Pipeline, by_in: dict[tuple[int, int], int]) -> list[int]:
    """The stages in an order where every stage comes after the producers of its inputs."""
    order: list[int] = []
    placed: set[int] = set()
    pending = list(range(len(p.stages)))
    while pending:
        waiting = []
        for s in pending:
            srcs = (p.edges[by_in[(s, port)]].src for port in range(len(p.stages[s].program.reads)))
            if all(src < 0 or src in placed for src in srcs):
                order.append(s)
                placed.add(s)
            else:
                waiting.append(s)
        if len(waiting) == len(pending):
            raise AccelsimError("dataflow pipeline has a stream cycle: no stage order feeds every input")
        pending = waiting
    return order


#: per-beat cycles as ``(array, offset)``: the cycles are ``array + offset``. A repeated block's
#: instance re-timed by a shift (:meth:`_FrameZero._shifted`) keeps the first instance's arrays and
#: moves the offset, so neither the shift nor the checks that compare it with the arrays it came
#: from walk its beats (HG-PIPE's 12 blocks: most of 932 stages, 13 M beats)
Cycles = tuple[np.ndarray, int]


def _delta(a: Cycles, b: Cycles, pairs: dict[tuple[int, int], Any]) -> int | None:
    """``d`` where ``a``'s cycles are ``b``'s + ``d`` beat by beat, else None (None for no beats).
    ``pairs``: per pair of arrays compared, the two (their ids stay theirs while held) and the
    answer for offsets 0: a chain of blocks hands each instance the same arrays."""
    (x, xo), (y, yo) = a, b
    if x.size != y.size or x.size == 0:
        return None
    if x is y:
        return xo - yo
    hit = pairs.get((id(x), id(y)))
    if hit is None:
        d0 = int(x[0] - y[0])
        hit = pairs[(id(x), id(y))] = (x, y, d0 if bool((x - y == d0).all()) else None)
    d = hit[2]
    return None if d is None else d + xo - yo


class _FrameZero:
    """The passes of :func:`first_frame`. Per edge: each beat's write and issue cycles (write
    None: the always-ready source) and read cycles, as :data:`Cycles`. A stage whose inputs and
    credits are the same arrays as in the previous pass is not re-timed; an output equal to the
    previous pass's keeps the previous array, so unchanged stages stay skipped downstream."""

    def __init__(
        self,
        p: Pipeline,
        by_in: dict[tuple[int, int], int],
        by_out: dict[tuple[int, int], list[int]],
        slack: dict[int, int],
    ) -> None:
        self.p, self.by_in, self.by_out, self.slack = p, by_in, by_out, slack
        # the bounded edges whose credits a pass times writes by: those that were ever late. A
        # credit the schedule already met stays met without it (the constraints only grow, so
        # every later pass's cycles are at or after this one's), and a stage whose inputs did
        # not change then needs no second timing (HG-PIPE: 229 of 931 edges late after pass 1)
        self.credited: set[int] = set()
        self.written: dict[int, Cycles | None] = {i: None for i, e in enumerate(p.edges) if e.src < 0}
        self.issued: dict[int, Cycles] = {}
        self.read: dict[int, Cycles] = {}
        # per edge, how often its write / read cycles changed; per stage, those it was timed from
        self._wver: dict[int, int] = {}
        self._rver: dict[int, int] = {}
        self._seen: dict[int, tuple[int, ...]] = {}
        # per config and credit set: the constraints it was last timed on, its read and issue
        # cycles, and the least cycles any iteration waited (:meth:`_shifted`)
        self._timed: dict[tuple[Any, ...], tuple[list[Any], list[Cycles], list[Cycles], int]] = {}
        # per (program, port, query set): which constraint precedes each query; the instances of
        # a block share their configs, and the passes their indices
        self._index: dict[tuple[int, ...], np.ndarray] = {}
        # per (read array, issue array, depth) of a bounded edge: those arrays (their ids stay
        # theirs while held) and the largest read - issue gap of beats depth apart (:meth:`late`)
        self._gap: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray, int]] = {}
        self._pairs: dict[tuple[int, int], Any] = {}  # :func:`_delta`'s

    def late(self, ed: int, depth: int) -> bool:
        """Whether a write to bounded edge ``ed`` issued before its FIFO credit: beat k - depth read
        (+ 1 - slack) after beat k's issue. The instances of a block share the gap."""
        (r, ro), (t, to) = self.read[ed], self.issued[ed]
        key = (id(r), id(t), depth)
        hit = self._gap.get(key)
        if hit is None:
            hit = self._gap[key] = (r, t, int((r[:-depth] - t[depth:]).max()))
        return hit[2] + ro + 1 - self.slack[ed] > to

    def _lag(self, it: np.ndarray, q: np.ndarray, key: tuple[int, ...], cm: np.ndarray) -> np.ndarray:
        """Per query iteration, ``cm`` (a constraint's prefix max behind its 0) at the last
        constraint at or before it; a view where the queries are the constraint's iterations."""
        if q is it:
            return cm[1:]
        k = self._index.get(key)
        if k is None:
            k = self._index[key] = np.searchsorted(it, q, "right")
        return cm[k]

    def run_pass(self, order: list[int]) -> None:
        p, written, read = self.p, self.written, self.read
        prev_read = dict(read)
        rver = dict(self._rver)
        for s in order:
            st = p.stages[s]
            prog = st.program
            lat = st.config.latency
            ins = [self.by_in[(s, port)] for port in range(len(prog.reads))]
            credits = [
                (port, ed)
                for port in range(len(prog.writes))
                for ed in self.by_out.get((s, port), [])
                if ed in self.credited
            ]
            seen = (*(self._wver.get(ed, 0) for ed in ins), *(rver.get(ed, 0) for _, ed in credits))
            if self._seen.get(s) == seen:
                continue
            self._seen[s] = seen
            src = [written[ed] for ed in ins] + [prev_read[ed] for _, ed in credits]
            key = (id(st.config), *((port, p.edges[ed].depth) for port, ed in credits))
            hit = self._shifted(key, src)
            if hit is not None:
                delta, reads, issues = hit
                for (r, ro), ed in zip(reads, ins, strict=True):
                    self._set(read, self._rver, ed, (r, ro + delta))
                for port, (t, to) in enumerate(issues):
                    for ed in self.by_out.get((s, port), []):
                        self.issued[ed] = (t, to + delta)
                        self._set(written, self._wver, ed, (t, to + delta + lat))
                continue
            # each constraint "iteration it_j issues at c_j or later" as (its iterations, cache key,
            # prefix max of c_j - it_j behind a 0 for "none yet")
            parts = []
            for port, (it, ed) in enumerate(zip(prog.reads, ins, strict=True)):
                w = written[ed]
                if w is None:
                    continue
                if p.edges[ed].pingpong:  # a whole frame is handed over at once
                    c = np.full(it.size, int(w[0][-1]) + w[1] + 1, I64) - it
                else:
                    c = w[0] - it
                    c += w[1] + 1
                parts.append((it, (id(st.config), port, 0), _prefix_max(c)))
            for port, ed in credits:
                d = p.edges[ed].depth
                it = prog.writes[port][d:]
                r, ro = prev_read[ed]
                c = r[:-d] - it
                c += ro + 1 - self.slack[ed]
                parts.append((it, (id(st.config), -1 - port, d), _prefix_max(c)))

            def issue(q: np.ndarray, qkey: int, parts: list[Any] = parts) -> np.ndarray:
                lags = [self._lag(it, q, (*key, qkey), cm) for it, key, cm in parts]
                if len(lags) < 2:
                    return q + lags[0] if lags else q + 0
                lag = np.maximum(lags[0], lags[1])  # a new array: the first may be a view of a cm
                for more in lags[2:]:
                    np.maximum(lag, more, out=lag)
                lag += q
                return lag

            reads = [(issue(it, port), 0) for port, it in enumerate(prog.reads)]
            issues = [(issue(wi, -1 - port), 0) for port, wi in enumerate(prog.writes)]
            queries = [*prog.reads, *prog.writes]
            min_lag = min((int((t - q).min()) for (t, _), q in zip([*reads, *issues], queries, strict=True) if q.size),
                          default=0)  # fmt: skip
            # what is kept is the previous pass's arrays where the cycles did not change: the
            # block's other instances, shifted from these, then compare by offset (:func:`_delta`)
            reads = [self._set(read, self._rver, ed, r) for r, ed in zip(reads, ins, strict=True)]
            for port, w in enumerate(issues):
                w = (w[0], lat)
                for ed in self.by_out.get((s, port), []):
                    w = self._set(written, self._wver, ed, w)
                    self.issued[ed] = issues[port] = (w[0], w[1] - lat)
            self._timed[key] = (src, reads, issues, min_lag)

    def _shifted(
        self, key: tuple[Any, ...], src: list[Cycles | None]
    ) -> tuple[int, list[Cycles], list[Cycles]] | None:
        """Another instance of the stage (its block repeats) timed on constraints that were these
        all ``delta`` cycles apart: every issue cycle moves by ``delta`` too, as long as each one
        was set by a constraint (not by cycle 0) and stays at cycle 0 or later."""
        done = self._timed.get(key)
        if done is None:
            return None
        old, reads, issues, min_lag = done
        if min_lag <= 0 or len(old) != len(src):
            return None
        delta: int | None = None
        for a, b in zip(src, old, strict=True):
            if a is None or b is None:
                if a is not b:
                    return None
                continue
            d = _delta(a, b, self._pairs)
            if d is None or (delta is not None and d != delta):
                return None
            delta = d
        if delta is None or min_lag + delta < 0:
            return None
        return delta, reads, issues

    def _set(self, to: dict[int, Any], ver: dict[int, int], ed: int, new: Cycles) -> Cycles:
        """Store ``new`` as edge ``ed``'s cycles unless they equal the stored ones; what is stored."""
        old = to.get(ed)
        if old is not None and (old[0].size == new[0].size == 0 or _delta(new, old, self._pairs) == 0):
            return old
        to[ed] = new
        ver[ed] = ver.get(ed, 0) + 1
        return new


def _prefix_max(c: np.ndarray) -> np.ndarray:
    out = np.empty(c.size + 1, I64)
    out[0] = 0
    np.maximum.accumulate(c, out=out[1:])
    np.maximum(out, 0, out=out)
    return out


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


__all__ = ["EventRun", "FirstFrame", "SteadyState", "TripTable", "first_frame", "run_events", "steady_state"]
