"""Report export (JSON, CSV, Chrome trace, table), the CLI and the synthetic DeiT graphs."""

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import chain_graph, tiny_hw

from accelsim.cli import main
from accelsim.config.hardware import HardwareConfig
from accelsim.ir.builders import vit_graph
from accelsim.sim import map_graph, save_trace, simulate


def test_to_dict_csv_and_trace(tmp_path: Path) -> None:
    r = simulate(chain_graph(8, 4, 16), tiny_hw())
    d = json.loads(json.dumps(r.to_dict()))
    for key in ("total_cycles", "latency_ms", "fps", "gops", "gops_per_dsp", "dsp_used", "bram36_used",
                "array_utilization", "dram_bytes", "fits", "overflow", "gops_per_watt_estimate"):  # fmt: skip
        assert key in d
    assert [x["name"] for x in d["layers"]] == ["fc1", "gelu", "fc2"]
    assert {
        "name",
        "compute_cycles",
        "scalesim_mapping_efficiency",
        "scalesim_compute_utilization",
        "utilization",
        "cycles",
        "stall_cycles",
    } <= set(d["layers"][0])
    # GOPS = 2 MACs / latency; latency = cycles / clock.
    assert d["gops"] == pytest.approx(2 * r.total_macs / (r.total_cycles / 100e6) / 1e9)
    assert d["latency_ms"] == pytest.approx(r.total_cycles / 100e3)
    r.save_csv(tmp_path / "l.csv")
    rows = list(csv.DictReader((tmp_path / "l.csv").open()))
    assert [row["name"] for row in rows] == ["fc1", "gelu", "fc2"]
    assert int(rows[0]["compute_cycles"]) == r.layers[0].compute_cycles
    save_trace(map_graph(chain_graph(8, 4, 16), tiny_hw()), tmp_path / "t.json")
    trace = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    threads = {e["args"]["name"] for e in trace if e["name"] == "thread_name"}
    assert {"array", "vector", "dram0"} <= threads
    busy = [e for e in trace if e["ph"] == "X" and e["tid"] == 0]
    # Sum of array slices (us) equals the array's busy cycles at 100 MHz.
    assert sum(e["dur"] for e in busy) == pytest.approx(r.engine_busy_cycles["array"] / 100)
    assert "fc1" in r.table()


def test_synthetic_deit_macs_hand_count() -> None:
    g = vit_graph("tiny")
    # Patch embed + 12 blocks (qkv, QK^T and AV per head, proj, fc1, fc2) + head, by hand:
    tokens, d = 197, 192
    block = tokens * d * 3 * d + 2 * 3 * tokens * tokens * 64 + tokens * d * d + 2 * tokens * d * 4 * d
    assert g.total_macs == 196 * 768 * d + 12 * block + d * 1000


def test_deit_tiny_on_default_design() -> None:
    r = simulate(vit_graph("tiny"), "zcu102")
    assert r.fits and r.total_macs == vit_graph("tiny").total_macs
    assert 0.05 < r.array_utilization < 1.0
    by_engine = {row.engine for row in r.layers}
    assert {"array", "vector", "none"} == by_engine


def test_cli_simulate_graph_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gpath = vit_graph((64, 1, 2), img_size=32).save(tmp_path / "g.json")
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "simulate",
                str(gpath),
                "--hw",
                "zcu102",
                "--json",
                str(out),
                "--trace",
                str(tmp_path / "t.json"),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["fits"] is True
    assert "FPS" in capsys.readouterr().out
    # A design that does not fit its board: one line on stderr naming the resource, non-zero exit.
    bad = tmp_path / "bad.yaml"  # JSON is YAML
    hw = HardwareConfig.load("kv260").with_changes(**{"array.rows": 64, "array.cols": 64})
    bad.write_text(json.dumps(hw.model_dump(mode="json")))
    assert main(["simulate", str(gpath), "--hw", str(bad)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not fit kv260" in err[0] and "dsp: 4256 used > 1248" in err[0]
    assert main(["simulate", str(gpath), "--hw", "nope"]) == 2
    assert "unknown hardware config 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--wbits", "4", "--img-size", "64"],
            "options for lowering a model (--img-size, --wbits) do not apply to",
        ),
        (["--accuracy"], "--accuracy needs --workload"),
        (["--sqnr-csv", "s.csv"], "--sqnr-csv needs --accuracy (the table comes from the bit-true run)"),
        (
            ["--topology", "t.csv"],
            "simulate takes one input, got MODEL|graph.json and --scalesim-config/--topology",
        ),
        (["--workload", "w.yaml"], "simulate takes one input, got MODEL|graph.json and --workload"),
    ],
)
def test_cli_simulate_refuses_options_it_would_ignore(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gpath = vit_graph((64, 1, 2), img_size=32).save(tmp_path / "g.json")
    assert main(["simulate", str(gpath), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_cli_lowering_options_do_not_apply_to_workloads(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--workload", "w.yaml", "--abits", "4"]) == 2
    assert "(--abits) do not apply to --workload: its recipe sets" in capsys.readouterr().err


@pytest.mark.slow
def test_simulating_a_saved_graph_never_imports_torch(tmp_path: Path) -> None:
    gpath = vit_graph((64, 1, 2), img_size=32).save(tmp_path / "g.json")
    code = (
        "import sys; from accelsim.cli import main; rc = main(['simulate', sys.argv[1]]); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(gpath)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def test_layer_rows_name_the_module_each_op_came_from() -> None:
    g = chain_graph(8, 4, 16)
    fc1 = g.op("fc1")
    g.replace_op(dataclasses.replace(fc1, module="blocks.0.mlp.fc1"))
    r = simulate(g, tiny_hw())
    assert [(row.name, row.module) for row in r.layers] == [
        ("fc1", "blocks.0.mlp.fc1"),
        ("gelu", ""),
        ("fc2", ""),
    ]
    assert r.to_dict()["layers"][0]["module"] == "blocks.0.mlp.fc1"
    assert "blocks.0.mlp.fc1" in r.table()


def test_cli_output_into_a_closed_pipe_is_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`accelsim simulate g.json | head -1`: the reader leaves early; exit 141 like other tools, quietly."""
    import os

    gpath = vit_graph((64, 1, 2), img_size=32).save(tmp_path / "g.json")
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "w", buffering=1) as closed_pipe:
        monkeypatch.setattr("sys.stdout", closed_pipe)
        assert main(["simulate", str(gpath)]) == 141
    assert "Traceback" not in capsys.readouterr().err


def test_build_report_sets_every_field_in_order() -> None:
    """build_report fills the Report's __dict__ directly (not through the frozen dataclass's
    __init__): every field, in the declared order (to_dict's), equal to the Report __init__ builds."""
    r = simulate(chain_graph(8, 4, 16), tiny_hw())
    names = [f.name for f in dataclasses.fields(r)]
    assert list(vars(r)) == names
    again = type(r)(**{n: getattr(r, n) for n in names})
    assert vars(again) == vars(r)
    assert again.to_json() == r.to_json()
