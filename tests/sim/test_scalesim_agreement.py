"""Our timing == the real SCALE-Sim 3.0.0 == the PE-level model, on the recorded reference runs.

``tests/data/scalesim/reference.json`` holds what SCALE-Sim printed for each (config, layer) pair;
it was produced by ``benchmarks/scalesim/run_reference.py`` (see ``benchmarks/scalesim/README.md``)
from the ``.cfg`` and ``.csv`` files in ``tests/data/scalesim/reference/``, which we parse here with
our own reader, so the parser's conv -> GEMM conversion is checked too.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from accelsim.sim.engines.systolic import gemm_timing
from accelsim.sim.reference.pe import pe_gemm
from accelsim.sim.scalesim.io import (
    ScaleSimConfig,
    ScaleSimLayer,
    read_scalesim_config,
    read_scalesim_topology,
)

REF = Path(__file__).parents[1] / "data" / "scalesim"
RECORD = json.loads((REF / "reference.json").read_text())


@cache
def _config(name: str) -> ScaleSimConfig:
    return read_scalesim_config(REF / "reference" / name)


@cache
def _layers(topology: str) -> dict[str, ScaleSimLayer]:
    return {x.name: x for x in read_scalesim_topology(REF / "reference" / topology)}


# SCALE-Sim's run time grows with the demand-matrix rows it steps through: for the DeiT GEMM list
# on 8x8 that is ~12x the rows of 32x32, too long for the shared 2-core machine, so on 8x8 the
# reference has the smaller layers only (benchmarks/scalesim/README.md has the command).
SA8X8_LAYERS = {
    "attn_qk",
    "attn_av",
    "head",
    "one",
    "tiny",
    "primes",
    "tall",
    "deep",
    "ragged",
    "conv3x3",
    "conv_s2",
    "DPdw",
}

RUNS = [(run["config"], run["topology"], layer) for run in RECORD["runs"] for layer in run["layers"]]
CASES = [pytest.param(c, t, layer, id=f"{c[:-4]}-{layer['name']}") for c, t, layer in RUNS]


def test_record_is_from_scalesim_3_0_0_and_complete() -> None:
    assert RECORD["scalesim_version"] == "3.0.0"
    cfgs = sorted(p.name for p in (REF / "reference").glob("*.cfg"))
    topologies = sorted({run["topology"] for run in RECORD["runs"]})
    assert topologies == ["deit_tiny_conv.csv", "deit_tiny_gemm.csv", "odd_gemm.csv"]
    recorded = {
        (run["config"], run["topology"], layer["name"]) for run in RECORD["runs"] for layer in run["layers"]
    }
    expected = {
        (c, t, name)
        for c in cfgs
        for t in topologies
        for name in _layers(t)
        if not c.startswith("sa8x8_") or name.split("Channel_")[0] in SA8X8_LAYERS
    }
    assert recorded == expected


@pytest.mark.parametrize(("cfg_name", "topology", "ref"), CASES)
def test_gemm_timing_equals_scalesim(cfg_name: str, topology: str, ref: dict[str, Any]) -> None:
    cfg = _config(cfg_name)
    layer = _layers(topology)[ref["name"]]
    t = gemm_timing(*layer.gemm_dims(), cfg.array_rows, cfg.array_cols, cfg.dataflow, "scalesim")
    assert ref["stall_cycles"] == 0  # CALC bandwidth + 64 MiB SRAMs: memory never in the way
    assert t.compute_cycles == ref["compute_cycles"]
    assert t.scalesim_mapping_efficiency * 100 == pytest.approx(ref["mapping_efficiency_pct"], rel=1e-12)
    assert t.scalesim_compute_utilization * 100 == pytest.approx(ref["compute_util_pct"], rel=1e-12)
    # SCALE-Sim's overall utilisation = MACs / (compute cycles x PEs): checks our MAC count as well
    overall = layer.macs / (ref["compute_cycles"] * cfg.array_rows * cfg.array_cols)
    assert overall * 100 == pytest.approx(ref["overall_util_pct"], rel=1e-12)


SMALL = [
    pytest.param(c, t, layer, id=f"{c[:-4]}-{layer['name']}")
    for c, t, layer in RUNS
    if math.prod(_layers(t)[layer["name"]].gemm_dims()) <= 200_000
]


@pytest.mark.parametrize(("cfg_name", "topology", "ref"), SMALL)
def test_pe_model_equals_scalesim(cfg_name: str, topology: str, ref: dict[str, Any]) -> None:
    cfg = _config(cfg_name)
    M, K, N = _layers(topology)[ref["name"]].gemm_dims()
    rng = np.random.default_rng(M * K * N)
    a = rng.integers(-128, 128, (M, K))
    b = rng.integers(-128, 128, (K, N))
    prod, cycles = pe_gemm(a, b, cfg.array_rows, cfg.array_cols, cfg.dataflow, "scalesim")
    assert cycles == ref["compute_cycles"]
    np.testing.assert_array_equal(prod, a @ b)
