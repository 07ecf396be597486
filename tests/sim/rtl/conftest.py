"""Where the RTL tests keep their Verilator builds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def rtl_cache_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest's cache directory (kept between runs), or the run's temporary root without one."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("accelsim-rtl"))
    base = tmp_path_factory.getbasetemp()
    # xdist workers get base/popen-gwN: share the parent, so the workers share one build
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "accelsim-rtl"
