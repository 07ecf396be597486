"""Small reference models built with timm's own classes, trained on the offline dataset, and
registered with timm (:func:`register_with_timm`), so one registry names every model accelsim takes.

``workloads/train_reference.py`` trains them and writes ``workloads/checkpoints/<name>.pt``; a
workload names them by ``model: ref_deit`` (or ``ref_efficientvit``). They are small on purpose:
trained in minutes on two CPU cores, evaluated in seconds, lowered and simulated in milliseconds.

- ``ref_deit``: timm ``VisionTransformer`` as DeiT (Touvron et al. 2021, arXiv:2012.12877) builds it
  (class token, pre-norm blocks, GELU MLP with ratio 4), at 32x32 with 8x8 patches (16 tokens + CLS),
  embedding 96, 4 blocks, 3 heads of 32. (8x8 patches of the upscaled 8x8 digits keep training at a
  few CPU-minutes; the op mix is DeiT's.)
- ``ref_deit_distilled``: the same with DeiT's distillation token (timm ``VisionTransformerDistilled``),
  trained by DeiT's hard distillation through that token from ``ref_cnn``.
- ``ref_cnn``: a small CNN teacher, timm ``ResNet`` with one basic block per stage, widths
  16-32-64-64 (DeiT distils from a CNN, RegNetY; DeiT-LT from a ResNet-32). ``ref_cnn_lt10`` and
  ``ref_cnn_lt100``: the same trained on the long-tailed train split of imbalance 10 / 100 (the
  teachers of DeiT-LT, which are trained on the long-tailed data).
- ``ref_efficientvit``: timm ``EfficientVit`` (EfficientViT-B family, Cai et al., ICCV 2023,
  arXiv:2205.14756) with widths 16-32-64-128, the last stage with two LiteMLA blocks, at 32x32 (the
  attention stage then sees 2x2 tokens: small, but every op type of EfficientViT is there).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accelsim._names import unknown
from accelsim._paths import data_dir
from accelsim.errors import AccelsimError, DataError, InputShapeError, UnknownModelError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

log = logging.getLogger(__name__)

#: ``workloads/`` of the checkout or the installed package (:mod:`accelsim._paths`); reference
#: checkpoints live in ``checkpoints/`` below it.
WORKLOADS_DIR = data_dir("workloads")
CHECKPOINT_DIR = WORKLOADS_DIR / "checkpoints"


@dataclass(frozen=True)
class ReferenceSpec:
    """What a reference model expects: input size and classes, and where its checkpoint lives."""

    name: str
    img_size: int
    num_classes: int
    in_chans: int = 3

    @property
    def checkpoint(self) -> Path:
        return CHECKPOINT_DIR / f"{self.name}.pt"


def _deit(spec: ReferenceSpec, distilled: bool = False) -> nn.Module:
    from timm.models.deit import VisionTransformerDistilled
    from timm.models.vision_transformer import VisionTransformer

    cls = VisionTransformerDistilled if distilled else VisionTransformer
    return cls(
        img_size=spec.img_size,
        patch_size=8,
        in_chans=spec.in_chans,
        num_classes=spec.num_classes,
        embed_dim=96,
        depth=4,
        num_heads=3,
        mlp_ratio=4.0,
        qkv_bias=True,
        class_token=True,
        global_pool="token",
    )


def _cnn(spec: ReferenceSpec) -> nn.Module:
    from timm.models.resnet import BasicBlock, ResNet

    return ResNet(
        BasicBlock,  # type: ignore[arg-type]  # timm annotates the class as an instance
        (1, 1, 1, 1),
        num_classes=spec.num_classes,
        in_chans=spec.in_chans,
        channels=(16, 32, 64, 64),
        stem_width=16,
    )


def _efficientvit(spec: ReferenceSpec) -> nn.Module:
    from timm.models.efficientvit_mit import EfficientVit

    return EfficientVit(
        in_chans=spec.in_chans,
        widths=(16, 32, 64, 128),
        depths=(1, 1, 1, 2),
        head_dim=16,
        head_widths=(256, 256),
        num_classes=spec.num_classes,
    )


_SPECS: dict[str, ReferenceSpec] = {
    "ref_deit": ReferenceSpec("ref_deit", img_size=32, num_classes=10),
    "ref_deit_distilled": ReferenceSpec("ref_deit_distilled", img_size=32, num_classes=10),
    "ref_efficientvit": ReferenceSpec("ref_efficientvit", img_size=32, num_classes=10),
    "ref_cnn": ReferenceSpec("ref_cnn", img_size=32, num_classes=10),
    "ref_cnn_lt10": ReferenceSpec("ref_cnn_lt10", img_size=32, num_classes=10),
    "ref_cnn_lt100": ReferenceSpec("ref_cnn_lt100", img_size=32, num_classes=10),
}
_BUILDERS: dict[str, Callable[[ReferenceSpec], nn.Module]] = {
    "ref_deit": _deit,
    "ref_deit_distilled": lambda s: _deit(s, distilled=True),
    "ref_efficientvit": _efficientvit,
    "ref_cnn": _cnn,
    "ref_cnn_lt10": _cnn,
    "ref_cnn_lt100": _cnn,
}


#: timm's factory passes these to every entrypoint; a reference model has no hub configs
_TIMM_FACTORY_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def register_with_timm() -> None:
    """Register every reference model with timm (``timm.models.register_model``), so the one model
    registry answers for them: ``timm.create_model("ref_deit", pretrained=True)`` builds it with the
    shipped checkpoint, and ``accelsim lower ref_deit`` / ``accelsim simulate ref_deit`` find it.
    Idempotent; imports timm, so the lowering front end calls it, not this module's import."""
    import timm.models

    for name in _SPECS:
        if timm.is_model(name):
            continue

        def entrypoint(pretrained: bool = False, _name: str = name, **kwargs: object) -> nn.Module:
            for k in _TIMM_FACTORY_KWARGS:
                kwargs.pop(k, None)
            img_size = kwargs.pop("img_size", None)
            num_classes = kwargs.pop("num_classes", None)
            if kwargs:
                raise TypeError(f"{_name} takes no {', '.join(sorted(kwargs))} (a reference model)")
            return create_reference_model(
                _name,
                pretrained=pretrained,
                num_classes=num_classes,  # type: ignore[arg-type]
                img_size=img_size,  # type: ignore[arg-type]
            )

        entrypoint.__name__ = entrypoint.__qualname__ = name
        entrypoint.__module__ = __name__
        timm.models.register_model(entrypoint)


#: in timm's model sources: ``@register_model`` entrypoints and the keys of deprecated-name maps
_REGISTERED = re.compile(r"@register_model\s*\ndef\s+(\w+)")
_DEPRECATIONS = re.compile(r"register_model_deprecations\(\s*__name__\s*,\s*\{(.*?)\}\s*\)", re.S)
_QUOTED_KEY = re.compile(r"""['"]([^'"]+)['"]\s*:""")


@functools.cache
def timm_model_names() -> tuple[frozenset[str], frozenset[str]] | None:
    """timm's model names without importing timm (and torch, seconds): ``(registered,
    deprecated)`` read from the sources of the installed ``timm.models``, or None where they
    cannot be read. ``tests/test_models.py`` checks them against timm's registry."""
    try:
        spec = importlib.util.find_spec("timm")
    except (ImportError, ValueError):  # pragma: no cover - a broken install
        return None
    if spec is None or spec.origin is None:
        return None
    registered: set[str] = set()
    deprecated: set[str] = set()
    try:
        for path in (Path(spec.origin).parent / "models").glob("*.py"):
            text = path.read_text(encoding="utf-8")
            registered.update(_REGISTERED.findall(text))
            for block in _DEPRECATIONS.findall(text):
                deprecated.update(_QUOTED_KEY.findall(block))
    except (OSError, UnicodeDecodeError):  # pragma: no cover - an unreadable install
        return None
    if not registered:  # pragma: no cover - timm's layout changed: let timm itself answer
        return None
    return frozenset(registered), frozenset(deprecated)


def check_model_name(name: str) -> None:
    """Refuse a name timm does not know (a reference model or a ``name.tag`` included), suggesting
    the closest known names. Until timm is imported (models registered at run time need it), an
    unknown name is refused from timm's sources (:func:`timm_model_names`) without importing
    torch: a typo on the command line answers at once.

    Raises:
        UnknownModelError: naming the model and up to five close names.
    """
    base = name.split(".")[0]
    names = None if "timm" in sys.modules else timm_model_names()
    if names is not None and base not in _SPECS and base not in names[0] | names[1]:
        # the names timm.list_models() gives once the reference models are registered
        raise UnknownModelError(unknown("timm model", name, [*names[0], *_SPECS]))
    import timm

    register_with_timm()
    if not timm.is_model(name.split(".")[0]):
        raise UnknownModelError(unknown("timm model", name, timm.list_models()))


def create_timm_model(
    name: str,
    img_size: int | None = None,
    *,
    meta: bool = False,
    pretrained: bool = False,
    where: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Every model accelsim builds by name: ``timm.create_model`` (the reference models are timm
    models, :func:`register_with_timm`) at ``img_size`` where the model takes one, checked against
    its patch embedding (:func:`check_img_size`, errors prefixed ``where``).

    Args:
        name: a timm model name or a reference model; an unknown one suggests close names.
        img_size: input resolution (convolutional families, which take any, get no argument).
        meta: build on the meta device (shapes only, no weights: what lowering needs).
        pretrained: load the weights: a reference model's shipped checkpoint, or the timm hub's
            (failing in seconds offline, :func:`create_pretrained`).
        where: what the error messages name (default ``"{name}: img_size"``).
        kwargs: more ``timm.create_model`` arguments (``num_classes``).

    Raises:
        UnknownModelError: ``name`` is not a timm or reference model.
        InputShapeError: ``img_size`` is not one the model's patch embedding takes whole.
        DataError: pretrained weights that cannot come.
    """
    import timm
    import torch

    check_model_name(name)
    if img_size is not None:
        kwargs = {"img_size": img_size, **kwargs}

    def create(**kw: Any) -> nn.Module:
        if pretrained and not is_reference_model(name):
            return create_pretrained(name, **kw)
        if meta:
            # Skipping weight initialisation makes a big model build in a blink; fall back to
            # real weights for the rare model whose constructor needs tensor values.
            try:
                with torch.device("meta"):
                    return timm.create_model(name, pretrained=False, **kw)
            except (RuntimeError, NotImplementedError) as e:
                log.debug("building %s on the meta device failed (%s); using real weights", name, e)
        return timm.create_model(name, pretrained=pretrained, **kw)

    try:
        model = create(**kwargs)
    except TypeError as e:
        # Convolutional families (EfficientViT) take any resolution but no img_size argument.
        if "img_size" not in kwargs or "img_size" not in str(e):
            raise
        kwargs.pop("img_size")
        model = create(**kwargs)
    if img_size is not None:
        check_img_size(model, img_size, where or f"{name}: img_size")
    return model


def check_img_size(model: nn.Module, img_size: int, where: str) -> None:
    """Refuse an input size the model's patch embedding cannot take whole: the one rule for
    ``lower --img-size``, ``simulate --img-size``, a workload's and a search space's ``img_size``.

    timm's ViTs assert on a size other than the one they were built for (an ``AssertionError``
    mid-evaluation), and floor a size that is not a multiple of the patch, silently dropping the
    image's last rows and columns.

    Raises:
        InputShapeError: naming ``where``, the size and what the model takes.
    """
    for module in model.modules():
        patch = getattr(module, "patch_size", None)
        built = getattr(module, "img_size", None)
        if not (isinstance(patch, tuple | list) and patch and all(isinstance(p, int) for p in patch)):
            continue
        if any(img_size % p for p in patch):
            raise InputShapeError(
                f"{where}: {img_size} is not a multiple of the model's patch size {patch[0]} "
                f"(the patch embedding would drop {img_size % patch[0]} pixel rows and columns)"
            )
        if (
            getattr(module, "strict_img_size", False)
            and isinstance(built, tuple | list)
            and tuple(built) != (img_size, img_size)
        ):
            raise InputShapeError(
                f"{where}: {img_size}, but the model is built for {built[0]}x{built[1]} inputs"
            )
        return


def list_reference_models() -> list[str]:
    """Names accepted by :func:`create_reference_model`."""
    return sorted(_SPECS)


def reference_spec(name: str) -> ReferenceSpec:
    """The :class:`ReferenceSpec` of ``name``; an unknown name lists the known ones."""
    if name not in _SPECS:
        raise UnknownModelError(unknown("reference model", name, list_reference_models()))
    return _SPECS[name]


def is_reference_model(name: str) -> bool:
    return name in _SPECS


def create_reference_model(
    name: str,
    *,
    checkpoint: str | Path | None = None,
    pretrained: bool = False,
    num_classes: int | None = None,
    img_size: int | None = None,
) -> nn.Module:
    """Build reference model ``name`` (randomly initialised, seeded by the caller's torch RNG).

    Args:
        name: one of :func:`list_reference_models`.
        checkpoint: a state-dict file to load (``.pt``; float16 values are cast to float32).
        pretrained: load the shipped checkpoint ``workloads/checkpoints/<name>.pt``.
        num_classes: override the class count (a checkpoint must then match it).
        img_size: override the input resolution (the DeiTs' position embedding follows it, so the
            shipped checkpoint fits only the trained size).

    Returns:
        The model in eval mode.

    Raises:
        UnknownModelError: ``name`` is not a reference model.
        DataError: the checkpoint is missing or does not fit the model.
    """
    spec = reference_spec(name)
    spec = dataclasses.replace(
        spec,
        num_classes=spec.num_classes if num_classes is None else num_classes,
        img_size=spec.img_size if img_size is None else img_size,
    )
    model = _BUILDERS[name](spec)
    # timm's data config of the model: lowering reads the input size from it, and an ImageFolder
    # gets the same normalisation as the offline data (accelsim.eval.datasets)
    model.pretrained_cfg = {  # type: ignore[assignment]
        "input_size": (spec.in_chans, spec.img_size, spec.img_size),
        "num_classes": spec.num_classes,
        "mean": (0.5,) * spec.in_chans,
        "std": (0.5,) * spec.in_chans,
        "interpolation": "bilinear",
        "crop_pct": 1.0,
    }
    if pretrained and checkpoint is None:
        checkpoint = spec.checkpoint
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model.eval()


def _hub_unreachable(endpoint: str) -> str | None:
    """Why the hub at ``endpoint`` cannot be reached in a few seconds, or None when it can."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    host, port = url.hostname or endpoint, url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as e:
        return f"{host} cannot be reached ({e.strerror or e})"
    return None


def create_pretrained(name: str, **kwargs: Any) -> nn.Module:
    """``timm.create_model(name, pretrained=True)``, failing in seconds when the weights cannot come.

    Offline, huggingface_hub retries each download for about half a minute before it gives up with
    a traceback; here an unreachable hub (or ``HF_HUB_OFFLINE=1``) means the local cache only, and
    weights in neither are one line that names the hub and what to do instead.

    Raises:
        DataError: the weights are neither downloadable nor cached.
    """
    import timm
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    reason = (
        "HF_HUB_OFFLINE is set" if flag or constants.HF_HUB_OFFLINE else _hub_unreachable(constants.ENDPOINT)
    )
    was = constants.HF_HUB_OFFLINE
    if reason is not None:
        constants.HF_HUB_OFFLINE = True  # read when each request is made: the cache, no retries
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except AccelsimError:
        raise
    except Exception as e:  # the hub client's errors vary by version and cause; all mean "no weights"
        why = f"{reason} and they are not in the local cache" if reason else f"{type(e).__name__}: {e}"
        raise DataError(
            f"{name}: pretrained: true downloads its weights from the Hugging Face hub ({constants.ENDPOINT}), "
            f"but {why.splitlines()[0]}; give the workload a local `checkpoint:` file instead, or fetch the "
            "weights once where the hub is reachable (they are cached for offline runs)"
        ) from None
    finally:
        constants.HF_HUB_OFFLINE = was


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state dict (optionally under a ``state_dict`` key) into ``model``; in place.

    Raises:
        DataError: the file is missing, unreadable, or its tensors do not match the model.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which one, not a pickle traceback
        # torch's message is a paragraph about weights_only around the reason; keep the reason
        text = str(e)
        reason = text.split("WeightsUnpickler error:")[-1].strip().splitlines() if text.strip() else []
        raise DataError(
            f"checkpoint {path} is unreadable (not a state dict saved by torch.save): "
            f"{reason[0] if reason else type(e).__name__}"
        ) from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    ref = model.state_dict()
    state = {k: v.to(ref[k].dtype) if k in ref and v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[0:2]
        raise DataError(f"checkpoint {path} does not fit {type(model).__name__}: {' '.join(first)}") from None
    return model


__all__ = [
    "CHECKPOINT_DIR",
    "WORKLOADS_DIR",
    "ReferenceSpec",
    "create_pretrained",
    "create_reference_model",
    "is_reference_model",
    "list_reference_models",
    "load_checkpoint",
    "reference_spec",
]
