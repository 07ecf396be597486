"""simulate_scalesim on the SCALE-Sim inputs whose results were recorded by running SCALE-Sim 3.0.0
(tests/data/scalesim/reference.json, produced by benchmarks/scalesim/run_reference.py)."""

import json
from collections import defaultdict
from pathlib import Path

import pytest

from accelsim.errors import ConfigError
from accelsim.sim import simulate_scalesim

DATA = Path(__file__).resolve().parents[1] / "data" / "scalesim"


def _expected() -> dict[tuple[str, str], dict[str, dict]]:
    ref = json.loads((DATA / "reference.json").read_text())
    out: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for run in ref["runs"]:
        for layer in run["layers"]:
            out[(run["config"], run["topology"])][layer["name"]] = layer
    return out


EXPECTED = _expected()


@pytest.mark.parametrize(("cfg", "topo"), sorted(EXPECTED))
def test_layers_equal_scalesim(cfg: str, topo: str) -> None:
    report = simulate_scalesim(DATA / "reference" / cfg, DATA / "reference" / topo)
    rows = {r.name: r for r in report.layers}
    for name, ref in EXPECTED[(cfg, topo)].items():
        row = rows[name]
        assert row.compute_cycles == ref["compute_cycles"], name
        assert row.scalesim_mapping_efficiency == pytest.approx(
            ref["mapping_efficiency_pct"] / 100, rel=1e-12
        )
        assert row.scalesim_compute_utilization == pytest.approx(ref["compute_util_pct"] / 100, rel=1e-12)
        assert row.cycles == row.compute_cycles + row.stall_cycles
    assert report.fits


def test_malformed_scalesim_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cfg"
    bad.write_text("[architecture_presets]\nArrayHeight: 0\n")
    with pytest.raises(ConfigError, match=r"bad\.cfg"):
        simulate_scalesim(bad, DATA / "example_gemm.csv")
