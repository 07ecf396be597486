"""Top-1/top-5 accuracy, parameter and MAC counts of a torch model.

Accuracies are fractions in [0, 1] (the terminal table prints percent).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
        for x, y in batches:
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


def measure_accuracy(model: nn.Module, batches: Iterable[Any]) -> Accuracy:
    """Top-1/top-5 of ``model`` over ``(images, labels)`` batches."""
    return topk_correct(*predict(model, batches))


def count_params(model: nn.Module) -> int:
    """Parameters of ``model`` (quantiser buffers are not parameters)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, example: torch.Tensor) -> tuple[int, str]:
    """MACs of one forward pass on ``example`` (batch 1 recommended) and where the count came from.

    The lowered Graph (``accelsim.lower``) is the source of truth, since it is what is simulated;
    until lowering is available (or when it rejects the model) torch's ``FlopCounterMode`` is used
    (FLOPs / 2: it counts a multiply-add as two). The second value is ``"graph"`` or ``"torch"``.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        from accelsim.lower import lower

        return int(lower(model, tuple(example.shape)).total_macs), "graph"
    except ImportError:
        pass
    except (AccelsimError, NotImplementedError, TypeError) as e:
        log.warning("lowering the model for MACs failed (%s); counting with torch instead", e)
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(example)
    return int(fc.get_total_flops()) // 2, "torch"


__all__ = ["Accuracy", "count_macs", "count_params", "measure_accuracy", "predict", "topk_correct"]
