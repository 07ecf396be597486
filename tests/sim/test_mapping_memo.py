"""A sweep reuses a mapping where the fields it changes are not read by the mapper, and only there."""

from __future__ import annotations

import numpy as np
from test_sweep import _mixed

from accelsim.config.hardware import HardwareConfig
from accelsim.sim import compile_graph, map_graph, simulate
from accelsim.sim.schedule import Schedule


def _same_mapping(a: Schedule, b: Schedule) -> None:
    """Every per-op answer of the mapper equal (the graph's and config's objects aside)."""
    for name in a.plan._fields:
        assert np.array_equal(getattr(a.plan, name), getattr(b.plan, name)), name
    for name in a.shapes._fields:
        assert np.array_equal(getattr(a.shapes, name), getattr(b.shapes, name)), name
    for name in ("engine", "eq_ptr", "eq_ops", "shape_packing", "dsp_share"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.buffer_overflow == b.buffer_overflow


def _fresh(hw: HardwareConfig) -> Schedule:
    """The mapping of a graph object never mapped before (nothing remembered)."""
    return map_graph(compile_graph(_mixed()), hw)


def test_clock_and_bandwidth_alone_reuse_the_mapping_and_it_equals_a_fresh_one() -> None:
    g = compile_graph(_mixed())
    hw = HardwareConfig.load("zcu102_trio")
    first = map_graph(g, hw)
    faster = hw.with_changes(clock_mhz=300.0, **{"dram.bandwidth_gbs": 4.0, "dram.latency_cycles": 7})
    again = map_graph(g, faster)
    assert again.plan is first.plan  # not mapped again
    assert again.hardware is faster
    _same_mapping(again, _fresh(faster))
    assert simulate(g, faster).to_dict() == simulate(_mixed(), faster).to_dict()
    # a field the mapper reads maps again
    bigger = faster.with_changes(**{"buffers.input_kib": 512})
    remapped = map_graph(g, bigger)
    assert remapped.plan is not first.plan
    _same_mapping(remapped, _fresh(bigger))


def test_with_several_dataflows_the_bandwidth_is_read_and_maps_again() -> None:
    """The mapper chooses dataflows by running the schedule, so DRAM decides: at 0.05 GB/s the
    fourth GEMM of the mixed graph runs in ``is``, at 4 GB/s in ``os``."""
    g = compile_graph(_mixed())
    base = HardwareConfig.load("zcu102").with_changes(
        **{
            "array.dataflow": ["ws", "os", "is"],
            "buffers.input_kib": 8,
            "buffers.weight_kib": 8,
            "buffers.output_kib": 8,
        }
    )
    slow, fast = (base.with_changes(**{"dram.bandwidth_gbs": bw}) for bw in (0.05, 4.0))
    a, b = map_graph(g, slow), map_graph(g, fast)
    assert a.plan.dataflow[a.plan.dataflow >= 0].tolist() == [2, 2, 2, 2, 2]
    assert b.plan.dataflow[b.plan.dataflow >= 0].tolist() == [2, 2, 2, 0, 2]
    _same_mapping(b, _fresh(fast))
    assert map_graph(g, slow).plan is a.plan  # the same fields again: remembered


def test_a_schedule_from_the_memo_has_every_field_set_as_the_constructor_would() -> None:
    import dataclasses

    from accelsim.sim import mapping

    assert mapping._FAST_SCHEDULE  # else Schedule changed: _schedule's field list wants a look
    g = compile_graph(_mixed())
    hw = HardwareConfig.load("zcu102")
    map_graph(g, hw)
    s = map_graph(g, hw.with_changes(**{"dram.bandwidth_gbs": 4.0}))  # a memo hit
    made = Schedule(*(getattr(s, f.name) for f in dataclasses.fields(Schedule)))
    assert s.__dict__ == made.__dict__ and list(s.__dict__) == list(made.__dict__)
    assert s.dsp_cycles is not None and s.array_dsp_cycles() == made.array_dsp_cycles()
