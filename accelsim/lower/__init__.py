"""Lowering: a timm model (or any ``nn.Module``) -> ``torch.export`` -> the dataflow IR.

``lower(model)`` is the entry point; ``lower_compressed(model, recipe)`` lowers a compressed model
with the bits every part of accelsim uses for it. Rules (one function per ATen op, in
:mod:`accelsim.lower.rules`) are registered with :func:`register_lowering`; graph passes
(linear-attention fusion, dead-op removal) live in :mod:`accelsim.lower.passes`.
"""

from accelsim._callable import make_module_callable
from accelsim.lower._registry import (
    get_lowering,
    refuse_lowering,
    refused_ops,
    register_lowering,
    registered_ops,
)
from accelsim.lower.compressed import graph_bits, lower_compressed
from accelsim.lower.context import Act, Const, LoweringContext
from accelsim.lower.frontend import lower
from accelsim.lower.passes import fuse_linear_attention, remove_dead_ops, run_passes

make_module_callable(__name__, lower)

__all__ = [
    "Act",
    "Const",
    "LoweringContext",
    "fuse_linear_attention",
    "get_lowering",
    "graph_bits",
    "lower",
    "lower_compressed",
    "refuse_lowering",
    "refused_ops",
    "register_lowering",
    "registered_ops",
    "remove_dead_ops",
    "run_passes",
]
