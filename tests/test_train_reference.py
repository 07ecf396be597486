"""``workloads/train_reference.py`` writes into the checkout it runs from."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_checkpoints_go_next_to_the_script_that_runs() -> None:
    script = ROOT / "workloads" / "train_reference.py"
    spec = importlib.util.spec_from_file_location("train_reference", script)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # not accelsim.models.CHECKPOINT_DIR, which follows wherever the package was installed from
    assert script.parent / "checkpoints" == mod.CHECKPOINTS
