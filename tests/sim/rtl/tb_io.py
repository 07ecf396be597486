"""What every cocotb testbench here does around its cases (not a pytest module: the simulator's
embedded Python imports it with the testbench, from this folder, which ``rtl_harness.simulate_cases``
puts on its path): read the cases the harness wrote to ``$<env>_CASES``, reset the design, and write
the per-case results to ``$<env>_RESULTS``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cocotb.triggers import RisingEdge


async def cases_after_reset(dut: Any, env: str) -> Any:
    """The harness's cases (``$<env>_CASES``, JSON), the design held in reset for two edges first."""
    cases = json.loads(Path(os.environ[f"{env}_CASES"]).read_text())
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    return cases


def report(env: str, results: list[dict[str, Any]]) -> None:
    """The per-case results, in case order, for the harness (``$<env>_RESULTS``)."""
    Path(os.environ[f"{env}_RESULTS"]).write_text(json.dumps(results))
