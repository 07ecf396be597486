"""A Graph flattened into NumPy arrays once, so that each hardware point costs NumPy + one kernel.

:func:`compile_graph` walks the graph once (Python touches each op here and nowhere else) and
caches the result per graph object. Everything hardware-independent lives here: op classes,
GEMM dimensions, operand bytes, the dependency CSR and the liveness of every activation.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
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
from accelsim.sim._memo import Memo

#: Roles of the rows of a linear-attention op: it is split into its ReLU (vector work), its two
#: GEMMs and its normalising divide (vector work), so that without a linear-attention unit the
#: array and the vector unit share it head by head. With the unit, ReLU and divide are absorbed.
_ROLE_NORMAL, _ROLE_LA_RELU, _ROLE_LA_CORE, _ROLE_LA_DIV = 0, 1, 2, 3

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


def _build(graph: Graph) -> GraphArrays:
    ops = list(graph.ops())
    # Rows: one per op, three per linear attention (relu, core, normalise), in topological order.
    nodes: list[tuple[Op, int]] = []
    for op in ops:
        if op.kind == OpKind.LINEAR_ATTENTION:
            nodes += [(op, _ROLE_LA_RELU), (op, _ROLE_LA_CORE), (op, _ROLE_LA_DIV)]
        else:
            nodes.append((op, _ROLE_NORMAL))
    n = len(nodes)
    entry: dict[str, int] = {}
    exit_: dict[str, int] = {}
    for i, (op, role) in enumerate(nodes):
        if role in (_ROLE_NORMAL, _ROLE_LA_RELU):
            entry[op.name] = i
        if role in (_ROLE_NORMAL, _ROLE_LA_DIV):
            exit_[op.name] = i
    tensor_ids = {name: i for i, name in enumerate(graph.tensors)}
    tensors = list(graph.tensors.values())
    t_bytes = np.array([t.nbytes for t in tensors], dtype=np.int64)
    root = np.arange(len(tensors), dtype=np.int64)
    is_weight = np.array([t.weight for t in tensors], dtype=bool)
    produced = np.zeros(len(tensors), dtype=bool)

    cols: dict[str, list[int]] = {
        k: []
        for k in (
            "cls", "batch", "M", "K", "N", "bits", "wbits", "abits", "b_weight", "elements",
            "passes", "rows", "length", "kh", "kw", "stride", "channels", "out_hw", "in_hw",
        )
    }  # fmt: skip
    second: list[tuple[int, int, int]] = []
    names: list[str] = []
    kinds: list[str] = []
    modules: list[str] = []
    macs: list[int] = []
    in_ptr, in_op, in_root, in_bytes, in_role, in_weight = [0], [], [], [], [], []
    out_root, out_bytes = [], []
    for i, (op, role) in enumerate(nodes):
        c = _classify(op) if role in (_ROLE_NORMAL, _ROLE_LA_CORE) else CLS_LA_AUX
        modules.append(op.module)
        b, m, k, nn = _gemm_dims(op) if c != CLS_LA_AUX else (0, 0, 0, 0)
        # The second GEMM of a linear attention, (T x d) @ (d x d+1), has its own array shape.
        second.append((k, m, nn) if c == CLS_LINATT else (0, 0, 0))
        # Auxiliary rows carry no tensors: their data is the linear attention's, already on chip.
        ins = [tensor_ids[t] for t in op.inputs] if role in (_ROLE_NORMAL, _ROLE_LA_CORE) else []
        act_ins = [t for t in ins if not is_weight[root[t]]]
        bits = max((tensors[t].bits for t in ins), default=8)
        if c == CLS_LA_AUX:
            la = _int_attr(op, "batch", 1) * _int_attr(op, "heads", 1) * _int_attr(op, "tokens")
            la *= _int_attr(op, "head_dim")
            # ReLU of Q and K (2 T d per head); the divide of the T d outputs by their k-sum term.
            elements = 2 * la if role == _ROLE_LA_RELU else la
            names.append(f"{op.name}/{'relu' if role == _ROLE_LA_RELU else 'normalise'}")
            kinds.append("activation" if role == _ROLE_LA_RELU else "eltwise")
            macs.append(0)
        else:
            elements = 0 if c in (CLS_GEMM, CLS_MOVE, CLS_LINATT) else _elements(op, graph)
            names.append(op.name)
            kinds.append(op.kind.value)
            macs.append(op.macs)
        passes = VECTOR_PASSES.get(op.kind, 1) if role == _ROLE_NORMAL else 1
        for col, v in zip(
            ("cls", "batch", "M", "K", "N", "bits", "elements", "passes"),
            (c, b, m, k, nn, bits, elements, passes),
            strict=True,
        ):
            cols[col].append(v)
        ud = _unit_dims(op) if role == _ROLE_NORMAL else (0,) * 8
        for col, v in zip(
            ("rows", "length", "kh", "kw", "stride", "channels", "out_hw", "in_hw"), ud, strict=True
        ):
            cols[col].append(v)
        outs = [tensor_ids[t] for t in op.outputs] if role in (_ROLE_NORMAL, _ROLE_LA_CORE) else []
        if c == CLS_MOVE:
            # Data movement is an address pattern: the output aliases its largest activation input.
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
        wbits = abits = bits
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
        cols["wbits"].append(wbits)
        cols["b_weight"].append(int(b_weight))
        cols["abits"].append(abits)
        in_ptr.append(len(in_root))
        out_root.append(int(root[outs[0]]) if outs else -1)
        out_bytes.append(0 if c == CLS_MOVE else int(sum(t_bytes[o] for o in outs)))

    # Liveness of root activations over the topological order.
    birth = np.full(len(tensors), -1, dtype=np.int64)
    death = np.full(len(tensors), -1, dtype=np.int64)
    for i, (op, _role) in enumerate(nodes):
        if cols["cls"][i] not in (CLS_MOVE, CLS_LA_AUX):
            for out_name in op.outputs:
                birth[tensor_ids[out_name]] = i
    for j in range(len(in_op)):
        death[in_root[j]] = max(death[in_root[j]], in_op[j])
    must_store = np.zeros(len(tensors), dtype=bool)
    for out_name in graph.outputs:
        if out_name in tensor_ids:
            must_store[root[tensor_ids[out_name]]] = True
    can_reside = produced & ~is_weight & ~must_store & (birth >= 0) & (root == np.arange(len(tensors)))
    death = np.maximum(death, birth)
    cand = np.flatnonzero(can_reside)
    peak = _peak_live(birth, death, t_bytes, cand, n)

    preds: list[list[int]] = []
    for i, (op, role) in enumerate(nodes):
        if role == _ROLE_LA_CORE:
            preds.append(sorted({exit_[p] for p in graph.nx.predecessors(op.name)} | {i - 1}))
        elif role == _ROLE_LA_DIV:
            preds.append([i - 1])
        else:
            preds.append(sorted({exit_[p] for p in graph.nx.predecessors(op.name)}))
    pred_ptr, pred_idx = [0], []
    succs: list[list[int]] = [[] for _ in range(n)]
    for i, ps in enumerate(preds):
        pred_idx.extend(ps)
        pred_ptr.append(len(pred_idx))
        for q in ps:
            succs[q].append(i)
    succ_ptr, succ_idx = [0], []
    for ss in succs:
        succ_idx.extend(sorted(ss))
        succ_ptr.append(len(succ_idx))

    pipe = _pipe_candidates(graph, nodes, cols, tensor_ids, root, exit_)
    # Streamed per head, a tensor needs two heads of buffer at a time (double-buffered): the
    # liveness peak when every per-head stream is on.
    head_bytes = t_bytes.copy()
    for i in range(n):
        r, g = pipe["pipe_root"][i], pipe["pipe_groups"][i]
        if pipe["pipe_kind"][i] == PIPE_HEAD and r >= 0 and g > 1:
            head_bytes[r] = min(head_bytes[r], 2 * -(-int(t_bytes[r]) // g))
    peak_heads = _peak_live(birth, death, head_bytes, cand, n)

    # Distinct GEMM shapes (M, K, N, weight bits, activation bits, batch, B is a weight) of the ops
    # the array may run: a hardware point times each shape once, however many layers share it.
    shape_key: dict[tuple[int, ...], int] = {}
    shape_id = np.full(n, -1, dtype=np.int64)
    shape2_id = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        if cols["cls"][i] in (CLS_GEMM, CLS_DWCONV, CLS_LINATT) and cols["batch"][i] > 0:
            for dims, target in (
                ((cols["M"][i], cols["K"][i], cols["N"][i]), shape_id),
                (second[i], shape2_id),
            ):
                if min(dims) > 0:
                    key = (*dims, cols["wbits"][i], cols["abits"][i], cols["batch"][i], cols["b_weight"][i])
                    target[i] = shape_key.setdefault(key, len(shape_key))
    shapes = np.array(list(shape_key), dtype=np.int64).reshape(-1, 7)

    def arr(x: list[int] | list[bool], dt: Any = np.int64) -> np.ndarray:
        return np.asarray(x, dtype=dt)

    return GraphArrays(
        name=graph.name,
        names=names,
        kinds=kinds,
        modules=modules,
        **{k: arr(v) for k, v in cols.items()},  # type: ignore[arg-type]
        **{k: arr(v) for k, v in pipe.items()},  # type: ignore[arg-type]
        macs=arr(macs),
        in_ptr=arr(in_ptr),
        in_op=arr(in_op),
        in_root=arr(in_root),
        in_bytes=arr(in_bytes),
        in_role=arr(in_role),
        in_weight=arr(in_weight, bool),
        out_root=arr(out_root),
        out_bytes=arr(out_bytes),
        pred_ptr=arr(pred_ptr),
        pred_idx=arr(pred_idx),
        succ_ptr=arr(succ_ptr),
        succ_idx=arr(succ_idx),
        t_bytes=t_bytes,
        t_peak_live=peak,
        t_peak_live_heads=peak_heads,
        t_can_reside=can_reside,
        shape_id=shape_id,
        shape2_id=shape2_id,
        shapes=shapes,
        total_macs=int(sum(op.macs for op in ops)),
    )


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
    graph: Graph,
    nodes: list[tuple[Op, int]],
    cols: dict[str, list[int]],
    tensor_ids: dict[str, int],
    root: np.ndarray,
    exit_: dict[str, int],
) -> dict[str, list[int]]:
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
            if p is None or p not in index or cols["cls"][index[p]] == CLS_MOVE:
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
            if cols["cls"][r] == CLS_GEMM:
                return r
            if cols["cls"][r] != CLS_MOVE or len(graph.consumers(t)) != 1:
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
        c = cols["cls"][i]
        if c == CLS_MOVE:
            continue
        p, t = direct_producer(op)
        epi[i] = requant_producer(op)
        if op.kind == OpKind.MATMUL and op.attrs.get("operands") == "aa" and cols["batch"][i] > 1:
            heads[i] = cols["batch"][i]
        elif p >= 0 and (op.kind == OpKind.SOFTMAX or op.kind in _ELEMENTWISE_KINDS):
            heads[i] = heads[p]
        if p < 0:
            continue
        single[i] = len(graph.consumers(t)) == 1
        if op.kind == OpKind.ACTIVATION and single[i] and cols["cls"][p] == CLS_GEMM:
            epi[i] = p
        if op.kind == OpKind.LAYERNORM:
            ln[i] = p
        rt = int(root[tensor_ids[t]])
        from_dw = cols["cls"][p] == CLS_DWCONV
        via_act = kind[p] == PIPE_ELEM and single[p] and cols["cls"][src[p]] == CLS_DWCONV
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
    return {
        "pipe_src": src,
        "pipe_kind": kind,
        "pipe_groups": groups,
        "pipe_root": proot,
        "heads": heads,
        "epi_src": epi,
        "ln_src": ln,
    }


# Graph defines __eq__ (so it is unhashable): cache by identity and the graph's edit counter
# (every mutation through the Graph API bumps it), dropped when the graph dies.
_CACHE: dict[int, tuple[weakref.ref[Graph], int, GraphArrays]] = {}


def clear_cache() -> None:
    """Forget every compiled graph."""
    _CACHE.clear()


def compile_graph(graph: Graph | GraphArrays) -> GraphArrays:
    """The :class:`GraphArrays` of ``graph``, built on first use and cached per graph object
    until the graph is edited (``add_op``, ``replace_op``, ...).

    Raises:
        GraphFormatError: an op lacks the attributes its kind needs, or has an unknown kind.
    """
    if isinstance(graph, GraphArrays):
        return graph
    key = id(graph)
    hit = _CACHE.get(key)
    version = graph.version
    if hit is not None and hit[0]() is graph and hit[1] == version:
        return hit[2]
    ga = _build(graph)

    def _forget(_ref: weakref.ref[Graph], k: int = key) -> None:
        _CACHE.pop(k, None)

    _CACHE[key] = (weakref.ref(graph, _forget), version, ga)
    return ga
