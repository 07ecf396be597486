"""cocotb testbench of the top level ``tree_harness`` generates: every GEMM of a JSON list in turn.

Not a pytest module: the simulator's embedded Python imports it (``tree_harness.run`` names it).
Per case it copies the case's ``$readmemh`` files to the names the engine reads, sets the sizes,
pulses ``load`` then ``start``, waits for ``done`` (Verilator runs the clock alone meanwhile), reads
the engine's ``last_out_cycle`` and pulses ``dump``, whose ``$writememh`` file it moves to the case's
name. The checks against numpy and the formula are pytest's.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

import cocotb
from cocotb.result import SimTimeoutError
from cocotb.triggers import RisingEdge, with_timeout
from tb_io import cases_after_reset, report

CLOCK_NS = 10  # the generated top level's clock: always #5 clk = ~clk


async def _pulse(dut: Any, signal: Any) -> None:
    signal.value = 1
    await RisingEdge(dut.clk)
    signal.value = 0


async def _run_case(dut: Any, case: dict[str, Any]) -> dict[str, Any]:
    inst = case["instance"]
    port = lambda name: getattr(dut, f"{inst}_{name}")  # noqa: E731
    shutil.copyfile(case["a_hex"], f"{inst}_a.hex")  # the simulator's working directory
    shutil.copyfile(case["b_hex"], f"{inst}_b.hex")
    for name, value in case["lens"].items():
        port(name).value = value
    port("dump_last").value = case["dump_last"]
    await _pulse(dut, port("load"))
    cpu0 = time.process_time()
    await _pulse(dut, port("start"))  # this edge starts the engine: the next cycle is its cycle 0
    try:
        await with_timeout(RisingEdge(port("done")), case["timeout_cycles"] * CLOCK_NS, "ns")
    except SimTimeoutError:
        await _pulse(dut, dut.rst)  # leave the engine idle for the next case
        return {"timed_out": True, "last_out_cycle": -1, "sim_cpu_seconds": 0.0}
    cpu = time.process_time() - cpu0
    last_out = int(port("last_out_cycle").value)
    await _pulse(dut, port("dump"))
    await RisingEdge(dut.clk)  # the $writememh of the edge that saw dump is done by the next one
    shutil.move(f"{inst}_o.hex", case["o_hex"])
    return {"timed_out": False, "last_out_cycle": last_out, "sim_cpu_seconds": cpu}


@cocotb.test()
async def run_gemms(dut: Any) -> None:
    """Every case of ``$ACCELSIM_TREE_CASES``, results to ``$ACCELSIM_TREE_RESULTS``."""
    cases = await cases_after_reset(dut, "ACCELSIM_TREE")
    report("ACCELSIM_TREE", [await _run_case(dut, case) for case in cases])
