"""The reference models are timm models: one registry answers for them (timm's), so the lowering
front end, the CLI and ``timm.create_model`` all find ``ref_deit`` by its name."""

from __future__ import annotations

import pytest
import timm
import torch

import accelsim
from accelsim.models import (
    create_reference_model,
    list_reference_models,
    register_with_timm,
    timm_model_names,
)


def test_every_reference_model_is_registered_with_timm_once() -> None:
    register_with_timm()
    register_with_timm()  # idempotent: no timm "overwriting" warning, no second entry
    assert timm.list_models("ref_*") == list_reference_models()


def test_timm_model_names_read_from_its_sources_are_its_registry() -> None:
    # what an unknown name on the command line is refused from, before torch loads
    from timm.models import _registry

    names = timm_model_names()
    assert names is not None
    registered, deprecated = names
    assert deprecated == set(_registry._deprecated_models)
    assert registered | deprecated == set(_registry._model_entrypoints) - set(list_reference_models())
    assert len(registered) > 1000 and "deit_tiny_patch16_224" in registered


def test_timm_builds_a_reference_model_with_its_shipped_checkpoint() -> None:
    register_with_timm()
    model = timm.create_model("ref_deit", pretrained=True)
    shipped = create_reference_model("ref_deit", pretrained=True)
    for (k, a), b in zip(model.state_dict().items(), shipped.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    with pytest.raises(TypeError, match="ref_deit takes no depth"):
        timm.create_model("ref_deit", depth=2)


def test_lowering_by_name_is_lowering_the_built_module() -> None:
    by_name = accelsim.lower("ref_deit")
    built = accelsim.lower(create_reference_model("ref_deit"), name="ref_deit")
    assert by_name.summary().macs == built.summary().macs == 8_038_080
    assert accelsim.lower("ref_efficientvit", img_size=64).meta["input_shape"] == [1, 3, 64, 64]


def test_pretrained_weights_unreachable_fail_fast_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a reachable hub the local cache is all there is: no retries, one line naming the
    hub and the offline way (a checkpoint file)."""
    from huggingface_hub import constants

    from accelsim import models
    from accelsim.errors import DataError

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(models, "_hub_unreachable", lambda endpoint: "hub.invalid cannot be reached")
    was = constants.HF_HUB_OFFLINE
    with pytest.raises(DataError, match=r"Hugging Face hub .*hub\.invalid cannot be reached.*`checkpoint:`"):
        models.create_pretrained("deit_tiny_patch16_224.fb_in1k")
    assert constants.HF_HUB_OFFLINE is was
