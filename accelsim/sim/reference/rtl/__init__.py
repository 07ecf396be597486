"""Verilog of the pipelined systolic arrays that :mod:`accelsim.sim.reference.pe` models.

``ws_gemm`` (weight-stationary, also run on the transposed problem for input-stationary) and
``os_gemm`` (output-stationary) are the arrays of :mod:`accelsim.sim.engines.systolic`'s
"pipelined" timing mode, register for register: PEs with two banks of stationary registers (or
accumulators), per-column load chains and drain ports, and a controller per array that applies
the start rules of ``_ws_pipelined`` / ``_os_pipelined``. Each counts its own cycles and exposes
the index of its last MAC cycle. Both take the fast model's packing as parameters (two products
per DSP48E2, ``packed_mul2``: Xilinx WP486's shared-operand multiply with its sign correction).
``tests/sim/rtl/`` simulates them with Verilator through cocotb and checks their products and cycle
counts against numpy, the PE models and the formula, up to 32x64 arrays on DeiT-Tiny's GEMMs.

``dataflow_pair`` is one stage pair of the layer-pipelined family (a matmul stage feeding a LayerNorm stage
through a FIFO with credit back-pressure, ``SPEC_dataflow_stage.md``); ``tests/sim/rtl/test_rtl_dataflow.py``
checks its first-output, per-frame and steady-state cycles against a cycle-by-cycle model.
"""

from __future__ import annotations

from pathlib import Path

#: Folder of the Verilog sources (shipped in the wheel as package data).
RTL_DIR = Path(__file__).resolve().parent

#: Sources of each top-level module, leaves first.
SOURCES: dict[str, tuple[Path, ...]] = {
    top: tuple(
        RTL_DIR / f"{name}.v" for name in ("delay_taps", "packed_mul2", f"{df}_array", f"{df}_ctrl", top)
    )
    for df, top in (("ws", "ws_gemm"), ("os", "os_gemm"))
}
#: The streaming stage pair of the dataflow family (matmul -> FIFO with credits -> LayerNorm), one file.
SOURCES["dataflow_pair"] = (RTL_DIR / "dataflow_pair.v",)
#: The multiplier + adder-tree engine (``array.kind: adder_tree``), its controller and memories.
SOURCES["tree_gemm"] = tuple(RTL_DIR / f"{n}.v" for n in ("delay_taps", "tree_ctrl", "tree_gemm"))
