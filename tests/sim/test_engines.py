"""The engine kinds published FPGA ViT accelerators build: the adder tree, the reconfigurable shared
engine, LUT multipliers, fused epilogues. Hand-computed cycles and resources."""

from __future__ import annotations

import pytest
from _helpers import chain_graph, matmul_graph, tiny_hw

from accelsim.errors import ConfigError
from accelsim.ir import Graph, Op, OpKind, Tensor
from accelsim.ir.builders import add_linear_attention, dw_attrs
from accelsim.sim import map_graph, simulate
from accelsim.sim.engines.systolic import adder_tree_busy_cycles
from accelsim.sim.resources import estimate_resources

VEC = {"lanes": 4, "latency_cycles": 2}
BIG = {"buffers__input_kib": 64, "buffers__weight_kib": 64, "buffers__output_kib": 64}


def _rows(r):  # type: ignore[no-untyped-def]
    return {row.name: row for row in r.layers}


def test_adder_tree_by_hand() -> None:
    # 4 lanes x 3 output channels x trees of 8, no packing. C[20,12] = A[20,30] B[30,12]:
    # ceil(20/4) = 5 token blocks x ceil(12/3) = 4 channel blocks x ceil(30/8) = 4 reduction steps
    # = 80 steps, one a cycle; the last accumulates 1 + log2(8) = 4 cycles after it issues
    # (multiplier register, 3 adder levels): cycles 0..83.
    assert adder_tree_busy_cycles(20, 30, 12, 1, 4, 3, 8, 1, 1, 1) == (84, 4, 4)
    # a tree of 1 is a plain MAC lane: multiply, then accumulate one cycle later
    assert adder_tree_busy_cycles(2, 3, 1, 1, 1, 1, 1, 1, 1, 1) == (6 + 1, 3, 1)
    # two INT8 products per DSP share the activation: 6 output channels per lane-step
    assert adder_tree_busy_cycles(20, 30, 12, 2, 4, 3, 8, 1, 1, 2) == (2 * 5 * 2 * 4 + 4, 4, 2)
    hw = tiny_hw(array={"rows": 4, "cols": 3, "kind": "adder_tree", "tree": 8}, **BIG)
    r = simulate(matmul_graph(20, 30, 12), hw)
    row = r.layers[0]
    assert row.engine == "array" and row.dataflow == "tree"
    assert row.compute_cycles == 84 - 1  # the array's convention: index of the last busy cycle
    assert row.scalesim_mapping_efficiency is None  # SCALE-Sim's figures are for systolic arrays
    assert estimate_resources(hw).dsp == 4 * 3 * 8 + 4  # the engine's multipliers + 4 vector lanes


def test_adder_tree_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"tree: 4 is for kind: adder_tree"):
        tiny_hw(array={"rows": 4, "cols": 4, "tree": 4})


def _dw_and_la() -> Graph:
    g = Graph("dw_la")
    for n, shape in (("x", (1, 16, 8, 8)), ("w", (16, 1, 3, 3)), ("y", (1, 16, 8, 8))):
        g.add_tensor(Tensor(n, shape, weight=n == "w"))
    g.add_op(Op("dw", OpKind.DWCONV2D, ("x", "w"), ("y",), dw_attrs(16, 8)))
    add_linear_attention(g, "a", heads=2, tokens=10, hd=4)
    return g.validate()


def test_one_reconfigurable_pool_runs_depthwise_convs_and_linear_attention() -> None:
    rec = {"macs": 18, "kernel_macs": 9, "latency_cycles": 4, "divider_lanes": 4, "divider": "shift"}
    hw = tiny_hw(units={"vector": VEC, "reconfigurable": rec}, **BIG)
    rows = _rows(simulate(_dw_and_la(), hw))
    # depthwise: 18 // 9 = 2 channel lanes, 3x3 window per cycle: ceil(16/2) x 64 pixels + 4
    assert rows["dw"].engine == "reconfigurable" and rows["dw"].compute_cycles == 8 * 64 + 4
    # linear attention with the same 18 MACs: p = ceil(10 x 4 x 5 / 18) = 12 per phase,
    # dv = ceil(40 / 4) = 10 behind phase 2: 2 heads x (12 + 12) + 4 + 1 (shift)
    assert rows["a.la"].engine == "reconfigurable" and rows["a.la"].compute_cycles == 2 * 24 + 4 + 1
    assert rows["a.la/relu"].cycles == 0  # ReLU and divide done inside it
    # its 18 multipliers are counted once (9 DSPs at two INT8 products each), whatever it runs
    pack2 = {"packing": {8: 2}}
    both = estimate_resources(tiny_hw(units={"vector": VEC, "reconfigurable": rec}, **pack2)).dsp
    dedicated = estimate_resources(
        tiny_hw(
            units={"vector": VEC, "dwconv": {"macs": 18, "kernel_macs": 9}, "linear_attention": {"macs": 18}},
            **pack2,
        )
    ).dsp
    assert both == 16 + 4 + 9 and dedicated == 16 + 4 + 9 + 9
    # a pool that runs only depthwise convs leaves linear attention to the array and vector unit
    only_dw = tiny_hw(units={"vector": VEC, "reconfigurable": {**rec, "runs": ["dwconv"]}}, **BIG)
    rows = _rows(simulate(_dw_and_la(), only_dw))
    assert rows["dw"].engine == "reconfigurable" and rows["a.la"].engine == "array"


def test_lut_multipliers_take_their_share_of_the_output_channels() -> None:
    # 64x64 @ 64x64 on a 4x4 ws array with 16 LUT MACs taking a quarter of the output channels:
    # N = 48 on the array, 16 on the LUTs (64 x 64 x 16 / 16 = 4096 cycles + 4 latency); the op takes
    # the longer of the two.
    lut = {"macs": 16, "fraction": 0.25, "latency_cycles": 4}
    arr = {"rows": 4, "cols": 4, "dataflow": "ws", "timing": "pipelined"}
    with_lut = simulate(matmul_graph(64, 64, 64), tiny_hw(array={**arr, "lut_macs": lut}, **BIG)).layers[0]
    dsp_part = simulate(matmul_graph(64, 64, 48), tiny_hw(array=arr, **BIG)).layers[0]
    assert with_lut.compute_cycles == max(dsp_part.compute_cycles + 1, 4096 + 4) - 1
    hw = tiny_hw(array={**arr, "lut_macs": lut})
    res = estimate_resources(hw)
    assert res.dsp == 16 + 4  # LUT multipliers cost no DSPs ...
    assert res.lut == estimate_resources(tiny_hw(array=arr)).lut + 16 * 30  # ... but LUTs
    assert hw.peak_macs_per_cycle(8) == 16 + 16


def test_activation_in_the_drain_path_costs_nothing_and_stays_on_chip() -> None:
    g = chain_graph(64, 16, 64)  # fc1 -> gelu -> fc2
    plain = tiny_hw(**BIG)
    fused = tiny_hw(epilogue={"activation": True}, **BIG)
    a, b = _rows(simulate(g, plain)), _rows(simulate(g, fused))
    assert a["gelu"].engine == "vector" and a["gelu"].compute_cycles > 0
    assert b["gelu"].engine == "none" and b["gelu"].cycles == 0
    assert simulate(g, fused).total_cycles < simulate(g, plain).total_cycles
    # fc1's output never leaves the engine, so nothing of it is stored; gelu's output is what fc2
    # reads, and it stays on chip as before
    s = map_graph(g, fused)
    fc1 = s.graph.names.index("fc1")
    assert s.plan.store[fc1] == 0


def test_layernorm_statistics_gathered_while_the_producer_streams() -> None:
    g = Graph("ln")
    for n, shape, w in (
        ("x", (8, 32), False),
        ("w", (32, 32), True),
        ("h", (8, 32), False),
        ("y", (8, 32), False),
    ):
        g.add_tensor(Tensor(n, shape, weight=w))
    g.add_op(Op("fc", OpKind.MATMUL, ("x", "w"), ("h",), {"M": 8, "K": 32, "N": 32}))
    g.add_op(Op("ln", OpKind.LAYERNORM, ("h",), ("y",), {"rows": 8, "length": 32}))
    # 256 elements on 4 lanes: 3 passes = 192 cycles + 2; with the statistics gathered upstream, 1 pass
    assert _rows(simulate(g, tiny_hw(**BIG)))["ln"].compute_cycles == 192 + 2
    stats = tiny_hw(epilogue={"layernorm_stats": True}, **BIG)
    assert _rows(simulate(g, stats))["ln"].compute_cycles == 64 + 2


def _scaled_query() -> Graph:
    """qkv GEMM -> split -> * d**-0.5 -> matmul: the scale folds into the GEMM's requantisation."""
    g = Graph("qscale")
    for n, shape, w in (
        ("x", (8, 32), False),
        ("w", (32, 96), True),
        ("qkv", (8, 96), False),
        ("q", (8, 32), False),
        ("qs", (8, 32), False),
        ("w2", (32, 32), True),
        ("y", (8, 32), False),
    ):
        g.add_tensor(Tensor(n, shape, weight=w))
    g.add_op(Op("qkv", OpKind.MATMUL, ("x", "w"), ("qkv",), {"M": 8, "K": 32, "N": 96}, macs=8 * 32 * 96))
    g.add_op(Op("split_q", OpKind.SLICE, ("qkv",), ("q",)))
    g.add_op(Op("scale", OpKind.ELTWISE, ("q",), ("qs",), {"fn": "mul", "scalar": 0.125, "elements": 256}))
    g.add_op(Op("mm", OpKind.MATMUL, ("qs", "w2"), ("y",), {"M": 8, "K": 32, "N": 32}, macs=8 * 32 * 32))
    return g


def test_a_constant_scale_through_data_movement_folds_into_the_producers_requantisation() -> None:
    g = _scaled_query()
    plain, fused = tiny_hw(**BIG), tiny_hw(epilogue={"activation": True}, **BIG)
    a, b = _rows(simulate(g, plain)), _rows(simulate(g, fused))
    # 256 elements on 4 lanes: 64 cycles + 2 of latency on the vector unit; none in the drain path
    assert a["scale"].engine == "vector" and a["scale"].compute_cycles == 64 + 2
    assert b["scale"].engine == "none" and b["scale"].cycles == 0
    assert simulate(g, fused).total_cycles == simulate(g, plain).total_cycles - a["scale"].cycles
    # a multiply by anything but a constant is an element-wise op of its own
    g2 = _scaled_query()
    g2.op("scale").attrs.pop("scalar")
    assert _rows(simulate(g2, fused))["scale"].engine == "vector"
