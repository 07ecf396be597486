"""Wheels carry ``hw_configs/`` and ``workloads/`` inside the package (``accelsim/_data/``, read by
``accelsim/_paths.py``), so a non-editable install finds its accelerator configs and reference
workloads; an editable install reads them from the checkout. Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "accelsim" / "_data"
        for name in ("hw_configs", "workloads"):
            shutil.copytree(
                ROOT / name,
                dest / name,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )


setup(cmdclass={"build_py": BuildPyWithData})
