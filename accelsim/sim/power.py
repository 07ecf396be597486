"""The (labelled) energy estimate of a simulated frame.

Dynamic energy: MACs by operand bits, on-chip buffer bytes, DRAM bytes and vector-lane operations,
with the coefficients of the config's :class:`~accelsim.config.hardware.EnergyConfig`; the report
adds the device's static power. An estimate, not a measurement.
"""

from __future__ import annotations

import numpy as np

from accelsim.config.hardware import HardwareConfig
from accelsim.sim._kernels import CLS_MOVE, DF_WS, ENG_ARRAY
from accelsim.sim.schedule import Schedule


def _mac_pj(hw: HardwareConfig, bits: np.ndarray) -> np.ndarray:
    table = hw.energy.mac_pj
    keys = np.array(sorted(table), dtype=np.int64)
    vals = np.array([table[int(k)] for k in keys])
    idx = np.minimum(np.searchsorted(keys, bits), len(keys) - 1)
    return vals[idx]


def energy_pj(schedule: Schedule, dram_bytes: int) -> float:
    """Dynamic energy of one frame in pJ.

    On-chip bytes count every operand read from and result written to a buffer once per op, plus
    the re-reads of the streamed operand of array GEMMs under ws (once per outer fold).
    """
    ga, p, hw = schedule.graph, schedule.plan, schedule.hardware
    e = hw.energy
    key = ("energy", tuple(sorted(e.mac_pj.items())), schedule.eq_ptr.tobytes())
    hit = ga._cache.get(key)
    if hit is None:
        mac = float((ga.macs * _mac_pj(hw, ga.bits)).sum())
        sram = float(ga.in_bytes.sum() + ga.out_bytes.sum())
        unit = (schedule.engine > ENG_ARRAY) & (ga.cls != CLS_MOVE)
        vec = float((ga.elements * ga.passes)[unit].sum())
        mk = ((schedule.engine == ENG_ARRAY) * ga.M * ga.K).astype(np.float64)
        hit = ga._cache[key] = (mac, sram, vec, mk)
    mac, sram, vec, mk = hit
    sram += float(np.dot((p.n_outer - 1) * (p.dataflow == DF_WS), mk))
    return mac + sram * e.sram_pj_per_byte + dram_bytes * e.dram_pj_per_byte + vec * e.vector_pj_per_op
