"""Engine overlap, per-head attention pipelining and MBConv fusion."""

import itertools

from _helpers import tiny_hw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim.ir import Graph, Op, OpKind, Tensor
from accelsim.ir.builders import add_linear_attention, add_mbconv, add_softmax_attention
from accelsim.sim import map_graph, simulate

UNITS = {
    "vector": {"lanes": 4, "latency_cycles": 2},
    "softmax": {"lanes": 4, "latency_cycles": 2},
    "linear_attention": {"macs": 16, "latency_cycles": 2, "divider_lanes": 4},
    "dwconv": {"macs": 18, "kernel_macs": 9, "latency_cycles": 2},
}


def _rows(r):  # type: ignore[no-untyped-def]
    return {row.name: row for row in r.layers}


@st.composite
def block_graphs(draw: st.DrawFn) -> Graph:
    """A few independent blocks of the kinds the units serve, some followed by vector ops."""
    g = Graph("blocks")
    for b in range(draw(st.integers(1, 3))):
        p = f"b{b}"
        kind = draw(st.sampled_from(["attn", "linatt", "mbconv", "mlp"]))
        heads, tokens = draw(st.integers(1, 3)), draw(st.integers(2, 24))
        if kind == "attn":
            out = add_softmax_attention(g, p, heads, tokens, draw(st.integers(1, 8)))
            shape = (heads, tokens, g.tensors[out].shape[-1])
        elif kind == "linatt":
            out = add_linear_attention(g, p, heads, tokens, draw(st.integers(1, 8)))
            shape = g.tensors[out].shape
        elif kind == "mbconv":
            out = add_mbconv(g, p, draw(st.integers(1, 8)), draw(st.integers(3, 12)), draw(st.integers(1, 8)),
                             act=draw(st.booleans()), stride=draw(st.sampled_from([1, 2])))  # fmt: skip
            shape = g.tensors[out].shape
        else:
            m, k, n = tokens, draw(st.integers(1, 16)), draw(st.integers(1, 16))
            for t in (
                Tensor(f"{p}.x", (m, k)),
                Tensor(f"{p}.w", (k, n), weight=True),
                Tensor(f"{p}.h", (m, n)),
            ):
                g.add_tensor(t)
            g.add_op(Op(f"{p}.fc", OpKind.MATMUL, (f"{p}.x", f"{p}.w"), (f"{p}.h",),
                        {"M": m, "K": k, "N": n}, macs=m * k * n))  # fmt: skip
            out, shape = f"{p}.h", (m, n)
        if draw(st.booleans()):
            g.add_tensor(Tensor(f"{p}.act", shape))
            n_el = 1
            for d in shape:
                n_el *= d
            g.add_op(
                Op(f"{p}.gelu", OpKind.ACTIVATION, (out,), (f"{p}.act",), {"fn": "gelu", "elements": n_el})
            )
    return g


designs = st.fixed_dictionaries(
    {
        "units": st.builds(
            lambda keep: {k: v for k, v in UNITS.items() if k == "vector" or k in keep},
            st.sets(st.sampled_from(["softmax", "linear_attention", "dwconv"])),
        ),
        "buffers__output_kib": st.integers(1, 8),
        "dram__bandwidth_gbs": st.sampled_from([0.4, 1.6, 6.4, 40.0]),
        "dram__latency_cycles": st.integers(0, 30),
        "pipeline_heads": st.booleans(),
        "mbconv_fusion": st.booleans(),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block_graphs(), designs)
def test_overlap_between_busiest_engine_and_serial(g: Graph, design: dict) -> None:
    on = simulate(g, tiny_hw(**design))
    off = simulate(g, tiny_hw(**dict(design, overlap=False)))
    assert on.engine_busy_cycles == off.engine_busy_cycles
    assert max(on.engine_busy_cycles.values()) <= on.total_cycles <= off.total_cycles
    assert on.total_macs == g.total_macs == sum(row.macs for row in on.layers)
    for u, v in on.engine_utilization.items():
        assert 0.0 <= v <= 1.0 and v == on.engine_busy_cycles[u] / on.total_cycles


def test_softmax_of_head_h_runs_while_array_does_later_heads() -> None:
    g = Graph("attn")
    add_softmax_attention(g, "a", heads=4, tokens=16, hd=8)
    hw = dict(units=UNITS, dram__bandwidth_gbs=40.0, buffers__output_kib=8)
    on = _rows(simulate(g, tiny_hw(**hw)))
    off = _rows(simulate(g, tiny_hw(**hw, pipeline_heads=False)))
    # Streamed per head: softmax starts inside QK^T (after its first head), AV right after QK^T.
    assert on["a.qk"].start < on["a.softmax"].start < on["a.qk"].end
    assert on["a.av"].end < off["a.av"].end
    # Not streamed: each op waits for the whole previous one.
    assert off["a.softmax"].start >= off["a.qk"].end and off["a.av"].start >= off["a.softmax"].end
    # Scores and probabilities never leave the chip when streamed: 2 x 4 x 16 x 16 B saved twice.
    assert on["a.qk"].dram_store_bytes == 0 and on["a.softmax"].dram_load_bytes == 0


def test_linear_attention_fallback_pipelines_array_and_vector_per_head() -> None:
    g = Graph("la")
    add_linear_attention(g, "a", heads=4, tokens=16, hd=4)
    hw = dict(dram__bandwidth_gbs=40.0)
    on = _rows(simulate(g, tiny_hw(**hw)))
    off = _rows(simulate(g, tiny_hw(**hw, pipeline_heads=False)))
    assert on["a.la"].start < on["a.la/relu"].end  # GEMMs of head 0 while ReLU does head 1..
    assert on["a.la/normalise"].start < on["a.la"].end  # divide of head 0 while GEMMs do head 1..
    assert off["a.la"].start >= off["a.la/relu"].end and off["a.la/normalise"].start >= off["a.la"].end
    assert on["a.la/normalise"].end < off["a.la/normalise"].end


def test_mbconv_fusion_streams_dwconv_into_pointwise_without_dram_round_trip() -> None:
    g = Graph("mb")
    add_mbconv(g, "m", ch=8, hw=16, out_ch=8)  # dw output 8 x 16 x 16 = 2 KiB > the 1 KiB buffer
    hw = dict(units=UNITS, dram__bandwidth_gbs=1.6)
    fused = simulate(g, tiny_hw(**hw))
    plain = simulate(g, tiny_hw(**hw, mbconv_fusion=False))
    f, p = _rows(fused), _rows(plain)
    assert fused.fits and plain.fits
    inter = 8 * 16 * 16
    # Unfused: the dwconv and activation outputs go to DRAM and come back; the pointwise conv
    # (ws, N = 8 on 4 columns: 2 outer folds) re-streams its 2 KiB input once per fold.
    assert plain.dram_bytes - fused.dram_bytes == 2 * inter + inter + 2 * inter
    assert f["m.dw"].dram_store_bytes == 0 and f["m.act"].dram_load_bytes == 0
    # The pointwise conv no longer reads its input (weights and partial-sum spills remain).
    assert p["m.pw"].dram_load_bytes - f["m.pw"].dram_load_bytes == 2 * inter
    # The engines run together: the pointwise conv starts before the depthwise conv ends.
    assert f["m.pw"].start < f["m.dw"].end
    assert fused.total_cycles < plain.total_cycles
    assert f["m.dw"].engine == "dwconv" and f["m.pw"].engine == "array"


def test_serial_mode_disables_streaming() -> None:
    g = Graph("mb")
    add_mbconv(g, "m", ch=8, hw=16, out_ch=8)
    add_softmax_attention(g, "a", heads=2, tokens=8, hd=4)
    hw = tiny_hw(units=UNITS, overlap=False)
    r = simulate(g, hw)
    assert int(map_graph(g, hw).plan.pipe_on.sum()) == 0
    ordered = sorted((row for row in r.layers if row.engine != "none"), key=lambda x: x.start)
    for a, b in itertools.pairwise(ordered):
        assert b.start >= a.start + a.compute_cycles  # one op at a time
