"""Numba kernel of the dataflow family: in-order II = 1 stages joined by FIFOs or ping-pong buffers.

The semantics are the shared stage-pair spec's (``SPEC_dataflow_stage.md``): an iteration issues
at the earliest cycle after the previous one where every beat it reads is readable (a FIFO beat
written at cycle c is readable from c + 1) and every beat it writes has a credit (beat k of a
FIFO of depth D waits until beat k - D was read at a cycle before: free from the cycle after);
the beat is written ``latency`` cycles after issue. Where the FIFO's full flag is checked at the
write itself (HLS pipelines: the stalled write freezes the whole pipeline), the credit is needed
only by the write's cycle: ``slack`` = latency. A ping-pong buffer of D banks hands a whole
frame over: any beat of frame f is readable once the last beat of frame f is written, and frame
f may be written once frame f - D is wholly read.

Iterations between two events (reads or writes) never stall, so the kernel steps from event to
event: a stage's time at its next event is ``last + (iteration gap)`` or the event's condition,
whichever is later. Stages are advanced in dependency order with an explicit stack: a stage that
needs a beat another stage has not computed yet pushes that stage, so every event is computed
once. A FIFO only ever holds ``depth`` beats, so its write and read times live in rings of
``depth`` entries.
"""

from __future__ import annotations

import numpy as np

from accelsim._numba import njit

#: advance() results besides a stage id: the stage has run every frame / is waiting on a stage
#: that is itself waiting on it
DONE = -1
DEADLOCK = -2


@njit(cache=True, inline="always")
def _advance(
    s, frames, ev_ptr, ev_iter, ev_edge, ev_write, ev_beat, period, lat, slack,
    e_src, e_dst, e_depth, e_pp, e_bpf, e_roff, w_ring, r_ring, wcnt, rcnt,
    wfirst, wlast, rlast, frame, pos, last_t, last_g,
):  # fmt: skip
    """Run stage ``s`` until it finishes (DONE) or needs a beat not computed yet (that stage's id)."""
    start = ev_ptr[s]
    end = ev_ptr[s + 1]
    while frame[s] < frames:
        f = frame[s]
        i = start + pos[s]
        j = i
        while j < end and ev_iter[j] == ev_iter[i]:
            j += 1
        g = f * period[s] + ev_iter[i]
        t = last_t[s] + (g - last_g[s])
        for e in range(i, j):
            ed = ev_edge[e]
            k = f * e_bpf[ed] + ev_beat[e]
            d = e_depth[ed]
            if ev_write[e] == 0:
                src = e_src[ed]
                if src >= 0:
                    if e_pp[ed] == 1:
                        if wcnt[ed] < (f + 1) * e_bpf[ed]:
                            return src
                        c = wlast[ed, f] + 1
                    else:
                        if wcnt[ed] <= k:
                            return src
                        c = w_ring[e_roff[ed] + k % d] + 1
                    if c > t:
                        t = c
            else:
                dst = e_dst[ed]
                if dst >= 0:
                    if e_pp[ed] == 1:
                        fb = f - d
                        if fb >= 0:
                            if rcnt[ed] < (fb + 1) * e_bpf[ed]:
                                return dst
                            c = rlast[ed, fb] + 1 - slack[s]
                            if c > t:
                                t = c
                    elif k - d >= 0:
                        if rcnt[ed] <= k - d:
                            return dst
                        c = r_ring[e_roff[ed] + (k - d) % d] + 1 - slack[s]
                        if c > t:
                            t = c
        for e in range(i, j):
            ed = ev_edge[e]
            k = f * e_bpf[ed] + ev_beat[e]
            slot = e_roff[ed] + k % e_depth[ed]
            last_beat = ev_beat[e] == e_bpf[ed] - 1
            if ev_write[e] == 0:
                r_ring[slot] = t
                rcnt[ed] += 1
                if last_beat:
                    rlast[ed, f] = t
            else:
                w = t + lat[s]
                w_ring[slot] = w
                wcnt[ed] += 1
                if ev_beat[e] == 0:
                    wfirst[ed, f] = w
                if last_beat:
                    wlast[ed, f] = w
        last_t[s] = t
        last_g[s] = g
        if j == end:
            frame[s] += 1
            pos[s] = 0
        else:
            pos[s] = j - start
    return DONE


@njit(cache=True)
def run_pipeline(
    ev_ptr,
    ev_iter,
    ev_edge,
    ev_write,
    ev_beat,
    period,
    lat,
    slack,
    e_src,
    e_dst,
    e_depth,
    e_pp,
    e_bpf,
    frames,
):
    """Simulate ``frames`` frames back to back.

    Args:
        ev_ptr: CSR pointer of each stage's events for one frame (n_stages + 1).
        ev_iter, ev_edge, ev_write, ev_beat: per event, sorted by iteration within a stage: the
            iteration, the edge, 1 for a write (0 read), the beat's index within the frame.
        period: iterations per frame of each stage (its loop nest plus restart cycles).
        lat: cycles from an iteration's issue to its output beat's write.
        slack: cycles an iteration may issue before its write's credit exists: 0 when the
            credit is taken at issue (the stage-pair spec), ``lat`` when the FIFO's full flag is
            checked at the write itself and stalls the whole pipeline then (HLS).
        e_src, e_dst: producer / consumer stage of each edge (-1: the always-ready source, sink).
        e_depth: FIFO depth, or banks of a ping-pong buffer (``e_pp`` 1).
        e_bpf: beats per frame of each edge.

    Returns:
        (status, wfirst, wlast): status 0, or DEADLOCK; per edge and frame the cycle its first /
        last beat is written.
    """
    n_st = period.shape[0]
    n_e = e_src.shape[0]
    e_roff = np.zeros(n_e, np.int64)
    acc = 0
    for ed in range(n_e):
        e_roff[ed] = acc
        acc += e_depth[ed]
    w_ring = np.zeros(acc, np.int64)
    r_ring = np.zeros(acc, np.int64)
    wcnt = np.zeros(n_e, np.int64)
    rcnt = np.zeros(n_e, np.int64)
    wfirst = np.full((n_e, frames), -1, np.int64)
    wlast = np.full((n_e, frames), -1, np.int64)
    rlast = np.full((n_e, frames), -1, np.int64)
    frame = np.zeros(n_st, np.int64)
    pos = np.zeros(n_st, np.int64)
    last_t = np.full(n_st, -1, np.int64)
    last_g = np.full(n_st, -1, np.int64)
    on_stack = np.zeros(n_st, np.bool_)
    stack = np.empty(n_st + 1, np.int64)
    idle = 0
    for root in range(n_st):
        if frame[root] >= frames:
            continue
        depth = 0
        stack[0] = root
        on_stack[root] = True
        while depth >= 0:
            s = stack[depth]
            before = frame[s] * (ev_ptr[s + 1] - ev_ptr[s]) + pos[s]
            r = _advance(
                s, frames, ev_ptr, ev_iter, ev_edge, ev_write, ev_beat, period, lat, slack,
                e_src, e_dst, e_depth, e_pp, e_bpf, e_roff, w_ring, r_ring, wcnt, rcnt,
                wfirst, wlast, rlast, frame, pos, last_t, last_g,
            )  # fmt: skip
            moved = frame[s] * (ev_ptr[s + 1] - ev_ptr[s]) + pos[s] != before
            idle = 0 if moved else idle + 1
            if idle > 4 * n_st + 8:
                # every stage ran several times without an event: they wait on each other
                return DEADLOCK, wfirst, wlast
            if r == DONE:
                on_stack[s] = False
                depth -= 1
            elif not on_stack[r]:
                # s waits on a stage nobody is running: run it (the stages below keep waiting)
                depth += 1
                stack[depth] = r
                on_stack[r] = True
            else:
                # s waits on r, below it on the stack: what ran above r since r stopped may be
                # what r waits for, so r retries (the stages above it are pushed again as needed)
                while stack[depth] != r:
                    on_stack[stack[depth]] = False
                    depth -= 1
    return 0, wfirst, wlast
