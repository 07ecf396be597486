"""cocotb testbench of ``pair_harness``'s top level: every parameter set of a JSON list in turn.

Not a pytest module: the simulator's embedded Python imports it. Per case it sets the run-time sizes, pulses
``start``, lets Verilator run the clock until ``done`` and reads the cycles the pair recorded; a case that never
finishes is reported with ``timed_out``, one whose FIFO was written while full with ``overflow``.
"""

from __future__ import annotations

from typing import Any

import cocotb
from cocotb.result import SimTimeoutError
from cocotb.triggers import RisingEdge, Timer, with_timeout
from tb_io import cases_after_reset, report

CLOCK_NS = 10


async def _run_case(dut: Any, case: dict[str, Any]) -> dict[str, Any]:
    for port in ("tt", "cit", "cot", "lm", "ln", "depth", "frames"):
        getattr(dut, port).value = case[port]
    dut.start.value = 1
    await RisingEdge(dut.clk)  # this edge starts the pair: the next cycle is its cycle 0
    dut.start.value = 0
    try:
        await with_timeout(RisingEdge(dut.done), case["timeout_cycles"] * CLOCK_NS, "ns")
    except SimTimeoutError:
        dut.rst.value = 1
        await RisingEdge(dut.clk)
        dut.rst.value = 0
        return {"timed_out": True, "overflow": False}
    last_out = []
    for f in range(case["frames"]):
        dut.lo_raddr.value = f
        await Timer(1, "ns")  # lo_rdata is combinational
        last_out.append(int(dut.lo_rdata.value))
    result = {
        "timed_out": False,
        "overflow": bool(int(dut.overflow.value)),
        "first_out": int(dut.first_out.value),
        "last_out": last_out,
        "m_stalls": int(dut.m_stalls.value),
        "n_stalls": int(dut.n_stalls.value),
        "max_occupancy": int(dut.max_occupancy.value),
    }
    await RisingEdge(dut.clk)
    return result


@cocotb.test()
async def run_pairs(dut: Any) -> None:
    """Every case of ``$ACCELSIM_PAIR_CASES``, results to ``$ACCELSIM_PAIR_RESULTS``."""
    cases = await cases_after_reset(dut, "ACCELSIM_PAIR")
    report("ACCELSIM_PAIR", [await _run_case(dut, case) for case in cases])
