"""The hardware model: an FPGA board (resource facts) and an accelerator built on it.

A :class:`HardwareConfig` is read from YAML. A bare name resolves to ``hw_configs/<name>.yaml``;
its ``board`` is either the name of a preset in ``hw_configs/boards/<board>.yaml`` or an inline
:class:`BoardSpec`. Example (``hw_configs/zcu102.yaml`` is the default)::

    name: sa32x64_ws.zcu102
    board: zcu102
    clock_mhz: 200
    array: {rows: 32, cols: 64, dataflow: ws}
    buffers: {input_kib: 256, weight_kib: 256, output_kib: 256, double_buffer: true}
    dram: {bandwidth_gbs: 19.2, latency_cycles: 60, burst_bytes: 64, channels: 1}
    units: {vector: {lanes: 64}}

No torch and no numba here: configs are read by the CLI, the search and the simulator alike.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from accelsim._names import unknown
from accelsim._paths import data_dir
from accelsim.config._base import Strict, get_path, load_config, set_path, validate_config
from accelsim.config.dataflow import DataflowConfig
from accelsim.config.reference import PublishedReference
from accelsim.errors import ConfigError

#: ``hw_configs/`` of the checkout, or of the installed package (:mod:`accelsim._paths`).
HW_CONFIG_DIR = data_dir("hw_configs")
BOARD_DIR = HW_CONFIG_DIR / "boards"

Dataflow = Literal["ws", "os", "is"]
DspKind = Literal["dsp48e2", "dsp58"]
MemoryKind = Literal["bram", "uram"]


class PackingEntry(Strict):
    """Products one DSP slice computes per cycle for operands of at most ``wbits`` (the weight, or
    stationary, operand B) and ``abits`` (the activation operand A): ``m`` along the GEMM's M
    (tokens), ``k`` along K (a dot product inside the DSP), ``n`` along N (output features). See
    :mod:`accelsim.sim.engines.systolic` for how each maps onto the array.
    """

    wbits: int = Field(ge=1, le=64)
    abits: int = Field(ge=1, le=64)
    m: int = Field(default=1, ge=1, le=8)
    k: int = Field(default=1, ge=1, le=8)
    n: int = Field(default=1, ge=1, le=8)

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n


#: Default packing per DSP primitive.
#: DSP48E2 (UltraScale+): two INT8 products sharing one operand fit the 27x18 multiplier, two weights
#: times one activation (Xilinx WP486, "Deep Learning with INT8 Optimization on Xilinx Devices");
#: four INT4 products as a 2x2 outer product, two weights x two activations (Sommer et al.,
#: "DSP-Packing: Squeezing Low-precision Arithmetic into FPGA DSP Blocks", arXiv:2203.11028; Xilinx
#: WP521 reports the INT4 DPU built this way). DSP58 (Versal): the INT8 vector mode is a three-term
#: dot product, three weights x three activations summed in one slice (Xilinx AM004, Versal ACAP
#: DSP Engine Architecture Manual, "INT8 vector dot product"): three MACs along K, not three
#: independent products. 16-bit operands: one MAC per slice on both. An (8, 8) entry covers W4A8 and
#: W8A4 as well (no cited packing does better for mixed widths on these slices).
DEFAULT_PACKING: dict[str, tuple[PackingEntry, ...]] = {
    "dsp48e2": (
        PackingEntry(wbits=16, abits=16),
        PackingEntry(wbits=8, abits=8, n=2),
        PackingEntry(wbits=4, abits=4, m=2, n=2),
    ),
    "dsp58": (PackingEntry(wbits=16, abits=16), PackingEntry(wbits=8, abits=8, k=3)),
}


#: Device static power per available LUT when a board gives no static figure: the XCU50's 2.335 W
#: over its 870,016 LUTs (Vivado ``report_power``, typical process, Tj 34.8 C; research notes R1)
#: = 2.68 uW per LUT [D]. Static power assumed proportional to fabric size (an assumption).
STATIC_W_PER_LUT = 2.335 / 870_016


class BoardPower(Strict):
    """Power coefficients of one board, in the way the vendor's power estimators (XPE, UG440; PDM,
    UG1556) parameterise a design: device static power, plus dynamic power per used resource per
    MHz at the estimator's default toggle rate, plus DRAM energy per bit moved. Every value is an
    estimate; each board YAML cites its sources and labels them ([C] confirmed in the cited text,
    [Q] quoted through a third party, [D] derived with the arithmetic shown, [A] an assumption
    where the research found nothing). :mod:`accelsim.sim.power` turns them into watts.

    Attributes:
        static_w: programmable-logic device static power (typical process, ~25 C ambient);
            ``None`` derives it from the board's LUTs (:data:`STATIC_W_PER_LUT`).
        ps_static_w: static power of a hard processing system (Zynq PS8), counted in static power.
        ps_w: dynamic power of the processing system at Vivado's default PS activity, counted only
            when ``ps_included`` (its DDR controller and PHY are inside this figure).
        ps_included: whether ``ps_w`` is part of the estimate (the YAML says why).
        platform_w: power of a card's fixed platform the accelerator cannot switch off (an Alveo
            shell's PCIe and transceivers), counted in full.
        memory_static_w: static power of in-package memory (HBM stacks), counted in static power.
        toggle_default: the toggle rate the coefficients hold at (XPE's default, 12.5 %).
        busy_toggle: the toggle rate of a resource in a cycle its engine works; dynamic power
            scales by ``busy fraction x busy_toggle / toggle_default``.
        dsp_uw_per_mhz: one DSP slice (the board's ``dsp_kind``) at the default toggle.
        bram36_uw_per_mhz, uram_uw_per_mhz: one enabled BRAM36 / URAM288 block.
        lut_nw_per_mhz: one LUT including its share of routing (XPE folds routing into logic).
        ff_nw_per_mhz: one flip-flop (its cell; the clock tree is ``clock_nw_per_ff_mhz``).
        clock_nw_per_ff_mhz: the clock tree, per flip-flop it reaches; always switching.
        dram_pj_per_bit: off-chip memory energy per bit read or written.
    """

    static_w: float | None = Field(default=None, ge=0)
    ps_static_w: float = Field(default=0.0, ge=0)
    ps_w: float = Field(default=0.0, ge=0)
    ps_included: bool = False
    platform_w: float = Field(default=0.0, ge=0)
    memory_static_w: float = Field(default=0.0, ge=0)
    toggle_default: float = Field(default=0.125, gt=0, le=1)
    # XPE accepts toggle rates above 100 % (a 1024-wide XOR tree reaches 815 %, UG440)
    busy_toggle: float = Field(default=0.125, ge=0, le=8)
    dsp_uw_per_mhz: float = Field(default=4.4, ge=0)
    bram36_uw_per_mhz: float = Field(default=15.0, ge=0)
    uram_uw_per_mhz: float = Field(default=15.0, ge=0)
    lut_nw_per_mhz: float = Field(default=51.0, ge=0)
    ff_nw_per_mhz: float = Field(default=1.14, ge=0)
    clock_nw_per_ff_mhz: float = Field(default=20.6, ge=0)
    dram_pj_per_bit: float = Field(default=18.11, ge=0)

    @property
    def device_static_w(self) -> float:
        """Static power counted in every estimate: PL (resolved) + PS + in-package memory."""
        assert self.static_w is not None, "resolved by BoardSpec"
        return self.static_w + self.ps_static_w + self.memory_static_w


class BoardSpec(Strict):
    """Resource facts of one FPGA board (programmable logic only), from the vendor's data sheets.

    Attributes:
        name: board name, e.g. ``zcu102``.
        device: FPGA part, e.g. ``XCZU9EG``.
        dsp: DSP slices. bram36: 36 Kb block RAMs. uram: 288 Kb UltraRAMs. lut: CLB LUTs.
        dsp_kind: the DSP primitive (decides the default packing table).
        dram_bandwidth_gbs: peak off-chip bandwidth reachable from the programmable logic.
        dram_kind: e.g. ``DDR4`` or ``HBM2`` (documentation only).
        source: the data sheet(s) the numbers come from.
        power: the power coefficients (:class:`BoardPower`); a board without the section gets the
            UltraScale+ defaults there and a static power derived from its LUTs.
        virtual: a stand-in sized to fit the design, not a device (a SCALE-Sim config): the
            report gives no fit and no power for it.
    """

    name: str = Field(min_length=1)
    device: str = ""
    dsp: int = Field(gt=0)
    bram36: int = Field(ge=0)
    uram: int = Field(default=0, ge=0)
    lut: int = Field(gt=0)
    dsp_kind: DspKind = "dsp48e2"
    dram_bandwidth_gbs: float = Field(gt=0)
    dram_kind: str = "DDR4"
    source: str = ""
    power: BoardPower = BoardPower()
    virtual: bool = False

    @model_validator(mode="after")
    def _static_from_fabric(self) -> BoardSpec:
        # Frozen model: resolve the derived static power once, so a dump shows the value used.
        if self.power.static_w is None:
            derived = self.power.model_copy(update={"static_w": self.lut * STATIC_W_PER_LUT})
            object.__setattr__(self, "power", derived)
        return self


class LutMacConfig(Strict):
    """Multipliers built in LUTs beside the array (Auto-ViT-Acc's mixed scheme: Li et al., FPL 2022,
    arXiv:2208.05163, runs the power-of-two-quantised rows of each weight matrix as shift-adds in
    LUTs, in parallel with the fixed-point rows on DSPs).

    ``fraction`` of the output channels (rows of the weight matrix) of every weight x activation
    GEMM go to the ``macs`` LUT multipliers; the rest run on the array; the op takes the longer of
    the two. Costed in LUTs (``lut_per_mac``, checked against the board), not DSPs. The quantisation
    of those rows (power-of-two) is the recipe's concern; the split here is the hardware's.
    """

    macs: int = Field(gt=0)
    fraction: float = Field(gt=0.0, lt=1.0)
    #: a shift-add multiplier-accumulator for a power-of-two weight and an 8-bit activation: a
    #: barrel shifter of the activation (3-bit shift amount) and a 16-bit adder, ~8 + 16 LUT6 plus
    #: sign handling (an estimate from the structure, not a synthesis result)
    lut_per_mac: int = Field(default=30, ge=1)
    latency_cycles: int = Field(default=4, ge=0)


class ArrayConfig(Strict):
    """The GEMM engine: ``rows x cols`` physical DSP slices (packing puts several products in a
    slice, :class:`PackingEntry`).

    ``kind``: ``systolic`` (the default) or ``adder_tree``, a multiplier + adder-tree engine
    (Trio-ViT's and EfficientViT-FPGA's MAT, the "group-vector" style: Shi et al., arXiv:2405.03882;
    Shao et al., arXiv:2403.20230): ``rows`` lanes (pixels / tokens in parallel), each with
    ``cols`` output channels fed by adder trees over ``tree`` input channels, so it has
    ``rows x cols x tree`` DSPs; no systolic skew (see :mod:`accelsim.sim.engines.systolic`).

    ``dataflow`` is one of ``ws``, ``os``, ``is``, or a list of them (or ``"ws/os"``, a search
    knob's choice) for a reconfigurable array (the
    mapper picks, per op, by the time the whole schedule takes, so listing one more never makes a
    design slower: :mod:`accelsim.sim.mapping`; the order of the list does not matter; an adder
    tree has one loop order and ignores it).
    ``timing``: ``pipelined`` (folds stream back to back with double-buffered stationary
    registers, what FPGA arrays build) or ``scalesim`` (SCALE-Sim 3.0.0's per-fold model, for exact
    agreement with it); see :mod:`accelsim.sim.engines.systolic`. SCALE-Sim has no packing: in
    ``scalesim`` timing a DSP packing p products is p more logical columns, each fold paying their
    skew, so fewer bits (more products per DSP) can be slower there (W4A4 up to +65% over W8A8 on
    the issue-23 audit); compare precisions in ``pipelined`` timing, where packing is physical.
    """

    rows: int = Field(gt=0, le=4096)
    cols: int = Field(gt=0, le=4096)
    kind: Literal["systolic", "adder_tree"] = "systolic"
    tree: int = Field(default=1, ge=1, le=256)
    dataflow: Dataflow | tuple[Dataflow, ...] = "ws"
    timing: Literal["pipelined", "scalesim"] = "pipelined"
    lut_macs: LutMacConfig | None = None
    #: LUTs per PE (operand skew registers, packing correction, accumulation muxes): an estimate
    #: of the order FPGA ViT accelerator papers report, like the units' ``lut_per_lane``.
    lut_per_pe: int = Field(default=40, ge=0)

    @model_validator(mode="after")
    def _tree_only_for_adder_trees(self) -> ArrayConfig:
        if self.kind == "systolic" and self.tree != 1:
            raise ValueError(f"tree: {self.tree} is for kind: adder_tree (a systolic array has tree: 1)")
        return self

    @property
    def dsps(self) -> int:
        """DSP slices of the engine."""
        return self.rows * self.cols * self.tree

    @field_validator("dataflow", mode="before")
    @classmethod
    def _one_or_several_dataflows(cls, v: object) -> object:
        # one message for a bad name, instead of one per member of the union
        allowed = ("ws", "os", "is")
        if isinstance(v, str) and "/" in v:  # "ws/os", as dataflow_label writes it (a search choice)
            v = v.split("/")
        names = list(v) if isinstance(v, list | tuple) else [v]
        bad = [n for n in names if n not in allowed]
        if not names or bad:
            # the error formatter appends the input when it is a scalar; name the culprit in a list
            where = f" ({bad[0]!r} in the list)" if bad and isinstance(v, list | tuple) else ""
            raise ValueError(f"must be one of 'ws', 'os', 'is' or a list of them{where}")
        if len(set(names)) != len(names):
            raise ValueError(f"lists a dataflow twice: {names}")
        return names[0] if len(names) == 1 else tuple(names)

    @property
    def dataflows(self) -> tuple[Dataflow, ...]:
        """The dataflows the array can run, in the config's order."""
        return self.dataflow if isinstance(self.dataflow, tuple) else (self.dataflow,)

    @property
    def dataflow_label(self) -> str:
        if self.kind == "adder_tree":
            return f"adder tree of {self.tree}"
        return "/".join(self.dataflows)


class BufferConfig(Strict):
    """On-chip buffers. Each size is one buffer; ``double_buffer`` doubles the memory behind it.

    ``output_kib`` also holds finished activations so that the next op reads them on chip.
    ``acc_bits`` is the width of partial sums kept in the output buffer between reduction folds.
    """

    input_kib: int = Field(gt=0)
    weight_kib: int = Field(gt=0)
    output_kib: int = Field(gt=0)
    double_buffer: bool = True
    acc_bits: int = Field(default=32, ge=8, le=64)
    input_memory: MemoryKind = "bram"
    weight_memory: MemoryKind = "bram"
    output_memory: MemoryKind = "bram"


class DramConfig(Strict):
    """Off-chip memory as the accelerator sees it.

    ``bandwidth_gbs`` is the total over ``channels`` (addresses interleave across channels, so a
    transfer splits evenly over them); ``latency_cycles`` is paid per transfer (in accelerator
    cycles); data moves in whole ``burst_bytes`` bursts.
    """

    bandwidth_gbs: float = Field(gt=0)
    latency_cycles: int = Field(default=60, ge=0)
    burst_bytes: int = Field(default=64, gt=0)
    channels: int = Field(default=1, gt=0, le=64)


class VectorUnitConfig(Strict):
    """Vector unit: layernorm, activations (GELU/Hardswish/ReLU...), eltwise, requantisation.

    ``lanes`` elements per cycle per pass (layernorm makes 3 passes: mean, variance, normalise);
    timing in :mod:`accelsim.sim.engines.units`. ``buffer_kib`` of private BRAM (row buffers), if any.
    """

    lanes: int = Field(gt=0)
    latency_cycles: int = Field(default=8, ge=0)
    dsp_per_lane: int = Field(default=1, ge=0)
    lut_per_lane: int = Field(default=300, ge=0)
    buffer_kib: int = Field(default=0, ge=0)


class SoftmaxUnitConfig(Strict):
    """Softmax unit (max, exp, sum, divide): ``lanes`` elements of one row per cycle.

    ``passes`` over each row: 2 with the online normaliser (running max and rescaled sum in one
    pass, then exp and multiply by the reciprocal; Milakov & Gimelshein, arXiv:1805.02867), 3 for
    the textbook max / exp+sum / divide. ``buffer_kib``: the row buffer holding a row between
    passes (16 KiB: two 4,096-element rows of 16-bit exponentials).
    """

    lanes: int = Field(gt=0)
    latency_cycles: int = Field(default=16, ge=0)
    passes: int = Field(default=2, ge=2, le=3)
    dsp_per_lane: int = Field(default=1, ge=0)
    lut_per_lane: int = Field(default=600, ge=0)
    buffer_kib: int = Field(default=16, ge=0)


class LinearAttentionUnitConfig(Strict):
    """Softmax-free ReLU linear-attention unit (Trio-ViT, arXiv:2405.03882; EfficientViT, arXiv:2205.14756).

    ``macs`` INT8 MACs compute ReLU(K)^T [V, 1] (the k-sum as an extra column) and ReLU(Q) (KV);
    ``divider_lanes`` normalisers divide the outputs by the k-sum term: ``shift`` quantises the
    divisor to a power of two (log2) so the division is a barrel shift; ``true`` is a pipelined
    integer divider (``divider_latency_cycles`` deep, much larger in LUTs). ``buffer_kib`` holds
    the KV state (d x (d+1) 32-bit accumulators per head, double-buffered: 16 KiB covers d = 32).
    """

    macs: int = Field(gt=0)
    latency_cycles: int = Field(default=16, ge=0)
    divider: Literal["shift", "true"] = "shift"
    divider_lanes: int = Field(default=16, gt=0)
    divider_latency_cycles: int = Field(default=34, ge=0)
    lut_per_mac: int = Field(default=40, ge=0)
    buffer_kib: int = Field(default=16, ge=0)


class _KernelLanes(Strict):
    """A unit whose ``macs`` multipliers form channel lanes of ``kernel_macs`` each: ``macs //
    kernel_macs`` lanes. The one rule for every such unit: a lane cannot have more multipliers than
    the unit (a lane count below one would be timed as one lane, more hardware than declared)."""

    macs: int = Field(gt=0)
    kernel_macs: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _lanes_fit(self) -> _KernelLanes:
        if self.kernel_macs is not None and self.kernel_macs > self.macs:
            raise ValueError(
                f"kernel_macs ({self.kernel_macs}) must be <= macs ({self.macs}): a channel lane of "
                f"{self.kernel_macs} multipliers does not fit in {self.macs}"
            )
        return self


class DwconvUnitConfig(_KernelLanes):
    """Depthwise-convolution engine: ``macs`` multipliers, channel-parallel k x k windows.

    ``kernel_macs`` multipliers per channel lane (e.g. 9 for one 3x3 window per cycle), so
    ``macs // kernel_macs`` channels run in parallel; ``None`` models a fully reconfigurable MAC
    pool (any channel, any tap: MACs / ``macs`` cycles, the ideal bound). ``buffer_kib``: the
    line buffers ((k - 1) input rows per channel lane).
    """

    latency_cycles: int = Field(default=8, ge=0)
    lut_per_mac: int = Field(default=30, ge=0)
    buffer_kib: int = Field(default=32, ge=0)


class ReconfigurableUnitConfig(_KernelLanes):
    """One pool of multipliers shared, time-multiplexed, by several op kinds: EfficientViT-FPGA's
    reconfigurable processing engine (RPE: depthwise convs and the linear attention; Shao et al.,
    arXiv:2403.20230) and Trio-ViT's R-MAC (depthwise convs, then the attention's divisors and
    dividends; Shi et al., arXiv:2405.03882). Its ``macs`` are counted once; each op kind it
    ``runs`` is timed as that kind's dedicated unit would be with those MACs (depthwise: windows of
    ``kernel_macs`` taps per channel lane, or ``None`` for any tap anywhere; linear attention: the
    two phases and the ``divider`` normalisers)."""

    runs: tuple[Literal["dwconv", "linear_attention"], ...] = ("dwconv", "linear_attention")
    #: between its own ops the pool joins the array on weight x activation GEMMs (pointwise convs,
    #: linears): each such GEMM's output channels split between the two so that the GEMM ends
    #: soonest (never later than on the array alone). Not where it streams with the pool's own
    #: work (a depthwise -> pointwise chain), nor where the schedule runs one of the pool's ops at
    #: the same time (the mapper drops the assist there): the pool is in one place at a time.
    assists_gemm: bool = False
    latency_cycles: int = Field(default=8, ge=0)
    divider: Literal["shift", "true"] = "shift"
    divider_lanes: int = Field(default=16, gt=0)
    divider_latency_cycles: int = Field(default=34, ge=0)
    lut_per_mac: int = Field(default=40, ge=0)
    buffer_kib: int = Field(default=32, ge=0)

    @field_validator("runs")
    @classmethod
    def _runs_something(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v or len(set(v)) != len(v):
            raise ValueError(f"must list 'dwconv' and/or 'linear_attention' once each (got {list(v)})")
        return v


class UnitsConfig(Strict):
    """Special units beside the array; ``None`` means the unit is absent (its ops fall back:
    softmax to the vector unit, linear attention to the array plus the vector unit, depthwise
    convolutions to the array). A ``reconfigurable`` unit takes the kinds it ``runs`` before the
    dedicated units do."""

    vector: VectorUnitConfig = VectorUnitConfig(lanes=64)
    softmax: SoftmaxUnitConfig | None = None
    linear_attention: LinearAttentionUnitConfig | None = None
    dwconv: DwconvUnitConfig | None = None
    reconfigurable: ReconfigurableUnitConfig | None = None


class EpilogueConfig(Strict):
    """Work done on data already flowing, instead of in a vector-unit pass of its own.

    ``activation``: ReLU/GELU/Hardswish (and the bias and requantisation every GEMM output gets)
    applied in the GEMM engine's drain path, so an activation right after a GEMM costs no pass and
    its input never leaves the engine; a multiply of a GEMM's output by a constant (attention's
    ``q * d**-0.5``, after the head split) folds into that requantisation's scale. ``layernorm_stats``: a layernorm's mean and variance gathered
    while its producer streams the row out, so only the normalising pass remains (1 pass, not 3).
    Neither is free: their multipliers, tables, adders and pipeline registers are counted per lane
    of the engine's output edge (the fields below) in the resources and the power; a config that
    turns one off pays a vector-unit pass instead. Both are what published FPGA ViT accelerators do (EfficientViT-FPGA fuses its post-processing,
    Shao et al., arXiv:2403.20230; integer-only designs such as Huang et al., TCAS-I 2023, reduce
    layernorm and GELU to integer arithmetic a datapath can hold).
    """

    activation: bool = False
    layernorm_stats: bool = False
    # What they are built from, per lane of the GEMM engine's output edge (``array.cols x m x n``
    # outputs per cycle for the widest packed datapath, as the output buffer's port;
    # :func:`accelsim.sim.resources.epilogue_resources`). Estimates from the structure, not
    # synthesis results; LUT6 and CARRY8 facts from UG574, the DSP48E2's 27x18 multiplier from UG579.
    #: the requantisation multiplier (accumulator x fixed-point scale): ``dsp``, one DSP48E2 per
    #: lane (an INT8 GEMM's accumulator, |acc| <= 127 x 128 x 4,096 < 2^26 for K <= 4,096, fits its
    #: 27-bit input and a 16-bit scale its 18-bit one), or ``lut``
    requant_multiplier: Literal["dsp", "lut"] = "dsp"
    #: a 27 x 16 multiplier in LUTs: 16 partial products of 27 bits summed on carry chains, about
    #: two partial-product bits per LUT6: 27 x 16 / 2 = 216
    lut_per_requant_multiplier: int = Field(default=216, ge=0)
    #: bias adder (32 bits, one LUT6 per bit on the carry chain) + rounding adder (32) + saturation
    #: to 8 bits (16) + the activation table, a 256 x 8-bit ROM (a 256 x 1 ROM is 4 LUT6 and the
    #: F7/F8 muxes: 8 x 4 = 32)
    lut_per_activation_lane: int = Field(default=112, ge=0)
    #: pipeline registers: bias, multiply, round/saturate and table stages, 32 bits each
    ff_per_activation_lane: int = Field(default=128, ge=0)
    #: layernorm statistics: an 8 x 8 squarer in LUTs (8 x 8 / 2 = 32) and one 32-bit adder each
    #: for the sum and the sum of squares (the lanes' adder trees and the row accumulators: 64)
    lut_per_stats_lane: int = Field(default=96, ge=0)
    #: their pipeline registers (two 32-bit stages)
    ff_per_stats_lane: int = Field(default=64, ge=0)


#: the overlay buffers of a dataflow design, which has none (its buffers are its stages' FIFOs)
NO_BUFFERS = {"input_kib": 1, "weight_kib": 1, "output_kib": 1, "double_buffer": False}


class HardwareConfig(Strict):
    """An accelerator on a board. Load with :meth:`load`; see the module docstring for YAML."""

    name: str = Field(min_length=1)
    board: BoardSpec
    clock_mhz: float = Field(gt=0, le=2000)
    array: ArrayConfig
    #: products per DSP by operand bits; default: the board's DSP primitive (:data:`DEFAULT_PACKING`).
    #: The short form ``{bits: n}`` is ``{wbits: bits, abits: bits, n: n}``.
    packing: tuple[PackingEntry, ...] = ()
    buffers: BufferConfig
    dram: DramConfig | None = None
    units: UnitsConfig = UnitsConfig()
    #: independent ops on different engines run at the same time, and element-wise consumers
    #: stream behind their producer; False runs the ops one at a time (to compare).
    overlap: bool = True
    #: attention split per head: head h's softmax (or AV) runs while head h+1's QK^T is on the
    #: array, and the score matrix lives on chip one head at a time (needs ``overlap``).
    pipeline_heads: bool = True
    #: a depthwise conv -> (activation) -> pointwise 1x1 conv chain streams through on-chip
    #: buffers instead of a DRAM round trip, the two engines pipelined (MBConv fusion).
    mbconv_fusion: bool = True
    epilogue: EpilogueConfig = EpilogueConfig()
    #: LUTs of what every design has besides its engines: DMA, AXI interconnect and controller
    #: (an estimate of the order FPGA ViT accelerator papers report).
    control_luts: int = Field(default=20_000, ge=0)
    #: a config rebuilt from a paper: its figures and this config's assumptions
    #: (:mod:`accelsim.config.reference`)
    reference: PublishedReference | None = None
    #: a layer-pipelined dataflow accelerator instead of an overlay (:mod:`accelsim.config.dataflow`,
    #: simulated by :mod:`accelsim.sim.dataflow`); its config gives no ``array`` or ``buffers``
    dataflow: DataflowConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _dataflow_has_no_overlay_engine(cls, data: object) -> object:
        # the overlay fields stay required (every overlay module reads them); a dataflow design
        # gets a one-PE stand-in that nothing of the dataflow family reads
        if isinstance(data, dict) and data.get("dataflow") is not None:
            data = {"array": {"rows": 1, "cols": 1}, "buffers": NO_BUFFERS, "control_luts": 0, **data}
        return data

    @field_validator("board", mode="before")
    @classmethod
    def _board_by_name(cls, v: object) -> object:
        if isinstance(v, str):
            return get_board(v)
        return v

    @field_validator("packing", mode="before")
    @classmethod
    def _packing_short_form(cls, v: object) -> object:
        if isinstance(v, dict):
            entries = []
            for bits, n in v.items():
                if isinstance(bits, bool) or not isinstance(bits, int) or isinstance(n, bool):
                    raise ValueError(
                        f"short form wants {{bits: products}} with integers, got {bits!r}: {n!r}"
                    )
                entries.append({"wbits": bits, "abits": bits, "n": n})
            return entries
        return v

    @field_validator("packing")
    @classmethod
    def _packing_distinct(cls, v: tuple[PackingEntry, ...]) -> tuple[PackingEntry, ...]:
        keys = [(e.wbits, e.abits) for e in v]
        if len(set(keys)) != len(keys):
            raise ValueError(f"two entries for the same (wbits, abits): {sorted(keys)}")
        return v

    @model_validator(mode="after")
    def _assumptions_name_fields(self) -> HardwareConfig:
        if self.reference is None:
            return self
        data = self.model_dump()
        for a in self.reference.assumptions:
            for dotted in a.fields:
                try:
                    get_path(data, dotted)
                except KeyError:
                    raise ValueError(
                        f"reference.assumptions: {dotted!r} is not a field of this config"
                    ) from None
        return self

    @model_validator(mode="after")
    def _defaults_from_board(self) -> HardwareConfig:
        # Frozen model: fill board-derived defaults in place once, before anyone sees the object.
        if not self.packing:
            object.__setattr__(self, "packing", DEFAULT_PACKING[self.board.dsp_kind])
        if self.dram is None:
            object.__setattr__(self, "dram", DramConfig(bandwidth_gbs=self.board.dram_bandwidth_gbs))
        return self

    # -- derived values ---------------------------------------------------------------------------
    @property
    def dram_cfg(self) -> DramConfig:
        """The DRAM section (never None after validation)."""
        assert self.dram is not None
        return self.dram

    def packing_for(self, wbits: int, abits: int) -> PackingEntry:
        """The packing of operands of ``wbits`` and ``abits`` (:func:`select_packing`).

        Raises:
            ConfigError: if no entry covers the operands.
        """
        return select_packing(self.packing, wbits, abits, self.name)

    def macs_per_dsp(self, wbits: int = 8, abits: int | None = None) -> int:
        """Products one DSP computes per cycle for these operand bits (``abits`` defaults to ``wbits``)."""
        return self.packing_for(wbits, wbits if abits is None else abits).macs

    def peak_macs_per_cycle(self, wbits: int = 8, abits: int | None = None) -> int:
        """MACs per cycle of the array for these operand bits (its LUT multipliers included)."""
        lut = self.array.lut_macs.macs if self.array.lut_macs is not None else 0
        return self.array.dsps * self.macs_per_dsp(wbits, abits) + lut

    def dram_bytes_per_cycle(self) -> float:
        """Total DRAM bytes per accelerator clock cycle."""
        return self.dram_cfg.bandwidth_gbs * 1e3 / self.clock_mhz

    @classmethod
    def load(cls, name_or_path: str | Path) -> HardwareConfig:
        """Load a config: a path to a YAML file, or a name in ``hw_configs/`` (e.g. ``zcu102``).

        Raises:
            ConfigError: unknown name (lists known ones), unreadable file, or invalid fields.
        """
        text = str(name_or_path)
        path = Path(text)
        if not (text.endswith((".yaml", ".yml")) or path.is_file()):
            path = HW_CONFIG_DIR / f"{text}.yaml"
            if not path.is_file():
                raise ConfigError(unknown("hardware config", text, list_configs(), n=5))
        return load_config(path, cls)

    @classmethod
    def from_dict(cls, data: dict[str, object], source: str = "") -> HardwareConfig:
        """Validate a dict (e.g. a parsed YAML or a search point); errors name the field."""
        return validate_config(cls, data, source)

    def with_changes(self, **changes: object) -> HardwareConfig:
        """A new validated config with dotted fields replaced, e.g. ``{"array.rows": 16}``."""
        data = self.model_dump()
        for dotted, value in changes.items():
            try:
                data = set_path(data, dotted.replace("__", "."), value)
            except KeyError as e:
                raise ConfigError(f"{self.name}: no config field {dotted!r} (no {e.args[0]!r})") from None
        return validate_config(type(self), data, self.name)


def select_packing(
    entries: tuple[PackingEntry, ...], wbits: int, abits: int, where: str = "packing"
) -> PackingEntry:
    """Of the entries that cover the operands (``entry.wbits >= wbits`` and ``entry.abits >=
    abits``), the one with the most products per DSP, so fewer bits never pack fewer products.

    Raises:
        ConfigError: if no entry covers the operands.
    """
    best: PackingEntry | None = None
    for e in entries:
        if e.wbits >= wbits and e.abits >= abits and (best is None or e.macs > best.macs):
            best = e
    if best is None:
        have = ", ".join(f"w{e.wbits}a{e.abits}" for e in entries)
        raise ConfigError(
            f"{where}: packing has no entry for {wbits}-bit weights and {abits}-bit activations "
            f"(entries: {have})"
        )
    return best


def bram36_for_bytes(nbytes: int) -> int:
    """BRAM36 blocks to hold ``nbytes``: 32 Kb of data each without parity (Xilinx UG573)."""
    return math.ceil(nbytes / 4096)


@cache
def _board_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BOARD_DIR.glob("*.yaml"))}


def list_boards() -> list[str]:
    """Names of the board presets in ``hw_configs/boards/``."""
    return sorted(_board_files())


def list_configs() -> list[str]:
    """Names of the accelerator configs in ``hw_configs/``, the published designs' as
    ``published/<name>``."""
    names = [p.stem for p in HW_CONFIG_DIR.glob("*.yaml")]
    names += [f"published/{p.stem}" for p in (HW_CONFIG_DIR / "published").glob("*.yaml")]
    return sorted(names)


@cache
def get_board(name: str) -> BoardSpec:
    """The board preset ``name``.

    Raises:
        ConfigError: unknown board; the message lists the known ones.
    """
    files = _board_files()
    if name not in files:
        raise ConfigError(unknown("board", name, files))
    return load_config(files[name], BoardSpec)
