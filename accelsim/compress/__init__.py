"""Compression acts on the torch model, so what is simulated is what is evaluated.

:func:`compress` applies a :class:`~accelsim.config.compression.CompressionRecipe` in the order
(grow) -> prune -> lowrank -> tokens -> (distill) -> quantise (calibrate) -> (QAT) and returns a new
module.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from accelsim._callable import make_module_callable
from accelsim.config.compression import CompressionRecipe
from accelsim.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

log = logging.getLogger(__name__)

#: A batch as the data loaders yield it: ``(images, labels)`` (labels may be absent for calibration).
Batches = Iterable[Any]


def compress(
    model: nn.Module,
    recipe: CompressionRecipe | dict[str, Any],
    *,
    calib_data: Batches | None = None,
    teacher: nn.Module | None = None,
    train_data: Batches | None = None,
) -> nn.Module:
    """Apply ``recipe`` to a copy of ``model``.

    Args:
        model: a timm model (or a reference model from :mod:`accelsim.models`); not modified.
        recipe: the recipe, or a dict validated as one.
        calib_data: iterable of ``(images, labels)`` batches for quantiser calibration and saliency.
        teacher: the teacher for distillation (default: ``model`` itself, before compression).
        train_data: iterable of ``(images, labels)`` batches for growth, distillation and QAT.

    Returns:
        A new ``nn.Module`` in eval mode; ``model`` is left untouched.

    Raises:
        ConfigError: the recipe is invalid, or a step needs data that was not given.
    """
    from accelsim.config._base import validate_config

    if not isinstance(recipe, CompressionRecipe):
        recipe = validate_config(CompressionRecipe, recipe, "recipe")
    was_training = model.training
    out = copy.deepcopy(model).eval()
    model.train(was_training)

    if recipe.grow is not None:
        from accelsim.compress.grow import grow_model

        out = grow_model(out, recipe.grow, train_data)
    if recipe.prune is not None:
        from accelsim.compress.prune import prune_model, simulator_latency_fn

        if recipe.prune.saliency != "magnitude" and calib_data is None:
            raise ConfigError(f"prune.saliency={recipe.prune.saliency!r} needs calib_data (gradients)")
        latency_fn = None
        if recipe.prune.latency_aware:
            if recipe.prune.hw is None:
                raise ConfigError(
                    "prune.hw: latency_aware pruning needs a hardware config name or path (got None)"
                )
            latency_fn = simulator_latency_fn(recipe.prune.hw, recipe)
        out = prune_model(out, recipe.prune, calib_data, latency_fn=latency_fn)
    if recipe.lowrank is not None:
        from accelsim.compress.lowrank import factorize_lowrank

        out = factorize_lowrank(out, recipe.lowrank)
    if recipe.tokens is not None:
        from accelsim.compress.tokens import reduce_tokens

        out = reduce_tokens(out, recipe.tokens)
    if recipe.distill is not None:
        from accelsim.compress.distill import distill

        if train_data is None:
            raise ConfigError("distill: needs train_data (got None)")
        out = distill(out, teacher if teacher is not None else model, train_data, recipe.distill)
    if recipe.quant is not None:
        from accelsim.compress.quantize import quantize_model

        out = quantize_model(out, recipe.quant, calib_data=calib_data, train_data=train_data)
    return out.eval()


make_module_callable(__name__, compress)

__all__ = ["compress"]
