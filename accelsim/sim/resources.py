"""FPGA resources a design uses (DSP, BRAM36, URAM, LUT estimate) and the check against its board.

- DSP: one DSP slice per PE of the physical array (packing makes each slice several logical MACs
  sharing an operand, i.e. extra logical columns) plus the DSPs of the units.
- Buffers: per buffer, max(capacity need, port need of the array edge), doubled when double
  buffered. A BRAM36 holds 4 KiB of data and has a 72-bit port in simple dual-port mode; a URAM288
  holds 36 KiB with a 72-bit port (Xilinx UG573, UltraScale Architecture Memory Resources).
  Edges, for the widest packing entry that packs more than one product (the datapath the ports are
  built for): the input buffer feeds ``rows x m x k`` activations per cycle, the weight buffer
  ``cols x k x n`` weights, the output buffer takes ``cols x m x n`` partial sums of ``acc_bits``.
- LUT (an estimate, not a synthesis result): the config's ``control_luts`` for the DMA, AXI
  interconnect and controller, ``array.lut_per_pe`` per array PE (operand skew registers, packing
  correction and accumulation muxes), plus each unit's lanes/MACs times its configured LUTs per
  lane/MAC. Round figures of the order reported by FPGA ViT accelerator papers.
- Epilogues (:func:`epilogue_resources`): the requantisation multipliers (DSP or LUT), bias and
  rounding adders, activation tables and layernorm statistics' adders on every lane of the GEMM
  engine's output edge, as the config's ``epilogue`` builds them; their pipeline registers go to
  the power model's flip-flops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from accelsim.config.hardware import HardwareConfig, PackingEntry
from accelsim.sim._memo import per_config
from accelsim.sim.engines.units import unit_resources

BRAM36_BYTES = 4096
URAM_BYTES = 36 * 1024
PORT_BITS = 72


@dataclass(frozen=True)
class Resources:
    """Resources used by a design and whether they fit its board."""

    dsp: int
    bram36: int
    uram: int
    lut: int
    fits: bool
    overflow: list[str]


def _blocks(kib: int, edge_bits: int, memory: str, double: bool) -> tuple[int, int]:
    """(bram36, uram) for one buffer."""
    per_block = BRAM36_BYTES if memory == "bram" else URAM_BYTES
    n = max(math.ceil(kib * 1024 / per_block), math.ceil(edge_bits / PORT_BITS))
    n *= 2 if double else 1
    return (n, 0) if memory == "bram" else (0, n)


def datapath_packing(hw: HardwareConfig) -> PackingEntry:
    """The packing entry the buffers' ports are built for: the widest operands that pack more than
    one product per DSP (else the narrowest entry)."""
    packed = [e for e in hw.packing if e.macs > 1]
    pool = packed or list(hw.packing)
    return (
        max(pool, key=lambda e: (e.wbits + e.abits, e.macs)) if packed else min(pool, key=lambda e: e.wbits)
    )


@dataclass(frozen=True)
class EpilogueResources:
    """What the drain-path epilogues are built from: DSPs, LUTs, pipeline flip-flops, and the
    output-edge lanes they are replicated over."""

    lanes: int = 0
    dsp: int = 0
    lut: int = 0
    ff: int = 0


def epilogue_resources(hw: HardwareConfig) -> EpilogueResources:
    """The epilogues ``hw.epilogue`` turns on, on each lane of the output edge (``cols x m x n``
    results per cycle for :func:`datapath_packing`, the output buffer's port): bias, requantisation
    and the activation table with ``activation``, the statistics' squarer and adders with
    ``layernorm_stats`` (per-lane figures and their sources on
    :class:`~accelsim.config.hardware.EpilogueConfig`)."""
    e = hw.epilogue
    p = datapath_packing(hw)
    lanes = hw.array.cols * p.m * p.n
    dsp = lut = ff = 0
    if e.activation:
        if e.requant_multiplier == "dsp":
            dsp += lanes
        else:
            lut += lanes * e.lut_per_requant_multiplier
        lut += lanes * e.lut_per_activation_lane
        ff += lanes * e.ff_per_activation_lane
    if e.layernorm_stats:
        lut += lanes * e.lut_per_stats_lane
        ff += lanes * e.ff_per_stats_lane
    if not (dsp or lut or ff):
        return EpilogueResources()
    return EpilogueResources(lanes=lanes, dsp=dsp, lut=lut, ff=ff)


@per_config
def estimate_resources(hw: HardwareConfig) -> Resources:
    """DSP, BRAM36, URAM and LUTs of ``hw`` and the check against ``hw.board``."""
    a, b = hw.array, hw.buffers
    p = datapath_packing(hw)
    # an adder tree reads ``tree`` operands per lane and per output column each cycle
    edges = {
        "input": a.rows * a.tree * p.m * p.k * p.abits,
        "weight": a.cols * a.tree * p.k * p.n * p.wbits,
        "output": a.cols * p.m * p.n * b.acc_bits,
    }
    sizes = {"input": b.input_kib, "weight": b.weight_kib, "output": b.output_kib}
    mems = {"input": b.input_memory, "weight": b.weight_memory, "output": b.output_memory}
    bram = uram = 0
    for k in sizes:
        br, ur = _blocks(sizes[k], edges[k], mems[k], b.double_buffer)
        bram += br
        uram += ur
    units = unit_resources(hw)
    epi = epilogue_resources(hw)
    dsp = a.dsps + sum(u.dsp for u in units.values()) + epi.dsp
    bram += sum(u.bram36 for u in units.values())
    lut = hw.control_luts + a.lut_per_pe * a.dsps + sum(u.lut for u in units.values()) + epi.lut
    if a.lut_macs is not None:
        lut += a.lut_macs.macs * a.lut_macs.lut_per_mac
    board = hw.board
    overflow = [
        f"{name}: {used} used > {avail} on {board.name}"
        for name, used, avail in (
            ("dsp", dsp, board.dsp),
            ("bram36", bram, board.bram36),
            ("uram", uram, board.uram),
            ("lut", lut, board.lut),
        )
        if used > avail
    ]
    return Resources(dsp=dsp, bram36=bram, uram=uram, lut=lut, fits=not overflow, overflow=overflow)
