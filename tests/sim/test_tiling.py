"""Tiling of array GEMMs whose partial sums overflow the output buffer: spill or output-stationary."""

from __future__ import annotations

from _helpers import matmul_graph, tiny_hw
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.ir import Graph, Op, OpKind, Tensor
from accelsim.sim import simulate


def _split_graph(m: int, k: int, n: int, over: str) -> Graph:
    """x[m,k] @ w[k,n] computed by hand as two independent GEMMs over halves of M (or of N)."""
    g = Graph("split")
    if over == "M":
        h0, h1 = m // 2, m - m // 2
        shapes = [((h0, k), (k, n), (h0, n), h0, n), ((h1, k), (k, n), (h1, n), h1, n)]
    else:
        h0, h1 = n // 2, n - n // 2
        shapes = [((m, k), (k, h0), (m, h0), m, h0), ((m, k), (k, h1), (m, h1), m, h1)]
    for j, (xs, ws, ys, mm, nn) in enumerate(shapes):
        g.add_tensor(Tensor(f"x{j}", xs))
        g.add_tensor(Tensor(f"w{j}", ws, weight=True))
        g.add_tensor(Tensor(f"y{j}", ys))
        attrs = {"batch": 1, "M": mm, "K": k, "N": nn}
        g.add_op(Op(f"mm{j}", OpKind.MATMUL, (f"x{j}", f"w{j}"), (f"y{j}",), attrs, macs=mm * k * nn))
    return g


def test_output_stationary_order_rereads_the_weight_stripe_instead_of_spilling() -> None:
    # ws 4x4, 1 KiB output buffer: one column stripe's partial sums are 128 rows x 4 x 4 B = 2 KiB.
    # Spilling would move 127 extra K folds x 128x4 int32 = 260,096 B out and back. Instead the
    # 128 rows run as 2 chunks of 64 (64 x 4 x 4 B = 1 KiB fits), each finishing all 128 K folds;
    # the 512x4 B weight stripe (2 KiB) does not fit the 1 KiB weight buffer, so it is read twice.
    g = matmul_graph(128, 512, 4)
    r = simulate(g, tiny_hw())
    assert r.layers[0].dram_load_bytes == 128 * 512 + 2 * 512 * 4
    assert r.layers[0].dram_store_bytes == 128 * 4
    # Compute cycles are the whole GEMM's (SCALE-Sim formula), whatever the loop order.
    big = simulate(g, tiny_hw(buffers__output_kib=4))
    assert r.layers[0].compute_cycles == big.layers[0].compute_cycles
    assert big.layers[0].dram_load_bytes == 128 * 512 + 512 * 4  # all partial sums fit: one pass


def test_spill_kept_when_rereading_the_stripe_costs_more() -> None:
    # ws 48x48 array, 1 KiB output buffer: 16 rows x 48 x 4 B = 3 KiB of partial sums, 2 K folds.
    # Spill: 1 extra fold x 16x48 int32 = 3,072 B each way (6,144 B). Output-stationary: chunks of
    # 1024 // 192 = 5 rows -> 4 chunks; the 96x48 B = 4,608 B weight stripe exceeds the 4 KiB
    # weight buffer, so 3 extra reads = 13,824 B > 6,144 B: the mapper keeps the spill.
    g = matmul_graph(16, 96, 48)
    hw = dict(array__rows=48, array__cols=48)
    r = simulate(g, tiny_hw(**hw, buffers__weight_kib=4))
    spill = 16 * 48 * 4
    assert r.layers[0].dram_load_bytes == 16 * 96 + 96 * 48 + spill
    assert r.layers[0].dram_store_bytes == 16 * 48 + spill
    # An 8 KiB weight buffer holds the stripe: chunks cost nothing more, and the spill goes.
    r8 = simulate(g, tiny_hw(**hw, buffers__weight_kib=8))
    assert r8.layers[0].dram_load_bytes == 16 * 96 + 96 * 48
    assert r8.layers[0].dram_store_bytes == 16 * 48


@settings(max_examples=40, deadline=None)
@given(
    half=st.integers(8, 64),
    k=st.integers(5, 64),
    n=st.integers(1, 4),
    flow=st.sampled_from(["ws", "is"]),
    bw=st.sampled_from([0.4, 1.6, 6.4]),
)
def test_spilling_gemm_not_slower_than_two_gemms_that_fit(
    half: int, k: int, n: int, flow: str, bw: float
) -> None:
    # A 4x4 array, 1 KiB output buffer: a fold's partial sums are (streamed rows) x 4 x 4 B, so
    # 64 streamed rows fit and 2 * half > 64 may not. ws streams M, is streams N: split over it.
    # One column (row) stripe only (the other dimension <= 4), so operand reuse across stripes
    # plays no part.
    over = "M" if flow == "ws" else "N"
    m, nn = (2 * half, n) if flow == "ws" else (n, 2 * half)
    hw = tiny_hw(array__dataflow=flow, dram__bandwidth_gbs=bw, buffers__input_kib=8, buffers__weight_kib=8)
    one = simulate(matmul_graph(m, k, nn), hw)
    two = simulate(_split_graph(m, k, nn, over), hw)
    assert one.total_cycles <= two.total_cycles
    assert one.dram_bytes <= two.dram_bytes


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(1, 300),
    k=st.integers(1, 80),
    n=st.integers(1, 40),
    flow=st.sampled_from(["ws", "is", "os"]),
    wkib=st.integers(1, 4),
    okib=st.integers(1, 7),
)
def test_larger_output_buffer_never_adds_dram_bytes(
    m: int, k: int, n: int, flow: str, wkib: int, okib: int
) -> None:
    g = matmul_graph(m, k, n)
    base = dict(array__dataflow=flow, buffers__input_kib=64, buffers__weight_kib=wkib)
    small = simulate(g, tiny_hw(**base, buffers__output_kib=okib))
    large = simulate(g, tiny_hw(**base, buffers__output_kib=okib + 1))
    assert large.dram_bytes <= small.dram_bytes
    assert large.layers[0].compute_cycles == small.layers[0].compute_cycles
