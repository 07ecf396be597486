"""A cycle-by-cycle model of the streaming stage pair of ``SPEC_dataflow_stage.md``, written to be obviously right.

A CIP x COP matmul stage feeds a LayerNorm stage through a FIFO of depth D with credit back-pressure; the source
before the matmul always has data and the sink after the LayerNorm always accepts. Shapes enter only through the
trip counts: TT = T/TP rows, CIT = CIN/CIP input-channel steps, COT = COUT/COP output-channel steps (= the
LayerNorm's CT). The RTL of ``accelsim/sim/reference/rtl/dataflow_pair.v`` and the dataflow family's event model
are both checked against this one, cycle for cycle.

Conventions (the spec's): cycle 0 is the first cycle the matmul may issue; a beat issued at cycle c is written at
c + L and readable from c + L + 1; a read at cycle c frees its slot for c + 1; the matmul may issue an iteration
that produces a beat only while (beats it issued before c) - (beats read before c) < D.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PairParams:
    """One stage pair: trip counts, pipeline depths and FIFO depth."""

    tt: int  # rows (T / TP)
    cit: int  # matmul input-channel steps (CIN / CIP)
    cot: int  # matmul output-channel steps (COUT / COP), also the LayerNorm's CT
    lm: int = 1  # matmul pipeline depth: issue to FIFO write
    ln: int = 1  # LayerNorm pipeline depth: issue to output write
    depth: int = 2  # FIFO depth D

    @property
    def matmul_trip(self) -> int:
        return self.tt * self.cot * self.cit

    @property
    def layernorm_trip(self) -> int:
        return self.tt * 3 * self.cot


@dataclass(frozen=True)
class PairTiming:
    first_out: int  # cycle the LayerNorm writes frame 0's first output beat
    last_out: tuple[int, ...]  # cycle it writes each frame's last output beat
    matmul_stalls: int  # cycles before the matmul's last issue on which it did not issue (credits)
    layernorm_stalls: int  # cycles before the LayerNorm's last issue on which it did not issue (no input)
    max_occupancy: int  # the FIFO's largest fill, at the start of a cycle

    @property
    def ii(self) -> int:
        """Steady-state interval: the last two frames' last outputs apart."""
        return self.last_out[-1] - self.last_out[-2]


def simulate_pair(p: PairParams, frames: int) -> PairTiming:
    """Run ``frames`` frames back to back through the pair, one loop iteration per stage per cycle at most."""
    if min(p.tt, p.cit, p.cot, p.lm, p.ln, p.depth, frames) < 1:
        raise ValueError(f"every trip count, depth and frames must be >= 1, got {p} and frames={frames}")
    m_total, n_total = frames * p.matmul_trip, frames * p.layernorm_trip
    m_next = n_next = 0  # next iteration index of each stage, in loop order
    m_beats = 0  # output beats the matmul has issued (written or in flight)
    writes: list[int] = []  # cycle each FIFO beat is written
    reads = written = 0  # beats read; beats written before the current cycle
    first_out = -1
    last_out: list[int] = []
    m_stalls = n_stalls = max_occ = 0
    c = 0
    while n_next < n_total:
        reads_before = reads
        while written < len(writes) and writes[written] < c:
            written += 1
        max_occ = max(max_occ, written - reads_before)
        if m_next < m_total:  # for t: for co: for ci -- the last ci of each (t, co) produces beat (t, co)
            produces = m_next % p.cit == p.cit - 1
            if not produces or m_beats - reads_before < p.depth:
                if produces:
                    writes.append(c + p.lm)
                    m_beats += 1
                m_next += 1
            else:
                m_stalls += 1
        # for t: for pass in 0..2: for c -- pass 0 reads the beat, pass 2 writes the output
        step = n_next % p.layernorm_trip
        pass_ = (step // p.cot) % 3
        if pass_ != 0 or (reads < len(writes) and writes[reads] + 1 <= c):
            if pass_ == 0:
                reads += 1
            if pass_ == 2:
                out = c + p.ln
                if first_out < 0:
                    first_out = out
                if step == p.layernorm_trip - 1:
                    last_out.append(out)
            n_next += 1
        else:
            n_stalls += 1
        c += 1
    return PairTiming(first_out, tuple(last_out), m_stalls, n_stalls, max_occ)
