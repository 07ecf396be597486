"""Lowering a compressed model the way every part of accelsim does: one place picks the bits.

``accelsim simulate --workload``, :func:`accelsim.evaluate` (MACs, bit-true), the co-design search and
latency-aware pruning all lower a compressed model through :func:`lower_compressed`, so the same
recipe gives the same Graph (and so the same cycles) wherever it is simulated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accelsim.config.compression import CompressionRecipe

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from accelsim.ir import Graph

#: Bits of every tensor of an unquantised (FP32) recipe: an FPGA runs such a model in 16-bit fixed
#: point, not in float.
FP_BITS = 16


def graph_bits(recipe: CompressionRecipe | None) -> tuple[int, int]:
    """``(wbits, abits)`` of the tensors no fake-quantiser covers: the recipe's quantisation bits,
    or :data:`FP_BITS` for both when the recipe does not quantise (tensors a quantiser covers take
    its own bits, recorded at lowering)."""
    q = recipe.quant if recipe is not None else None
    return (q.wbits, q.abits) if q is not None else (FP_BITS, FP_BITS)


def lower_compressed(
    model: nn.Module,
    recipe: CompressionRecipe | None,
    input_shape: tuple[int, ...] | None = None,
    *,
    keep_constants: bool = False,
    name: str | None = None,
) -> Graph:
    """Lower ``model``, compressed with ``recipe``, with :func:`graph_bits` for uncovered tensors.

    Args:
        model: the compressed model (e.g. :func:`accelsim.compress` of the recipe).
        recipe: the recipe it was compressed with (``None``: uncompressed).
        input_shape: ``(N, C, H, W)``; default the model's own.
        keep_constants: keep weight values (the bit-true executor needs them).
        name: the graph's name.
    """
    from accelsim.lower.frontend import lower

    wbits, abits = graph_bits(recipe)
    return lower(model, input_shape, wbits=wbits, abits=abits, keep_constants=keep_constants, name=name)


__all__ = ["FP_BITS", "graph_bits", "lower_compressed"]
