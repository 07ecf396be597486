"""SCALE-Sim inputs as an accelsim design: a ``.cfg`` becomes a HardwareConfig, a topology a Graph.

Parsing is :mod:`accelsim.sim.scalesim.io`'s; this module only translates:

- the array (rows x cols, dataflow) as is, one MAC per PE (SCALE-Sim has no DSP packing), 1-byte
  words, ifmap/filter/ofmap SRAM sizes as the input/weight/output buffers, double-buffered as in
  SCALE-Sim's ``double_buffered_scratchpad``;
- ``InterfaceBandwidth: USER``: ``Bandwidth`` words per cycle on one channel; ``CALC`` (SCALE-Sim
  picks a stall-free bandwidth): an effectively unconstrained DRAM (``UNCONSTRAINED_BYTES_PER_CYCLE``,
  no latency);
- a virtual board with the resources the design needs (``virtual``: the report gives no fit and
  no power for it);
- each topology layer a matmul op with SCALE-Sim's own GEMM dimensions, every layer reading its
  input from DRAM and writing its output back (SCALE-Sim simulates layers independently).

The clock is ``CLOCK_MHZ`` (SCALE-Sim counts cycles only), so ``latency_ms`` is in units of
thousands of cycles.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from accelsim.config.hardware import HardwareConfig
from accelsim.ir.graph import Graph, Op, OpKind, Tensor
from accelsim.sim.scalesim.io import (
    ScaleSimConfig,
    ScaleSimLayer,
    read_scalesim_config,
    read_scalesim_topology,
)

if TYPE_CHECKING:
    from accelsim.sim.graph_arrays import GraphArrays

CLOCK_MHZ = 1000.0
UNCONSTRAINED_BYTES_PER_CYCLE = 1 << 20


def hardware_from_scalesim(cfg: ScaleSimConfig) -> HardwareConfig:
    """The accelsim design equivalent to a SCALE-Sim config."""
    bpc = float(sum(cfg.bandwidth) if cfg.interface_bandwidth == "USER" else UNCONSTRAINED_BYTES_PER_CYCLE)
    latency = 0 if cfg.interface_bandwidth == "CALC" else 1
    pes = cfg.array_rows * cfg.array_cols
    big = 1 << 30
    data = {
        "name": cfg.run_name,
        "board": {
            "name": "scalesim",
            "device": "virtual (SCALE-Sim)",
            "dsp": pes + 64,
            "bram36": big,
            "uram": big,
            "lut": big,
            "dram_bandwidth_gbs": bpc * CLOCK_MHZ / 1e3,
            "source": "virtual board sized to fit the SCALE-Sim design",
            "virtual": True,
        },
        "clock_mhz": CLOCK_MHZ,
        "array": {
            "rows": cfg.array_rows,
            "cols": cfg.array_cols,
            "dataflow": cfg.dataflow,
            "timing": "scalesim",
        },
        "packing": {8: 1},
        "buffers": {
            "input_kib": cfg.ifmap_sram_kb,
            "weight_kib": cfg.filter_sram_kb,
            "output_kib": cfg.ofmap_sram_kb,
            "double_buffer": True,
        },
        "dram": {
            "bandwidth_gbs": bpc * CLOCK_MHZ / 1e3,
            "latency_cycles": latency,
            "burst_bytes": 1,
            "channels": 1,
        },
        "units": {"vector": {"lanes": 64}},
    }
    return HardwareConfig.from_dict(data, source=f"SCALE-Sim config {cfg.run_name!r}")


def graph_from_topology(layers: list[ScaleSimLayer], name: str = "scalesim") -> Graph:
    """One independent matmul op per SCALE-Sim layer, with SCALE-Sim's GEMM dimensions."""
    g = Graph(name, meta={"source": "scalesim"})
    for layer in layers:
        m, k, n = layer.gemm_dims()
        x = f"{layer.name}.ifmap"
        w = f"{layer.name}.filter"
        y = f"{layer.name}.ofmap"
        g.add_tensor(Tensor(x, (layer.ifmap_h, layer.ifmap_w, layer.channels)))
        g.add_tensor(Tensor(w, (k, n), weight=True))
        g.add_tensor(Tensor(y, (m, n)))
        g.add_op(
            Op(
                layer.name,
                OpKind.MATMUL,
                (x, w),
                (y,),
                {"batch": 1, "M": m, "K": k, "N": n, "operands": "wa"},
                macs=m * k * n,
            )
        )
    return g.validate()


def arrays_from_topology(layers: list[ScaleSimLayer], name: str = "scalesim") -> GraphArrays:
    """What :func:`compile_graph` makes of :func:`graph_from_topology`'s graph, built directly
    (:func:`gemm_list_arrays`: no Graph, no per-op Python; the graph's own checks and errors where
    two layers share a name)."""
    from accelsim.sim.graph_arrays import (
        compile_graph,
        gemm_list_arrays,
    )  # the kernels' module: not on load_scalesim's path

    gemms = [(x.name, *x.gemm_dims(), x.ifmap_h * x.ifmap_w * x.channels) for x in layers]
    if len({g[0] for g in gemms}) < len(gemms):
        return compile_graph(graph_from_topology(layers, name))
    return gemm_list_arrays(name, gemms)


def load_scalesim(config_path: str | Path, topology_path: str | Path) -> tuple[HardwareConfig, Graph]:
    """Read a SCALE-Sim config and topology as ``(HardwareConfig, Graph)``.

    Raises:
        ConfigError: malformed files (file, line and field named by the parser).
    """
    cfg = read_scalesim_config(config_path)
    layers = read_scalesim_topology(topology_path)
    return hardware_from_scalesim(cfg), graph_from_topology(layers, Path(topology_path).stem)
