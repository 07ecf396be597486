"""``einsum``, decomposed by its equation into the ops the IR already has.

Any equation torch accepts lowers (explicit or implicit output, ``...`` and size-1 broadcasting,
any number of operands), except a label repeated inside one operand (a diagonal, ``"ii->i"``),
which refuses clearly.

Operands are contracted pairwise in torch's order (``aten/src/ATen/native/Linear.cpp``,
``einsum``): the pair ``path`` names (opt_einsum's contraction path, which ``torch.einsum``
passes when opt_einsum is installed), else the first two; the pair is removed and its result
appended, as opt_einsum's paths mean. For one pair ``L``, ``R`` with ``keep`` the labels needed
later (the output's and the remaining operands'):

- a label of one operand only that is not kept is summed out first (a ``pool`` sum), as torch
  does, so it costs no MACs; so is a summed label of size 1 in the other operand;
- if no label is shared and summed, the product is an element-wise ``mul`` with broadcasting
  (Hadamard and outer products: torch's ``sumproduct_pair`` calls ``at::mul`` there, which the
  flop counter does not count either);
- otherwise it is one ``matmul`` ``A[P..., M, K] @ B[P..., K, N]``: ``K`` the summed labels,
  ``M`` the last kept label of ``L`` alone, ``N`` the last kept label of ``R`` alone, ``P`` every
  other kept label as a broadcast batch dimension (size 1 in the operand that lacks it). Its
  MACs are the product of all label sizes, what the flop counter counts for torch's ``bmm``.

Operands are permuted and reshaped into that layout (folded into a new weight when the operand
is a constant, movement ops when it is an activation); the result is summed and permuted into
the output's order at the end. Layouts keep the output's leading label leading where they can,
so the bit-true executor's batch scaling of the leading dimension stays right.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx

from accelsim.errors import UnsupportedOpError
from accelsim.ir import OpKind
from accelsim.lower._registry import register_lowering
from accelsim.lower.context import Const, Decomposition, LoweringContext, Step, bind
from accelsim.lower.rules.matmul import gemm_attrs, gemm_macs

aten = torch.ops.aten

#: What an operand is while the decomposition is planned: a graph tensor, a planned op, a constant.
_Value = str | Step | Const


@dataclass(frozen=True)
class _Operand:
    value: _Value
    labels: tuple[str, ...]
    shape: tuple[int, ...]


def parse_equation(equation: str, ranks: Sequence[int]) -> tuple[list[list[str]], list[str]]:
    """Labels of each operand and of the output; the dimensions ``...`` covers become labels
    ``"...0"``, ``"...1"``, ... aligned from the right, as torch broadcasts them.

    Raises:
        ValueError: the equation does not fit the operands' ranks.
    """
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise ValueError(f"einsum {equation!r} names {len(terms)} operands, got {len(ranks)}")
    explicit = [len(t.replace("...", "")) for t in terms]
    ell_rank = max((r - n for t, r, n in zip(terms, ranks, explicit, strict=True) if "..." in t), default=0)
    ell = [f"...{i}" for i in range(ell_rank)]
    operands: list[list[str]] = []
    for t, r, n in zip(terms, ranks, explicit, strict=True):
        pre, dots, post = t.partition("...")
        labels = [*pre, *ell[ell_rank - (r - n) :], *post] if dots else list(t)
        if len(labels) != r or any(not (c.isascii() and c.isalpha()) for c in pre + post):
            raise ValueError(f"einsum {equation!r}: term {t!r} does not fit an operand of rank {r}")
        operands.append(labels)
    if arrow:
        pre, dots, post = rhs.partition("...")
        out = [*pre, *ell, *post] if dots else list(rhs)
    else:  # implicit: broadcast dimensions, then the labels seen once, in alphabetical order
        counts = Counter(x for labels in operands for x in labels if not x.startswith("..."))
        out = ell + sorted(x for x, c in counts.items() if c == 1)
    return operands, out


class _Planner:
    """Plans the ops of one einsum; constants are transformed at lowering time, never emitted."""

    def __init__(self, ctx: LoweringContext, node: fx.Node) -> None:
        self.ctx = ctx
        self.d = Decomposition(ctx)
        self.node = node
        self.n = 0
        roots = [v.name.split(":")[0] for v in ctx.value(node.args[1]) if isinstance(v, Const)]
        self.root = roots[0] if roots else "einsum"

    def _suffix(self, what: str) -> str:
        self.n += 1
        return f"{what}{self.n}"

    def _const(self, value: torch.Tensor, what: str) -> Const:
        return Const(value, f"{self.root}:{self.node.name}.{self._suffix(what)}")

    def name(self, v: _Value) -> str | Step:
        return self.ctx.materialize(v) if isinstance(v, Const) else v

    def permute(self, x: _Operand, labels: Sequence[str]) -> _Operand:
        if tuple(labels) == x.labels:
            return x
        perm = [x.labels.index(lb) for lb in labels]
        shape = tuple(x.shape[p] for p in perm)
        if isinstance(x.value, Const):
            return _Operand(self._const(x.value.value.permute(perm), "t"), tuple(labels), shape)
        step = self.d.add(
            self._suffix("t"), OpKind.TRANSPOSE, [x.value], shape, {}, target="aten.permute.default",
            args=[{"input": 0}, perm],
        )  # fmt: skip
        return _Operand(step, tuple(labels), shape)

    def reshape(self, x: _Operand, shape: Sequence[int]) -> _Value:
        """``x`` viewed as ``shape`` (the labels no longer describe the dimensions)."""
        shape = tuple(int(s) for s in shape)
        if shape == x.shape:
            return x.value
        if isinstance(x.value, Const):
            return self._const(x.value.value.reshape(shape), "r")
        return self.d.add(
            self._suffix("r"), OpKind.RESHAPE, [x.value], shape, {}, target="aten.reshape.default",
            args=[{"input": 0}, list(shape)],
        )  # fmt: skip

    def sum_out(self, x: _Operand, drop: Collection[str]) -> _Operand:
        if not drop:
            return x
        dims = sorted(x.labels.index(lb) for lb in drop)
        labels = tuple(lb for lb in x.labels if lb not in drop)
        shape = tuple(s for i, s in enumerate(x.shape) if i not in dims)
        if isinstance(x.value, Const):
            return _Operand(self._const(x.value.value.sum(dims), "s"), labels, shape)
        step = self.d.add(
            self._suffix("sum"), OpKind.POOL, [x.value], shape, {"fn": "sum", "elements": math.prod(x.shape)},
            target="aten.sum.dim_IntList", args=[{"input": 0}, dims, False],
        )  # fmt: skip
        return _Operand(step, labels, shape)

    def squeeze(self, x: _Operand, labels: Collection[str]) -> _Operand:
        """``x`` without its size-1 dimensions ``labels``."""
        if not labels:
            return x
        kept = [i for i, lb in enumerate(x.labels) if lb not in labels]
        shape = tuple(x.shape[i] for i in kept)
        return _Operand(self.reshape(x, shape), tuple(x.labels[i] for i in kept), shape)

    def contract(
        self, left: _Operand, right: _Operand, keep: set[str], order: Sequence[str], *, swapped: bool = False
    ) -> _Operand:
        """``left`` times ``right`` summed over their shared labels not in ``keep``; the result's
        labels are the kept ones, laid out as close to ``order`` as the matmul allows."""
        left = self.sum_out(left, [lb for lb in left.labels if lb not in keep and lb not in right.labels])
        right = self.sum_out(right, [lb for lb in right.labels if lb not in keep and lb not in left.labels])
        summed = [lb for lb in left.labels if lb in right.labels and lb not in keep]
        # A summed label of size 1 on one side is not a product over it (torch squeezes that side
        # and sums the other, so a broadcast K costs no MACs, as in its count).
        one_l = {lb for lb in summed if left.shape[left.labels.index(lb)] == 1}
        one_r = {lb for lb in summed if right.shape[right.labels.index(lb)] == 1}
        left = self.sum_out(self.squeeze(left, one_l), one_r - one_l)
        right = self.sum_out(self.squeeze(right, one_r), one_l - one_r)
        summed = [lb for lb in summed if lb not in one_l | one_r]
        kept = [lb for lb in order if lb in left.labels or lb in right.labels]
        for lb in (*left.labels, *right.labels):
            if lb in keep and lb not in kept:
                kept.append(lb)
        sizes = {lb: s for x in (left, right) for lb, s in zip(x.labels, x.shape, strict=True) if s != 1}
        size = [sizes.get(lb, 1) for lb in kept]
        if not summed:
            return self._product(left, right, kept, size)
        m = [lb for lb in kept if lb in left.labels and lb not in right.labels][-1:]
        n = [lb for lb in kept if lb in right.labels and lb not in left.labels][-1:]
        if (
            not swapped
            and m
            and n
            and m[0] in order
            and n[0] in order
            and order.index(m[0]) > order.index(n[0])
        ):
            # (R^T L^T)^T: the operand whose rows come first in the output goes on the left
            return self.contract(right, left, keep, order, swapped=True)
        batch = [lb for lb in kept if lb not in m and lb not in n]
        a = self._operand(left, batch, m, summed)
        b = self._operand(right, batch, summed, n)
        sa, sb = self.shape_of(a), self.shape_of(b)
        attrs = gemm_attrs(
            list(sa),
            list(sb),
            isinstance(a, Const),
            isinstance(b, Const),
            bias=False,
            where=self.ctx.where(self.node),
        )
        mm_shape = (*torch.broadcast_shapes(sa[:-2], sb[:-2]), sa[-2], sb[-1])
        layout = [*batch, *m, *n]
        if isinstance(a, Const) and isinstance(b, Const):
            out: _Value = self._const(torch.matmul(a.value, b.value), "mm")
        else:
            out = self.d.add(
                self._suffix("mm"), OpKind.MATMUL, [self.name(a), self.name(b)], mm_shape, attrs,
                macs=gemm_macs(attrs), target="aten.matmul.default", args=[{"input": 0}, {"input": 1}],
            )  # fmt: skip
        laid = [sizes.get(lb, 1) for lb in layout]
        return _Operand(self.reshape(_Operand(out, (), mm_shape), laid), tuple(layout), tuple(laid))

    def _operand(self, x: _Operand, batch: list[str], rows: list[str], cols: list[str]) -> _Value:
        """``x`` as a ``[batch..., rows, cols]`` operand of the matmul: its labels permuted into
        that order, ``rows`` and ``cols`` flattened (an absent ``M``/``N`` is a size-1 dimension),
        and a size-1 dimension where it lacks a batch label (leading ones dropped: matmul
        broadcasting aligns batch dimensions from the right)."""
        x = self.permute(x, [*(lb for lb in batch if lb in x.labels), *rows, *cols])
        dims = [x.shape[x.labels.index(lb)] if lb in x.labels else 1 for lb in batch]
        lead = 0
        while lead < len(batch) and batch[lead] not in x.labels:
            lead += 1
        size = dict(zip(x.labels, x.shape, strict=True))
        mat = [math.prod(size[lb] for lb in rows), math.prod(size[lb] for lb in cols)]
        return self.reshape(x, [*dims[lead:], *mat])

    def shape_of(self, v: _Value) -> tuple[int, ...]:
        if isinstance(v, Const):
            return tuple(v.value.shape)
        return self.d.shape(v)

    def _product(self, left: _Operand, right: _Operand, kept: list[str], size: list[int]) -> _Operand:
        """An element-wise product with broadcasting, both sides laid out in ``kept`` order."""
        sides = []
        for x in (left, right):
            x = self.permute(x, [lb for lb in kept if lb in x.labels])
            view = [x.shape[x.labels.index(lb)] if lb in x.labels else 1 for lb in kept]
            sides.append(self.reshape(x, view))
        a, b = sides
        if isinstance(a, Const) and isinstance(b, Const):
            return _Operand(self._const(a.value * b.value, "mul"), tuple(kept), tuple(size))
        step = self.d.add(
            self._suffix("mul"), OpKind.ELTWISE, [self.name(a), self.name(b)], size,
            {"fn": "mul", "elements": math.prod(size)}, target="aten.mul.Tensor",
            args=[{"input": 0}, {"input": 1}],
        )  # fmt: skip
        return _Operand(step, tuple(kept), tuple(size))


def _pairs(path: Sequence[int] | None, n: int) -> list[tuple[int, int]]:
    if path is None:
        return [(0, 1)] * (n - 1)
    flat = [int(p) for p in path]
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


@register_lowering(aten.einsum.default)
def lower_einsum(node: fx.Node, ctx: LoweringContext) -> Any:
    a = bind(node)
    equation, tensors, path = str(a["equation"]), list(a["tensors"]), a["path"]
    shapes = [ctx.shape(t) for t in tensors]
    try:
        terms, out = parse_equation(equation, [len(s) for s in shapes])
    except ValueError as e:
        raise UnsupportedOpError(f"{e}: {ctx.where(node)}") from None
    for labels in terms:
        if len(set(labels)) != len(labels):
            raise UnsupportedOpError(
                f"einsum {equation!r} repeats a label within one operand (a diagonal), which has no rule: "
                f"{ctx.where(node)}"
            )
    sizes: dict[str, int] = {}
    for labels, shape in zip(terms, shapes, strict=True):
        for lb, s in zip(labels, shape, strict=True):
            sizes[lb] = max(sizes.get(lb, 1), s)
    if tuple(sizes[lb] for lb in out) != ctx.shape(node):  # our reading of the equation is torch's
        raise UnsupportedOpError(
            f"einsum {equation!r}: expected output {[sizes[lb] for lb in out]}, torch has "
            f"{list(ctx.shape(node))}: {ctx.where(node)}"
        )
    plan = _Planner(ctx, node)
    ops: list[_Operand] = []
    for t, labels, shape in zip(tensors, terms, shapes, strict=True):
        v = ctx.value(t)
        ops.append(_Operand(v if isinstance(v, Const) else ctx.tensor(t), tuple(labels), shape))
    for i, j in _pairs(path, len(ops)):
        left, right = ops[i], ops[j]
        rest = [x for idx, x in enumerate(ops) if idx not in (i, j)]
        keep = set(out).union(*(x.labels for x in rest))
        ops = [*rest, plan.contract(left, right, keep, out)]
    (result,) = ops
    result = plan.sum_out(result, [lb for lb in result.labels if lb not in out])
    result = plan.permute(result, out)
    # one operand at least is an activation (the front end folds all-constant nodes), so is the result
    assert not isinstance(result.value, Const)
    return plan.d.finish(result.value)
