"""Physical invariants of the overlay model (issue 23): more hardware is never slower, and no
utilisation is above 1, over random designs on the five lowered models in ``tests/data/graphs``
(``accelsim lower <model> -o <model>.json`` at commit c268afb, gzipped: DeiT-T/S/B,
efficientvit_b1, Swin-T).

Each property draws a design around the default ZCU102 one and one change, and bounds how much
slower the changed design may be (in latency, ms; the bound per change is in ``SLACK``):

- one more array row or column: its skew, one cycle per op on the array (a run of folds fills and
  drains once; ``tests/sim/test_systolic.py`` holds each op's compute to it exactly), plus 0.1%
  of the frame: the tiles follow the folds, so a memory-bound op's DRAM transfers regroup and its
  stalls move (a tiling effect, not physics; the largest found in 3,400 examples: +0.054%,
  Swin-T on a 42x24 -> 43x24 ws/os array at 2.4 GB/s; +0.023% efficientvit_b1 on 16x29 -> 16x30
  ws, its compute 6,966 cycles less);
- a bigger input, weight or output buffer, more DRAM bandwidth (or one more channel with its
  share of it), a higher clock, one more dataflow listed, more vector or softmax lanes: never
  slower at all on an array of one dataflow; listing one more dataflow never, exactly (the
  search's candidates only grow). With several dataflows the per-op choice is the best of a fixed
  set of whole-schedule candidates, not the global optimum, so the other changes may move it by
  1% of the frame (the largest found in 5,607 random pairs: +0.65%, efficientvit_b1 on a 12x43
  ws/os array at 2.4 GB/s and 150 MHz, weight buffer 256 -> 512 KiB; the earlier candidate set,
  which also ran the roofline choice of each subset, had +0.75% in the first 2,500 of the same
  pairs, Swin-T on 35x69 ws/os/is, weight buffer 256 -> 512 KiB, above the 0.5% stated then; the
  issue-23 audit had +33% on DeiT-S).

Further properties, each with its bound:

- fewer bits (pipelined timing): W4A4 against W8A8 on the synthetic DeiT-T/S, and mixed precision
  (each op type its own weight and activation bits) with one op type's weights or activations
  8 -> 4: never slower;
- a softmax unit added: at most the softmax ops' extra compute on it (it may be narrower than the
  vector unit that ran them; they go to it by kind), never slower when at least as wide;
- one more DRAM channel at the same total bandwidth (not more hardware: every transfer moves a
  burst on each channel): at most a burst per channel more, plus a cycle, per transfer;
- EfficientViT-FPGA's adder-tree array and assisting pool resized: one more row or column as above,
  twice the pool's MACs never slower, and the pool never runs its own ops while it assists a GEMM.

Examples per property: 40 in CI (``ACCELSIM_PHYSICS_EXAMPLES``); explored at 250 each (1,250 drawn
designs, each a pair with its change, all passing) when these were written; the channel property
at 280 (in 80 of them measured, the largest extra 30% of its bound).
"""

from __future__ import annotations

import gzip
import json
import math
import os
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim.config.hardware import HardwareConfig
from accelsim.ir import Graph
from accelsim.ir.builders import vit_graph
from accelsim.sim import Report, map_graph, mapping, simulate
from accelsim.sim._kernels import ENG_ARRAY, ENG_RECONF
from accelsim.sim.graph_arrays import GraphArrays, compile_graph
from accelsim.sim.schedule import RunResult, run

GRAPHS = Path(__file__).parent.parent / "data" / "graphs"
MODELS = (
    "deit_tiny_patch16_224",
    "deit_small_patch16_224",
    "deit_base_patch16_224",
    "efficientvit_b1",
    "swin_tiny_patch4_window7_224",
)


@cache
def _graph(name: str) -> GraphArrays:
    with gzip.open(GRAPHS / f"{name}.json.gz", "rt") as f:
        return compile_graph(Graph.from_dict(json.load(f)))


@cache
def _base() -> HardwareConfig:
    return HardwareConfig.load("zcu102")


designs = st.fixed_dictionaries(
    {
        "array.rows": st.integers(4, 48),
        "array.cols": st.integers(4, 80),
        "array.dataflow": st.sampled_from(["ws", "os", "is", ["ws", "os"], ["os", "is"], ["ws", "os", "is"]]),
        "buffers.input_kib": st.sampled_from([32, 64, 128, 256]),
        "buffers.weight_kib": st.sampled_from([32, 64, 128, 256]),
        "buffers.output_kib": st.sampled_from([64, 128, 256, 512]),
        "dram.bandwidth_gbs": st.sampled_from([2.4, 4.8, 9.6, 19.2]),
        "clock_mhz": st.sampled_from([150, 200, 300]),
        "units.vector.lanes": st.sampled_from([16, 32, 64]),
        "units.softmax": st.sampled_from([None, {"lanes": 16}, {"lanes": 32}]),
        "dram.channels": st.sampled_from([1, 2]),
    }
)


def _more(hw: HardwareConfig, change: str) -> HardwareConfig:
    a, b = hw.array, hw.buffers
    return hw.with_changes(
        **{
            "row": {"array.rows": a.rows + 1},
            "col": {"array.cols": a.cols + 1},
            "input": {"buffers.input_kib": 2 * b.input_kib},
            "weight": {"buffers.weight_kib": 2 * b.weight_kib},
            "output": {"buffers.output_kib": 2 * b.output_kib},
            "bandwidth": {"dram.bandwidth_gbs": 2 * hw.dram_cfg.bandwidth_gbs},
            "clock": {"clock_mhz": 1.25 * hw.clock_mhz},
            "dataflow": {
                "array.dataflow": [*a.dataflows, *(d for d in ("ws", "os", "is") if d not in a.dataflows)][:3]
            },
            "vector": {"units.vector.lanes": 2 * hw.units.vector.lanes},
            # twice the softmax unit's lanes (without one, the vector unit runs the softmax: twice
            # its lanes). Adding a softmax unit narrower than the vector unit is slower: the softmax
            # goes to its unit by kind (found by this test; not a change of more hardware here).
            "softmax": {"units.softmax": {"lanes": 2 * hw.units.softmax.lanes}}
            if hw.units.softmax
            else {"units.vector.lanes": 2 * hw.units.vector.lanes},
            # one more channel brings its share of bandwidth
            "channels": {
                "dram.channels": hw.dram_cfg.channels + 1,
                "dram.bandwidth_gbs": hw.dram_cfg.bandwidth_gbs
                * (hw.dram_cfg.channels + 1)
                / hw.dram_cfg.channels,
            },
        }[change]
    )


#: cycles the changed design may add, per op on the array (its skew), and as a share of the frame
SLACK = {"row": 1, "col": 1}
REGROUP = {"row": 1e-3, "col": 1e-3}
CHANGES = (
    "row", "col", "input", "weight", "output", "bandwidth", "channels", "clock", "dataflow", "vector", "softmax",
)  # fmt: skip

#: examples per property (CI: 40; ``ACCELSIM_PHYSICS_EXAMPLES=1000`` explores further)
EXAMPLES = int(os.environ.get("ACCELSIM_PHYSICS_EXAMPLES", "40"))
physics = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_utilisation(ga: GraphArrays, hw: HardwareConfig) -> None:
    schedule = map_graph(ga, hw)
    res = run(schedule)
    total = res.total_cycles
    a = res.arrays
    # no engine computes more cycles than the frame has, no DSP more MACs than it can
    assert (a.busy <= total).all()
    on_array = schedule.engine == ENG_ARRAY
    assert schedule.array_dsp_cycles() <= total * hw.array.dsps * (1 + 1e-12)
    # per op: its DSP-cycles fit in its busy span on the array
    span = (a.end - a.start)[on_array]
    dsp_cycles = (ga.macs * schedule.dsp_share / schedule.plan.pack)[on_array]
    assert (dsp_cycles <= np.maximum(span, 0) * hw.array.dsps * (1 + 1e-12) + 1e-9).all()


@physics
@given(st.sampled_from(MODELS), designs, st.sampled_from(CHANGES))
def test_more_hardware_is_never_slower(model: str, design: dict, change: str) -> None:
    ga = _graph(model)
    hw = _base().with_changes(**design)
    more = _more(hw, change)
    r0, r1 = simulate(ga, hw), simulate(ga, more)
    n_array = sum(1 for row in r0.layers if row.engine == "array")
    slack_ms = SLACK.get(change, 0) * n_array / (more.clock_mhz * 1e3)
    search = 1e-2 if len(hw.array.dataflows) > 1 and change != "dataflow" else 0.0
    bound = r0.latency_ms * (1 + 1e-12 + REGROUP.get(change, 0) + search) + slack_ms
    assert r1.latency_ms <= bound, (model, design, change)
    for r in (r0, r1):
        assert 0.0 <= r.array_utilization <= 1.0
        assert all(u <= 1.0 for u in r.engine_utilization.values())
    _check_utilisation(ga, hw)


@physics
@given(designs, st.sampled_from(["tiny", "small"]))
def test_fewer_bits_are_never_slower(design: dict, size: str) -> None:
    # Pipelined timing: W4A4 packs at least as many products per DSP as W8A8 (the board's packing
    # table; DSP48E2: four INT4 products, two INT8) and moves half the bytes.
    hw = _base().with_changes(
        **design, **{"packing": [{"wbits": 4, "abits": 4, "m": 2, "n": 2}, {"wbits": 8, "abits": 8, "n": 2}]}
    )
    r8 = simulate(vit_graph(size, bits=8), hw)
    r4 = simulate(vit_graph(size, bits=4), hw)
    assert r4.total_cycles <= r8.total_cycles


@physics
@given(designs, st.sampled_from(["tiny", "small"]), st.integers(0, 2**16 - 1), st.sampled_from(["w", "a"]))
def test_fewer_bits_on_one_layer_are_never_slower(design: dict, size: str, seed: int, operand: str) -> None:
    # Mixed precision, as the search's compression makes it: each op type its own weight and
    # activation bits (4 or 8); then one op type's weights or activations drop 8 -> 4. Pipelined
    # timing: fewer bits pack at least as many products per DSP (select_packing) and move fewer bytes.
    types = ("qkv", "proj", "fc1", "fc2", "attn_qk", "attn_av", "conv", "head")
    bits = {
        t: (4 + 4 * ((seed >> (2 * j)) & 1), 4 + 4 * ((seed >> (2 * j + 1)) & 1)) for j, t in enumerate(types)
    }
    lowered = dict(bits)
    eights = [t for t in types if bits[t][0 if operand == "w" else 1] == 8]
    if eights:
        t = eights[seed % len(eights)]
        lowered[t] = (4, bits[t][1]) if operand == "w" else (bits[t][0], 4)
    hw = _base().with_changes(
        **design, **{"packing": [{"wbits": 4, "abits": 4, "m": 2, "n": 2}, {"wbits": 8, "abits": 8, "n": 2}]}
    )
    r8 = simulate(vit_graph(size, bits_for=bits.__getitem__), hw)
    r4 = simulate(vit_graph(size, bits_for=lowered.__getitem__), hw)
    assert r4.total_cycles <= r8.total_cycles, (bits, lowered)


def _softmax_compute(r: Report) -> int:
    return sum(row.compute_cycles for row in r.layers if row.kind == "softmax")


@physics
@given(st.sampled_from(MODELS), designs, st.sampled_from([4, 8, 16, 32, 64, 128]))
def test_a_softmax_unit_costs_at_most_its_own_extra_cycles(model: str, design: dict, lanes: int) -> None:
    # A softmax unit takes every softmax (by kind), also where it has fewer lanes than the vector
    # unit that ran them without it: the frame may be slower, by at most the softmax ops' extra
    # compute on it (they run one at a time on it, and nothing else waits on the unit); as wide as
    # the vector unit or wider, never slower. (Routing each softmax to the faster unit moved the
    # published designs 12-16%; not done.)
    ga = _graph(model)
    hw = _base().with_changes(**{**design, "units.softmax": None})
    r0 = simulate(ga, hw)
    r1 = simulate(ga, hw.with_changes(**{"units.softmax": {"lanes": lanes}}))
    extra = max(0, _softmax_compute(r1) - _softmax_compute(r0))
    if lanes >= hw.units.vector.lanes:
        assert extra == 0
    assert r1.total_cycles <= r0.total_cycles + extra, (model, design, lanes)


@physics
@given(st.sampled_from(MODELS), designs)
def test_one_more_dram_channel_at_the_same_bandwidth_costs_at_most_its_bursts(
    model: str, design: dict
) -> None:
    # bandwidth_gbs is the total over the channels; a transfer moves whole bursts on every channel,
    # so one more channel at the same total is not more hardware: each transfer (a load and a store
    # per tile at most) may take one burst per channel more, rounded up, plus a cycle. (With its
    # share of bandwidth, test_more_hardware_is_never_slower: never slower.)
    ga = _graph(model)
    hw = _base().with_changes(**design)
    more = hw.with_changes(**{"dram.channels": hw.dram_cfg.channels + 1})
    s0 = map_graph(ga, hw)
    c0, c1 = run(s0).total_cycles, simulate(ga, more).total_cycles
    burst = more.dram_cfg.burst_bytes * more.dram_cfg.channels
    bound = 2 * s0.n_tiles * (math.ceil(burst / hw.dram_bytes_per_cycle()) + 1)
    search = 1e-2 * c0 if len(hw.array.dataflows) > 1 else 0.0
    assert c1 <= c0 + bound + search, (model, design)


def test_the_models_load_and_simulate() -> None:
    # the saved graphs are the lowered models, MACs as torch's flop counter has them
    macs = {m: _graph(m).total_macs for m in MODELS}
    assert macs == {
        "deit_tiny_patch16_224": 1_253_683_200,
        "deit_small_patch16_224": 4_598_882_304,
        "deit_base_patch16_224": 17_563_828_224,
        "efficientvit_b1": 519_214_592,
        "swin_tiny_patch4_window7_224": 4_490_566_656,
    }
    assert simulate(_graph("deit_tiny_patch16_224"), _base()).total_macs == macs["deit_tiny_patch16_224"]


def test_the_issue_cases() -> None:
    # Issue 23's cases, each with its figure before the fix in the comment.
    dt = _graph("deit_tiny_patch16_224")
    hw = _base().with_changes(
        **{"array.rows": 32, "array.cols": 48, "array.dataflow": ["ws", "os", "is"], "dram.bandwidth_gbs": 4.8,
           "clock_mhz": 300}
    )  # fmt: skip
    # one more row: was 488,377 -> 632,568 cycles (+29.5%), the roofline's dataflow choice (484,962
    # with the earlier candidate set, which also ran the roofline choice of every subset)
    assert simulate(dt, hw).total_cycles == 488_010
    assert simulate(dt, hw.with_changes(**{"array.rows": 33})).total_cycles == 483_824
    # every subset of the dataflows: a superset is never slower
    subsets = [["ws"], ["os"], ["is"], ["ws", "os"], ["ws", "is"], ["os", "is"], ["ws", "os", "is"]]
    cycles = {tuple(s): simulate(dt, hw.with_changes(**{"array.dataflow": s})).total_cycles for s in subsets}
    for small in cycles:
        for big in cycles:
            if set(small) < set(big):
                assert cycles[big] <= cycles[small], (small, big)
    # a bigger weight buffer on DeiT-S (the issue's +33% config is not given): the largest found at
    # c268afb in 32,000 random pairs through with_changes (weight buffer x2 to x16): 9x120 [ws, os]
    # at 2.4 GB/s and 150 MHz, 128 -> 1024 KiB, was 3,354,579 -> 4,203,676 cycles (+25.3%)
    ds = _graph("deit_small_patch16_224")
    hw_s = _base().with_changes(
        **{"array.rows": 9, "array.cols": 120, "array.dataflow": ["ws", "os"], "buffers.input_kib": 32,
           "buffers.weight_kib": 128, "dram.bandwidth_gbs": 2.4, "clock_mhz": 150}
    )  # fmt: skip
    assert simulate(ds, hw_s).total_cycles == 3_312_123
    assert simulate(ds, hw_s.with_changes(**{"buffers.weight_kib": 1024})).total_cycles == 3_290_036
    # os partial folds drain only their rows: was 3,282,393 -> 3,654,197 (+11.3%) from 32x16 to 128x16
    ev = _graph("efficientvit_b1")
    os_ = _base().with_changes(**{"array.rows": 32, "array.cols": 16, "array.dataflow": "os"})
    assert simulate(ev, os_).total_cycles == 3_069_895
    assert simulate(ev, os_.with_changes(**{"array.rows": 128})).total_cycles == 2_744_842


def test_the_pool_is_in_one_place_at_a_time() -> None:
    # EfficientViT-FPGA's pool runs the depthwise convs and the linear attention and assists the
    # array's GEMMs between them: no assisted GEMM runs while one of the pool's own ops does (before
    # the fix 5.9% of the frame's cycles had the pool in two places), and assisting never costs time.
    ga = _graph("efficientvit_b1")
    hw = HardwareConfig.load("published/efficientvit_fpga")
    schedule = map_graph(ga, hw)
    a = run(schedule).arrays
    assisted = np.flatnonzero((schedule.engine == ENG_ARRAY) & (schedule.dsp_share < 1.0))
    pool = np.flatnonzero(schedule.engine == ENG_RECONF)
    assert assisted.size == 32 and pool.size > 0
    for i in assisted:
        assert not (
            (a.start[pool] < a.end[i]) & (a.end[pool] > a.start[i]) & (a.end[pool] > a.start[pool])
        ).any()
    alone = simulate(ga, hw.with_changes(**{"units.reconfigurable.assists_gemm": False})).total_cycles
    # 492_956: the adder-tree engine's fill is depth - 1 cycles (test_rtl_tree.py), was 492_989
    assert run(schedule).total_cycles == 492_956 <= alone


def _double_booked(schedule: mapping.Schedule) -> int:
    """Cycles in which an assisted GEMM and one of the pool's own ops run at once (summed over pairs)."""
    a = run(schedule).arrays
    assisted = np.flatnonzero((schedule.engine == ENG_ARRAY) & (schedule.dsp_share < 1.0))
    pool = np.flatnonzero(schedule.engine == ENG_RECONF)
    both = np.minimum(a.end[assisted][:, None], a.end[pool][None, :]) - np.maximum(
        a.start[assisted][:, None], a.start[pool][None, :]
    )
    return int(np.maximum(both, 0).sum())


def test_the_assist_cases() -> None:
    # Issue 23's assist case class, found at c268afb by random design pairs through with_changes
    # (5,500 pairs of one to 16 more rows on efficientvit_b1, EfficientViT-FPGA's adder-tree array
    # and pool resized; the issue's +8.1% itself was not found, +6.8% the largest): one more row
    # (10 -> 11 lanes) was 339,208 -> 359,114 cycles (+5.9%), the assist split by peak rates, and the
    # pool ran its own ops while it assisted in 9.3% of the cycles (8.4% with 11 rows).
    ga = _graph("efficientvit_b1")
    hw = HardwareConfig.load("published/efficientvit_fpga").with_changes(
        **{"array.rows": 10, "array.cols": 8, "array.tree": 4, "units.reconfigurable.macs": 2048,
           "buffers.weight_kib": 128, "buffers.input_kib": 256}
    )  # fmt: skip
    wider = hw.with_changes(**{"array.rows": 11})
    assert [simulate(ga, h).total_cycles for h in (hw, wider)] == [393_678, 380_435]
    assert _double_booked(map_graph(ga, hw)) == 0 and _double_booked(map_graph(ga, wider)) == 0


pool_designs = st.fixed_dictionaries(
    {
        "array.rows": st.integers(4, 32),
        "array.cols": st.integers(2, 16),
        "array.tree": st.sampled_from([4, 8, 16]),
        "units.reconfigurable.macs": st.sampled_from([256, 512, 1024, 2048]),
        "dram.bandwidth_gbs": st.sampled_from([4.8, 9.6, 19.2]),
        "buffers.weight_kib": st.sampled_from([64, 128, 256]),
        "buffers.input_kib": st.sampled_from([64, 128, 256]),
        "clock_mhz": st.sampled_from([150, 200, 300]),
    }
)


@physics
@given(pool_designs, st.sampled_from(["row", "col", "pool"]))
def test_the_assisting_pool_is_physical(design: dict, change: str) -> None:
    # EfficientViT-FPGA's array and pool resized: one more row or column of the array costs at
    # most its skew (as in test_more_hardware_is_never_slower); twice the pool's MACs is never
    # slower; and the pool never runs its own ops while it assists a GEMM.
    ga = _graph("efficientvit_b1")
    hw = HardwareConfig.load("published/efficientvit_fpga").with_changes(**design)
    more = {
        "row": {"array.rows": hw.array.rows + 1},
        "col": {"array.cols": hw.array.cols + 1},
        "pool": {"units.reconfigurable.macs": 2 * design["units.reconfigurable.macs"]},
    }[change]
    s0, s1 = map_graph(ga, hw), map_graph(ga, hw.with_changes(**more))
    c0, c1 = run(s0).total_cycles, run(s1).total_cycles
    n_array = int((s0.engine == ENG_ARRAY).sum())
    slack = 0 if change == "pool" else n_array + REGROUP["row"] * c0
    assert c1 <= c0 + slack, (design, change, c0, c1)
    assert _double_booked(s0) == 0 and _double_booked(s1) == 0


def _exhaustive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every candidate of the mapper's search run: its lower bounds all 0."""
    monkeypatch.setattr(mapping._LowerBound, "of_mask", lambda self, mask, assist: 0.0)
    monkeypatch.setattr(mapping._LowerBound, "of_choice", lambda self, col, assisted: 0.0)


@pytest.mark.parametrize(
    ("model", "changes"),
    [
        ("deit_small_patch16_224", {"array.rows": 19, "array.cols": 79, "dram.bandwidth_gbs": 9.6}),
        ("deit_small_patch16_224", {"array.rows": 42, "array.cols": 64, "dram.bandwidth_gbs": 2.4}),
        ("efficientvit_b1", {"array.rows": 30, "array.cols": 53, "dram.bandwidth_gbs": 4.8,
                             "clock_mhz": 150}),
        ("swin_tiny_patch4_window7_224", {"array.rows": 14, "array.cols": 79, "buffers.weight_kib": 32}),
        ("efficientvit_b1", {"units.reconfigurable": {"macs": 256, "runs": ["dwconv"], "assists_gemm": True},
                             "array.rows": 17, "array.cols": 65, "dram.bandwidth_gbs": 4.8}),
    ],
)  # fmt: skip
def test_the_search_skips_only_runs_that_cannot_win(
    model: str, changes: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mapper runs a candidate only if a lower bound on its cycles is below the best so far:
    # the bound holds for every candidate (each run's cycles are at least its bound), and the
    # schedule chosen is the one that running every candidate chooses.
    ga = _graph(model)
    hw = _base().with_changes(**{"array.dataflow": ["ws", "os", "is"], **changes})
    ran: list[tuple[float, int]] = []
    real_run = mapping.run

    def checked(schedule: mapping.Schedule) -> RunResult:
        res = real_run(schedule)
        col = np.searchsorted(schedule.shapes.dataflow[0], schedule.plan.dataflow)  # columns by code
        ran.append((bound_of[0].of_choice(col, schedule.dsp_share < 1.0), res.total_cycles))
        return res

    bound_of: list[mapping._LowerBound] = []
    real_bound = mapping._LowerBound.__init__

    def keep(self: mapping._LowerBound, *args: object) -> None:
        real_bound(self, *args)  # type: ignore[arg-type]
        bound_of.append(self)

    with monkeypatch.context() as m:
        m.setattr(mapping._LowerBound, "__init__", keep)
        m.setattr(mapping, "run", checked)
        pruned = map_graph(ga, hw)
    assert ran and all(b <= c for b, c in ran), ran
    with monkeypatch.context() as m:
        _exhaustive(m)
        every = map_graph(ga, hw)
    assert (pruned.plan.dataflow == every.plan.dataflow).all()
    assert (pruned.dsp_share == every.dsp_share).all()
    assert run(pruned).total_cycles == run(every).total_cycles
