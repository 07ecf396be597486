"""Integer semantics of the bit-true executor: hand-computed GEMMs, requantisation, overflow, units."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.config.arithmetic import ArithmeticConfig
from accelsim.errors import AccumulatorOverflowError, ConfigError, GraphFormatError, UnsupportedOpError
from accelsim.eval.bittrue import (
    BittrueStats,
    Executor,
    execute,
    fixed_point_multiplier,
    log2_values,
    quantize_float,
    run_bittrue,
)
from accelsim.eval.bittrue import _kernels as K
from accelsim.ir import Graph, Op, OpKind, QuantParams, Tensor

SW = np.array([0.25, 0.125])


OUT_Q = QuantParams(8, np.array(0.1), np.array(3))


def _gemm_graph(out_q: QuantParams | None = OUT_Q) -> Graph:
    """x[1,3] (scale 0.5) @ w[3,2] (per-channel 0.25, 0.125) + b -> y (scale 0.1, zero point 3)."""
    g = Graph("gemm")
    g.add_tensor(Tensor("x", (1, 3)))
    g.add_tensor(Tensor("w", (3, 2), weight=True))
    g.add_tensor(Tensor("b", (2,), bits=32, weight=True))
    g.add_tensor(Tensor("y", (1, 2)))
    attrs = {"batch": 1, "M": 1, "K": 3, "N": 2, "operands": "wa", "bias": True}
    g.add_op(Op("fc", OpKind.MATMUL, ("x", "w", "b"), ("y",), attrs, macs=6))
    g.quant["x"] = QuantParams(8, np.array(0.5), np.array(0))
    g.quant["w"] = QuantParams(8, SW, np.zeros(2), axis=1)
    if out_q is not None:
        g.quant["y"] = out_q
    g.constants["w"] = np.array([[1, 2], [3, -1], [-2, 5]], np.float32) * SW.astype(np.float32)
    g.constants["b"] = np.array([1.0, -0.5], np.float32)
    return g


def test_int8_gemm_with_requantisation_matches_hand_computation() -> None:
    # codes x = [2, -3, 4]; acc0 = 2*1 - 3*3 + 4*(-2) = -15, acc1 = 2*2 + 3 + 20 = 27
    # bias in accumulator units: 1.0 / (0.5*0.25) = 8, -0.5 / (0.5*0.125) = -8  -> acc = [-7, 19]
    # multipliers 0.125/0.1 = 1.25 = 1342177280 * 2**-30, 0.0625/0.1 = 0.625 = 1342177280 * 2**-31
    # -7 * 1.25 = -8.75 -> -9 (+3 = -6);  19 * 0.625 = 11.875 -> 12 (+3 = 15)
    g = _gemm_graph()
    stats = BittrueStats()
    y = execute(g, {"x": np.array([[1.0, -1.5, 2.0]], np.float32)}, stats=stats)["y"]
    np.testing.assert_allclose(y, [[(-6 - 3) * 0.1, (15 - 3) * 0.1]], rtol=1e-6)
    assert stats.integer_ops == {"fc"}
    m0, n = fixed_point_multiplier(np.array([1.25, 0.625]), 31)
    assert m0.tolist() == [1342177280, 1342177280] and n.tolist() == [30, 31]


def test_unquantised_output_is_the_exact_accumulator() -> None:
    g = _gemm_graph(out_q=None)
    y = execute(g, {"x": np.array([[1.0, -1.5, 2.0]], np.float32)})["y"]
    np.testing.assert_array_equal(y, np.array([[-7 * 0.125, 19 * 0.0625]], np.float32))


def _residual_graph(fn: str = "add") -> Graph:
    """The GEMM's exact accumulator y (scales 0.125, 0.0625 per channel) + a shortcut s (scale 0.5)."""
    g = _gemm_graph(out_q=None)
    g.add_tensor(Tensor("s", (1, 2)))
    g.add_tensor(Tensor("z", (1, 2)))
    g.add_op(Op("res", OpKind.ELTWISE, ("y", "s"), ("z",), {"fn": fn}))
    g.quant["s"] = QuantParams(8, np.array(0.5), np.array(0))
    g.quant["z"] = OUT_Q
    return g


@pytest.mark.parametrize(("fn", "expected_codes"), [("add", [4, 0]), ("sub", [-16, 30])])
def test_residual_add_into_the_accumulator_matches_hand_computation(
    fn: str, expected_codes: list[int]
) -> None:
    # accumulator [-7, 19] (scales 0.125, 0.0625); shortcut codes [2, -3] at 0.5 onto the accumulator
    # grid: multipliers 4 and 8 -> [8, -24]. add: [1, -5]; sub: [-15, 43]. Requantised to 0.1 (+3):
    # add: 1*1.25 = 1.25 -> 1, -5*0.625 = -3.125 -> -3, so [4, 0];
    # sub: -15*1.25 = -18.75 -> -19, 43*0.625 = 26.875 -> 27, so [-16, 30]
    g = _residual_graph(fn)
    stats = BittrueStats()
    ins = {"x": np.array([[1.0, -1.5, 2.0]], np.float32), "s": np.array([[1.0, -1.5]], np.float32)}
    z = execute(g, ins, stats=stats)["z"]
    np.testing.assert_allclose(z, (np.array([expected_codes]) - 3) * 0.1, rtol=1e-6)
    assert stats.integer_ops == {"fc", "res"}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=-128, max_value=127), min_size=4, max_size=4),
    st.floats(min_value=1e-3, max_value=10.0),
    st.floats(min_value=1e-3, max_value=10.0),
)
def test_add_of_two_int8_tensors_is_exact_before_the_output_rounding(
    codes: list[int], sa: float, sb: float
) -> None:
    # two narrow operands meet on a grid 8 bits finer than the finer scale: the sum is exact to
    # the fixed-point multipliers, so the output is the exact sum rounded once (up to a tie)
    g = Graph("add2")
    for name in ("a", "b", "c"):
        g.add_tensor(Tensor(name, (1, 2)))
    g.add_op(Op("plus", OpKind.ELTWISE, ("a", "b"), ("c",), {"fn": "add"}))
    qa, qb = np.array(codes[:2], np.float64), np.array(codes[2:], np.float64)
    g.quant["a"] = QuantParams(8, np.array(sa), np.array(0))
    g.quant["b"] = QuantParams(8, np.array(sb), np.array(0))
    out_scale = (sa + sb) / 64
    g.quant["c"] = QuantParams(8, np.array(out_scale), np.array(0))
    ins = {"a": (qa * sa)[None].astype(np.float32), "b": (qb * sb)[None].astype(np.float32)}
    a_codes = quantize_float(ins["a"], g.quant["a"])
    b_codes = quantize_float(ins["b"], g.quant["b"])
    exact = (a_codes * sa + b_codes * sb) / out_scale
    got = execute(g, ins)["c"] / out_scale
    assert np.all(np.abs(got - np.clip(exact, -128, 127)) <= 0.5 + 1e-6)


def test_two_accumulators_meet_on_the_finer_grid_without_growing() -> None:
    # y: the GEMM's accumulator [-7, 19] at (0.125, 0.0625); y2 = [1.0] @ [[1, 2]] * 0.5 is [1, 2] at
    # 0.5 per channel, onto y's grid (multipliers 4 and 8): [4, 16]. Sum [-3, 35]; to 0.1 (+3):
    # -3 * 1.25 = -3.75 -> -4, 35 * 0.625 = 21.875 -> 22, so codes [-1, 25]. The sum fits an 8-bit
    # accumulator: no guard bits are added on top of an accumulator's grid.
    g = _gemm_graph(out_q=None)
    g.add_tensor(Tensor("x2", (1, 1)))
    g.add_tensor(Tensor("w2", (1, 2), weight=True))
    g.add_tensor(Tensor("y2", (1, 2)))
    g.add_tensor(Tensor("z", (1, 2)))
    attrs = {"batch": 1, "M": 1, "K": 1, "N": 2, "operands": "wa"}
    g.add_op(Op("fc_b", OpKind.MATMUL, ("x2", "w2"), ("y2",), attrs, macs=2))
    g.add_op(Op("sum", OpKind.ELTWISE, ("y", "y2"), ("z",), {"fn": "add"}))
    g.quant["x2"] = QuantParams(8, np.array(1.0), np.array(0))
    g.quant["w2"] = QuantParams(8, np.array([0.5, 0.5]), np.zeros(2), axis=1)
    g.quant["z"] = OUT_Q
    g.constants["w2"] = np.array([[0.5, 1.0]], np.float32)
    ins = {"x": np.array([[1.0, -1.5, 2.0]], np.float32), "x2": np.array([[1.0]], np.float32)}
    z = execute(g, ins, ArithmeticConfig(accumulator_bits=8))["z"]
    np.testing.assert_allclose(z, (np.array([[-1, 25]]) - 3) * 0.1, rtol=1e-6)


def test_residual_add_overflowing_the_accumulator_is_reported() -> None:
    g = _residual_graph()
    ins = {"x": np.array([[1.0, -1.5, 2.0]], np.float32), "s": np.array([[63.5, 0.0]], np.float32)}
    # shortcut 127 * 4 = 508 onto the grid, + (-7) = 501: needs 10 bits; 9 bits hold [-256, 255]
    with pytest.raises(AccumulatorOverflowError, match=r"'res'.*residual add reaches 501"):
        execute(g, ins, ArithmeticConfig(accumulator_bits=9, requant_mantissa_bits=31))


@pytest.mark.parametrize(
    ("rounding", "expected"),
    # x * 0.5 for x = 5, -5, 3, -7 is 2.5, -2.5, 1.5, -3.5
    [("half_up", [3, -2, 2, -3]), ("half_even", [2, -2, 2, -4]), ("floor", [2, -3, 1, -4])],
)
def test_requant_rounding_modes_on_ties(rounding: str, expected: list[int]) -> None:
    m0, n = fixed_point_multiplier(np.array([0.5]), 31)
    x = np.array([5, -5, 3, -7], np.int64)
    code = {"half_up": K.ROUND_HALF_UP, "half_even": K.ROUND_HALF_EVEN, "floor": K.ROUND_FLOOR}[rounding]
    args = (x, m0, n, np.zeros(1, np.int64), 4, -128, 127, code)
    assert K.requantize(*args).tolist() == expected
    assert K.requantize.py_func(*args).tolist() == expected  # the jitted kernel = its Python original


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=1e-6, max_value=100.0),
    st.lists(st.integers(min_value=-(2**31), max_value=2**31 - 1), min_size=1, max_size=20),
)
def test_fixed_point_requant_is_within_half_an_lsb_plus_multiplier_error(m: float, xs: list[int]) -> None:
    m0, n = fixed_point_multiplier(np.array([m]), 31)
    assert 2**30 <= m0[0] < 2**31
    assert abs(m0[0] * 2.0 ** -n[0] - m) <= m * 2.0**-31
    x = np.array(xs, np.int64)
    big = np.iinfo(np.int64).max
    out = K.requantize(x, m0, n, np.zeros(1, np.int64), x.size, -big, big, K.ROUND_HALF_UP)
    exact = x.astype(np.float64) * (m0[0] * 2.0 ** -n[0])
    assert np.all(np.abs(out - exact) <= 0.5 + 1e-9)


def _wide_graph(k: int) -> Graph:
    g = Graph("wide")
    g.add_tensor(Tensor("x", (1, k)))
    g.add_tensor(Tensor("w", (k, 1), weight=True))
    g.add_tensor(Tensor("y", (1, 1)))
    g.add_op(Op("big_fc", OpKind.MATMUL, ("x", "w"), ("y",), {"batch": 1, "M": 1, "K": k, "N": 1}))
    g.quant["x"] = QuantParams(8, np.array(1.0), np.array(0))
    g.quant["w"] = QuantParams(8, np.array(1.0), np.array(0))
    g.constants["w"] = np.full((k, 1), 127.0, np.float32)
    return g


def test_narrow_accumulator_raises_an_accumulator_overflow_error() -> None:
    # 8 * 127 * 127 = 129032 needs 18 bits (signed); a 16-bit accumulator holds 32767
    g = _wide_graph(8)
    x = {"x": np.full((1, 8), 127.0, np.float32)}
    assert execute(g, x, ArithmeticConfig(accumulator_bits=18))["y"][0, 0] == 129032
    with pytest.raises(
        AccumulatorOverflowError, match=r"'big_fc'.*129032.*18 bits.*16-bit range \[-32768, 32767\]"
    ):
        execute(g, x, ArithmeticConfig(accumulator_bits=16))


def test_overflow_report_mode_wraps_and_records() -> None:
    g = _wide_graph(8)
    stats = BittrueStats()
    y = execute(
        g,
        {"x": np.full((1, 8), 127.0, np.float32)},
        ArithmeticConfig(accumulator_bits=16, overflow="report"),
        stats=stats,
    )
    assert [(e.op, e.max_abs, e.limit) for e in stats.overflows] == [("big_fc", 129032, 32767)]
    assert y["y"][0, 0] == 129032 - 2 * 65536  # two's complement wrap: 129032 mod 2**16 = -2040


def test_exact_gemm_beyond_float32_mantissa() -> None:
    # K = 4096 products of ~110*110: sums ~5e7 > 2**24, where a plain float32 dot loses bits;
    # the chunked float32 BLAS path still gives the exact integers
    from accelsim.eval.bittrue import _exact_matmul

    rng = np.random.default_rng(0)
    a = rng.integers(90, 128, size=(3, 4096)).astype(np.int64)
    b = rng.integers(90, 128, size=(4096, 5)).astype(np.int64)
    exact = a @ b
    assert exact.max() > 2**24
    assert not np.array_equal((a.astype(np.float32) @ b.astype(np.float32)).astype(np.int64), exact)
    np.testing.assert_array_equal(_exact_matmul(a, b).astype(np.int64), exact)
    # 16-bit operands take the float64 path, still exact
    a16, b16 = a * 250, b * 250
    np.testing.assert_array_equal(_exact_matmul(a16, b16).astype(np.int64), a16 @ b16)


def test_quantize_float_rounds_half_to_even_like_torch() -> None:
    qp = QuantParams(8, np.array(0.5), np.array(10), signed=False)
    assert quantize_float(np.array([0.25, 0.75, -0.25, 200.0, -50.0], np.float32), qp).tolist() == [
        10,
        12,
        10,
        255,
        0,
    ]


def test_log2_values_follow_the_ir_contract() -> None:
    qp = QuantParams(4, np.array(1.0), np.array(0), signed=False, mode="log2")
    # q = round(-log2 x): 1 -> 0, 0.3 -> 2 (0.25), 0.01 -> 7 (2**-7), 1e-9 -> 30 > 14: zero; 0 -> zero
    np.testing.assert_array_equal(
        log2_values(np.array([1.0, 0.3, 0.01, 1e-9, 0.0], np.float32), qp), [1.0, 0.25, 2**-7, 0.0, 0.0]
    )


def test_integer_softmax_is_close_to_float() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 3, size=(50, 17))
    s = 2.0**-10
    xq = np.rint(x / s).astype(np.int64)
    p = K.softmax_rows(
        xq,
        int(np.floor(-np.log(2) / s)),
        int(np.floor(1.353 / s)),
        int(np.floor(0.344 / (0.3585 * s * s))),
        15,
    )
    ref = np.exp(x - x.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    # I-BERT's second-order exp: well under 1% of the largest probability
    assert np.abs(p * 2.0**-15 - ref).max() < 5e-3
    assert np.array_equal(
        p,
        K.softmax_rows.py_func(
            xq,
            int(np.floor(-np.log(2) / s)),
            int(np.floor(1.353 / s)),
            int(np.floor(0.344 / (0.3585 * s * s))),
            15,
        ),
    )


def test_isqrt_is_exact_floor() -> None:
    for v in [0, 1, 2, 3, 4, 15, 16, 17, 10**12, 10**12 + 1, 2**62 - 1]:
        r = K.isqrt(v)
        assert r * r <= v < (r + 1) * (r + 1)


def _unit_graph(kind: OpKind, attrs: dict, n: int = 24, with_affine: bool = False) -> Graph:
    g = Graph("unit")
    g.add_tensor(Tensor("x", (4, n)))
    g.add_tensor(Tensor("y", (4, n)))
    inputs: tuple[str, ...] = ("x",)
    if with_affine:
        g.add_tensor(Tensor("g", (n,), weight=True))
        g.add_tensor(Tensor("b", (n,), weight=True))
        g.constants["g"] = np.linspace(0.5, 1.5, n).astype(np.float32)
        g.constants["b"] = np.linspace(-0.2, 0.2, n).astype(np.float32)
        inputs = ("x", "g", "b")
    g.add_op(Op("u", kind, inputs, ("y",), attrs))
    return g


@pytest.mark.parametrize(
    ("kind", "attrs", "affine", "tol"),
    [
        (OpKind.SOFTMAX, {"rows": 4, "length": 24, "dim": -1}, False, 3e-3),
        (OpKind.LAYERNORM, {"rows": 4, "length": 24, "eps": 1e-5}, True, 1e-2),
        (OpKind.ACTIVATION, {"fn": "gelu", "elements": 96}, False, 2e-2),
        # a grid step of 12/1024 times a slope of at most 1.5, halved: 0.009
        (OpKind.ACTIVATION, {"fn": "hardswish", "elements": 96}, False, 1e-2),
    ],
)
def test_integer_units_approximate_their_float_versions(
    kind: OpKind, attrs: dict, affine: bool, tol: float
) -> None:
    g = _unit_graph(kind, attrs, with_affine=affine)
    x = {"x": np.random.default_rng(2).normal(0, 2, size=(4, 24)).astype(np.float32)}
    stats = BittrueStats()
    y_int = execute(g, x, ArithmeticConfig(), stats=stats)["y"]
    y_float = execute(g, x, ArithmeticConfig.float_units())["y"]
    assert stats.integer_ops == {"u"}
    assert 0 < np.abs(y_int - y_float).max() < tol


@pytest.mark.parametrize("fn", ["gelu", "hardswish"])
def test_activation_lut_indexed_by_int8_codes_is_exact_per_code(fn: str) -> None:
    from accelsim.eval.bittrue import gelu_ref, hardswish_ref

    g = _unit_graph(OpKind.ACTIVATION, {"fn": fn, "elements": 96})
    g.quant["x"] = QuantParams(8, np.array(0.05), np.array(128), signed=False)
    x = {"x": np.random.default_rng(3).normal(0, 2, size=(4, 24)).astype(np.float32)}
    xq = quantize_float(x["x"], g.quant["x"])
    stats = BittrueStats()
    y = execute(g, x, stats=stats)["y"]
    ref = gelu_ref if fn == "gelu" else hardswish_ref
    np.testing.assert_allclose(y, ref((xq - 128) * 0.05), rtol=1e-6, atol=1e-7)
    assert stats.integer_ops == {"u"}


def test_hardswish_lut_is_exact_beyond_its_range() -> None:
    # below -lut_range the table gives hardswish's 0, above it the identity: both exact
    g = _unit_graph(OpKind.ACTIVATION, {"fn": "hardswish", "elements": 96})
    x = np.tile(np.array([-50.0, -6.5, 6.5, 50.0] * 6, np.float32), (4, 1))
    y = execute(g, {"x": x}, ArithmeticConfig(lut_range=6.0))["y"]
    np.testing.assert_array_equal(y, np.where(x > 0, x, 0.0))


def _la_graph(eps: float = 1e-5) -> Graph:
    g = Graph("la")
    for n in ("q", "k", "v", "o"):
        g.add_tensor(Tensor(n, (2, 2, 6, 4)))
    attrs = {"batch": 2, "heads": 2, "tokens": 6, "head_dim": 4, "kernel": "relu", "eps": eps}
    g.add_op(Op("la", OpKind.LINEAR_ATTENTION, ("q", "k", "v"), ("o",), attrs))
    return g


def test_linear_attention_log2_shift_divides_by_a_power_of_two() -> None:
    g = _la_graph(eps=1e-5)
    rng = np.random.default_rng(4)
    q, k, v = (rng.uniform(-0.4, 1, size=(2, 2, 6, 4)).astype(np.float32) for _ in range(3))
    ins = {"q": q, "k": k, "v": v}
    exact = execute(g, ins, ArithmeticConfig(la_divisor="true_divide"))["o"]
    shifted = execute(g, ins, ArithmeticConfig(la_divisor="log2_shift"))["o"]
    qr, kr = np.maximum(q, 0).astype(np.float64), np.maximum(k, 0).astype(np.float64)
    num = qr @ (np.swapaxes(kr, -1, -2) @ v)
    den = qr @ kr.sum(-2)[..., None] + 1e-5
    np.testing.assert_allclose(exact, num / den, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(shifted, num / np.exp2(np.rint(np.log2(den))), rtol=1e-5, atol=1e-6)
    # integer operands: the same shift, applied to exact integer accumulators
    for t, s in (("q", 1 / 64), ("k", 1 / 64), ("v", 1 / 64)):
        g.quant[t] = QuantParams(8, np.array(s), np.array(0))
    stats = BittrueStats()
    yi = execute(g, ins, ArithmeticConfig(la_divisor="log2_shift"), stats=stats)["o"]
    assert stats.integer_ops == {"la"}
    qq, kq, vq = (np.rint(a * 64).clip(-128, 127) / 64 for a in (q, k, v))
    qr, kr = np.maximum(qq, 0), np.maximum(kq, 0)
    num = qr @ (np.swapaxes(kr, -1, -2) @ vq)
    den = qr @ kr.sum(-2)[..., None] + 1e-5
    # no output format: the quotient keeps 16 fractional bits below v's scale (rounded once, later)
    fine = 64 * 2**16
    want = np.floor(num / np.exp2(np.rint(np.log2(den))) * fine + 0.5) / fine
    np.testing.assert_allclose(yi, want, atol=1e-9)


def _ref_unit_linear_attention(q: list, k: list, v: list, divider: str) -> list:  # type: ignore[type-arg]
    """The linear-attention unit on one head in plain Python integers (lists of T rows of d ints):
    ``ReLU(Q) (ReLU(K)^T [V, 1])``, each numerator divided by the last (k-sum) column, by a
    rounding shift by ``e = round(log2 den)`` or by an exact division rounded half up."""
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
        if divider == "true_divide":
            out.append([(2 * acc[j] + den) // (2 * den) if den > 0 else 0 for j in range(d)])
            continue
        kb = max(den, 1).bit_length() - 1
        e = kb + (1 if den * den >= 1 << (2 * kb + 1) else 0)  # den >= 2**(kb + 1/2)
        out.append([(acc[j] + (1 << (e - 1))) >> e if e > 0 else acc[j] for j in range(d)])
    return out


@pytest.mark.parametrize("divider", ["log2_shift", "true_divide"])
def test_integer_linear_attention_is_the_units_integer_arithmetic(divider: str) -> None:
    # unit scales and eps = 0 make the executor's fixed-point rescale of the exact accumulators the
    # unit's own divide: 2**-e is an exact multiplier (the shift); 1/den is a 31-bit one, which can
    # part from the exact divider only on a tie num/den = x.5, and this data has none (asserted)
    g = _la_graph(eps=0.0)
    for t in ("q", "k", "v", "o"):
        g.quant[t] = QuantParams(16 if t == "o" else 8, np.array(1.0), np.array(0))
    rng = np.random.default_rng(7)
    q, k, v = (rng.integers(-128, 128, size=(2, 2, 6, 4)) for _ in range(3))
    q[0, 1, 2] = -np.abs(q[0, 1, 2])  # a row with ReLU(q) = 0: divisor 0, output 0
    stats = BittrueStats()
    ins = {"q": q.astype(np.float32), "k": k.astype(np.float32), "v": v.astype(np.float32)}
    y = execute(g, ins, ArithmeticConfig(la_divisor=divider), stats=stats)["o"]
    assert stats.integer_ops == {"la"}
    ref = [
        [
            _ref_unit_linear_attention(q[b, h].tolist(), k[b, h].tolist(), v[b, h].tolist(), divider)
            for h in range(2)
        ]
        for b in range(2)
    ]
    np.testing.assert_array_equal(y, np.array(ref, dtype=np.float32))
    kv1 = np.swapaxes(np.maximum(k, 0), -1, -2) @ np.concatenate([v, np.ones((2, 2, 6, 1), np.int64)], -1)
    acc = np.maximum(q, 0) @ kv1
    num, den = acc[..., :-1], np.maximum(acc[..., -1:], 1)
    assert not np.any(((2 * num) % den == 0) & ((2 * num // den) % 2 == 1))  # no ties
    assert np.all(acc[0, 1, 2] == 0)


def test_arithmetic_config_validates_fields() -> None:
    from accelsim.config._base import validate_config

    with pytest.raises(ConfigError, match=r"softmax: .*'exp'"):
        validate_config(ArithmeticConfig, {"softmax": "exp"})
    with pytest.raises(
        ConfigError, match=r"accumulator_bits \+ requant_mantissa_bits must be <= 63 \(got 48 \+ 31"
    ):
        validate_config(ArithmeticConfig, {"accumulator_bits": 48})
    with pytest.raises(ConfigError, match="acc_bits: unknown field"):
        validate_config(ArithmeticConfig, {"acc_bits": 24})
    assert (
        validate_config(
            ArithmeticConfig, {"accumulator_bits": 48, "requant_mantissa_bits": 15}
        ).accumulator_bits
        == 48
    )


def test_missing_weights_and_inputs_are_clear_errors() -> None:
    g = _gemm_graph()
    g.constants.clear()
    with pytest.raises(GraphFormatError, match=r"weight tensor 'w' has no value.*load_constants"):
        Executor(g)
    g = _gemm_graph()
    with pytest.raises(GraphFormatError, match=r"missing input\(s\) \['x'\]"):
        execute(g, {})
    with pytest.raises(GraphFormatError, match=r"input 'x': shape \(1, 4\), graph expects \(1, 3\)"):
        execute(g, {"x": np.zeros((1, 4), np.float32)})


def test_unknown_target_is_refused_by_name() -> None:
    g = Graph("odd")
    g.add_tensor(Tensor("x", (2, 3)))
    g.add_tensor(Tensor("y", (3, 2)))
    g.add_op(Op("r", OpKind.TRANSPOSE, ("x",), ("y",), {}, target="aten.pixel_shuffle.default"))
    with pytest.raises(UnsupportedOpError, match=r"'r'.*aten\.pixel_shuffle\.default"):
        Executor(g)


def test_run_bittrue_batches_a_batch_one_graph() -> None:
    g = _gemm_graph()
    rng = np.random.default_rng(5)
    xs = rng.uniform(-2, 2, size=(7, 3)).astype(np.float32)
    one_by_one = np.concatenate([execute(g, {"x": xs[i : i + 1]})["y"] for i in range(7)])
    np.testing.assert_array_equal(run_bittrue(g, xs, batch_size=3), one_by_one)


def test_linear_attention_quantises_fused_operands_and_log2_divisor_from_attrs() -> None:
    # lowering fuses ReLU + quantiser into the op: attrs["quant"] carries them by role
    g = _la_graph(eps=1e-5)
    qq = QuantParams(8, np.array(1 / 100), np.array(0), signed=False)
    vq = QuantParams(8, np.array(1 / 64), np.array(0))
    dq = QuantParams(8, np.array(4.0), np.array(0), signed=False, mode="log2", power_of_two=True)
    op = g.op("la")
    attrs = {
        **op.attrs,
        "quant": {"q": qq.to_dict(), "k": qq.to_dict(), "v": vq.to_dict(), "divisor": dq.to_dict()},
    }
    g.replace_op(Op(op.name, op.kind, op.inputs, op.outputs, attrs))
    rng = np.random.default_rng(6)
    q, k, v = (rng.uniform(-0.5, 1.5, size=(2, 2, 6, 4)).astype(np.float32) for _ in range(3))
    stats = BittrueStats()
    y = execute(g, {"q": q, "k": k, "v": v}, stats=stats)["o"]
    assert stats.integer_ops == {"la"}
    cq, ck = quantize_float(np.maximum(q, 0), qq), quantize_float(np.maximum(k, 0), qq)
    cv = quantize_float(v, vq)
    num = cq @ (np.swapaxes(ck, -1, -2) @ cv)  # exact integers
    den = (cq @ ck.sum(-2)[..., None]) * 1e-4 + 1e-5
    divisor = log2_values(den.astype(np.float32), dq).astype(np.float64)  # a power of two (scale 4 = 2**2)
    assert np.all(np.log2(divisor) == np.rint(np.log2(divisor)))
    fine = 2**16  # the quotient's extra fractional bits below v's scale 1/64
    want = np.floor(num * 1e-4 / divisor * fine + 0.5) / (64 * fine)
    np.testing.assert_allclose(y, want, atol=1e-9)


def test_linear_attention_quotient_is_rounded_once_at_the_next_quantiser() -> None:
    # o carries no format; the reshape after it does (the proj conv's input quantiser): the
    # quotient must reach that format with one rounding, as the fake-quant model rounds it
    g = _la_graph(eps=1e-5)
    g.add_tensor(Tensor("r", (2, 2, 24)))
    g.add_op(Op("mv", OpKind.RESHAPE, ("o",), ("r",), {}))
    for t in ("q", "k", "v"):
        g.quant[t] = QuantParams(8, np.array(1 / 16), np.array(0))
    out_q = QuantParams(8, np.array(1 / 128), np.array(0))
    g.quant["r"] = out_q
    rng = np.random.default_rng(7)
    q, k, v = (rng.uniform(-0.5, 2, size=(2, 2, 6, 4)).astype(np.float32) for _ in range(3))
    y = execute(g, {"q": q, "k": k, "v": v}, ArithmeticConfig(la_divisor="true_divide"))["r"]
    cq, ck = (np.maximum(quantize_float(a, g.quant["q"]), 0) for a in (q, k))
    cv = quantize_float(v, g.quant["v"])
    num = (cq @ (np.swapaxes(ck, -1, -2) @ cv)) / 16**3
    den = (cq @ ck.sum(-2)[..., None]) / 16**2 + 1e-5
    want = quantize_float((num / den).reshape(2, 2, 24), out_q) / 128
    # v's grid (1/16) is 8x coarser than the output's: rounding to it first would miss by up to 4 LSBs
    np.testing.assert_array_equal(y, want)


def test_the_executor_does_not_import_the_simulator() -> None:
    # the datapath arithmetic it shares with the timing units lives in accelsim.datapath
    code = "import json, sys, accelsim.eval.bittrue; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert [m for m in json.loads(out) if m.startswith("accelsim.sim")] == []
