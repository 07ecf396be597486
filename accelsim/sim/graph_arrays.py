"""A Graph flattened into NumPy arrays once, so that each hardware point costs NumPy + one kernel.

:func:`compile_graph` walks the graph once (Python touches each op here and nowhere else) and
caches the result per graph object. Everything hardware-independent lives here: op classes,
GEMM dimensions, operand bytes, the dependency CSR and the liveness of every activation.
Each column group (op dimensions, unit dimensions, operands, dependencies, pipe edges,
liveness, GEMM shapes) is built by its own function into a small frozen dataclass;
:class:`GraphArrays` keeps them flat, the names the mapping and the kernels read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

import numpy as np

from accelsim.errors import GraphFormatError
from accelsim.ir.graph import MOVEMENT_KINDS, Graph, Op, OpKind
from accelsim.sim._kernels import (
    CLS_DWCONV,
    CLS_GEMM,
    CLS_LA_AUX,
    CLS_LINATT,
    CLS_MOVE,
    CLS_SOFTMAX,
    CLS_VECTOR,
    PIPE_ELEM,
    PIPE_HEAD,
    PIPE_MBCONV,
    PIPE_NONE,
    ROLE_A,
    ROLE_B,
    ROLE_OTHER,
    GraphColumns,
)
from accelsim.sim._memo import Memo, per_object

#: Roles of the rows of a linear-attention op: it is split into its ReLU (vector work), its two
#: GEMMs and its normalising divide (vector work), so that without a linear-attention unit the
#: array and the vector unit share it head by head. With the unit, ReLU and divide are absorbed.
_ROLE_NORMAL, _ROLE_LA_RELU, _ROLE_LA_CORE, _ROLE_LA_DIV = 0, 1, 2, 3

#: Op rows the mapping memo of one graph holds at most (about 150 B each: 17 int64 plan columns
#: and the DSP share), ~40 MB; a DeiT's ~240 rows give ~1,000 mappings.
PLAN_MEMO_OPS = 1 << 18

_VECTOR_KINDS = {
    OpKind.LAYERNORM,
    OpKind.BATCHNORM,
    OpKind.ACTIVATION,
    OpKind.ELTWISE,
    OpKind.POOL,
    OpKind.TOKEN_SELECT,
}


@dataclass(frozen=True, eq=False)
class GraphArrays:
    """Hardware-independent arrays of one graph; ops are in topological order.

    Per op (length ``n_ops``): ``cls`` (``CLS_*``), ``kind`` names, GEMM dims ``batch, M, K, N``
    (a linear attention's second GEMM is ``shape2_id``'s), ``macs, operand ``bits``,
    ``elements`` (vector work), ``out_root``/``out_bytes`` and ``must_store`` (graph outputs).
    Unit-timing columns: ``rows``/``length`` (softmax, layernorm), ``kh, kw, stride, channels,
    out_hw, in_hw`` (depthwise convs). Pipelined edges: ``pipe_src`` (the producer a row may
    stream behind, -1 none), ``pipe_kind`` (``PIPE_*``), ``pipe_groups`` (heads for
    ``PIPE_HEAD``, 0 = element-grained) and ``pipe_root`` (the tensor between them, -1 if internal);
    ``heads``: the number of heads a row is split into (0: not split).
    A ``linear_attention`` op becomes three rows (``/relu``, the op, ``/normalise``).
    Inputs as CSR ``in_ptr``/``in_root``/``in_bytes``/``in_role``/``in_weight``; predecessors as
    CSR ``pred_ptr``/``pred_idx`` and
    successors ``succ_ptr``/``succ_idx``. Per root tensor: ``t_bytes``, ``t_peak_live`` (largest sum of
    live activation bytes over its lifetime; ``t_peak_live_heads`` the same with per-head streams
    holding two heads) and ``t_can_reside``.
    """

    name: str
    names: list[str]
    kinds: list[str]
    modules: list[str]
    cls: np.ndarray
    batch: np.ndarray
    M: np.ndarray
    K: np.ndarray
    N: np.ndarray
    macs: np.ndarray
    bits: np.ndarray
    wbits: np.ndarray
    abits: np.ndarray
    b_weight: np.ndarray
    elements: np.ndarray
    passes: np.ndarray
    rows: np.ndarray
    length: np.ndarray
    kh: np.ndarray
    kw: np.ndarray
    stride: np.ndarray
    channels: np.ndarray
    out_hw: np.ndarray
    in_hw: np.ndarray
    pipe_src: np.ndarray
    pipe_kind: np.ndarray
    pipe_groups: np.ndarray
    pipe_root: np.ndarray
    heads: np.ndarray
    epi_src: np.ndarray
    ln_src: np.ndarray
    in_ptr: np.ndarray
    in_op: np.ndarray
    in_root: np.ndarray
    in_bytes: np.ndarray
    in_role: np.ndarray
    in_weight: np.ndarray
    out_root: np.ndarray
    out_bytes: np.ndarray
    pred_ptr: np.ndarray
    pred_idx: np.ndarray
    succ_ptr: np.ndarray
    succ_idx: np.ndarray
    t_bytes: np.ndarray
    t_peak_live: np.ndarray
    t_peak_live_heads: np.ndarray
    t_can_reside: np.ndarray
    shape_id: np.ndarray
    shape2_id: np.ndarray
    shapes: np.ndarray
    total_macs: int
    #: per-config answers about this graph (shape timings, engines, unit cycles): the mapping's
    memo: Memo[Any, Any] = field(default_factory=lambda: Memo(256), repr=False)
    #: whole mappings by the config fields they read (:func:`accelsim.sim.mapping.map_graph`), so a
    #: sweep over fields the mapping does not read maps once; about ``PLAN_MEMO_OPS`` op rows held
    plans: Memo[Any, Any] = field(default_factory=lambda: Memo(16), repr=False)

    def __post_init__(self) -> None:
        self.plans.limit = max(16, PLAN_MEMO_OPS // max(1, len(self.names)))

    @property
    def n_ops(self) -> int:
        return len(self.names)

    @cached_property
    def columns(self) -> GraphColumns:
        """The columns the mapping kernel reads, as its named tuple."""
        return GraphColumns(
            **{f: getattr(self, f) for f in GraphColumns._fields if f != "t_peak_heads"},
            t_peak_heads=self.t_peak_live_heads,
        )


def _int_attr(op: Op, key: str, default: int | None = None) -> int:
    v = op.attrs.get(key, default)
    if v is None:
        raise GraphFormatError(f"op {op.name!r} ({op.kind.value}): missing attribute {key!r}")
    if isinstance(v, list | tuple):
        v = v[0]
    try:
        return int(v)
    except (TypeError, ValueError):
        raise GraphFormatError(f"op {op.name!r}: attribute {key!r} must be an int, got {v!r}") from None


#: Passes over the data a basic vector unit makes per element (one element per lane per pass):
#: layernorm = mean, variance, normalise+affine; softmax = max, exp+sum, divide; the rest one pass.
VECTOR_PASSES: dict[OpKind, int] = {
    OpKind.LAYERNORM: 3,
    OpKind.SOFTMAX: 3,
    OpKind.BATCHNORM: 1,
    OpKind.ACTIVATION: 1,
    OpKind.ELTWISE: 1,
    OpKind.POOL: 1,
    OpKind.TOKEN_SELECT: 1,
}


def _gemm_dims(op: Op) -> tuple[int, int, int, int]:
    """(batch, M, K, N) of the GEMM(s) an op runs as, per the IR attribute conventions."""
    if op.kind == OpKind.MATMUL:
        return (_int_attr(op, "batch", 1), _int_attr(op, "M"), _int_attr(op, "K"), _int_attr(op, "N"))
    if op.kind in (OpKind.CONV2D, OpKind.DWCONV2D):
        groups = _int_attr(op, "groups", 1)
        if op.kind == OpKind.DWCONV2D and "groups" not in op.attrs:
            groups = _int_attr(op, "in_ch")
        in_ch, out_ch = _int_attr(op, "in_ch"), _int_attr(op, "out_ch")
        if groups <= 0 or in_ch % groups or out_ch % groups:
            raise GraphFormatError(
                f"op {op.name!r}: groups={groups} does not divide in_ch={in_ch}, out_ch={out_ch}"
            )
        m = _int_attr(op, "batch", 1) * _int_attr(op, "out_h") * _int_attr(op, "out_w")
        k = _int_attr(op, "kh") * _int_attr(op, "kw") * (in_ch // groups)
        return groups, m, k, out_ch // groups
    if op.kind == OpKind.LINEAR_ATTENTION:
        # First GEMM ReLU(K)^T [V, 1]: (d x T) @ (T x d+1); the second is ReLU(Q) @ KV: (T x d) @ (d x d+1).
        b = _int_attr(op, "batch", 1) * _int_attr(op, "heads", 1)
        return b, _int_attr(op, "head_dim"), _int_attr(op, "tokens"), _int_attr(op, "head_dim") + 1
    return 0, 0, 0, 0


def _elements(op: Op, graph: Graph) -> int:
    if op.kind in (OpKind.SOFTMAX, OpKind.LAYERNORM, OpKind.BATCHNORM) and "rows" in op.attrs:
        return _int_attr(op, "rows") * _int_attr(op, "length")
    if op.kind == OpKind.TOKEN_SELECT and "tokens_in" in op.attrs:
        return _int_attr(op, "tokens_in") * _int_attr(op, "channels")
    if "elements" in op.attrs:
        return _int_attr(op, "elements")
    if op.kind == OpKind.LINEAR_ATTENTION:
        # ReLU on Q and K, and the per-token division: 3 * T * d per head.
        return (
            3
            * _int_attr(op, "batch", 1)
            * _int_attr(op, "heads", 1)
            * _int_attr(op, "tokens")
            * _int_attr(op, "head_dim")
        )
    return max((graph.tensors[t].numel for t in op.outputs), default=0)


def _classify(op: Op) -> int:
    if op.kind in (OpKind.MATMUL, OpKind.CONV2D):
        return CLS_GEMM
    if op.kind == OpKind.DWCONV2D:
        return CLS_DWCONV
    if op.kind == OpKind.LINEAR_ATTENTION:
        return CLS_LINATT
    if op.kind == OpKind.SOFTMAX:
        return CLS_SOFTMAX
    if op.kind in _VECTOR_KINDS:
        return CLS_VECTOR
    if op.kind in MOVEMENT_KINDS:
        return CLS_MOVE
    raise GraphFormatError(f"op {op.name!r}: the simulator has no model for kind {op.kind.value!r}")


def _unit_dims(op: Op) -> tuple[int, int, int, int, int, int, int, int]:
    """(rows, length, kh, kw, stride, channels, out_hw, in_hw) for the unit timing models."""
    rows = length = kh = kw = stride = ch = out_hw = in_hw = 0
    if op.kind in (OpKind.SOFTMAX, OpKind.LAYERNORM) and "rows" in op.attrs:
        rows, length = _int_attr(op, "rows"), _int_attr(op, "length")
    elif op.kind == OpKind.DWCONV2D:
        kh, kw = _int_attr(op, "kh"), _int_attr(op, "kw")
        stride = _int_attr(op, "stride", 1)
        ch = _int_attr(op, "batch", 1) * _int_attr(op, "out_ch")
        out_hw = _int_attr(op, "out_h") * _int_attr(op, "out_w")
        in_hw = _int_attr(op, "in_h", 0) * _int_attr(op, "in_w", 0)
    return rows, length, kh, kw, stride, ch, out_hw, in_hw


#: Vector kinds a producer's output can stream into element by element (no whole-row reduction).
_ELEMENTWISE_KINDS = {OpKind.ACTIVATION, OpKind.ELTWISE}


_Rows = list[tuple[Op, int]]


@dataclass(frozen=True)
class _OpDims:
    """Per row: what it is and how much work it does (GEMM dims, vector elements, bits)."""

    names: list[str]
    kinds: list[str]
    modules: list[str]
    cls: np.ndarray
    batch: np.ndarray
    M: np.ndarray
    K: np.ndarray
    N: np.ndarray
    macs: np.ndarray
    bits: np.ndarray
    elements: np.ndarray
    passes: np.ndarray


@dataclass(frozen=True)
class _UnitDims:
    """Per row: the dimensions the softmax/layernorm and depthwise-conv unit models time."""

    rows: np.ndarray
    length: np.ndarray
    kh: np.ndarray
    kw: np.ndarray
    stride: np.ndarray
    channels: np.ndarray
    out_hw: np.ndarray
    in_hw: np.ndarray


@dataclass(frozen=True)
class _Operands:
    """Per row: its inputs as CSR, its GEMM operands' bits and its output; per tensor its bytes."""

    wbits: np.ndarray
    abits: np.ndarray
    b_weight: np.ndarray
    in_ptr: np.ndarray
    in_op: np.ndarray
    in_root: np.ndarray
    in_bytes: np.ndarray
    in_role: np.ndarray
    in_weight: np.ndarray
    out_root: np.ndarray
    out_bytes: np.ndarray
    t_bytes: np.ndarray


@dataclass(frozen=True)
class _Roots:
    """Per tensor, after data movement is resolved: the tensor whose storage it aliases, whether it
    loads like a weight, and whether an op that does work writes it. Not a GraphArrays column."""

    tensor_ids: dict[str, int]
    root: np.ndarray
    is_weight: np.ndarray
    produced: np.ndarray


@dataclass(frozen=True)
class _Dependencies:
    """Predecessors and successors of every row, as CSR."""

    pred_ptr: np.ndarray
    pred_idx: np.ndarray
    succ_ptr: np.ndarray
    succ_idx: np.ndarray


@dataclass(frozen=True)
class _PipeEdges:
    """Per row: the edge it may stream behind and its epilogue candidates (see _pipe_candidates)."""

    pipe_src: np.ndarray
    pipe_kind: np.ndarray
    pipe_groups: np.ndarray
    pipe_root: np.ndarray
    heads: np.ndarray
    epi_src: np.ndarray
    ln_src: np.ndarray


@dataclass(frozen=True)
class _Liveness:
    """Per root tensor: the live-activation peaks over its lifetime and whether it may stay on chip."""

    t_peak_live: np.ndarray
    t_peak_live_heads: np.ndarray
    t_can_reside: np.ndarray


@dataclass(frozen=True)
class _Shapes:
    """The distinct GEMM shapes and each row's (and a linear attention's second GEMM's) index."""

    shape_id: np.ndarray
    shape2_id: np.ndarray
    shapes: np.ndarray


def _columns(group: Any) -> dict[str, Any]:
    """A column group's arrays by name, uncopied (``dataclasses.asdict`` deep-copies them)."""
    return {f.name: getattr(group, f.name) for f in fields(group)}


def _int64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _build(graph: Graph) -> GraphArrays:
    nodes, exit_ = _rows(graph)
    ops = _op_dims(graph, nodes)
    operands, roots = _operands(graph, nodes, ops)
    pipe = _pipe_candidates(graph, nodes, ops, roots, exit_)
    return GraphArrays(
        name=graph.name,
        **_columns(ops),
        **_columns(_unit_columns(nodes)),
        **_columns(operands),
        **_columns(_dependencies(graph, nodes, exit_)),
        **_columns(pipe),
        **_columns(_liveness(graph, nodes, ops, operands, roots, pipe)),
        **_columns(_shapes(ops, operands)),
        total_macs=int(sum(op.macs for op, role in nodes if role in (_ROLE_NORMAL, _ROLE_LA_CORE))),
    )


def _rows(graph: Graph) -> tuple[_Rows, dict[str, int]]:
    """The rows in topological order, one per op and three per linear attention (relu, core,
    normalise), and each op's last row (the one its consumers wait for)."""
    nodes: _Rows = []
    for op in graph.ops():
        if op.kind == OpKind.LINEAR_ATTENTION:
            nodes += [(op, _ROLE_LA_RELU), (op, _ROLE_LA_CORE), (op, _ROLE_LA_DIV)]
        else:
            nodes.append((op, _ROLE_NORMAL))
    exit_ = {op.name: i for i, (op, role) in enumerate(nodes) if role in (_ROLE_NORMAL, _ROLE_LA_DIV)}
    return nodes, exit_


def _op_dims(graph: Graph, nodes: _Rows) -> _OpDims:
    cols: dict[str, list[int]] = {
        k: [] for k in ("cls", "batch", "M", "K", "N", "macs", "bits", "elements", "passes")
    }
    names: list[str] = []
    kinds: list[str] = []
    for op, role in nodes:
        core = role in (_ROLE_NORMAL, _ROLE_LA_CORE)
        c = _classify(op) if core else CLS_LA_AUX
        b, m, k, nn = _gemm_dims(op) if core else (0, 0, 0, 0)
        # Auxiliary rows carry no tensors: their data is the linear attention's, already on chip.
        bits = max((graph.tensors[t].bits for t in op.inputs), default=8) if core else 8
        if not core:
            la = _int_attr(op, "batch", 1) * _int_attr(op, "heads", 1) * _int_attr(op, "tokens")
            la *= _int_attr(op, "head_dim")
            # ReLU of Q and K (2 T d per head); the divide of the T d outputs by their k-sum term.
            elements = 2 * la if role == _ROLE_LA_RELU else la
            names.append(f"{op.name}/{'relu' if role == _ROLE_LA_RELU else 'normalise'}")
            kinds.append("activation" if role == _ROLE_LA_RELU else "eltwise")
            macs = 0
        else:
            elements = 0 if c in (CLS_GEMM, CLS_MOVE, CLS_LINATT) else _elements(op, graph)
            names.append(op.name)
            kinds.append(op.kind.value)
            macs = op.macs
        passes = VECTOR_PASSES.get(op.kind, 1) if role == _ROLE_NORMAL else 1
        for col, v in zip(cols, (c, b, m, k, nn, macs, bits, elements, passes), strict=True):
            cols[col].append(v)
    return _OpDims(
        names=names,
        kinds=kinds,
        modules=[op.module for op, _role in nodes],
        **{k: _int64(v) for k, v in cols.items()},
    )


def _unit_columns(nodes: _Rows) -> _UnitDims:
    per_row = [_unit_dims(op) if role == _ROLE_NORMAL else (0,) * 8 for op, role in nodes]
    table = _int64(per_row).reshape(-1, 8)
    return _UnitDims(*(np.ascontiguousarray(col) for col in table.T))


def _operands(graph: Graph, nodes: _Rows, ops: _OpDims) -> tuple[_Operands, _Roots]:
    tensor_ids = {name: i for i, name in enumerate(graph.tensors)}
    tensors = list(graph.tensors.values())
    t_bytes = np.array([t.nbytes for t in tensors], dtype=np.int64)
    root = np.arange(len(tensors), dtype=np.int64)
    is_weight = np.array([t.weight for t in tensors], dtype=bool)
    produced = np.zeros(len(tensors), dtype=bool)
    cols: dict[str, list[int]] = {k: [] for k in ("wbits", "abits", "b_weight", "out_root", "out_bytes")}
    in_ptr, in_op, in_root, in_bytes, in_role, in_weight = [0], [], [], [], [], []
    cls, row_bits = ops.cls.tolist(), ops.bits.tolist()  # Python ints: this loop is per row
    for i, (op, role) in enumerate(nodes):
        c = cls[i]
        core = role in (_ROLE_NORMAL, _ROLE_LA_CORE)
        ins = [tensor_ids[t] for t in op.inputs] if core else []
        outs = [tensor_ids[t] for t in op.outputs] if core else []
        if c == CLS_MOVE:
            # Data movement is an address pattern: the output aliases its largest activation input.
            act_ins = [t for t in ins if not is_weight[root[t]]]
            if act_ins:
                src = max(act_ins, key=lambda t: t_bytes[t])
                for o in outs:
                    root[o] = root[src]
            else:
                for o in outs:
                    is_weight[o] = True  # reshaped constants stay constants (loaded like weights)
        else:
            for o in outs:
                produced[o] = True
        # GEMM operands: A = first activation input, B = the weight (or the second activation).
        # Their bits pick the array's packing (both operands of a linear attention: the widest).
        a_done = b_done = False
        wbits = abits = row_bits[i]
        b_weight = False
        for t in ins:
            w = bool(is_weight[root[t]])
            r_ = ROLE_OTHER
            if c in (CLS_GEMM, CLS_DWCONV):
                if not w and not a_done:
                    r_, a_done, abits = ROLE_A, True, tensors[t].bits
                elif not b_done:  # the first weight, or the second activation of an "aa" matmul
                    r_, b_done, wbits, b_weight = ROLE_B, True, tensors[t].bits, w
            in_op.append(i)
            in_root.append(int(root[t]))
            in_bytes.append(int(t_bytes[t]))
            in_role.append(r_)
            in_weight.append(w)
        in_ptr.append(len(in_root))
        out_bytes = 0 if c == CLS_MOVE else int(sum(t_bytes[o] for o in outs))
        out_root = int(root[outs[0]]) if outs else -1
        for col, v in zip(cols, (wbits, abits, int(b_weight), out_root, out_bytes), strict=True):
            cols[col].append(v)
    operands = _Operands(
        **{k: _int64(v) for k, v in cols.items()},
        in_ptr=_int64(in_ptr),
        in_op=_int64(in_op),
        in_root=_int64(in_root),
        in_bytes=_int64(in_bytes),
        in_role=_int64(in_role),
        in_weight=np.asarray(in_weight, dtype=bool),
        t_bytes=t_bytes,
    )
    return operands, _Roots(tensor_ids, root, is_weight, produced)


def _dependencies(graph: Graph, nodes: _Rows, exit_: dict[str, int]) -> _Dependencies:
    preds: list[list[int]] = []
    for i, (op, role) in enumerate(nodes):
        if role == _ROLE_LA_CORE:
            preds.append(sorted({exit_[p] for p in graph.predecessors(op.name)} | {i - 1}))
        elif role == _ROLE_LA_DIV:
            preds.append([i - 1])
        else:
            preds.append(sorted({exit_[p] for p in graph.predecessors(op.name)}))
    pred_ptr, pred_idx = [0], []
    succs: list[list[int]] = [[] for _ in nodes]
    for i, ps in enumerate(preds):
        pred_idx.extend(ps)
        pred_ptr.append(len(pred_idx))
        for q in ps:
            succs[q].append(i)
    succ_ptr, succ_idx = [0], []
    for ss in succs:
        succ_idx.extend(sorted(ss))
        succ_ptr.append(len(succ_idx))
    return _Dependencies(_int64(pred_ptr), _int64(pred_idx), _int64(succ_ptr), _int64(succ_idx))


def _liveness(
    graph: Graph, nodes: _Rows, ops: _OpDims, operands: _Operands, roots: _Roots, pipe: _PipeEdges
) -> _Liveness:
    """Liveness of root activations over the topological order."""
    n, n_t = len(nodes), len(roots.root)
    t_bytes = operands.t_bytes
    birth = np.full(n_t, -1, dtype=np.int64)
    death = np.full(n_t, -1, dtype=np.int64)
    cls = ops.cls.tolist()
    for i, (op, _role) in enumerate(nodes):
        if cls[i] not in (CLS_MOVE, CLS_LA_AUX):
            for out_name in op.outputs:
                birth[roots.tensor_ids[out_name]] = i
    for r, i in zip(operands.in_root.tolist(), operands.in_op.tolist(), strict=True):
        death[r] = max(death[r], i)
    must_store = np.zeros(n_t, dtype=bool)
    for out_name in graph.outputs:
        if out_name in roots.tensor_ids:
            must_store[roots.root[roots.tensor_ids[out_name]]] = True
    can_reside = (
        roots.produced & ~roots.is_weight & ~must_store & (birth >= 0) & (roots.root == np.arange(n_t))
    )
    death = np.maximum(death, birth)
    cand = np.flatnonzero(can_reside)
    peak = _peak_live(birth, death, t_bytes, cand, n)
    # Streamed per head, a tensor needs two heads of buffer at a time (double-buffered): the
    # liveness peak when every per-head stream is on.
    head_bytes = t_bytes.copy()
    edges = zip(pipe.pipe_root.tolist(), pipe.pipe_groups.tolist(), pipe.pipe_kind.tolist(), strict=True)
    for r, g, kind in edges:
        if kind == PIPE_HEAD and r >= 0 and g > 1:
            head_bytes[r] = min(head_bytes[r], 2 * -(-int(t_bytes[r]) // g))
    peak_heads = _peak_live(birth, death, head_bytes, cand, n)
    return _Liveness(t_peak_live=peak, t_peak_live_heads=peak_heads, t_can_reside=can_reside)


def _shapes(ops: _OpDims, operands: _Operands) -> _Shapes:
    """Distinct GEMM shapes (M, K, N, weight bits, activation bits, batch, B is a weight) of the
    rows the array may run: a hardware point times each shape once, however many layers share it."""
    n = len(ops.names)
    cls, batch, m, k, nn = (a.tolist() for a in (ops.cls, ops.batch, ops.M, ops.K, ops.N))
    wbits, abits, b_weight = (a.tolist() for a in (operands.wbits, operands.abits, operands.b_weight))
    shape_key: dict[tuple[int, ...], int] = {}
    shape_id = np.full(n, -1, dtype=np.int64)
    shape2_id = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        if cls[i] in (CLS_GEMM, CLS_DWCONV, CLS_LINATT) and batch[i] > 0:
            # The second GEMM of a linear attention, (T x d) @ (d x d+1), has its own array shape.
            second = (k[i], m[i], nn[i]) if cls[i] == CLS_LINATT else (0, 0, 0)
            for dims, target in (((m[i], k[i], nn[i]), shape_id), (second, shape2_id)):
                if min(dims) > 0:
                    key = (*dims, wbits[i], abits[i], batch[i], b_weight[i])
                    target[i] = shape_key.setdefault(key, len(shape_key))
    return _Shapes(shape_id, shape2_id, np.array(list(shape_key), dtype=np.int64).reshape(-1, 7))


def _peak_live(
    birth: np.ndarray, death: np.ndarray, size: np.ndarray, cand: np.ndarray, n: int
) -> np.ndarray:
    """Per tensor in ``cand``: the largest sum of ``size`` of tensors live during its lifetime."""
    live = np.zeros(n + 1, dtype=np.int64)
    np.add.at(live, birth[cand], size[cand])
    np.add.at(live, death[cand] + 1, -size[cand])
    live = np.cumsum(live)[:n] if n else live[:0]
    peak = np.zeros(size.shape[0], dtype=np.int64)
    for rt in cand:
        peak[rt] = live[birth[rt] : death[rt] + 1].max()
    return peak


def _pipe_candidates(
    graph: Graph, nodes: _Rows, ops: _OpDims, roots: _Roots, exit_: dict[str, int]
) -> _PipeEdges:
    """Edges a consumer may stream behind its producer (hardware decides later which are on).

    Only direct producer -> consumer edges between ops that do work (not through data movement,
    whose address patterns may reorder the stream), at most one per consumer:

    - ``PIPE_HEAD``: both sides are split into the same number ``G > 1`` of heads (a batched
      ``aa`` matmul, or a softmax/element-wise op inheriting its producer's heads), e.g.
      QK^T -> softmax -> AV; and the three rows of a linear attention.
    - ``PIPE_MBCONV``: a depthwise conv -> [element-wise activation ->] 1x1 conv chain whose
      intermediates have no other consumer.
    - ``PIPE_ELEM``: an element-wise consumer (activation, eltwise) of any other producer.

    Also the epilogue candidates (the hardware's ``epilogue`` switches decide): ``epi_src``, the
    GEMM whose drain path could apply an activation that is its output's only consumer, or a
    multiply by a constant of its output (through data movement: it folds into the
    requantisation scale); and
    ``ln_src``, the producer whose output stream a layernorm could gather its statistics from.
    """
    n = len(nodes)
    cls, batch = ops.cls.tolist(), ops.batch.tolist()
    src = [-1] * n
    epi = [-1] * n
    ln = [-1] * n
    kind = [PIPE_NONE] * n
    groups = [0] * n
    proot = [-1] * n
    heads = [0] * n  # head groups of each row (0: not split per head)
    index = {op.name: i for i, (op, role) in enumerate(nodes) if role in (_ROLE_NORMAL, _ROLE_LA_CORE)}

    single = [False] * n  # the streamed tensor has no other consumer

    def direct_producer(op: Op) -> tuple[int, str]:
        """(row, tensor) of the latest working producer of an activation input, or (-1, "")."""
        best = (-1, "")
        for t in op.inputs:
            if graph.tensors[t].weight:
                continue
            p = graph.producer(t)
            if p is None or p not in index or cls[index[p]] == CLS_MOVE:
                continue
            pi = exit_[p]
            if pi > best[0]:
                best = (pi, t)
        return best

    def requant_producer(op: Op) -> int:
        """Row of the GEMM whose requantisation a multiply by a constant folds into (attention's
        ``q * d**-0.5``): the producer of its only input, through data movement (a layout change
        does not change which output channel an element came from), or -1."""
        if op.kind != OpKind.ELTWISE or op.attrs.get("fn") not in ("mul", "div") or "scalar" not in op.attrs:
            return -1
        if len(op.inputs) != 1:
            return -1
        t = op.inputs[0]
        while True:
            p = graph.producer(t)
            if p is None or p not in index:
                return -1
            r = exit_[p]
            if cls[r] == CLS_GEMM:
                return r
            if cls[r] != CLS_MOVE or len(graph.consumers(t)) != 1:
                return -1
            ins = [u for u in graph.op(p).inputs if not graph.tensors[u].weight]
            if len(ins) != 1:
                return -1
            t = ins[0]

    for i, (op, role) in enumerate(nodes):
        if role != _ROLE_NORMAL:
            g = _int_attr(op, "batch", 1) * _int_attr(op, "heads", 1)
            heads[i] = g
            if role != _ROLE_LA_RELU and g > 1:
                src[i], kind[i], groups[i] = i - 1, PIPE_HEAD, g
            continue
        c = cls[i]
        if c == CLS_MOVE:
            continue
        p, t = direct_producer(op)
        epi[i] = requant_producer(op)
        if op.kind == OpKind.MATMUL and op.attrs.get("operands") == "aa" and batch[i] > 1:
            heads[i] = batch[i]
        elif p >= 0 and (op.kind == OpKind.SOFTMAX or op.kind in _ELEMENTWISE_KINDS):
            heads[i] = heads[p]
        if p < 0:
            continue
        single[i] = len(graph.consumers(t)) == 1
        if op.kind == OpKind.ACTIVATION and single[i] and cls[p] == CLS_GEMM:
            epi[i] = p
        if op.kind == OpKind.LAYERNORM:
            ln[i] = p
        rt = int(roots.root[roots.tensor_ids[t]])
        from_dw = cls[p] == CLS_DWCONV
        via_act = kind[p] == PIPE_ELEM and single[p] and cls[src[p]] == CLS_DWCONV
        if heads[i] > 1 and heads[i] == heads[p]:
            src[i], kind[i], groups[i], proot[i] = p, PIPE_HEAD, heads[i], rt
        elif (
            op.kind == OpKind.CONV2D
            and _int_attr(op, "kh", 1) == 1
            and _int_attr(op, "kw", 1) == 1
            and single[i]
            and (from_dw or via_act)
        ):
            src[i], kind[i], proot[i] = p, PIPE_MBCONV, rt
            if via_act:
                kind[p] = PIPE_MBCONV  # the activation between them streams as part of the chain
        elif op.kind in _ELEMENTWISE_KINDS:
            src[i], kind[i], proot[i] = p, PIPE_ELEM, rt
    return _PipeEdges(*(_int64(col) for col in (src, kind, groups, proot, heads, epi, ln)))


#: The columns of a GEMM list that hold one value for every row (gemm_list_arrays), and that value:
#: an 8-bit GEMM with a weight B, one pass, no unit work, no edge to stream or fold into.
_GEMM_ROW = {
    "cls": CLS_GEMM, "batch": 1, "bits": 8, "wbits": 8, "abits": 8, "b_weight": 1, "passes": 1,
    "elements": 0, "rows": 0, "length": 0, "kh": 0, "kw": 0, "stride": 0, "channels": 0, "out_hw": 0,
    "in_hw": 0, "pipe_src": -1, "pipe_kind": PIPE_NONE, "pipe_groups": 0, "pipe_root": -1, "heads": 0,
    "epi_src": -1, "ln_src": -1, "shape2_id": -1,
}  # fmt: skip
_GEMM_ROW_VALUES = np.array(list(_GEMM_ROW.values()), dtype=np.int64)[:, None]


def gemm_list_arrays(name: str, gemms: Sequence[tuple[str, int, int, int, int]]) -> GraphArrays:
    """The :class:`GraphArrays` of independent GEMMs ``(name, M, K, N, A bytes)``, 8-bit operands,
    each reading its activation A (``A bytes``: an im2col input may be smaller than ``M x K``) and its
    ``K x N`` weight from DRAM and writing its ``M x N`` output back, with no edge between them: what
    :func:`compile_graph` makes of a graph of one ``matmul`` op per GEMM with tensors ``A``, ``W``,
    ``Y`` in that order (``tests/sim/test_scalesim_arrays.py`` checks every column equal), built in
    a few NumPy calls instead of op by op, so that a short GEMM list (a SCALE-Sim topology) costs
    microseconds. Names must be distinct (a Graph would reject the second)."""
    n = len(gemms)
    first: dict[tuple[int, int, int], int] = {}
    per_row: list[tuple[int, ...]] = []
    t_bytes: list[int] = []  # Python lists, one array each at the end: a short list costs NumPy calls
    for i, (_name, m, k, nn, a_bytes) in enumerate(gemms):
        shape = first.setdefault((m, k, nn), len(first))
        per_row.append((m, k, nn, m * k * nn, m * nn, shape, 3 * i + 2))
        t_bytes += (a_bytes, k * nn, m * nn)  # A, W, Y: the graph's tensor order
    cols = np.array(per_row, dtype=np.int64).reshape(n, 7).T.copy()
    t = np.array(t_bytes, dtype=np.int64)
    ins = np.arange(3 * n, dtype=np.int64).reshape(n, 3)[:, :2].reshape(-1)  # A and W of each GEMM
    empty_csr, t_zeros = np.zeros((2, n + 1), dtype=np.int64), np.zeros((2, 3 * n), dtype=np.int64)
    columns: dict[str, Any] = dict(
        zip(("M", "K", "N", "macs", "out_bytes", "shape_id", "out_root"), cols, strict=True)
    )
    columns.update(zip(_GEMM_ROW, np.repeat(_GEMM_ROW_VALUES, n, axis=1), strict=True))
    return GraphArrays(
        name=name,
        names=[g[0] for g in gemms],
        kinds=[OpKind.MATMUL.value] * n,
        modules=[""] * n,
        **columns,
        in_ptr=np.arange(0, 2 * n + 1, 2, dtype=np.int64),
        in_op=ins // 3,
        in_root=ins,
        in_bytes=t[ins],
        in_role=np.array([ROLE_A, ROLE_B] * n, dtype=np.int64),
        in_weight=np.array([False, True] * n),
        pred_ptr=empty_csr[0],
        pred_idx=empty_csr[0, :0],
        succ_ptr=empty_csr[1],
        succ_idx=empty_csr[1, :0],
        t_bytes=t,
        t_peak_live=t_zeros[0],
        t_peak_live_heads=t_zeros[1],
        t_can_reside=np.zeros(3 * n, dtype=bool),  # every output is the graph's, stored to DRAM
        shapes=np.array([(*d, 8, 8, 1, 1) for d in first], dtype=np.int64).reshape(-1, 7),
        total_macs=sum(r[3] for r in per_row),
    )


def _version(graph: Graph) -> int:
    return graph.version


# Graph defines __eq__ (so it is unhashable): remembered by identity and the graph's edit counter
# (every mutation through the Graph API bumps it), dropped when the graph dies.
_compiled = per_object(_build, _version, limit=64)


def compile_graph(graph: Graph | GraphArrays) -> GraphArrays:
    """The :class:`GraphArrays` of ``graph``, built on first use and cached per graph object
    until the graph is edited (``add_op``, ``replace_op``, ...).

    Raises:
        GraphFormatError: an op lacks the attributes its kind needs, or has an unknown kind.
    """
    if isinstance(graph, GraphArrays):
        return graph
    return _compiled(graph)
