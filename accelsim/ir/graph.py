"""The dataflow IR: :class:`Op` nodes of a DAG, :class:`Tensor` values on its edges.

This module imports neither torch, numba nor networkx: a saved graph loads and simulates without
them (networkx only builds ``Graph.nx`` for a caller that asks for it).

Attribute conventions per :class:`OpKind` (all ints unless said; lowering rules fill them, the
simulator and the bit-true executor read them):

- ``matmul``: ``batch, M, K, N`` for ``C[batch, M, N] = A[batch, M, K] @ B[batch, K, N]``;
  ``operands`` is ``"wa"`` (weight x activation, B is a weight) or ``"aa"`` (activation x
  activation, e.g. the two attention matmuls); ``bias`` (bool).
- ``conv2d`` / ``dwconv2d``: ``batch, in_ch, out_ch, in_h, in_w, out_h, out_w, kh, kw, stride,
  padding, dilation`` (the last three as ``[h, w]``), ``groups``, ``bias``.
- ``linear_attention``: ``batch, heads, tokens, head_dim, kernel`` (``"relu"``), ``eps``; the fused
  softmax-free attention ReLU(Q)·(ReLU(K)ᵀ·[V, 1]) with the k-sum normaliser.
- ``softmax`` / ``layernorm`` / ``batchnorm``: ``rows, length`` (the normalised axis), ``eps``; a
  layernorm lowered from a group norm also has ``groups`` (its rows are the groups).
- ``activation``: ``fn`` (``gelu``, ``relu``, ``hardswish``, ``silu``, ...), ``elements``.
- ``eltwise``: ``fn`` (``add``, ``sub``, ``mul``, ``div``), ``elements``.
- ``pool``: ``fn`` (``avg``, ``max``, ``mean``, ``sum``, ``norm``...), ``elements`` (inputs read); a
  ``norm`` (vector p-norm) also has ``ord`` (a float, or ``"inf"``/``"-inf"``), ``dim``, ``keepdim``.
- ``token_select``: ``tokens_in, tokens_out, channels``.
- data movement (``reshape``, ``transpose``, ``concat``, ``slice``, ``pad``, ``gather``): no MACs.

Every op also keeps ``target`` (the ATen op it came from) and, in ``attrs["args"]``, the
non-tensor arguments needed to execute it again.
"""

from __future__ import annotations

import dataclasses
import enum
import heapq
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accelsim._io import read_text, write_text_atomic
from accelsim.errors import GraphFormatError
from accelsim.ir.quant import QuantParams

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

FORMAT_NAME = "accelsim.graph"
FORMAT_VERSION = 1


class OpKind(enum.StrEnum):
    MATMUL = "matmul"
    CONV2D = "conv2d"
    DWCONV2D = "dwconv2d"
    LINEAR_ATTENTION = "linear_attention"
    SOFTMAX = "softmax"
    LAYERNORM = "layernorm"
    BATCHNORM = "batchnorm"
    ACTIVATION = "activation"
    ELTWISE = "eltwise"
    POOL = "pool"
    TOKEN_SELECT = "token_select"
    RESHAPE = "reshape"
    TRANSPOSE = "transpose"
    CONCAT = "concat"
    SLICE = "slice"
    PAD = "pad"
    GATHER = "gather"


#: Kinds that only move or re-index data; they cost no MACs.
MOVEMENT_KINDS = frozenset(
    {OpKind.RESHAPE, OpKind.TRANSPOSE, OpKind.CONCAT, OpKind.SLICE, OpKind.PAD, OpKind.GATHER}
)
#: Kinds that run on a MAC array (or a dedicated MAC engine).
MAC_KINDS = frozenset({OpKind.MATMUL, OpKind.CONV2D, OpKind.DWCONV2D, OpKind.LINEAR_ATTENTION})


@dataclass(frozen=True)
class Tensor:
    """A value in the graph. Weights live in DRAM and are loaded once per frame."""

    name: str
    shape: tuple[int, ...]
    bits: int = 8
    weight: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if any(d < 0 for d in self.shape):
            raise GraphFormatError(f"tensor {self.name!r}: negative dimension in shape {self.shape}")
        if not 1 <= self.bits <= 64:
            raise GraphFormatError(f"tensor {self.name!r}: bits must be in 1..64, got {self.bits}")

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return (self.numel * self.bits + 7) // 8


@dataclass(frozen=True)
class Op:
    """One operation. Frozen: passes swap it with :func:`dataclasses.replace`."""

    name: str
    kind: OpKind
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    #: derived from the attributes when not given (:mod:`accelsim.ir.schema`); a given count is
    #: checked against them by :meth:`Graph.validate`
    macs: int = None  # type: ignore[assignment]
    target: str = ""
    module: str = ""
    module_type: str = ""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", OpKind(self.kind))
        except ValueError:
            allowed = ", ".join(k.value for k in OpKind)
            raise GraphFormatError(
                f"op {self.name!r}: unknown kind {self.kind!r} (allowed: {allowed})"
            ) from None
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        if self.macs is None:
            from accelsim.ir.schema import derived_macs

            object.__setattr__(self, "macs", derived_macs(self))
        elif isinstance(self.macs, bool) or not isinstance(self.macs, int) or self.macs < 0:
            raise GraphFormatError(
                f"op {self.name!r}: macs must be a non-negative integer (got {self.macs!r})"
            )


@dataclass(frozen=True)
class KindSummary:
    count: int
    macs: int


@dataclass(frozen=True)
class GraphSummary:
    """Totals of a graph; ``str()`` gives a terminal table."""

    name: str
    ops: int
    macs: int
    params: int
    weight_bytes: int
    activation_bytes: int
    by_kind: dict[str, KindSummary]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        lines = [
            f"graph {self.name}: {self.ops} ops, {self.macs / 1e9:.3f} GMACs, {self.params / 1e6:.3f} M params"
        ]
        lines.append(
            f"weights {self.weight_bytes / 2**20:.2f} MiB, activations {self.activation_bytes / 2**20:.2f} MiB"
        )
        lines.append(f"{'kind':<18}{'ops':>7}{'GMACs':>12}{'share':>8}")
        for kind, s in sorted(self.by_kind.items(), key=lambda kv: (-kv[1].macs, kv[0])):
            share = s.macs / self.macs if self.macs else 0.0
            lines.append(f"{kind:<18}{s.count:>7}{s.macs / 1e9:>12.4f}{share:>8.1%}")
        return "\n".join(lines)


#: The largest size a graph or topology may give one dimension (2**31 - 1). The simulator keeps
#: cycle and byte counts in int64, and products of a few dimensions beyond this overflow it (or ask
#: NumPy for arrays that size); no real layer comes near it.
MAX_DIM = 2**31 - 1


def _not_strict_json(token: str) -> Any:
    # Python's json reads NaN/Infinity, which no strict JSON reader (and no graph we write) has
    raise GraphFormatError(f"{token} is not JSON (a graph holds finite numbers only)")


def _typed(record: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    """``record[key]`` if it has the JSON type ``kind`` (no coercion: ``"false"`` is not a bool, 197.9
    is not an int, ``true`` is not a number)."""
    v = record[key]
    ok = isinstance(v, kind) and (kind is bool or not isinstance(v, bool))
    if not ok:
        raise GraphFormatError(f"{where}: {key!r} must be a JSON {kind.__name__} (got {v!r})")
    return v


def _names(record: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    """``record[key]`` as tensor names: a JSON list of strings."""
    v = record[key]
    if not isinstance(v, list) or not all(isinstance(n, str) for n in v):
        raise GraphFormatError(f"{where}: {key!r} must be a JSON list of tensor names (got {v!r})")
    return tuple(v)


class Graph:
    """A DAG of :class:`Op` over :class:`Tensor` values.

    Ops are kept by name in insertion order; an edge ``u -> v`` carries the names of the tensors
    ``u`` produces and ``v`` consumes. ``graph.nx`` is the same as a ``networkx.DiGraph`` (one node
    per op name with the frozen op under ``"op"``, the tensor names under an edge's ``"tensors"``),
    built on first use: loading and simulating a graph never imports networkx (~0.15 s).
    Tensors with no producer are graph inputs or weights.

    Examples:
        >>> g = Graph("tiny")
        >>> g.add_tensor(Tensor("x", (1, 4)))
        >>> g.add_tensor(Tensor("w", (4, 2), weight=True))
        >>> g.add_tensor(Tensor("y", (1, 2)))
        >>> g.add_op(Op("fc", OpKind.MATMUL, ("x", "w"), ("y",), {"batch": 1, "M": 1, "K": 4, "N": 2}, macs=8))
        >>> g.inputs, g.outputs, g.total_macs
        (['x'], ['y'], 8)
    """

    def __init__(self, name: str = "graph", meta: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.meta: dict[str, Any] = dict(meta or {})
        self.tensors: dict[str, Tensor] = {}
        #: quantisation of a tensor (by name), recorded by lowering from fake-quantisers
        self.quant: dict[str, QuantParams] = {}
        #: values of weight tensors (by name) when lowering was asked to keep them; not part
        #: of the JSON (the bit-true executor's sidecar file carries them)
        self.constants: dict[str, Any] = {}
        self._ops: dict[str, Op] = {}
        #: src -> dst -> tensor names (both in insertion order, as networkx keeps them)
        self._succ: dict[str, dict[str, list[str]]] = {}
        self._pred: dict[str, dict[str, list[str]]] = {}
        self._order: tuple[int, list[str]] | None = None  # (version, topological order)
        self._nx_view: tuple[int, nx.DiGraph] | None = None
        self._producer: dict[str, str] = {}
        self._consumers: dict[str, list[str]] = {}
        self._inputs: list[str] | None = None
        self._outputs: list[str] | None = None
        self._version = 0

    # -- construction -------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """Edit counter: every change through this API bumps it (caches of derived data key on it)."""
        return self._version

    def add_tensor(self, tensor: Tensor) -> None:
        if tensor.name in self.tensors:
            raise GraphFormatError(f"tensor {tensor.name!r} defined twice")
        self.tensors[tensor.name] = tensor
        self._version += 1

    def replace_tensor(self, tensor: Tensor) -> None:
        """Swap the tensor of the same name for ``tensor`` (e.g. new bits after quantisation)."""
        if tensor.name not in self.tensors:
            raise GraphFormatError(f"replace_tensor({tensor.name!r}): no such tensor")
        self.tensors[tensor.name] = tensor
        self._version += 1

    def add_op(self, op: Op) -> None:
        """Add ``op``; its input and output tensors must already be added."""
        if op.name in self._ops:
            raise GraphFormatError(f"op {op.name!r} defined twice")
        for t in (*op.inputs, *op.outputs):
            if t not in self.tensors:
                raise GraphFormatError(f"op {op.name!r}: unknown tensor {t!r}")
        for t in op.outputs:
            if t in self._producer:
                raise GraphFormatError(
                    f"op {op.name!r}: tensor {t!r} already produced by {self._producer[t]!r}"
                )
        self._ops[op.name] = op
        self._succ[op.name] = {}
        self._pred[op.name] = {}
        self._version += 1
        for t in op.outputs:
            self._producer[t] = op.name
            for consumer in self._consumers.get(t, ()):
                self._link(op.name, consumer, t)
        for t in op.inputs:
            self._consumers.setdefault(t, []).append(op.name)
            if t in self._producer:
                self._link(self._producer[t], op.name, t)

    def _link(self, src: str, dst: str, tensor: str) -> None:
        if src == dst:
            raise GraphFormatError(f"op {src!r} consumes its own output {tensor!r}")
        names = self._succ[src].get(dst)
        if names is None:
            # one list shared by both directions, as networkx's edge data is
            self._succ[src][dst] = self._pred[dst][src] = [tensor]
        elif tensor not in names:
            names.append(tensor)

    def replace_op(self, op: Op) -> None:
        """Swap the op of the same name for ``op`` (same inputs and outputs)."""
        old = self.op(op.name)
        if old.inputs != op.inputs or old.outputs != op.outputs:
            raise GraphFormatError(f"replace_op({op.name!r}) may not change its tensors")
        self._ops[op.name] = op
        self._version += 1

    def set_io(self, inputs: Iterable[str] | None = None, outputs: Iterable[str] | None = None) -> None:
        """Pin the graph's inputs and outputs (by default derived from producers/consumers)."""
        if inputs is not None:
            self._inputs = list(inputs)
        if outputs is not None:
            self._outputs = list(outputs)
        self._version += 1

    # -- queries ------------------------------------------------------------------------------
    @property
    def nx(self) -> nx.DiGraph:
        """The graph as a ``networkx.DiGraph`` (op names as nodes, built on first use after each
        edit); treat it as read-only: editing it does not edit the graph."""
        if self._nx_view is None or self._nx_view[0] != self._version:
            import networkx as nx

            g = nx.DiGraph()
            g.add_nodes_from((name, {"op": op}) for name, op in self._ops.items())
            g.add_edges_from(
                (u, v, {"tensors": names}) for u, succ in self._succ.items() for v, names in succ.items()
            )
            self._nx_view = (self._version, g)
        return self._nx_view[1]

    def __len__(self) -> int:
        return len(self._ops)

    def __contains__(self, op_name: object) -> bool:
        return op_name in self._ops

    def op(self, name: str) -> Op:
        try:
            return self._ops[name]
        except KeyError:
            raise KeyError(f"no op named {name!r} in graph {self.name!r}") from None

    def predecessors(self, name: str) -> list[str]:
        """Names of the ops whose outputs ``name`` consumes."""
        return list(self._pred[name])

    def successors(self, name: str) -> list[str]:
        """Names of the ops that consume an output of ``name``."""
        return list(self._succ[name])

    def ops(self) -> Iterator[Op]:
        """Ops in a deterministic topological order."""
        if self._order is None or self._order[0] != self._version:
            order = self._topological_order()
            if len(order) < len(self._ops):
                raise GraphFormatError(f"graph {self.name!r} has a cycle")
            self._order = (self._version, order)
        for name in self._order[1]:
            yield self._ops[name]

    def _topological_order(self) -> list[str]:
        """Kahn's algorithm, the ready op inserted first going first (networkx's
        ``lexicographical_topological_sort`` keyed by insertion index), so the order survives a
        JSON round trip; a cycle leaves its ops (and those after them) out."""
        index = {n: i for i, n in enumerate(self._ops)}
        names = list(self._ops)
        indegree = [len(self._pred[n]) for n in names]
        ready = [i for i, d in enumerate(indegree) if d == 0]  # ascending: already a heap
        order = []
        while ready:
            i = heapq.heappop(ready)
            order.append(names[i])
            for child in self._succ[names[i]]:
                j = index[child]
                indegree[j] -= 1
                if indegree[j] == 0:
                    heapq.heappush(ready, j)
        return order

    def producer(self, tensor: str) -> str | None:
        return self._producer.get(tensor)

    def consumers(self, tensor: str) -> list[str]:
        return list(self._consumers.get(tensor, ()))

    @property
    def inputs(self) -> list[str]:
        """Activation tensors no op produces (weights excluded)."""
        if self._inputs is not None:
            return list(self._inputs)
        return [
            n
            for n, t in self.tensors.items()
            if not t.weight and n not in self._producer and n in self._consumers
        ]

    @property
    def outputs(self) -> list[str]:
        """Produced tensors no op consumes."""
        if self._outputs is not None:
            return list(self._outputs)
        return [n for n in self.tensors if n in self._producer and n not in self._consumers]

    def weights(self, op: Op) -> list[Tensor]:
        return [self.tensors[t] for t in op.inputs if self.tensors[t].weight]

    @property
    def total_macs(self) -> int:
        return sum(op.macs for op in self.ops())

    def summary(self) -> GraphSummary:
        by_kind: Counter[str] = Counter()
        macs_by_kind: Counter[str] = Counter()
        for op in self.ops():
            by_kind[op.kind.value] += 1
            macs_by_kind[op.kind.value] += op.macs
        weights = [t for t in self.tensors.values() if t.weight and t.name in self._consumers]
        acts = [t for t in self.tensors.values() if not t.weight]
        return GraphSummary(
            name=self.name,
            ops=len(self),
            macs=sum(macs_by_kind.values()),
            params=sum(t.numel for t in weights),
            weight_bytes=sum(t.nbytes for t in weights),
            activation_bytes=sum(t.nbytes for t in acts),
            by_kind={k: KindSummary(by_kind[k], macs_by_kind[k]) for k in by_kind},
        )

    def validate(self) -> Graph:
        """Check the graph: a non-empty DAG whose every tensor is defined, every op's attributes as
        :mod:`accelsim.ir.schema` requires and its MAC count equal to what its shapes give; returns
        ``self``.

        Raises:
            GraphFormatError: naming the first problem.
        """
        from accelsim.ir.schema import check_op

        if len(self) == 0:
            raise GraphFormatError(f"graph {self.name!r} has no ops")
        order = self._topological_order()
        if len(order) < len(self._ops):
            import networkx as nx  # the error path only: which ops form the cycle

            cycle = nx.find_cycle(self.nx)
            raise GraphFormatError(f"graph {self.name!r} has a cycle through {[u for u, _ in cycle]}")
        self._order = (self._version, order)
        for t in (*self.inputs, *self.outputs):
            if t not in self.tensors:
                raise GraphFormatError(f"graph {self.name!r}: input/output {t!r} is not a tensor")
        for op in self.ops():
            check_op(op)
        return self

    def copy(self) -> Graph:
        """An independent copy (constants shared: they are never mutated in place)."""
        g = Graph.from_dict(self.to_dict())
        g.constants = dict(self.constants)
        return g

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "name": self.name,
            "meta": self.meta,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "quant": {name: q.to_dict() for name, q in self.quant.items()},
            "tensors": [
                {"name": t.name, "shape": list(t.shape), "bits": t.bits, "weight": t.weight}
                for t in self.tensors.values()
            ],
            "ops": [
                {
                    "name": op.name,
                    "kind": op.kind.value,
                    "inputs": list(op.inputs),
                    "outputs": list(op.outputs),
                    "attrs": op.attrs,
                    "macs": op.macs,
                    "target": op.target,
                    "module": op.module,
                    "module_type": op.module_type,
                }
                for op in self._ops.values()
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Graph:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT_NAME:
            raise GraphFormatError(f"not an accelsim graph (expected format {FORMAT_NAME!r})")
        if data.get("version") != FORMAT_VERSION:
            raise GraphFormatError(
                f"unsupported graph version {data.get('version')!r} (this accelsim reads {FORMAT_VERSION})"
            )
        for key in ("meta", "quant"):
            if not isinstance(data.get(key) or {}, Mapping):
                raise GraphFormatError(f"{key!r} must be a JSON object (got {data[key]!r})")
        try:
            g = cls(str(data["name"]), data.get("meta") or {})
            for t in data["tensors"]:
                name = _typed(t, "name", str, "tensor")
                where = f"tensor {name!r}"
                shape = _typed(t, "shape", list, where)
                if not all(type(d) is int and 0 < d <= MAX_DIM for d in shape):
                    raise GraphFormatError(
                        f"{where}: shape must be positive integers, each at most {MAX_DIM} (got {shape!r})"
                    )
                bits = _typed(t, "bits", int, where)
                g.add_tensor(Tensor(name, tuple(shape), bits, _typed(t, "weight", bool, where)))
            for o in data["ops"]:
                name = _typed(o, "name", str, "op")
                g.add_op(
                    Op(
                        name=name,
                        kind=o["kind"],
                        inputs=_names(o, "inputs", f"op {name!r}"),
                        outputs=_names(o, "outputs", f"op {name!r}"),
                        attrs=dict(o.get("attrs") or {}),
                        macs=_typed(o, "macs", int, f"op {name!r}") if "macs" in o else None,  # type: ignore[arg-type]
                        target=str(o.get("target", "")),
                        module=str(o.get("module", "")),
                        module_type=str(o.get("module_type", "")),
                    )
                )
            g.set_io(list(_names(data, "inputs", "graph")), list(_names(data, "outputs", "graph")))
            for name, q in (data.get("quant") or {}).items():
                if name not in g.tensors:
                    raise GraphFormatError(f"quant entry for unknown tensor {name!r}")
                g.quant[name] = QuantParams.from_dict(q)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            if isinstance(e, GraphFormatError):
                raise
            raise GraphFormatError(f"malformed graph: {type(e).__name__}: {e}") from None
        return g.validate()

    def save(self, path: str | Path) -> Path:
        """Write the graph as JSON (lossless: :meth:`load` gives an equal graph back)."""
        return write_text_atomic(path, self.to_json())

    def to_json(self) -> str:
        """The graph as strict JSON (a NaN or infinite attribute is an error, not ``NaN`` text that
        other JSON readers reject)."""
        try:
            return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)
        except ValueError as e:
            raise GraphFormatError(f"graph {self.name!r}: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> Graph:
        path = Path(path)
        text = read_text(path, GraphFormatError, "read graph")
        try:
            data = json.loads(text, parse_constant=_not_strict_json)
        except json.JSONDecodeError as e:
            raise GraphFormatError(
                f"{path}: corrupt or truncated graph JSON ({e.msg}: line {e.lineno}, column {e.colno})"
            ) from None
        except GraphFormatError as e:
            raise GraphFormatError(f"{path}: {e}") from None
        try:
            return cls.from_dict(data)
        except GraphFormatError as e:
            raise GraphFormatError(f"{path}: {e}") from None

    def to_dot(self) -> str:
        """Graphviz DOT text: one box per op labelled with kind and MACs."""
        lines = [f"digraph {json.dumps(self.name)} {{", "  node [shape=box, fontsize=10];"]
        for op in self.ops():
            label = f"{op.name}\n{op.kind.value}" + (f"\n{op.macs:,} MACs" if op.macs else "")
            lines.append(f"  {json.dumps(op.name)} [label={json.dumps(label)}];")
        for u, succ in self._succ.items():
            for v, names in succ.items():
                shapes = ",".join("x".join(map(str, self.tensors[t].shape)) for t in names)
                lines.append(f"  {json.dumps(u)} -> {json.dumps(v)} [label={json.dumps(shapes)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Graph) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, ops={len(self)}, tensors={len(self.tensors)})"
