"""Hypothesis invariants of the simulator over random small graphs and designs, and over whole
(synthetic) DeiT and MBConv models on the shipped configs."""

import math
from functools import cache

from _helpers import matmul_graph, tiny_hw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim.config.hardware import HardwareConfig
from accelsim.ir import Graph, Op, OpKind, Tensor
from accelsim.ir.builders import add_linear_attention, add_mbconv, vit_graph
from accelsim.sim import simulate

dims = st.integers(1, 48)
designs = st.fixed_dictionaries(
    {
        "array": st.fixed_dictionaries(
            {
                "rows": st.integers(1, 12),
                "cols": st.integers(1, 12),
                "dataflow": st.sampled_from(["ws", "os", "is", ("ws", "os"), ("os", "is", "ws")]),
                "timing": st.sampled_from(["pipelined", "scalesim"]),
            }
        ),
        "packing": st.sampled_from([{8: 1}, {8: 2}, {4: 4, 8: 2, 16: 1}]),
        "buffers__input_kib": st.integers(1, 8),
        "buffers__weight_kib": st.integers(1, 8),
        "buffers__output_kib": st.integers(1, 8),
        "buffers__double_buffer": st.booleans(),
        "dram__bandwidth_gbs": st.sampled_from([0.1, 0.4, 1.6, 6.4]),
        "dram__latency_cycles": st.integers(0, 50),
        "dram__burst_bytes": st.sampled_from([1, 4, 64]),
        "overlap": st.booleans(),
    }
)


@st.composite
def chains(draw: st.DrawFn) -> Graph:
    """A chain of matmuls and vector ops with random shapes (one activation flowing through)."""
    g = Graph("chain")
    m, k = draw(dims), draw(dims)
    g.add_tensor(Tensor("t0", (m, k)))
    cur = "t0"
    for i in range(draw(st.integers(1, 4))):
        out = f"t{i + 1}"
        if draw(st.booleans()):
            n = draw(dims)
            g.add_tensor(Tensor(f"w{i}", (k, n), weight=True))
            g.add_tensor(Tensor(out, (m, n)))
            g.add_op(
                Op(f"mm{i}", OpKind.MATMUL, (cur, f"w{i}"), (out,), {"M": m, "K": k, "N": n}, macs=m * k * n)
            )
            k = n
        else:
            g.add_tensor(Tensor(out, (m, k)))
            kind = draw(st.sampled_from([OpKind.ACTIVATION, OpKind.LAYERNORM, OpKind.SOFTMAX]))
            attrs = {"elements": m * k} if kind == OpKind.ACTIVATION else {"rows": m, "length": k}
            g.add_op(Op(f"v{i}", kind, (cur,), (out,), attrs))
        cur = out
    return g


fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(chains(), designs)
def test_rooflines_conservation_and_bounds(g: Graph, design: dict) -> None:
    hw = tiny_hw(**design)
    r = simulate(g, hw)
    assert r.total_macs == g.total_macs == sum(row.macs for row in r.layers)
    # Compute roofline: the array never beats its peak MACs per cycle.
    peak = hw.array.rows * hw.array.cols * hw.macs_per_dsp(8)
    assert r.total_cycles >= math.ceil(g.total_macs / peak)
    assert r.total_cycles >= max(r.engine_busy_cycles.values())
    # Bandwidth roofline.
    assert r.total_cycles >= r.dram_bytes / hw.dram_bytes_per_cycle() - 1e-9
    assert 0.0 <= r.array_utilization <= 1.0
    assert all(0.0 <= u <= 1.0 for u in r.engine_utilization.values())
    for row in r.layers:
        assert row.stall_cycles >= 0 and row.end >= row.start >= 0
        for v in (row.utilization, row.scalesim_mapping_efficiency, row.scalesim_compute_utilization):
            assert v is None or 0.0 < v <= 1.0


@fast
@given(dims, dims, dims, designs)
def test_more_bandwidth_or_buffer_never_slows_a_layer(m: int, k: int, n: int, design: dict) -> None:
    g = matmul_graph(m, k, n)
    base = simulate(g, tiny_hw(**design)).layers[0]
    faster_dram = dict(design, dram__bandwidth_gbs=design["dram__bandwidth_gbs"] * 2)
    assert simulate(g, tiny_hw(**faster_dram)).layers[0].end <= base.end
    for buf in ("buffers__input_kib", "buffers__weight_kib", "buffers__output_kib"):
        bigger = dict(design, **{buf: design[buf] * 2})
        assert simulate(g, tiny_hw(**bigger)).layers[0].end <= base.end, buf


@fast
@given(chains(), designs)
def test_more_bandwidth_never_slows_a_chain(g: Graph, design: dict) -> None:
    slow = simulate(g, tiny_hw(**design)).total_cycles
    fast_ = simulate(
        g, tiny_hw(**dict(design, dram__bandwidth_gbs=design["dram__bandwidth_gbs"] * 4))
    ).total_cycles
    assert fast_ <= slow


@fast
@given(chains(), designs)
def test_pipelined_timing_is_never_slower_than_scalesim_timing(g: Graph, design: dict) -> None:
    # one dataflow: the same mapping in both modes (a reconfigurable array may choose differently)
    df = design["array"]["dataflow"]
    array = {**design["array"], "dataflow": df if isinstance(df, str) else df[0]}
    pipelined = simulate(g, tiny_hw(**dict(design, array={**array, "timing": "pipelined"})))
    scalesim = simulate(g, tiny_hw(**dict(design, array={**array, "timing": "scalesim"})))
    assert pipelined.total_cycles <= scalesim.total_cycles
    for p, s in zip(pipelined.layers, scalesim.layers, strict=True):
        assert p.compute_cycles <= s.compute_cycles, p.name


@fast
@given(chains(), designs, st.sampled_from([1, 2, 4]))
def test_fewer_bits_are_never_slower(g: Graph, design: dict, wbits_down: int) -> None:
    """The same graph with narrower weights (or weights and activations) never takes longer."""
    hw = tiny_hw(**dict(design, packing={16: 1, 8: 2, 4: 4}))
    narrow = Graph.from_dict(g.to_dict())
    for t in g.tensors.values():
        if t.weight or wbits_down == 4:
            narrow.replace_tensor(Tensor(t.name, t.shape, max(1, 8 // wbits_down), t.weight))
    assert simulate(narrow, hw).total_cycles <= simulate(g, hw).total_cycles


# -- whole models on the shipped designs ----------------------------------------------------------
@cache
def _model(name: str) -> Graph:
    if name == "mbconv+linear_attention":
        g = Graph(name)
        add_mbconv(g, "m", ch=32, hw=28, out_ch=64)
        add_linear_attention(g, "la", heads=4, tokens=196, hd=16)
        return g.validate()
    return vit_graph(name)


models = st.sampled_from(["tiny", "small", "mbconv+linear_attention"])
shipped = st.sampled_from(["zcu102", "zcu102_trio", "zcu102_softmax", "kv260", "vcu118"])
points = st.fixed_dictionaries(
    {
        "array.rows": st.integers(4, 48),
        "array.cols": st.integers(4, 96),
        "buffers.input_kib": st.sampled_from([16, 32, 64, 128, 256]),
        "buffers.weight_kib": st.sampled_from([16, 32, 64, 128, 256]),
        "buffers.output_kib": st.sampled_from([32, 64, 128, 256, 512]),
    }
)
whole = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@whole
@given(models, shipped, points, st.sampled_from(["array.rows", "array.cols"]))
def test_a_bigger_array_never_slows_a_whole_model_by_more_than_a_thousandth(
    model: str, config: str, point: dict, axis: str
) -> None:
    hw = HardwareConfig.load(config).with_changes(**point)
    base = simulate(_model(model), hw)
    bigger = simulate(_model(model), hw.with_changes(**{axis: point[axis] + 1}))
    assert bigger.total_cycles <= 1.001 * base.total_cycles


@whole
@given(
    models,
    shipped,
    points,
    st.sampled_from(["buffers.input_kib", "buffers.weight_kib", "buffers.output_kib"]),
)
def test_a_bigger_buffer_never_slows_a_whole_model(model: str, config: str, point: dict, buf: str) -> None:
    hw = HardwareConfig.load(config).with_changes(**point)
    base = simulate(_model(model), hw)
    bigger = simulate(_model(model), hw.with_changes(**{buf: point[buf] * 2}))
    assert bigger.total_cycles <= base.total_cycles
