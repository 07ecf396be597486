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
- Units (:func:`engine_resources`), from the ``cost`` column of the engine table
  (:class:`~accelsim.sim.engines.table.UnitCost`): MAC units take ``ceil(macs / MACs-per-DSP at 8
  bit)`` DSPs (packed like the array), lane units ``dsp_per_lane`` per lane; LUTs per lane/MAC from
  the config plus the normaliser lanes of a unit that runs linear attention
  (:data:`LUT_SHIFT_LANE`, :data:`LUT_DIVIDER_LANE`); and ``buffer_kib`` of BRAM36.
- Epilogues (:func:`epilogue_resources`): the requantisation multipliers (DSP or LUT), bias and
  rounding adders, activation tables and layernorm statistics' adders on every lane of the GEMM
  engine's output edge, as the config's ``epilogue`` builds them; their pipeline registers go to
  the power model's flip-flops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from accelsim.config.hardware import HardwareConfig, PackingEntry, bram36_for_bytes
from accelsim.sim._kernels import ENG_ARRAY
from accelsim.sim._memo import config_values, per_value
from accelsim.sim.engines.table import ENGINES

BRAM36_BYTES = 4096
URAM_BYTES = 36 * 1024
PORT_BITS = 72
#: LUTs of one log2-shift normaliser lane: a leading-one detector and rounding bit on the 32-bit
#: divisor plus a 5-level 32-bit barrel shifter with rounding (an estimate: ~160 2:1 muxes).
LUT_SHIFT_LANE = 200
#: LUTs of one pipelined integer divider lane (32-bit dividend, radix 2: one subtract-and-select
#: stage of ~32 LUTs per quotient bit plus pipeline control; an estimate of the order a radix-2
#: divider core needs on UltraScale+).
LUT_DIVIDER_LANE = 1100


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
    # one pass (a sweep asks once per point): the first widest packed entry, else the first narrowest
    packed: PackingEntry | None = None
    narrow = hw.packing[0]
    for e in hw.packing:
        macs = e.m * e.k * e.n
        if macs > 1 and (
            packed is None or (e.wbits + e.abits, macs) > (packed.wbits + packed.abits, packed.macs)
        ):
            packed = e
        if e.wbits < narrow.wbits:
            narrow = e
    return packed if packed is not None else narrow


def _int8_products(hw: HardwareConfig) -> int:
    """INT8 products per DSP, the packing of a MAC unit (1 where no entry covers INT8)."""
    return max((e.m * e.k * e.n for e in hw.packing if e.wbits >= 8 and e.abits >= 8), default=1)


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
    return engine_resources(hw).epilogue


def _epilogue(hw: HardwareConfig, p: PackingEntry) -> EpilogueResources:
    e = hw.epilogue
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


@dataclass(frozen=True)
class EngineResources:
    """A design's resources by engine code (the order of the engine table): DSP slices, BRAM36
    blocks and LUTs of each engine (0 for a unit the config lacks; the array's: its PEs, the BRAM
    part of its input, weight and output buffers, its per-PE LUTs and LUT multipliers), the URAM
    of its buffers, its epilogues, and the totals checked against the board."""

    dsp: tuple[int, ...]
    bram36: tuple[int, ...]
    lut: tuple[int, ...]
    uram: int
    epilogue: EpilogueResources
    total: Resources


#: The engines with a cost row (the units), with their codes and config fields.
_UNITS = tuple((e.code, e.config_field, e.cost) for e in ENGINES if e.cost is not None and e.config_field)


def design_key(hw: HardwareConfig) -> tuple[object, ...]:
    """The values of everything :func:`engine_resources` reads of ``hw`` (its memo's key)."""
    v = config_values(hw)
    return v.board, v.array_built, v.buffers, v.packing, v.units, v.epilogue, hw.control_luts


@per_value(design_key)
def engine_resources(hw: HardwareConfig) -> EngineResources:
    """What each engine of ``hw`` is built from (the module doc; units by the table's ``cost``)."""
    a, b = hw.array, hw.buffers
    p = datapath_packing(hw)
    # an adder tree reads ``tree`` operands per lane and per output column each cycle
    bram, uram = 0, 0
    for kib, edge_bits, memory in (
        (b.input_kib, a.rows * a.tree * p.m * p.k * p.abits, b.input_memory),
        (b.weight_kib, a.cols * a.tree * p.k * p.n * p.wbits, b.weight_memory),
        (b.output_kib, a.cols * p.m * p.n * b.acc_bits, b.output_memory),
    ):
        br, ur = _blocks(kib, edge_bits, memory, b.double_buffer)
        bram += br
        uram += ur
    dsps = a.dsps
    n = len(ENGINES)
    dsp, brams, lut = [0] * n, [0] * n, [0] * n
    dsp[ENG_ARRAY], brams[ENG_ARRAY] = dsps, bram
    lut[ENG_ARRAY] = a.lut_per_pe * dsps + (a.lut_macs.macs * a.lut_macs.lut_per_mac if a.lut_macs else 0)
    for code, config_field, cost in _UNITS:
        u = getattr(hw.units, config_field)
        if u is None:
            continue
        width = getattr(u, cost.width)
        dsp[code] = (
            width * u.dsp_per_lane if cost.dsp == "per_lane" else math.ceil(width / _int8_products(hw))
        )
        lut[code] = width * getattr(u, cost.lut_per)
        if cost.dividers and "linear_attention" in getattr(u, "runs", ("linear_attention",)):
            lut[code] += u.divider_lanes * (LUT_SHIFT_LANE if u.divider == "shift" else LUT_DIVIDER_LANE)
        brams[code] = bram36_for_bytes(u.buffer_kib * 1024)
    epi = _epilogue(hw, p)
    return EngineResources(
        tuple(dsp),
        tuple(brams),
        tuple(lut),
        uram,
        epi,
        _check(hw, sum(dsp) + epi.dsp, sum(brams), uram, sum(lut) + epi.lut),
    )


def estimate_resources(hw: HardwareConfig) -> Resources:
    """DSP, BRAM36, URAM and LUTs of ``hw`` and the check against ``hw.board``."""
    return engine_resources(hw).total


def _check(hw: HardwareConfig, dsp: int, bram: int, uram: int, engine_lut: int) -> Resources:
    lut = hw.control_luts + engine_lut
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
