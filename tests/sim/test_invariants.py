"""Hypothesis invariants of the simulator over random small graphs and designs."""

import math

from _helpers import matmul_graph, tiny_hw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim.ir import Graph, Op, OpKind, Tensor
from accelsim.sim import simulate

dims = st.integers(1, 48)
designs = st.fixed_dictionaries(
    {
        "array": st.fixed_dictionaries(
            {
                "rows": st.integers(1, 12),
                "cols": st.integers(1, 12),
                "dataflow": st.sampled_from(["ws", "os", "is"]),
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
    for row in r.layers:
        assert row.stall_cycles >= 0 and row.end >= row.start >= 0
        for v in (row.scalesim_mapping_efficiency, row.scalesim_compute_utilization):
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
