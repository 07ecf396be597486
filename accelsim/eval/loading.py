"""Loading a workload: its uncompressed model with its weights, its teacher and its data splits.

Every model is built by name through :func:`accelsim.models.create_timm_model` (the reference models
are timm models), so an unknown name and an input size the model cannot take are the same one-line
errors here as in ``accelsim lower``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from accelsim.config.workload import Workload

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from accelsim.eval.datasets import DataSplits


def _img_size(workload: Workload, model: nn.Module | None) -> int:
    """The input size of the workload's model: its ``img_size``, else what the model takes (timm's
    ``pretrained_cfg``, which the reference models carry too; built on the meta device if needed)."""
    if workload.img_size is not None:
        return workload.img_size
    if model is None:
        from accelsim.models import create_timm_model

        nc: dict[str, Any] = {} if workload.num_classes is None else {"num_classes": workload.num_classes}
        model = create_timm_model(workload.model, meta=True, **nc)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return int(cfg.get("input_size", (3, 224, 224))[-1])


def load_model(workload: Workload) -> nn.Module:
    """The uncompressed model of ``workload`` with its weights, in eval mode.

    Raises:
        UnknownModelError: neither a reference model nor a timm model name.
        DataError: the checkpoint is missing or does not fit.
    """
    return _build(
        workload.model,
        workload.checkpoint,
        workload.pretrained,
        workload.num_classes,
        workload.img_size,
        where=f"workload {workload.name!r}: img_size",
    )


def load_teacher(workload: Workload) -> nn.Module | None:
    """The teacher the workload names (eval mode), or None: distillation then learns from the
    uncompressed model.

    Raises:
        UnknownModelError: neither a reference model nor a timm model name.
        DataError: the checkpoint is missing or does not fit.
    """
    t = workload.teacher
    if t is None:
        return None
    num_classes = t.num_classes if t.num_classes is not None else workload.num_classes
    return _build(t.model, t.checkpoint, t.pretrained, num_classes, workload.img_size)


def _build(
    name: str,
    checkpoint: str | None,
    pretrained: bool,
    num_classes: int | None,
    img_size: int | None,
    where: str | None = None,
) -> nn.Module:
    from accelsim.models import create_timm_model, load_checkpoint

    kwargs: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
    model = create_timm_model(name, img_size, pretrained=pretrained, where=where, **kwargs)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model.eval()


def load_data(workload: Workload, model: nn.Module | None = None) -> DataSplits:
    """The train/test splits of ``workload`` at its model's input size."""
    from accelsim.eval.datasets import load_splits

    img_size = _img_size(workload, model)
    d = workload.dataset
    return load_splits(
        d.kind, img_size=img_size, path=d.path, max_images=d.max_images, model=model, imbalance=d.imbalance
    )


__all__ = ["load_data", "load_model", "load_teacher"]
