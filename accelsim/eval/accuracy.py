"""Top-1/top-5 accuracy, parameter and MAC counts of a torch model.

Accuracies are fractions in [0, 1] (the terminal table prints percent).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from accelsim._progress import progress
from accelsim.errors import AccelsimError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accuracy:
    """Counts of correct predictions on ``images`` test images."""

    correct1: int
    correct5: int
    images: int

    @property
    def top1(self) -> float:
        return self.correct1 / self.images if self.images else 0.0

    @property
    def top5(self) -> float:
        return self.correct5 / self.images if self.images else 0.0


def predict(model: nn.Module, batches: Iterable[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, labels)`` of every batch (eval mode, no gradients)."""
    import torch

    model.eval()
    logits, labels = [], []
    with torch.no_grad():
        for x, y in progress(batches, "evaluate", unit="batch"):
            out = model(x)
            if isinstance(out, tuple):  # DeiT-distilled in train mode; harmless in eval
                out = (out[0] + out[1]) / 2
            logits.append(out.float())
            labels.append(y)
    return torch.cat(logits), torch.cat(labels)


def topk_correct(logits: torch.Tensor, labels: torch.Tensor) -> Accuracy:
    """Correct top-1 and top-5 counts (top-5 is top-``min(5, classes)``)."""
    k = min(5, logits.shape[1])
    topk = logits.topk(k, dim=1).indices
    hit = topk == labels[:, None]
    return Accuracy(int(hit[:, 0].sum()), int(hit.any(dim=1).sum()), int(labels.numel()))


#: Class groups of a frequency-ordered 10-class long-tailed split: head 0-2, mid 3-6, tail 7-9
#: (DeiT-LT's ``main.py`` ``args.categories = [3, 7]`` for CIFAR-10-LT).
GROUP_BOUNDS_10 = (3, 7)


def class_group_accuracy(
    logits: torch.Tensor, labels: torch.Tensor, bounds: tuple[int, int] = GROUP_BOUNDS_10
) -> dict[str, float]:
    """Head / mid / tail accuracy: the mean per-class top-1 over classes ``[0, b0)``, ``[b0, b1)``,
    ``[b1, C)`` (classes ordered by training frequency, as DeiT-LT's ``engine.py`` reports them),
    and ``overall`` top-1. A class absent from ``labels`` is left out of its group's mean.

    Examples:
        >>> import torch
        >>> logits = torch.eye(4)[[0, 1, 1, 3]]                 # predicts 0, 1, 1, 3
        >>> class_group_accuracy(logits, torch.tensor([0, 1, 2, 3]), (1, 3))
        {'head': 1.0, 'mid': 0.5, 'tail': 1.0, 'overall': 0.75}
    """
    import torch

    classes = logits.shape[1]
    hit = (logits.argmax(1) == labels).double()
    count = torch.bincount(labels, minlength=classes).double()
    correct = torch.bincount(labels, weights=hit, minlength=classes)
    per_class = correct / count.clamp_min(1)
    out: dict[str, float] = {}
    for name, lo, hi in (("head", 0, bounds[0]), ("mid", bounds[0], bounds[1]), ("tail", bounds[1], classes)):
        present = count[lo:hi] > 0
        out[name] = float(per_class[lo:hi][present].mean()) if bool(present.any()) else float("nan")
    out["overall"] = float(hit.mean())
    return out


def measure_accuracy(model: nn.Module, batches: Iterable[Any]) -> Accuracy:
    """Top-1/top-5 of ``model`` over ``(images, labels)`` batches."""
    return topk_correct(*predict(model, batches))


def count_params(model: nn.Module) -> int:
    """Parameters of ``model`` (quantiser buffers are not parameters)."""
    return sum(p.numel() for p in model.parameters())


def torch_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """MACs of one forward as torch's ``FlopCounterMode`` counts them (FLOPs / 2: a multiply-add
    is two FLOPs), with the same answer on every torch release we support.

    The math backend of ``scaled_dot_product_attention`` is forced: from torch 2.14 the counter no
    longer counts the fused CPU attention kernel, so it under-counts every fused attention (the math
    backend runs the same products as plain matmuls, which it counts). Parameters are counted with
    ``requires_grad`` off (restored after): torch 2.14's counter raises "Expected gradient function
    to be set" where a parameter is handed straight to a submodule (timm PiT, CaiT). Inputs may be on
    the meta device (no weights needed).
    """
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in grads:
            p.requires_grad_(False)
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        for p, flag in grads:
            p.requires_grad_(flag)
    return int(counter.get_total_flops()) // 2


def count_macs(model: nn.Module, example: torch.Tensor) -> tuple[int, str]:
    """MACs of one forward pass on ``example`` (batch 1 recommended) and where the count came from.

    The lowered Graph (``accelsim.lower``) is the source of truth, since it is what is simulated;
    until lowering is available (or when it rejects the model) torch's flop counter is used
    (:func:`torch_macs`). The second value is ``"graph"`` or ``"torch"``.
    """
    try:
        from accelsim.lower import lower

        return int(lower(model, tuple(example.shape)).total_macs), "graph"
    except ImportError:
        pass
    except (AccelsimError, NotImplementedError, TypeError) as e:
        log.warning("lowering the model for MACs failed (%s); counting with torch instead", e)
    model.eval()
    return torch_macs(model, example), "torch"


__all__ = [
    "GROUP_BOUNDS_10",
    "Accuracy",
    "class_group_accuracy",
    "count_macs",
    "count_params",
    "measure_accuracy",
    "predict",
    "topk_correct",
    "torch_macs",
]
