"""Shared fixtures: the shipped reference models and the offline dataset, built once per session."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import settings

from accelsim.models import CHECKPOINT_DIR

# Property tests assert invariants, not speed: on 2 shared cores a first call that compiles a Numba
# kernel can exceed hypothesis' 200 ms default deadline, which would make them flaky.
# The default run is derandomised so that a test run (and CI) is reproducible; the "explore" profile
# (HYPOTHESIS_PROFILE=explore, `make test-explore`) draws fresh random examples, many more of them,
# and is how new counter-examples are hunted for (then pinned with @example).
settings.register_profile("accelsim", deadline=None, derandomize=True)
settings.register_profile("explore", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "accelsim"))


@pytest.fixture(scope="session")
def digits32() -> Any:
    """scikit-learn digits at 32x32x3: 1,437 train / 360 test (see accelsim.eval.datasets)."""
    from accelsim.eval.datasets import load_digits_splits

    return load_digits_splits(32)


def _reference(name: str) -> tuple[Any, dict[str, Any]]:
    from accelsim.models import create_reference_model

    ckpt = CHECKPOINT_DIR / f"{name}.pt"
    record = json.loads((CHECKPOINT_DIR / f"{name}.json").read_text())
    return create_reference_model(name, checkpoint=ckpt), record


@pytest.fixture(scope="session")
def ref_deit() -> tuple[Any, dict[str, Any]]:
    """(trained ref_deit in eval mode, the training record JSON). Do not modify the model."""
    return _reference("ref_deit")


@pytest.fixture(scope="session")
def ref_efficientvit() -> tuple[Any, dict[str, Any]]:
    """(trained ref_efficientvit in eval mode, the training record JSON). Do not modify the model."""
    return _reference("ref_efficientvit")
