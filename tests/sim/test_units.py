"""Special units: hand-computed latencies, routing, resources, and how attention cost grows with
tokens (linear attention linearly, softmax attention quadratically). The divider's arithmetic is
tested in tests/test_datapath.py."""

import numpy as np
import pytest
from _helpers import tiny_hw

from accelsim.ir import Graph, Op, OpKind, Tensor
from accelsim.ir.builders import add_linear_attention, add_softmax_attention, dw_attrs
from accelsim.sim import simulate
from accelsim.sim.resources import LUT_DIVIDER_LANE, LUT_SHIFT_LANE, estimate_resources

VEC = {"lanes": 4, "latency_cycles": 2}


def _rows(r):  # type: ignore[no-untyped-def]
    return {row.name: row for row in r.layers}


def test_softmax_unit_rows_times_passes_times_lane_chunks() -> None:
    g = Graph("sm")
    for t in ("x", "y"):
        g.add_tensor(Tensor(t, (8, 20)))
    g.add_op(Op("sm", OpKind.SOFTMAX, ("x",), ("y",), {"rows": 8, "length": 20}))
    r = simulate(g, tiny_hw(units={"vector": VEC, "softmax": {"lanes": 8, "latency_cycles": 3}}))
    # 8 rows x 2 passes x ceil(20 / 8) = 3 cycles + 3 latency (the 4 idle lanes of the last chunk count).
    assert _rows(r)["sm"].engine == "softmax" and _rows(r)["sm"].compute_cycles == 8 * 2 * 3 + 3
    r3 = simulate(
        g, tiny_hw(units={"vector": VEC, "softmax": {"lanes": 8, "latency_cycles": 3, "passes": 3}})
    )
    assert _rows(r3)["sm"].compute_cycles == 8 * 3 * 3 + 3


def _la_graph() -> Graph:
    g = Graph("la")
    add_linear_attention(g, "a", heads=2, tokens=10, hd=4)
    return g


def test_linear_attention_unit_shift_and_true_divider() -> None:
    # Per head p = ceil(T d (d+1) / macs) = ceil(200 / 16) = 13 per phase; normalisers
    # dv = ceil(T d / lanes) = ceil(40 / 4) = 10 hide behind phase 2: 2 heads x (13 + 13) + 5 + 1.
    la = {"macs": 16, "latency_cycles": 5, "divider_lanes": 4, "divider": "shift"}
    r = simulate(_la_graph(), tiny_hw(units={"vector": VEC, "linear_attention": la}))
    rows = _rows(r)
    assert rows["a.la"].engine == "linear_attention"
    assert rows["a.la"].compute_cycles == 2 * (13 + 13) + 5 + 1
    # ReLU and divide happen inside the unit: their rows cost nothing and name the unit.
    for aux in ("a.la/relu", "a.la/normalise"):
        assert rows[aux].engine == "linear_attention" and rows[aux].cycles == 0
    # Two 20-cycle-deep true dividers: dv = ceil(40 / 2) = 20 paces phase 2: 2 x (13 + 20) + 5 + 20.
    true = dict(la, divider="true", divider_lanes=2, divider_latency_cycles=20)
    r = simulate(_la_graph(), tiny_hw(units={"vector": VEC, "linear_attention": true}))
    assert _rows(r)["a.la"].compute_cycles == 2 * (13 + 20) + 5 + 20
    assert r.engine_busy_cycles["linear_attention"] == 2 * (13 + 20) + 5 + 20
    assert r.total_macs == 2 * 2 * 10 * 4 * 5


def test_linear_attention_falls_back_to_array_plus_vector() -> None:
    r = simulate(_la_graph(), tiny_hw())
    rows = _rows(r)
    assert [rows[n].engine for n in ("a.la/relu", "a.la", "a.la/normalise")] == ["vector", "array", "vector"]
    # ReLU of Q and K: 2 x (2 heads x 10 tokens x 4) = 160 elements / 4 lanes + 2; divide: 80 / 4 + 2.
    assert rows["a.la/relu"].compute_cycles == 160 // 4 + 2
    assert rows["a.la/normalise"].compute_cycles == 80 // 4 + 2
    # The two GEMMs per head on a 4x4 ws array: ReLU(K)^T [V,1] is (4x10)@(10x5): M=4, K=10, N=5
    # -> ceil(10/4) x ceil(5/4) = 6 folds of 2*4+4+4-2 = 14 cycles; ReLU(Q) KV is (10x4)@(4x5):
    # 1 x 2 folds of 2*4+4+10-2 = 20 cycles. Two heads: 2 x (84 + 40) busy cycles.
    assert r.engine_busy_cycles["array"] == 2 * (6 * 14 + 2 * 20)
    assert r.engine_busy_cycles["vector"] == 42 + 22


def _dw_graph(ch: int, hw: int, k: int, stride: int) -> Graph:
    a = dw_attrs(ch, hw, k, stride)
    oh = int(a["out_h"])  # type: ignore[call-overload]
    g = Graph("dw")
    g.add_tensor(Tensor("x", (1, ch, hw, hw)))
    g.add_tensor(Tensor("w", (ch, 1, k, k), weight=True))
    g.add_tensor(Tensor("y", (1, ch, oh, oh)))
    g.add_op(Op("dw", OpKind.DWCONV2D, ("x", "w"), ("y",), a, macs=ch * oh * oh * k * k))
    return g


@pytest.mark.parametrize(
    ("k", "stride", "expected"),
    [
        (3, 1, 4 * 16 * 1 + 4),  # 2 lanes of 9 MACs: ceil(8/2) channel groups x 4x4 outputs x 1 cycle
        (3, 2, 4 * 4 * 2 + 4),  # stride 2: 2x2 outputs, the line buffer shifts 2 columns per output
        (5, 1, 4 * 16 * 3 + 4),  # 5x5 = 25 taps on 9 multipliers: 3 cycles per output
    ],
)
def test_dwconv_engine_channel_parallel_windows(k: int, stride: int, expected: int) -> None:
    hw = tiny_hw(units={"vector": VEC, "dwconv": {"macs": 18, "kernel_macs": 9, "latency_cycles": 4}})
    r = simulate(_dw_graph(8, 4, k, stride), hw)
    assert r.layers[0].engine == "dwconv" and r.layers[0].compute_cycles == expected


def test_unit_resources_in_the_report() -> None:
    la = {"macs": 16, "divider_lanes": 4, "lut_per_mac": 40, "buffer_kib": 8}
    base = estimate_resources(tiny_hw())
    shift = estimate_resources(tiny_hw(units={"vector": VEC, "linear_attention": la}))
    true = estimate_resources(tiny_hw(units={"vector": VEC, "linear_attention": dict(la, divider="true")}))
    # packing {8: 1}: 16 MACs = 16 DSPs; LUTs 16 x 40 + 4 normaliser lanes; 8 KiB = 2 BRAM36.
    assert shift.dsp - base.dsp == 16
    assert shift.lut - base.lut == 16 * 40 + 4 * LUT_SHIFT_LANE
    assert true.lut - shift.lut == 4 * (LUT_DIVIDER_LANE - LUT_SHIFT_LANE)
    assert shift.bram36 - base.bram36 == 2
    dw = estimate_resources(
        tiny_hw(packing={8: 2}, units={"vector": VEC, "dwconv": {"macs": 18, "buffer_kib": 4}})
    )
    assert dw.dsp - estimate_resources(tiny_hw(packing={8: 2})).dsp == 9  # two INT8 MACs per DSP


# -- growth with tokens ------------------------------------------------------------------------------
def _slope(tokens: list[int], cycles: list[int]) -> float:
    return float(np.polyfit(np.log(tokens), np.log(cycles), 1)[0])


def test_linear_attention_grows_linearly_softmax_attention_quadratically() -> None:
    hw = tiny_hw(
        **{"array__rows": 16, "array__cols": 16},
        units={"vector": {"lanes": 16}, "softmax": {"lanes": 16}, "linear_attention": {"macs": 256}},
    )
    tokens = [256, 512, 1024, 2048]
    la_cyc, sm_cyc, sm_unit = [], [], []
    for t in tokens:
        g = Graph("la")
        add_linear_attention(g, "a", heads=4, tokens=t, hd=16)
        la_cyc.append(simulate(g, hw).engine_busy_cycles["linear_attention"])
        g = Graph("sm")
        add_softmax_attention(g, "a", heads=4, tokens=t, hd=16)
        r = simulate(g, hw)
        sm_cyc.append(sum(r.engine_busy_cycles.values()))
        sm_unit.append(r.engine_busy_cycles["softmax"])
    assert _slope(tokens, la_cyc) == pytest.approx(1.0, abs=0.02)
    assert _slope(tokens, sm_cyc) == pytest.approx(2.0, abs=0.05)
    # The softmax unit alone: 4 heads x T rows x 2 passes x T / 16 lanes, exactly.
    assert sm_unit == [4 * t * 2 * (t // 16) + 16 for t in tokens]


def test_the_unit_registry_is_closed() -> None:
    """Priority is explicit (an unlisted unit cannot sort first by accident), codes match the
    kernel's engine names, and every unit is a field of the config's ``units``."""
    import dataclasses

    from accelsim.config.hardware import UnitsConfig
    from accelsim.sim.engines.table import ENGINE_NAMES
    from accelsim.sim.engines.units import register_unit, registered_units

    units = registered_units()
    assert [u.name for u in units] == ["reconfigurable", "linear_attention", "dwconv", "softmax", "vector"]
    assert all(ENGINE_NAMES[u.code] == u.name for u in units)
    assert {u.name for u in units} == set(UnitsConfig.model_fields)
    vector = units[-1]
    with pytest.raises(ValueError, match="priority 3 is 'softmax'"):
        register_unit(dataclasses.replace(vector, priority=3), replace=True)
    with pytest.raises(ValueError, match="engine code 2 is not its code"):
        register_unit(dataclasses.replace(vector, code=2), replace=True)
    assert registered_units() == units


def test_the_engine_table_is_what_the_kernel_registry_and_config_derive_from() -> None:
    """One row per engine: codes are the table's positions and the kernel's ``ENG_*`` literals
    (jitted code reads its own module's), every row but the array's is a registered unit with the
    row's priority, classes and absorbed work, and a field of the config's ``units``; a config
    without that field's unit has no such unit present."""
    from accelsim.config.hardware import UnitsConfig
    from accelsim.sim import _kernels
    from accelsim.sim.engines.table import ENGINE_BY_NAME, ENGINE_NAMES, ENGINES
    from accelsim.sim.engines.units import ARRAY_CLASSES, registered_units, unit_from_table

    assert [e.code for e in ENGINES] == list(range(len(ENGINES)))
    assert ENGINE_NAMES == ("array", "vector", "softmax", "linear_attention", "dwconv", "reconfigurable")
    kernel_codes = {
        "array": _kernels.ENG_ARRAY,
        "vector": _kernels.ENG_VECTOR,
        "softmax": _kernels.ENG_SOFTMAX,
        "linear_attention": _kernels.ENG_LINATT,
        "dwconv": _kernels.ENG_DWCONV,
        "reconfigurable": _kernels.ENG_RECONF,
    }
    assert {n: ENGINE_BY_NAME[n].code for n in ENGINE_NAMES} == kernel_codes
    units = {u.name: u for u in registered_units()}
    rows = [e for e in ENGINES if e.priority is not None]
    assert [e.name for e in ENGINES if e.priority is None] == ["array"]
    assert ENGINE_BY_NAME["array"].classes == ARRAY_CLASSES
    assert {e.name for e in rows} == set(units)
    assert {e.config_field for e in rows} == set(UnitsConfig.model_fields)
    for e in rows:
        u = units[e.name]
        assert (u.code, u.priority, u.classes, u.absorbs) == (e.code, e.priority, e.classes, e.absorbs)
    # Presence is the config field being set (the vector unit is always there).
    hw = tiny_hw()
    assert [n for n, u in units.items() if u.present(hw)] == ["vector"]
    with pytest.raises(ValueError, match="'array' is not a unit"):
        unit_from_table("array", units["vector"].cycles)


def test_unit_config_classes_have_the_fields_the_table_costs_them_by() -> None:
    """The unit config classes are hand-written pydantic models, not generated from the engine
    table (generated classes would be ``Any`` to mypy and lose their field docs): this ties them.
    Each unit's class has the integer fields its ``cost`` row names; the array alone has no cost
    row, and its DSPs switch with its utilisation and its BRAM with its buffers."""
    from typing import get_args

    from accelsim.config.hardware import UnitsConfig
    from accelsim.sim.engines.table import ENGINES

    for e in ENGINES:
        acts = (e.dsp_activity, e.bram_activity, e.lut_activity)
        if e.config_field is None:
            assert e.cost is None and acts == ("utilisation", "buffers", "busy")
            continue
        assert e.cost is not None and acts == ("busy", "busy", "busy")
        annotation = UnitsConfig.model_fields[e.config_field].annotation
        (cls,) = [a for a in get_args(annotation) or (annotation,) if a is not type(None)]
        fields = cls.model_fields
        need = {e.cost.width, e.cost.lut_per, "buffer_kib"}
        need |= {"dsp_per_lane"} if e.cost.dsp == "per_lane" else set()
        need |= {"divider_lanes"} if e.cost.dividers else set()
        assert {f: fields[f].annotation for f in need if f in fields} == dict.fromkeys(need, int), e.name
        assert not e.cost.dividers or set(get_args(fields["divider"].annotation)) == {"shift", "true"}


def test_engine_resources_by_hand() -> None:
    """Per engine, from the table's cost rows: a 4-lane vector unit (1 DSP and 300 LUTs a lane),
    a reconfigurable pool of 18 MACs at two INT8 products per DSP (9 DSPs, 18 x 40 LUTs) with 4
    log2-shift normaliser lanes only while it runs linear attention, and 32 KiB = 8 BRAM36."""
    from accelsim.sim._kernels import ENG_ARRAY, ENG_RECONF, ENG_VECTOR
    from accelsim.sim.resources import engine_resources

    rec = {"macs": 18, "kernel_macs": 9, "divider_lanes": 4}
    for runs, divider_luts in ((["dwconv", "linear_attention"], 4 * LUT_SHIFT_LANE), (["dwconv"], 0)):
        hw = tiny_hw(packing={8: 2}, units={"vector": VEC, "reconfigurable": {**rec, "runs": runs}})
        r = engine_resources(hw)
        assert (r.dsp[ENG_VECTOR], r.lut[ENG_VECTOR], r.bram36[ENG_VECTOR]) == (4, 4 * 300, 0)
        assert (r.dsp[ENG_RECONF], r.lut[ENG_RECONF], r.bram36[ENG_RECONF]) == (9, 18 * 40 + divider_luts, 8)
        assert r.dsp[ENG_ARRAY] == hw.array.dsps and sum(r.dsp) == hw.array.dsps + 4 + 9
        assert estimate_resources(hw).lut == hw.control_luts + sum(r.lut) + r.epilogue.lut
