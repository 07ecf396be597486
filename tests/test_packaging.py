"""The shipped data (hw_configs/, workloads/) is found from the checkout and from a built wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import accelsim._paths as paths

ROOT = Path(__file__).resolve().parents[1]


def test_data_dir_prefers_the_checkout_then_the_packaged_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout, packaged = tmp_path / "checkout", tmp_path / "site" / "accelsim" / "_data"
    (packaged / "hw_configs").mkdir(parents=True)
    monkeypatch.setattr(paths, "_CHECKOUT", checkout)
    monkeypatch.setattr(paths, "_PACKAGED", packaged)
    assert paths.data_dir("hw_configs") == packaged / "hw_configs"
    (checkout / "hw_configs").mkdir(parents=True)
    assert paths.data_dir("hw_configs") == checkout / "hw_configs"
    assert paths.data_dir("workloads") == checkout / "workloads"  # neither: the checkout's path


def test_this_checkout_reads_its_own_folders() -> None:
    from accelsim.config.hardware import HW_CONFIG_DIR
    from accelsim.models import WORKLOADS_DIR

    assert HW_CONFIG_DIR == ROOT / "hw_configs" and WORKLOADS_DIR == ROOT / "workloads"


@pytest.mark.slow
def test_a_built_wheel_carries_the_configs_and_reference_workloads(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("accelsim", "hw_configs", "workloads"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.nb?"))
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src)]
    subprocess.run([*cmd, "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("accelsim-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "hw_configs/zcu102.yaml",
        "hw_configs/boards/zcu102.yaml",
        "workloads/ref_deit_w8a8.yaml",
        "workloads/checkpoints/ref_deit.pt",
        "workloads/checkpoints/ref_efficientvit.pt",
    ):
        assert f"accelsim/_data/{shipped}" in names
    assert "accelsim/_paths.py" in names
    assert {"accelsim/sim/reference/rtl/ws_gemm.v", "accelsim/sim/reference/rtl/os_gemm.v"} <= names
