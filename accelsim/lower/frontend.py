"""``lower(model) -> Graph``: a timm model (or any ``nn.Module``) through ``torch.export`` to the IR.

The steps: build or take the model (eval mode, fused attention off so attention is
matmul -> softmax -> matmul), export it (non-strict), walk the exported FX graph node by node —
constants folded, quantiser modules dropped, each other ATen op through its rule of
:mod:`accelsim.lower.rules` — then run the passes of :mod:`accelsim.lower.passes`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import operator
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import fx
from torch.utils.flop_counter import FlopCounterMode

from accelsim._progress import bar
from accelsim.errors import AccelsimError, ConfigError, InputShapeError, UnsupportedOpError
from accelsim.ir import Graph, Tensor
from accelsim.lower import rules as _rules  # noqa: F401  (fills the rule table)
from accelsim.lower._registry import get_lowering
from accelsim.lower.context import Act, Const, LoweringContext, check_bits, module_type_name
from accelsim.lower.passes import run_passes
from accelsim.models import create_timm_model

log = logging.getLogger(__name__)

aten = torch.ops.aten

#: the most elements a tensor of the graph may hold (the simulator's int32 dimensions)
_MAX_ELEMENTS = 2**31 - 1

#: Nodes that check metadata at run time and compute nothing.
_SKIPPED = {
    aten._assert_tensor_metadata.default,
    aten._assert_scalar.default,
    aten.sym_constrain_range_for_size.default,
    aten._assert_async.msg,
}

#: Higher-order ops that only wrap a sub-graph in a context (autocast, grad mode): inlined.
_WRAPPERS = {torch.ops.higher_order.wrap_with_autocast, torch.ops.higher_order.wrap_with_set_grad_enabled}


def lower(
    model: str | torch.nn.Module,
    input_shape: tuple[int, ...] | None = None,
    *,
    img_size: int | None = None,
    batch: int = 1,
    wbits: int = 8,
    abits: int = 8,
    keep_constants: bool = False,
    name: str | None = None,
    **timm_kwargs: Any,
) -> Graph:
    """Lower a model to a dataflow :class:`~accelsim.ir.Graph`.

    Args:
        model: a timm model name (built with ``pretrained=False``; the reference models of
            :mod:`accelsim.models` are registered with timm, so ``"ref_deit"`` is one) or an
            ``nn.Module``.
        input_shape: the input shape ``(N, C, H, W)``; a 3-tuple ``(C, H, W)`` gets ``batch``
            prepended. Default: the timm model's ``pretrained_cfg["input_size"]``, at ``img_size``.
        img_size: input resolution; passed to ``timm.create_model`` where the model takes it.
        batch: the batch size when ``input_shape`` does not give one.
        wbits: bits of weight tensors (1..32).
        abits: bits of floating-point activation tensors (1..32).
        keep_constants: store every weight tensor's value (folded ones included) as a NumPy
            array in ``graph.constants``. Without it a timm name is built on the meta device
            (no weights: much faster; the graph is the same).
        name: the graph's name (default: the model name or class).
        **timm_kwargs: passed to ``timm.create_model``.

    Returns:
        The graph, validated; ``graph.meta`` records the model, input shape and bits, and
        ``folded_macs``: the MACs of weight-only computations folded into constants at lowering
        time (they run once, offline, not per frame), as ``torch.utils.flop_counter`` counts them.

    Raises:
        UnknownModelError: ``model`` is not a timm model name (the message suggests close ones).
        InputShapeError: the input shape does not suit the model.
        UnsupportedOpError: an ATen op has no lowering rule (the message names op and module).
        ConfigError: ``wbits``/``abits`` out of range.

    Examples:
        >>> g = lower("deit_tiny_patch16_224")  # built on the meta device: no weights needed
        >>> g.summary().macs
        1253683200
    """
    check_bits("wbits", wbits)
    check_bits("abits", abits)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InputShapeError(f"batch must be a positive integer, got {batch!r}")
    if img_size is not None and (isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 1):
        raise InputShapeError(f"img_size must be a positive integer, got {img_size!r}")
    start = time.perf_counter()
    if isinstance(model, str):
        module = create_timm_model(model, img_size, meta=not keep_constants, **timm_kwargs)
        graph_name = name or model
    elif isinstance(model, torch.nn.Module):
        if timm_kwargs:
            raise ConfigError(f"timm keyword arguments {sorted(timm_kwargs)} need a model name, not a module")
        module = model
        graph_name = name or type(model).__name__
    else:
        raise TypeError(f"model must be a timm model name or an nn.Module, got {type(model).__name__}")
    on_meta = _device_of(module).type == "meta"
    if keep_constants and on_meta:
        raise ConfigError(
            "keep_constants=True needs a model with real weights (this one is on the meta device)"
        )
    shape = _input_shape(module, input_shape, img_size, batch, graph_name)
    if math.prod(shape) > _MAX_ELEMENTS:
        # torch.export would spend seconds on fake tensors before an overflow deep inside it
        raise InputShapeError(
            f"{graph_name}: input shape {list(shape)} has {math.prod(shape):,} elements; a tensor of the "
            f"graph holds at most {_MAX_ELEMENTS:,} (a smaller img_size or input_shape)"
        )
    # torch.export is most of a big model's lowering (seconds to a minute): say which step runs
    with _inference_mode(module), bar(3, f"lower {graph_name}", unit="step") as steps:
        steps.set_postfix_str("torch.export")
        ep = _export(module, shape, graph_name)
        steps.update()
        steps.set_postfix_str("ATen -> IR")
        graph = Graph(
            graph_name,
            {
                "model": graph_name,
                "model_class": module_type_name(type(module)),
                "input_shape": list(shape),
                "wbits": wbits,
                "abits": abits,
            },
        )
        ctx = LoweringContext(graph, wbits=wbits, abits=abits, keep_constants=keep_constants, model=module)
        _walk_exported(ep, ctx)
        graph.meta["folded_macs"] = ctx.folded_macs
        steps.update()
        steps.set_postfix_str("passes")
        graph = run_passes(graph)
        steps.update()
    log.info("lowered %s in %.2f s: %d ops", graph_name, time.perf_counter() - start, len(graph))
    return graph


# -- the model --------------------------------------------------------------------------------
def _device_of(module: torch.nn.Module) -> torch.device:
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")


def _input_shape(
    module: torch.nn.Module, input_shape: tuple[int, ...] | None, img_size: int | None, batch: int, name: str
) -> tuple[int, ...]:
    cfg = getattr(module, "pretrained_cfg", None) or {}
    default = tuple(cfg.get("input_size", ())) or None
    if input_shape is None:
        if default is None:
            raise InputShapeError(f"{name}: input_shape is required (the module has no timm pretrained_cfg)")
        if img_size is not None:
            default = (default[0], img_size, img_size)
        return (batch, *default)
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise InputShapeError(f"{name}: input_shape must be positive integers, got {input_shape!r}")
    if default is not None:
        if len(shape) == len(default):
            shape = (batch, *shape)
        if len(shape) != len(default) + 1:
            raise InputShapeError(
                f"{name}: input_shape {input_shape!r} must be (N, C, H, W) or (C, H, W) like {default}"
            )
        if shape[1] != default[0]:
            raise InputShapeError(f"{name}: input has {shape[1]} channels, the model takes {default[0]}")
        if img_size is not None and shape[2:] != (img_size, img_size):
            raise InputShapeError(f"{name}: input_shape {input_shape!r} disagrees with img_size={img_size}")
    return shape


@contextlib.contextmanager
def _inference_mode(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode and unfused attention for the duration of the export; the caller's module is
    given back as it was."""
    training = {m: m.training for m in module.modules()}
    fused: dict[Any, Any] = {m: m.fused_attn for m in module.modules() if hasattr(m, "fused_attn")}
    module.eval()
    for m in fused:
        m.fused_attn = False  # attention as matmul -> softmax -> matmul
    try:
        yield
    finally:
        for m, was in fused.items():
            m.fused_attn = was
        for m, was in training.items():
            m.training = was


@contextlib.contextmanager
def _quiet_fake_tensor_log() -> Iterator[None]:
    """torch logs a traceback at ERROR when a shape overflows under export, before it raises the
    error that becomes our one line: keep it for ``-vv`` only."""
    fake = logging.getLogger("torch._subclasses.fake_tensor")
    level = fake.level
    if not log.isEnabledFor(logging.DEBUG):
        fake.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        fake.setLevel(level)


def _export(module: torch.nn.Module, shape: tuple[int, ...], name: str) -> Any:
    x = torch.zeros(shape, device=_device_of(module))
    cfg = getattr(module, "pretrained_cfg", None) or {}
    default = tuple(cfg.get("input_size", ()))
    try:
        with torch.no_grad(), _quiet_fake_tensor_log():
            return torch.export.export(module, (x,), strict=False)
    except Exception as e:
        if default and tuple(shape[1:]) != default:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputShapeError(
                f"{name}: input shape {list(shape)} does not suit the model "
                f"(its default is {[shape[0], *default]}): {first}"
            ) from e
        raise


# -- the walk -----------------------------------------------------------------------------------
def _walk_exported(ep: Any, ctx: LoweringContext) -> None:
    from torch.export.graph_signature import InputKind

    state = ep.state_dict
    consts = ep.constants
    inputs: list[Any] = []
    for spec in ep.graph_signature.input_specs:
        if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            value = state[spec.target] if spec.target in state else consts[spec.target]
            inputs.append(Const(value, spec.target))
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            inputs.append(Const(consts[spec.target], spec.target))
        elif spec.kind == InputKind.USER_INPUT:
            inputs.append(None)  # filled from the placeholder's example value
        else:
            raise UnsupportedOpError(
                f"exported input {spec.arg.name!r} of kind {spec.kind.name} has no lowering"
            )
    placeholders = [n for n in ep.graph.nodes if n.op == "placeholder"]
    for node, value in zip(placeholders, inputs, strict=True):
        if value is None:
            val = node.meta["val"]
            ctx.graph.add_tensor(Tensor(node.name, tuple(val.shape), ctx.activation_bits(val.dtype)))
            value = Act(node.name)
        ctx.env[node] = value
    result = _walk(ep.graph_module, ctx, [])
    outputs = [v.name for v in _flatten(result) if isinstance(v, Act)]
    ctx.graph.set_io(inputs=[n.name for n in placeholders if isinstance(ctx.env[n], Act)], outputs=outputs)


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, list | tuple):
        for v in value:
            yield from _flatten(v)
    else:
        yield value


def _walk(gm: fx.GraphModule, ctx: LoweringContext, args: list[Any]) -> Any:
    """Lower the nodes of ``gm`` in order; ``args`` are the values of its placeholders when it is
    an inlined sub-graph. Returns the value of its output."""
    pending = list(args)
    for node in gm.graph.nodes:
        ctx.current = node
        if node.op == "placeholder":
            if node not in ctx.env:
                ctx.env[node] = pending.pop(0)
        elif node.op == "get_attr":
            attr = _get_attr(gm, str(node.target))
            ctx.env[node] = Const(attr, str(node.target)) if isinstance(attr, torch.Tensor) else attr
        elif node.op == "call_function":
            ctx.env[node] = _lower_call(node, ctx)
        elif node.op == "output":
            return ctx.value(node.args[0])
        else:
            raise UnsupportedOpError(f"FX node kind {node.op!r} has no lowering: {ctx.where(node)}")
    return None


def _get_attr(gm: fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _lower_call(node: fx.Node, ctx: LoweringContext) -> Any:
    target = node.target
    if target in _SKIPPED:
        return None
    if target is operator.getitem:
        seq = ctx.value(node.args[0])
        return seq[node.args[1]]
    if node in ctx.preset:
        return ctx.preset.pop(node)
    quantizer = ctx.quantizer_of(node)
    if quantizer is not None:
        return _through_quantizer(node, ctx, *quantizer)
    if target in _WRAPPERS:
        return _inline(node, ctx)
    values = [ctx.value(a) for a in (*node.args, *node.kwargs.values())]
    if not any(isinstance(v, Act) for v in _flatten(values)):
        return _fold(node, ctx)
    rule = get_lowering(target, ctx.where(node))
    return rule(node, ctx)


def _through_quantizer(node: fx.Node, ctx: LoweringContext, path: str, module: Any) -> Any:
    """Inside a fake-quantiser: the op is dropped and the quantised tensor flows through."""
    first = next((a for a in _flatten(list(node.args)) if isinstance(a, fx.Node)), None)
    if first is None:
        return None
    value = ctx.value(first)
    if isinstance(value, Act | Const):
        try:
            qparams = module.qparams()
        except Exception as e:  # a bug in the quantiser, but the user needs to know which one
            raise AccelsimError(f"quantiser {path!r}: qparams() failed: {type(e).__name__}: {e}") from e
        ctx.record_quant(value, qparams)
    return value


def _inline(node: fx.Node, ctx: LoweringContext) -> Any:
    """A context-manager higher-order op (autocast off, grad mode): lower its body in place."""
    sub_index = next(i for i, a in enumerate(node.args) if isinstance(ctx.value(a), fx.GraphModule))
    sub = ctx.value(node.args[sub_index])
    operands = [ctx.value(a) for a in node.args[sub_index + 1 :]]
    outer, saved = ctx.module_stack(node), ctx.outer_stack
    ctx.outer_stack = outer
    try:
        result = _walk(sub, ctx, operands)
    finally:
        ctx.outer_stack = saved
        ctx.current = node
    return result


def _fold(node: fx.Node, ctx: LoweringContext) -> Any:
    """Evaluate a node whose tensor inputs are all constants; its results are constants too."""
    roots = [
        v.name.split(":")[0] for v in _flatten([ctx.value(a) for a in node.args]) if isinstance(v, Const)
    ]
    root = roots[0] if roots else "const"

    def concrete(v: Any) -> Any:
        if isinstance(v, Const):
            return v.value
        if isinstance(v, list | tuple):
            return [concrete(x) for x in v]
        return v

    args = [concrete(ctx.value(a)) for a in node.args]
    kwargs = {k: concrete(ctx.value(v)) for k, v in node.kwargs.items()}
    try:
        # Counted as torch's flop counter counts them: MACs spent on weights at lowering time
        # (SwinV2's position-bias MLP, XCiT's Fourier position encoding) that the accelerator
        # never runs, so that graph MACs + folded MACs is the model's own count exactly.
        with torch.no_grad(), FlopCounterMode(display=False) as flops:
            out = node.target(*args, **kwargs)  # type: ignore[operator]
    except Exception as e:
        raise UnsupportedOpError(f"cannot fold constant {node.target}: {ctx.where(node)}: {e}") from e
    ctx.folded_macs += flops.get_total_flops() // 2

    def wrap(v: Any, suffix: str) -> Any:
        if isinstance(v, torch.Tensor):
            return Const(v, f"{root}:{node.name}{suffix}")
        if isinstance(v, list | tuple):
            return [wrap(x, f"{suffix}.{i}") for i, x in enumerate(v)]
        return v

    return wrap(out, "")
