"""einsum decomposed by its equation: MACs equal torch's flop counter, the ops replay in torch to
the model's output, layouts of the equations timm uses are pinned, and what has no rule says so."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lower_testing import replay
from torch import nn

from accelsim.config.arithmetic import ArithmeticConfig
from accelsim.errors import UnsupportedOpError
from accelsim.eval.accuracy import torch_macs
from accelsim.eval.bittrue import execute
from accelsim.ir import Graph, OpKind
from accelsim.lower import lower
from accelsim.lower.rules.einsum import parse_equation


class Einsum(nn.Module):
    """``einsum(equation, *operands)``: the constant operands are parameters, the others slices of
    the one flat input (lowering takes one input tensor)."""

    def __init__(
        self,
        equation: str,
        shapes: list[tuple[int, ...]],
        consts: list[bool],
        path: list[int] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.equation, self.shapes, self.consts, self.path, self.dtype = equation, shapes, consts, path, dtype
        self.w = nn.ParameterList(
            [nn.Parameter(torch.randn(s, dtype=dtype)) for s, c in zip(shapes, consts, strict=True) if c]
        )

    @property
    def input_size(self) -> int:
        return sum(math.prod(s) for s, c in zip(self.shapes, self.consts, strict=True) if not c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype)
        ops, off, w = [], 0, iter(self.w)
        for s, c in zip(self.shapes, self.consts, strict=True):
            if c:
                ops.append(next(w))
            else:
                ops.append(x[0, off : off + math.prod(s)].reshape(s))
                off += math.prod(s)
        if self.path is not None:  # what torch.einsum passes when opt_einsum picks the order
            return torch.ops.aten.einsum.default(self.equation, ops, path=self.path)
        return torch.einsum(self.equation, *ops)


def _lowered(model: Einsum) -> tuple[Graph, torch.Tensor]:
    torch.manual_seed(1)
    g = lower(model.eval(), (1, model.input_size), keep_constants=True)
    return g, torch.randn(1, model.input_size)


def _einsum_ops(g: Graph) -> list[str]:
    return [op.kind.value for op in g.ops() if op.name.startswith("einsum")]


CASES = [
    # (equation, shapes, constant operands, path, ops the einsum becomes)
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)], [False, False], None, ["transpose", "matmul"]),
    ("bhqk,bhkd->bhqd", [(2, 2, 3, 5), (2, 2, 5, 4)], [False, False], None, ["matmul"]),
    ("bnc,kc->bnk", [(2, 3, 4), (5, 4)], [False, True], None, ["matmul"]),
    ("bnc,ck->bkn", [(2, 3, 4), (4, 5)], [False, True], None, ["transpose", "matmul"]),
    ("...ij,...jk", [(2, 3, 4), (4, 5)], [False, True], None, ["matmul"]),
    ("aij,bjk->abik", [(2, 3, 4), (5, 4, 6)], [False, False], None, ["reshape", "matmul"]),
    ("bij,bjk->bik", [(1, 3, 4), (2, 4, 5)], [False, False], None, ["matmul"]),  # batch broadcast
    ("ij,kj->ik", [(1, 4), (5, 4)], [False, False], None, ["transpose", "matmul"]),
    ("i,i->", [(5,), (5,)], [False, False], None, ["reshape", "reshape", "matmul", "reshape"]),
    ("b...,b...->b", [(2, 3, 4), (2, 3, 4)], [False, False], None, ["reshape", "reshape", "matmul", "reshape"]),
    ("ij,jk->", [(3, 4), (4, 5)], [False, False], None, ["pool", "pool", "reshape", "reshape", "matmul", "reshape"]),
    ("i,j->ij", [(3,), (4,)], [False, False], None, ["reshape", "reshape", "eltwise"]),
    ("ij,ij->ij", [(3, 4), (3, 4)], [False, True], None, ["eltwise"]),
    ("ij->j", [(3, 4)], [False], None, ["pool"]),
    ("ij->ji", [(3, 4)], [False], None, ["transpose"]),
    ("ba", [(3, 4)], [False], None, ["transpose"]),  # implicit output: alphabetical
    ("ij", [(3, 4)], [False], None, []),  # nothing to do: the node is its input
    ("ij,jk,kl->il", [(2, 5), (5, 3), (3, 4)], [False, True, True], None, ["matmul", "matmul"]),
    # a summed label of size 1 on one side broadcasts: sum the other side, then a plain product
    ("ij,jk->ik", [(3, 1), (4, 5)], [False, False], None, ["reshape", "pool", "reshape", "reshape", "eltwise"]),
    ("ij,jk,kl->il", [(2, 5), (5, 3), (3, 4)], [False, False, False], [1, 2, 0, 1], ["matmul", "matmul"]),
]  # fmt: skip


@pytest.mark.parametrize(("equation", "shapes", "consts", "path", "kinds"), CASES)
def test_einsum_macs_replay_and_ops(
    equation: str, shapes: list[tuple[int, ...]], consts: list[bool], path: list[int] | None, kinds: list[str]
) -> None:
    model = Einsum(equation, shapes, consts, path)
    g, x = _lowered(model)
    assert _einsum_ops(g) == kinds
    assert g.total_macs == torch_macs(model, x)
    with torch.no_grad():
        torch.testing.assert_close(replay(g, x)[0], model(x), rtol=1e-6, atol=1e-6)
    assert not any(op.macs for op in g.ops() if op.kind != OpKind.MATMUL)


def test_path_sets_the_contraction_order() -> None:
    """torch's path semantics (opt_einsum's): contract the named pair, append the result. The
    order changes the MACs: (AB)C is 2*5*3 + 2*3*4, A(BC) is 5*3*4 + 2*5*4."""
    shapes = [(2, 5), (5, 3), (3, 4)]
    for path, macs in ((None, 2 * 5 * 3 + 2 * 3 * 4), ([1, 2, 0, 1], 5 * 3 * 4 + 2 * 5 * 4)):
        g, _ = _lowered(Einsum("ij,jk,kl->il", shapes, [False] * 3, path))
        assert g.total_macs == macs
    # (A, C) first has no shared label: an outer product (a mul, no MACs), then one big matmul
    g, _ = _lowered(Einsum("ij,jk,kl->il", shapes, [False] * 3, [0, 2, 0, 1]))
    assert g.total_macs == 2 * 5 * 3 * 4 and "eltwise" in _einsum_ops(g)


def test_mvitv2_relative_position_einsums() -> None:
    """MViTv2's decomposed relative positions (timm ``mvitv2.py`` ``cal_rel_pos_type``): r_q of
    (B, heads, q_h, q_w, dim) against the gathered tables Rh (q_h, k_h, dim), Rw (q_w, k_w, dim)."""
    b, y, h, w, c, k = 2, 3, 4, 5, 8, 6
    rel_h = Einsum("byhwc,hkc->byhwk", [(b, y, h, w, c), (h, k, c)], [False, True])
    g, x = _lowered(rel_h)
    (mm,) = [op for op in g.ops() if op.name.startswith("einsum")]  # one batched matmul, no movement
    assert (mm.attrs["batch"], mm.attrs["M"], mm.attrs["K"], mm.attrs["N"]) == (b * y * h, w, c, k)
    assert mm.attrs["operands"] == "wa" and mm.macs == b * y * h * w * c * k
    (table,) = [t for t in mm.inputs if g.tensors[t].weight]  # folded to (h, c, k): K before N
    assert g.tensors[table].shape == (h, c, k)
    np.testing.assert_array_equal(g.constants[table], rel_h.w[0].detach().permute(0, 2, 1).numpy())
    rel_w = Einsum("byhwc,wkc->byhwk", [(b, y, h, w, c), (w, k, c)], [False, True])
    g, x = _lowered(rel_w)
    assert _einsum_ops(g) == ["transpose", "matmul", "transpose"]  # w is the batch: q_h -> rows
    (mm,) = [op for op in g.ops() if op.kind == OpKind.MATMUL]
    assert (mm.attrs["batch"], mm.attrs["M"], mm.attrs["K"], mm.attrs["N"]) == (b * y * w, h, c, k)
    with torch.no_grad():
        torch.testing.assert_close(replay(g, x)[0], rel_w(x), rtol=1e-6, atol=1e-6)


def test_einsum_runs_in_the_bittrue_executor() -> None:
    """Matmul, transposes and reshapes are all ops the executor runs; a batch larger than the
    graph's scales the leading dimension, which the layouts keep leading."""
    model = Einsum("byhwc,wkc->byhwk", [(1, 3, 4, 5, 8), (5, 6, 8)], [False, True])
    g, _ = _lowered(model)
    # the graph's input is the flat (1, N) tensor; feed two rows through the executor at once
    x = torch.randn(1, model.input_size)
    with torch.no_grad():
        ref = model(x).numpy()
    out = execute(g, {g.inputs[0]: x.numpy()}, ArithmeticConfig.float_units())[g.outputs[0]]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@st.composite
def _equations(draw: st.DrawFn) -> tuple[str, list[tuple[int, ...]], list[bool], list[int] | None]:
    letters = "abcdeA"
    size = {lb: draw(st.integers(1, 4)) for lb in letters}
    n_ops = draw(st.integers(1, 3))
    terms = [draw(st.permutations(letters))[: draw(st.integers(1, 3))] for _ in range(n_ops)]
    seen = sorted({lb for t in terms for lb in t})
    out = draw(st.permutations(seen))[: draw(st.integers(0, len(seen)))]
    consts = [draw(st.booleans()) for _ in terms]
    consts[draw(st.integers(0, n_ops - 1))] = False  # one activation at least
    pair = [0, 1]
    path = None
    if n_ops == 3 and draw(st.booleans()):
        pair = draw(st.sampled_from([[0, 1], [0, 2], [1, 2]]))
        path = [*pair, 0, 1]
    # two constants contracted first fold into a weight at lowering time (no MACs on the
    # accelerator), which torch's count of the model's forward does not know
    assume(n_ops < 3 or not (consts[pair[0]] and consts[pair[1]]))
    implicit = draw(st.booleans()) and n_ops > 1
    equation = ",".join("".join(t) for t in terms) + ("" if implicit else "->" + "".join(out))
    return equation, [tuple(size[lb] for lb in t) for t in terms], consts, path


@settings(max_examples=60, deadline=None)
@given(_equations())
def test_random_equations_match_torch(
    case: tuple[str, list[tuple[int, ...]], list[bool], list[int] | None],
) -> None:
    """Any diagonal-free equation: the decomposition is exact (float64) and its MACs are torch's."""
    equation, shapes, consts, path = case
    model = Einsum(equation, shapes, consts, path, dtype=torch.float64)
    g, x = _lowered(model)
    assert g.total_macs == torch_macs(model, x)
    with torch.no_grad():
        torch.testing.assert_close(replay(g, x.double())[0], model(x), rtol=1e-12, atol=1e-12)


def test_parse_equation() -> None:
    assert parse_equation("bij , bjk", [3, 3]) == ([list("bij"), list("bjk")], list("ik"))  # b is summed
    assert parse_equation("ba,Ab", [2, 2]) == ([["b", "a"], ["A", "b"]], ["A", "a"])  # A < a, as torch
    ops, out = parse_equation("...ij,j...->...i", [4, 2])
    assert ops == [["...0", "...1", "i", "j"], ["j", "...1"]] and out == ["...0", "...1", "i"]
    with pytest.raises(ValueError, match="names 2 operands, got 1"):
        parse_equation("ij,jk->ik", [2])
    with pytest.raises(ValueError, match="does not fit an operand of rank 3"):
        parse_equation("ij->i", [3])


@pytest.mark.parametrize(
    ("equation", "shapes", "needle"),
    [
        ("ii->i", [(3, 3)], "repeats a label within one operand"),
    ],
)
def test_what_has_no_rule_says_so(equation: str, shapes: list[tuple[int, ...]], needle: str) -> None:
    with pytest.raises(UnsupportedOpError) as e:
        _lowered(Einsum(equation, shapes, [False] * len(shapes)))
    assert needle in str(e.value) and "node 'einsum'" in str(e.value)
