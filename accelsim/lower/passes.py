"""Graph-to-graph passes run after the per-op rules. Each is ``(Graph) -> Graph``: a new graph,
the input left unchanged.

- :func:`remove_dead_ops`: drop ops none of whose outputs reaches a graph output.
- :func:`fuse_linear_attention`: the softmax-free ReLU attention of EfficientViT's LiteMLA
  (Cai et al., "EfficientViT: Multi-Scale Linear Attention", ICCV 2023, Eq. 2-3) as one op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from accelsim.errors import GraphFormatError
from accelsim.ir import Graph, Op, OpKind

#: A graph pass.
Pass = Callable[[Graph], Graph]


def rebuild(g: Graph, ops: Iterable[Op]) -> Graph:
    """A new graph with ``g``'s name, meta, inputs and outputs and just ``ops`` (in order), the
    tensors they use, and the quantisation/constants of those tensors."""
    ops = list(ops)
    used = {t for op in ops for t in (*op.inputs, *op.outputs)} | set(g.inputs) | set(g.outputs)
    out = Graph(g.name, g.meta)
    for name, t in g.tensors.items():
        if name in used:
            out.add_tensor(t)
    for op in ops:
        out.add_op(op)
    out.set_io(g.inputs, g.outputs)
    out.quant = {k: v for k, v in g.quant.items() if k in out.tensors}
    out.constants = {k: v for k, v in g.constants.items() if k in out.tensors}
    return out


def remove_dead_ops(g: Graph) -> Graph:
    """Drop ops whose results never reach a graph output (e.g. unused pieces of a split)."""
    live: set[str] = set()
    needed = set(g.outputs)
    for op in reversed(list(g.ops())):
        if any(t in needed for t in op.outputs):
            live.add(op.name)
            needed.update(op.inputs)
    return rebuild(g, (op for op in g.ops() if op.name in live))


class _Matcher:
    """Looks up the producer of a tensor, requiring it to be of a given kind/fn."""

    def __init__(self, g: Graph) -> None:
        self.g = g

    def producer(self, tensor: str, kind: OpKind, fn: str | None = None) -> Op | None:
        name = self.g.producer(tensor)
        if name is None:
            return None
        op = self.g.op(name)
        if op.kind != kind or (fn is not None and op.attrs.get("fn") != fn):
            return None
        return op

    def only_feeds(self, tensor: str, consumers: Sequence[str]) -> bool:
        return sorted(self.g.consumers(tensor)) == sorted(consumers) and tensor not in self.g.outputs


def _last_dim_slice(op: Op, length: int) -> tuple[int, int] | None:
    """(start, end) of a ``slice`` op that cuts the last axis of a tensor of width ``length``."""
    if op.target != "aten.slice.Tensor" or len(op.attrs["in_shapes"][0]) < 1:
        return None
    args = op.attrs["args"]
    rank = len(op.attrs["in_shapes"][0])
    dim = args[1] if len(args) > 1 else 0
    if dim % rank != rank - 1:
        return None
    start = args[2] if len(args) > 2 and args[2] is not None else 0
    end = args[3] if len(args) > 3 and args[3] is not None else length
    start = start + length if start < 0 else start
    end = min(end + length if end < 0 else end, length)
    return start, end


def _pads_last_dim_with_one(op: Op) -> bool:
    """``pad(v, (0, 1), value=1)``: one column of ones appended to the last axis."""
    args = op.attrs["args"]
    if op.target == "aten.constant_pad_nd.default":
        mode, value = "constant", args[2] if len(args) > 2 else 0
    elif op.target == "aten.pad.default":
        mode = args[2] if len(args) > 2 else "constant"
        value = args[3] if len(args) > 3 else None
    else:
        return False
    return list(args[1]) == [0, 1] and mode == "constant" and isinstance(value, int | float) and value == 1


def _match_linear_attention(m: _Matcher, div: Op) -> tuple[list[Op], Op] | None:
    """The ops of ``ReLU(q) @ (ReLU(k)^T @ [v, 1])`` normalised by the last column, ending at ``div``."""
    g = m.g
    if len(div.inputs) != 2 or g.tensors[div.inputs[0]].weight or g.tensors[div.inputs[1]].weight:
        return None
    num = m.producer(div.inputs[0], OpKind.SLICE)
    den_add = m.producer(div.inputs[1], OpKind.ELTWISE, "add")
    if num is None or den_add is None or "scalar" not in den_add.attrs or len(den_add.inputs) != 1:
        return None
    den = m.producer(den_add.inputs[0], OpKind.SLICE)
    if den is None or den.inputs[0] != num.inputs[0]:
        return None
    qkv = m.producer(num.inputs[0], OpKind.MATMUL)
    if qkv is None or qkv.attrs.get("operands") != "aa":
        return None
    width = qkv.attrs["N"]
    if _last_dim_slice(num, width) != (0, width - 1) or _last_dim_slice(den, width) != (width - 1, width):
        return None
    q_relu = m.producer(qkv.inputs[0], OpKind.ACTIVATION, "relu")
    kv = m.producer(qkv.inputs[1], OpKind.MATMUL)
    if q_relu is None or kv is None or kv.attrs.get("operands") != "aa":
        return None
    k_t = m.producer(kv.inputs[0], OpKind.TRANSPOSE)
    v_pad = m.producer(kv.inputs[1], OpKind.PAD)
    if k_t is None or v_pad is None:
        return None
    rank = len(k_t.attrs["in_shapes"][0])
    if k_t.target != "aten.transpose.int" or sorted(d % rank for d in k_t.attrs["args"][1:3]) != [
        rank - 2,
        rank - 1,
    ]:
        return None
    if not _pads_last_dim_with_one(v_pad):
        return None
    k_relu = m.producer(k_t.inputs[0], OpKind.ACTIVATION, "relu")
    if k_relu is None:
        return None
    # Every intermediate must feed only the pattern, or fusing would lose a value.
    inner = [
        (q_relu.outputs[0], [qkv.name]),
        (k_relu.outputs[0], [k_t.name]),
        (k_t.outputs[0], [kv.name]),
        (v_pad.outputs[0], [kv.name]),
        (kv.outputs[0], [qkv.name]),
        (qkv.outputs[0], [num.name, den.name]),
        (num.outputs[0], [div.name]),
        (den.outputs[0], [den_add.name]),
        (den_add.outputs[0], [div.name]),
    ]
    if not all(m.only_feeds(t, c) for t, c in inner):
        return None
    ops = [q_relu, k_relu, k_t, v_pad, kv, qkv, num, den, den_add, div]
    q_shape = g.tensors[q_relu.inputs[0]].shape
    if len(q_shape) != 4:
        return None
    batch, heads, tokens, head_dim = q_shape
    attrs: dict[str, Any] = {
        "batch": batch,
        "heads": heads,
        "tokens": tokens,
        "head_dim": head_dim,
        "kernel": "relu",
        "eps": float(den_add.attrs["scalar"]),
        "in_shapes": [
            list(g.tensors[t].shape) for t in (q_relu.inputs[0], k_relu.inputs[0], v_pad.inputs[0])
        ],
        "out_shapes": div.attrs["out_shapes"],
        "args": [{"input": 0}, {"input": 1}, {"input": 2}],
        "fused": [op.target for op in ops],
    }
    # Quantisers inside the pattern (e.g. on ReLU(q), ReLU(k), the k-sum divisor) quantised
    # tensors that disappear with the fusion: keep their parameters on the fused op by role.
    roles = {
        "q": q_relu.outputs[0],
        "k": k_relu.outputs[0],
        "k_t": k_t.outputs[0],
        "v_pad": v_pad.outputs[0],
        "kv": kv.outputs[0],
        "out": qkv.outputs[0],
        "numerator": num.outputs[0],
        "k_sum": den.outputs[0],
        "divisor": den_add.outputs[0],
    }
    inner_quant = {role: g.quant[t].to_dict() for role, t in roles.items() if t in g.quant}
    if inner_quant:
        attrs["quant"] = inner_quant
    fused = Op(
        name=f"{qkv.name}_linear_attention",
        kind=OpKind.LINEAR_ATTENTION,
        inputs=(q_relu.inputs[0], k_relu.inputs[0], v_pad.inputs[0]),
        outputs=div.outputs,
        attrs=attrs,
        macs=kv.macs + qkv.macs,
        target="accelsim::linear_attention",
        module=qkv.module,
        module_type=qkv.module_type,
    )
    return ops, fused


def fuse_linear_attention(g: Graph) -> Graph:
    """Replace each ReLU linear attention (EfficientViT LiteMLA's kernel part) by one op.

    The pattern, on ``q, k, v`` of shape ``(B, heads, tokens, head_dim)``::

        kv  = ReLU(k)^T @ pad(v, (0, 1), value=1)      # (B, h, d, d + 1): last column = sum of k
        out = ReLU(q) @ kv                             # (B, h, T, d + 1)
        y   = out[..., :-1] / (out[..., -1:] + eps)

    becomes one ``linear_attention`` op (``batch, heads, tokens, head_dim, kernel="relu", eps``;
    ``attrs["quant"]`` keeps, by role, the quantisation of the tensors fused away) with the MACs of
    its two matmuls, ``2 * B * h * T * d * (d + 1)``, which is what
    ``torch.utils.flop_counter`` counts. The multi-scale aggregation convs before it stay.
    Returns a new graph, or ``g`` itself when nothing matched (``g`` is never modified).
    """
    m = _Matcher(g)
    removed: set[str] = set()
    fused_at: dict[str, Op] = {}
    for op in g.ops():
        if op.kind == OpKind.ELTWISE and op.attrs.get("fn") == "div":
            hit = _match_linear_attention(m, op)
            if hit is not None:
                ops, fused = hit
                removed.update(o.name for o in ops)
                fused_at[op.name] = fused
    if not fused_at:
        return g
    new_ops = [fused_at.get(op.name, op) for op in g.ops() if op.name not in removed or op.name in fused_at]
    return rebuild(g, new_ops)


#: The passes :func:`accelsim.lower` runs, in order.
DEFAULT_PASSES: tuple[Pass, ...] = (remove_dead_ops, fuse_linear_attention, remove_dead_ops)


def run_passes(g: Graph, passes: Sequence[Pass] = DEFAULT_PASSES) -> Graph:
    """Run ``passes`` in order, validating the graph after each.

    Raises:
        GraphFormatError: a pass left an invalid graph; the message names it and those before it.
    """
    for i, p in enumerate(passes):
        try:
            g = p(g).validate()
        except GraphFormatError as e:
            before = ", ".join(q.__name__ for q in passes[:i]) or "none"
            raise GraphFormatError(
                f"pass {p.__name__} (after: {before}) left an invalid graph: {e}"
            ) from None
    return g
