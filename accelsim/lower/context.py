"""The state a lowering rule sees: the graph being built, values of FX nodes, and emit helpers.

Values of FX nodes (what ``ctx.env[node]`` holds):

- :class:`Act`: an activation tensor of the graph (by name);
- :class:`Const`: a tensor computed only from parameters, buffers and literals; it becomes a
  weight tensor of the graph the first time a rule uses it as an operand (``ctx.tensor``);
- a list of values (multi-output ops), ``None``, or a plain Python value (ints of shapes).

``attrs["args"]`` / ``attrs["kwargs"]`` of an emitted op hold the node's non-tensor arguments,
JSON-safe: a tensor argument becomes ``{"input": i}`` (the op's ``i``-th input tensor), a dtype
``{"dtype": "float32"}``, a non-finite float ``{"float": "inf"}``; with ``target`` this is enough
to execute the op again (the bit-true executor does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx

from accelsim.errors import ConfigError
from accelsim.ir import Graph, Op, OpKind, QuantParams, Tensor


@dataclass(frozen=True)
class Act:
    """An activation tensor of the graph being built."""

    name: str


@dataclass(frozen=True, eq=False)
class Const:
    """A tensor known at lowering time (a parameter, buffer, or something folded from them).

    Attributes:
        value: the tensor (on the meta device when the model was built without weights).
        name: the tensor's name in the graph: the state-dict key for parameters and buffers,
            ``"<root>:<fx node>"`` for folded ones.
    """

    value: torch.Tensor
    name: str


def module_type_name(t: Any) -> str:
    """``package.module.Class`` of a class (or the string export already recorded)."""
    if isinstance(t, str):
        return t
    return f"{t.__module__}.{t.__qualname__}"


def dtype_bits(dtype: torch.dtype, float_bits: int) -> int:
    """Bits of a tensor of ``dtype`` in the graph: ``float_bits`` for floats (what the accelerator
    will use), 1 for bool, the integer width (capped at 32: indices) for integers."""
    if dtype.is_floating_point or dtype.is_complex:
        return float_bits
    if dtype == torch.bool:
        return 1
    return min(torch.iinfo(dtype).bits, 32)


def to_json_safe(value: Any, inputs: dict[fx.Node, int] | None = None) -> Any:
    """A JSON-safe form of an FX argument (see the module docstring)."""
    if isinstance(value, fx.Node):
        if inputs is not None and value in inputs:
            return {"input": inputs[value]}
        val = value.meta.get("val")
        if isinstance(val, int | float | bool):
            return val
        return {"node": value.name}
    if isinstance(value, list | tuple):
        return [to_json_safe(v, inputs) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_safe(v, inputs) for k, v in value.items()}
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": str(value)}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device | torch.layout | torch.memory_format):
        return str(value)
    return repr(value)


@dataclass
class LoweringContext:
    """Everything a rule needs; one per :func:`accelsim.lower` call.

    Args:
        graph: the graph being built.
        wbits: bits of weight tensors.
        abits: bits of floating-point activation tensors.
        keep_constants: store weight values in ``graph.constants``.
        model: the module being lowered (to look up quantiser modules by path).
    """

    graph: Graph
    wbits: int
    abits: int
    keep_constants: bool
    model: torch.nn.Module | None = None
    env: dict[fx.Node, Any] = field(default_factory=dict)
    #: values decided ahead of time by an earlier rule (e.g. a BatchNorm folded into its conv)
    preset: dict[fx.Node, Any] = field(default_factory=dict)
    #: bits a quantiser set for a tensor (by name) before the tensor was materialised
    bits_override: dict[str, int] = field(default_factory=dict)
    #: module-stack entries inherited by the nodes of an inlined sub-graph
    outer_stack: dict[str, Any] = field(default_factory=dict)
    current: fx.Node | None = None
    #: MACs of the constant computations folded so far (torch's flop count of them)
    folded_macs: int = 0
    _quantizer_cache: dict[str, Any] = field(default_factory=dict)

    # -- values -------------------------------------------------------------------------------
    def value(self, arg: Any) -> Any:
        """The value of an FX argument (nodes looked up, lists mapped)."""
        if isinstance(arg, fx.Node):
            return self.env[arg]
        if isinstance(arg, list | tuple):
            return [self.value(a) for a in arg]
        return arg

    def is_const(self, arg: Any) -> bool:
        return isinstance(self.value(arg), Const)

    def const(self, arg: Any) -> torch.Tensor:
        """The tensor value of a constant argument."""
        v = self.value(arg)
        if not isinstance(v, Const):
            raise TypeError(f"{arg} is not a constant")
        return v.value

    def meta(self, arg: fx.Node) -> Any:
        """The example value (a fake tensor, or a list of them) export recorded for ``arg``."""
        return arg.meta["val"]

    def shape(self, arg: fx.Node) -> tuple[int, ...]:
        return tuple(int(d) for d in arg.meta["val"].shape)

    def tensor(self, arg: fx.Node) -> str:
        """The graph tensor name of a tensor argument; a constant becomes a weight tensor here."""
        v = self.value(arg)
        if isinstance(v, Act):
            return v.name
        if isinstance(v, Const):
            return self.materialize(v)
        raise TypeError(f"argument {arg} of {self.where()} is not a tensor (got {type(v).__name__})")

    def materialize(self, c: Const) -> str:
        """Add constant ``c`` to the graph as a weight tensor (once) and return its name."""
        if c.name not in self.graph.tensors:
            bits = self.bits_override.get(c.name, dtype_bits(c.value.dtype, self.wbits))
            self.graph.add_tensor(Tensor(c.name, tuple(c.value.shape), bits, weight=True))
            if self.keep_constants:
                self.graph.constants[c.name] = c.value.detach().cpu().numpy()
        return c.name

    def activation_bits(self, dtype: torch.dtype) -> int:
        return dtype_bits(dtype, self.abits)

    # -- module attribution -------------------------------------------------------------------
    def module_stack(self, node: fx.Node) -> dict[str, Any]:
        stack = node.meta.get("nn_module_stack")
        return dict(stack) if stack else dict(self.outer_stack)

    def module_of(self, node: fx.Node) -> tuple[str, str]:
        """(path, type) of the innermost module ``node`` was traced in; the root model if none."""
        stack = self.module_stack(node)
        if stack:
            path, typ = list(stack.values())[-1]
            return str(path), module_type_name(typ)
        root = type(self.model) if self.model is not None else object
        return "", module_type_name(root)

    def where(self, node: fx.Node | None = None) -> str:
        node = node if node is not None else self.current
        if node is None:
            return "lowering"
        path, typ = self.module_of(node)
        return f"node {node.name!r} in module {path or '<root>'!r} ({typ})"

    def quantizer_of(self, node: fx.Node) -> tuple[str, Any] | None:
        """(path, module) of the outermost fake-quantiser module ``node`` was traced in, if any."""
        if self.model is None:
            return None
        for path, _ in self.module_stack(node).values():
            if path not in self._quantizer_cache:
                try:
                    mod = self.model.get_submodule(str(path)) if path else self.model
                except AttributeError:
                    mod = None
                is_q = mod is not None and bool(getattr(type(mod), "accelsim_quantizer", False))
                self._quantizer_cache[path] = mod if is_q else None
            if self._quantizer_cache[path] is not None:
                return str(path), self._quantizer_cache[path]
        return None

    def record_quant(self, value: Any, qparams: QuantParams) -> None:
        """Give the tensor behind ``value`` the bits of ``qparams`` and record them in ``graph.quant``."""
        if isinstance(value, Act):
            t = self.graph.tensors[value.name]
            if t.bits != qparams.bits:
                self.graph.replace_tensor(Tensor(t.name, t.shape, qparams.bits, t.weight))
            self.graph.quant[value.name] = qparams
        elif isinstance(value, Const):
            self.bits_override[value.name] = qparams.bits
            if value.name in self.graph.tensors:
                t = self.graph.tensors[value.name]
                self.graph.replace_tensor(Tensor(t.name, t.shape, qparams.bits, t.weight))
            self.graph.quant[value.name] = qparams

    # -- emitting -----------------------------------------------------------------------------
    def emit_inner(
        self,
        suffix: str,
        kind: OpKind | str,
        input_names: Sequence[str],
        out_shape: Sequence[int],
        attrs: dict[str, Any],
        *,
        macs: int = 0,
        target: str,
        args: Any,
    ) -> str:
        """Add one of several ops a rule emits for the current node (a decomposition); its
        output is a new activation tensor ``<node>.<suffix>``, whose name is returned."""
        node = self.current
        assert node is not None
        name = f"{node.name}.{suffix}"
        self.graph.add_tensor(Tensor(name, tuple(int(d) for d in out_shape), self.abits))
        full = dict(attrs)
        full["in_shapes"] = [list(self.graph.tensors[n].shape) for n in input_names]
        full["out_shapes"] = [list(out_shape)]
        full["args"] = to_json_safe(args)
        path, typ = self.module_of(node)
        self.graph.add_op(
            Op(name, OpKind(kind), tuple(input_names), (name,), full, int(macs), target, path, typ)
        )
        return name

    def _new_output(self, name: str, val: Any) -> Act | None:
        if not isinstance(val, torch.Tensor):
            return None
        self.graph.add_tensor(Tensor(name, tuple(int(d) for d in val.shape), self.activation_bits(val.dtype)))
        return Act(name)

    def emit(
        self,
        kind: OpKind | str,
        inputs: Sequence[fx.Node],
        attrs: dict[str, Any] | None = None,
        *,
        macs: int = 0,
        args: Any = None,
        kwargs: Any = None,
        input_names: Sequence[str] | None = None,
        target: str | None = None,
        keep_outputs: int | None = None,
    ) -> Any:
        """Add one op for the current node and return the node's value.

        The op takes ``inputs`` (FX nodes; constants become weight tensors, or pass
        ``input_names`` to name graph tensors directly), writes the node's output tensor(s) and
        records the operand shapes (``in_shapes``/``out_shapes``), ``args``/``kwargs`` (default:
        the node's own) and the module it came from. ``keep_outputs=n`` keeps only the first
        ``n`` results of a multi-output node (e.g. the output of ``native_layer_norm``, not its
        saved mean and rstd).
        """
        node = self.current
        assert node is not None
        names = list(input_names) if input_names is not None else [self.tensor(a) for a in inputs]
        index: dict[fx.Node, int] = {}
        for i, a in enumerate(inputs):
            index.setdefault(a, i)
        val = node.meta.get("val")
        if isinstance(val, list | tuple):
            n = len(val) if keep_outputs is None else keep_outputs
            outs = [self._new_output(f"{node.name}.{i}", v) if i < n else None for i, v in enumerate(val)]
            result: Any = outs
            out_names = [o.name for o in outs if o is not None]
        else:
            out = self._new_output(node.name, val)
            if out is None:
                raise TypeError(f"{self.where()}: expected a tensor result, got {type(val).__name__}")
            result, out_names = out, [out.name]
        full = dict(attrs or {})
        full["in_shapes"] = [list(self.graph.tensors[n].shape) for n in names]
        full["out_shapes"] = [list(self.graph.tensors[n].shape) for n in out_names]
        full["args"] = to_json_safe(node.args if args is None else args, index)
        kw = node.kwargs if kwargs is None else kwargs
        if kw:
            full["kwargs"] = to_json_safe(dict(kw), index)
        path, typ = self.module_of(node)
        self.graph.add_op(
            Op(
                name=node.name,
                kind=OpKind(kind),
                inputs=tuple(names),
                outputs=tuple(out_names),
                attrs=full,
                macs=int(macs),
                target=str(target if target is not None else node.target),
                module=path,
                module_type=typ,
            )
        )
        return result


@dataclass(frozen=True)
class Step:
    """A handle on the output of one planned op of a :class:`Decomposition`."""

    index: int


@dataclass
class _Planned:
    suffix: str
    kind: OpKind
    inputs: list[str | Step]
    out_shape: tuple[int, ...]
    attrs: dict[str, Any]
    macs: int
    target: str
    args: Any


class Decomposition:
    """The ops one FX node becomes (einsum into transposes and a matmul, group norm into a
    layernorm over groups and an affine): planned with :meth:`add`, emitted by :meth:`finish`.

    Planning first lets a rule decide late which op is the last one: every op but the last
    writes an inner tensor ``<node>.<suffix>``, the last writes the node's own output tensor,
    so the ops that follow in the graph see the node as usual.
    """

    def __init__(self, ctx: LoweringContext) -> None:
        self.ctx = ctx
        self._steps: list[_Planned] = []

    def shape(self, value: str | Step) -> tuple[int, ...]:
        """The shape of a graph tensor (by name) or of a planned op's output."""
        if isinstance(value, Step):
            return self._steps[value.index].out_shape
        return self.ctx.graph.tensors[value].shape

    def add(
        self,
        suffix: str,
        kind: OpKind,
        inputs: Sequence[str | Step],
        out_shape: Sequence[int],
        attrs: dict[str, Any],
        *,
        target: str,
        args: Any,
        macs: int = 0,
    ) -> Step:
        """Plan one op; ``inputs`` are graph tensor names or earlier steps; ``args`` encode a
        tensor argument as ``{"input": i}`` like every op's ``attrs["args"]``."""
        shape = tuple(int(d) for d in out_shape)
        self._steps.append(_Planned(suffix, kind, list(inputs), shape, attrs, int(macs), target, args))
        return Step(len(self._steps) - 1)

    def finish(self, result: str | Step) -> Any:
        """Emit the ops up to ``result`` (later ones are dead) and return the node's value: the
        last op writes the node's output; a graph tensor ``result`` (nothing to compute) is the
        value itself."""
        ctx = self.ctx
        if not isinstance(result, Step):
            return Act(result)
        names: list[str] = []
        last = result.index
        for i, st in enumerate(self._steps[: last + 1]):
            ins = [names[x.index] if isinstance(x, Step) else x for x in st.inputs]
            if i < last:
                names.append(
                    ctx.emit_inner(
                        st.suffix, st.kind, ins, st.out_shape, st.attrs, macs=st.macs, target=st.target,
                        args=st.args,
                    )
                )  # fmt: skip
                continue
            node = ctx.current
            assert node is not None
            if ctx.shape(node) != st.out_shape:
                raise AssertionError(
                    f"{ctx.where()}: decomposition ends in {st.out_shape}, not {ctx.shape(node)}"
                )
            return ctx.emit(
                st.kind,
                [],
                st.attrs,
                macs=st.macs,
                input_names=ins,
                target=st.target,
                args=st.args,
                kwargs={},
            )
        raise AssertionError("unreachable")


def check_bits(name: str, bits: int) -> None:
    if not isinstance(bits, int) or not 1 <= bits <= 32:
        raise ConfigError(f"{name} must be an integer in 1..32, got {bits!r}")


def bind(node: fx.Node) -> dict[str, Any]:
    """The node's arguments by schema name, defaults filled in (positional or keyword alike)."""
    schema = getattr(node.target, "_schema", None)
    if schema is None:
        raise TypeError(f"{node.target} has no ATen schema")
    out: dict[str, Any] = {}
    for i, a in enumerate(schema.arguments):
        if i < len(node.args):
            out[a.name] = node.args[i]
        elif a.name in node.kwargs:
            out[a.name] = node.kwargs[a.name]
        elif a.has_default_value():
            out[a.name] = a.default_value
        else:
            out[a.name] = None
    return out


def numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def pair(v: Any) -> list[int]:
    """``[h, w]`` from an int or a 1- or 2-element sequence."""
    if isinstance(v, int):
        return [v, v]
    v = [int(x) for x in v]
    return v * 2 if len(v) == 1 else v[:2]
