"""Special units: hand-computed latencies, routing, resources, the log2 divider bit for bit, and
how attention cost grows with tokens (linear attention linearly, softmax attention quadratically)."""

import numpy as np
import pytest
from _helpers import tiny_hw
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.ir import Graph, Op, OpKind, Tensor
from accelsim.ir.builders import add_linear_attention, add_softmax_attention, dw_attrs
from accelsim.sim import simulate
from accelsim.sim.engines.units import (
    LUT_DIVIDER_LANE,
    LUT_SHIFT_LANE,
    linear_attention_int,
    log2_round_exponent,
    log2_round_pow2,
    log2_shift_divide,
    true_divide_round,
)
from accelsim.sim.resources import estimate_resources

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


# -- the log2 divider, bit for bit -------------------------------------------------------------------
def ref_log2_shift_divide(num: int, den: int) -> int:
    """Plain-integer reference: e = round(log2(den)); (num + 2**(e-1)) >> e (Python's >> floors)."""
    if den <= 1:
        return num
    k = den.bit_length() - 1
    e = k + (1 if den * den >= 1 << (2 * k + 1) else 0)  # den >= 2**(k + 1/2)
    return (num + (1 << (e - 1))) >> e if e > 0 else num


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-(2**40), 2**40), st.integers(-3, 2**50)), min_size=1, max_size=20))
def test_log2_shift_divide_matches_integer_reference(pairs: list[tuple[int, int]]) -> None:
    num = np.array([p[0] for p in pairs], dtype=np.int64)
    den = np.array([p[1] for p in pairs], dtype=np.int64)
    got = log2_shift_divide(num, den)
    assert got.tolist() == [ref_log2_shift_divide(n, d) for n, d in pairs]


def test_log2_exponent_is_nearest_power_of_two_in_log_domain() -> None:
    den = np.arange(1, 1 << 16, dtype=np.int64)
    assert np.array_equal(log2_round_exponent(den), np.rint(np.log2(den)).astype(np.int64))
    big = np.array([2**62 - 1, 2**61 + 2**60, 3037000499, 3037000500, 2**53 + 1], dtype=np.int64)
    ref = []
    for d in big.tolist():
        k = d.bit_length() - 1
        ref.append(k + (1 if d * d >= 1 << (2 * k + 1) else 0))
    assert log2_round_exponent(big).tolist() == ref


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 2**52), min_size=1, max_size=20))
def test_float_nearest_power_of_two_agrees_with_integer_exponent(dens: list[int]) -> None:
    # the executor's real-valued divisor and the unit's integer one round to the same power of two
    den = np.array(dens, dtype=np.int64)
    assert np.array_equal(log2_round_pow2(den.astype(np.float64)), np.exp2(log2_round_exponent(den)))


def test_float_nearest_power_of_two_by_hand() -> None:
    # 2**1.5 = 2.83: 2.8 -> 2, 2.9 -> 4; 0.3 -> 2**round(-1.74) = 1/4; den <= 0 -> 2**-1022
    got = log2_round_pow2(np.array([2.8, 2.9, 0.3, 1e-5 + 1.0, 0.0, -1.0]))
    assert got.tolist() == [2.0, 4.0, 0.25, 1.0, 2.0**-1022, 2.0**-1022]


def _ref_linear_attention(q: list, k: list, v: list, divider: str) -> list:  # type: ignore[type-arg]
    """Plain-Python integer linear attention on one head: lists of T rows of d ints."""
    t, d = len(q), len(q[0])
    relu = [[max(x, 0) for x in row] for row in k]
    kv = [
        [sum(relu[n][i] * (v[n][j] if j < d else 1) for n in range(t)) for j in range(d + 1)]
        for i in range(d)
    ]
    out = []
    for n in range(t):
        qr = [max(x, 0) for x in q[n]]
        acc = [sum(qr[i] * kv[i][j] for i in range(d)) for j in range(d + 1)]
        den = acc[d]
        if divider == "shift":
            out.append([ref_log2_shift_divide(acc[j], den) for j in range(d)])
        else:
            out.append([(2 * acc[j] + den) // (2 * den) if den > 0 else 0 for j in range(d)])
    return out


@pytest.mark.parametrize("divider", ["shift", "true"])
def test_linear_attention_unit_arithmetic_matches_reference(divider: str) -> None:
    rng = np.random.default_rng(7)
    q, k, v = (rng.integers(-128, 128, size=(3, 12, 5)) for _ in range(3))
    got = linear_attention_int(q, k, v, divider)
    for h in range(3):
        assert got[h].tolist() == _ref_linear_attention(q[h].tolist(), k[h].tolist(), v[h].tolist(), divider)
    assert np.array_equal(true_divide_round(np.array([7, 5, -5]), np.array([2, 2, 2])), [4, 3, -2])


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
