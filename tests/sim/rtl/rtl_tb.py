"""cocotb testbench of the top level ``rtl_harness`` generates: every GEMM of a JSON list in turn.

Not a pytest module: the simulator's embedded Python imports it (``rtl_harness.run`` names it).
The list comes from ``$ACCELSIM_RTL_CASES``; per case the testbench turns on the clock of the case's
array (the others get none, so they cost nothing), writes both operand memories
row by row through the write ports, pulses ``start``, waits for ``done`` (Verilator runs the clock
alone meanwhile), reads the product row by row and the array's own ``last_mac_cycle``, and the
results go to ``$ACCELSIM_RTL_RESULTS``. The checks against numpy and the models are pytest's.
"""

from __future__ import annotations

import time
from typing import Any

import cocotb
from cocotb.result import SimTimeoutError
from cocotb.triggers import FallingEdge, RisingEdge, Timer, with_timeout
from cocotb.utils import get_sim_time
from tb_io import cases_after_reset, report

CLOCK_NS = 10  # the generated top level's clock: always #5 clk = ~clk


def _pack(row: list[int], width: int) -> int:
    mask = (1 << width) - 1
    return sum((int(v) & mask) << (i * width) for i, v in enumerate(row))


def _unpack(value: int, n: int, width: int) -> list[int]:
    mask, sign = (1 << width) - 1, 1 << (width - 1)
    lanes = ((value >> (i * width)) & mask for i in range(n))
    return [v - (1 << width) if v & sign else v for v in lanes]


async def _write_rows(dut: Any, inst: str, op: str, rows: list[list[int]], width: int) -> None:
    we, addr, data = (getattr(dut, f"{inst}_{op}_{port}") for port in ("we", "waddr", "wdata"))
    for r, row in enumerate(rows):
        we.value, addr.value, data.value = 1, r, _pack(row, width)
        await RisingEdge(dut.clk)
    we.value = 0


async def _enable(dut: Any, inst: str, on: bool) -> None:
    """Gate the clock of array ``inst`` on or off, while the clock is low (no edge is made)."""
    await FallingEdge(dut.clk)
    getattr(dut, f"{inst}_en").value = int(on)


async def _run_case(dut: Any, case: dict[str, Any], data_w: int, acc_w: int) -> dict[str, Any]:
    inst = case["instance"]
    await _enable(dut, inst, True)
    try:
        return await _run_enabled(dut, case, data_w, acc_w)
    finally:
        await _enable(dut, inst, False)


async def _run_enabled(dut: Any, case: dict[str, Any], data_w: int, acc_w: int) -> dict[str, Any]:
    inst, p_rows, q_rows = case["instance"], case["p_rows"], case["q_rows"]
    for port, n in zip(case["lens"], (len(p_rows), len(p_rows[0]), len(q_rows[0])), strict=True):
        getattr(dut, f"{inst}_{port}").value = n
    await _write_rows(dut, inst, case["p"], p_rows, data_w)
    await _write_rows(dut, inst, case["q"], q_rows, data_w)
    start, done = getattr(dut, f"{inst}_start"), getattr(dut, f"{inst}_done")
    start.value = 1
    await RisingEdge(dut.clk)  # this edge starts the array: the next cycle is its cycle 0
    start.value = 0
    sim0, wall0, cpu0 = get_sim_time("ns"), time.perf_counter(), time.process_time()
    try:
        await with_timeout(RisingEdge(done), case["timeout_cycles"] * CLOCK_NS, "ns")
    except SimTimeoutError:
        dut.rst.value = 1  # leave the array idle for the next case
        await RisingEdge(dut.clk)
        dut.rst.value = 0
        return {
            "timed_out": True,
            "out_rows": [],
            "last_mac_cycle": -1,
            "busy_cycles": -1,
            "sim_seconds": 0.0,
            "sim_cpu_seconds": 0.0,
        }
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    busy = round((get_sim_time("ns") - sim0) / CLOCK_NS)
    raddr, rdata = getattr(dut, f"{inst}_o_raddr"), getattr(dut, f"{inst}_o_rdata")
    out_rows = []
    for r in range(len(p_rows)):
        raddr.value = r
        await Timer(1, "ns")  # o_rdata is combinational
        out_rows.append(_unpack(int(rdata.value), len(q_rows[0]), acc_w))
    last_mac = int(getattr(dut, f"{inst}_last_mac_cycle").value)
    await RisingEdge(dut.clk)
    return {"timed_out": False, "out_rows": out_rows, "last_mac_cycle": last_mac, "busy_cycles": busy,
            "sim_seconds": wall, "sim_cpu_seconds": cpu}  # fmt: skip


@cocotb.test()
async def run_gemms(dut: Any) -> None:
    """Every case of ``$ACCELSIM_RTL_CASES``, results to ``$ACCELSIM_RTL_RESULTS``."""
    spec = await cases_after_reset(dut, "ACCELSIM_RTL")
    for inst in spec["instances"]:  # every array idle (no clock) but the one running a case
        await _enable(dut, inst, False)
    results = [await _run_case(dut, case, spec["data_w"], spec["acc_w"]) for case in spec["cases"]]
    report("ACCELSIM_RTL", results)
