"""The CLI's options and commands for a hardware researcher: ``--set``, ``--batch``, ``configs``,
``--help``, and close-name suggestions. In-process through ``accelsim.cli.main``, on saved graphs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelsim._names import suggest
from accelsim.cli import main
from accelsim.config.hardware import HardwareConfig, list_boards, list_configs
from accelsim.ir import Graph
from accelsim.ir.builders import vit_graph
from accelsim.sim import simulate


@pytest.fixture
def graph_path(tmp_path: Path) -> Path:
    return vit_graph((64, 1, 2), img_size=32).save(tmp_path / "g.json")


def test_set_changes_the_config_like_with_changes(
    graph_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    argv = ["simulate", str(graph_path), "--hw", "zcu104", "--set", "array.rows=16", "--set", "clock_mhz=250"]
    assert main([*argv, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "16x48 ws" in text.splitlines()[0] and "250 MHz" in text.splitlines()[0]
    got = json.loads(out.read_text())
    want = simulate(
        Graph.load(graph_path),
        HardwareConfig.load("zcu104").with_changes(**{"array.rows": 16, "clock_mhz": 250}),
    )
    assert got["total_cycles"] == want.total_cycles and got["dsp_used"] == want.dsp_used
    # the name says what was changed: the shipped name alone would claim 32 rows
    assert got["hardware"] == "sa32x48_ws.zcu104 [array.rows=16, clock_mhz=250]"


def test_set_takes_yaml_values_and_whole_sections(
    graph_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "simulate",
        str(graph_path),
        "--set",
        "array.dataflow=[ws, os]",
        "--set",
        "units.dwconv={macs: 144}",
    ]
    assert main(argv) == 0
    assert "(zcu102, 32x64 ws/os, pipelined" in capsys.readouterr().out.splitlines()[0]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["array.rowz=48"], "--set: unknown config field 'array.rowz'; did you mean 'array.rows'?"),
        (["array.rows=-1"], "array.rows: Input should be greater than 0 (got -1)"),
        (["array.rows"], "--set 'array.rows': give FIELD=VALUE"),
        (["clock_mhz=[1"], "--set clock_mhz: '[1' is not a value"),
    ],
)
def test_set_errors_name_the_field(
    sets: list[str], message: str, graph_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", str(graph_path)]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_batch_of_a_saved_graph_gives_throughput(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = vit_graph((64, 1, 2), img_size=32)
    g.meta["input_shape"] = [4, 3, 32, 32]  # what `accelsim lower --batch 4` records
    path = g.save(tmp_path / "b4.json")
    out = tmp_path / "r.json"
    assert main(["simulate", str(path), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "per batch of 4" in text and "(throughput, batch 4)" in text
    r = json.loads(out.read_text())
    assert r["frames"] == 4
    assert r["fps"] == pytest.approx(4 / (r["latency_ms"] / 1e3), rel=1e-12)


@pytest.mark.slow  # two lowerings (torch.export): the saved-graph test above covers the report
def test_lower_batch_scales_the_work_and_simulate_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = tmp_path / "b1.json", tmp_path / "b2.json"
    assert main(["lower", "test_vit", "--img-size", "32", "-o", str(one)]) == 0
    assert main(["lower", "test_vit", "--img-size", "32", "--batch", "2", "-o", str(two)]) == 0
    g1, g2 = Graph.load(one), Graph.load(two)
    assert g2.meta["input_shape"][0] == 2 and g2.total_macs == 2 * g1.total_macs
    capsys.readouterr()
    assert main(["simulate", str(two)]) == 0
    assert "(throughput, batch 2)" in capsys.readouterr().out
    # a saved graph keeps its batch: --batch there would be silently ignored
    assert main(["simulate", str(two), "--batch", "4"]) == 2
    assert "(--batch) do not apply to" in capsys.readouterr().err


def test_configs_lists_every_config_and_board_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    configs, boards = list_configs(), list_boards()
    assert len(lines) == 2 + len(configs) + len(boards)
    config_lines, board_lines = lines[1 : 1 + len(configs)], lines[2 + len(configs) :]
    assert [x.split()[0] for x in config_lines] == configs and [x.split()[0] for x in board_lines] == boards
    for name, line in zip(configs, config_lines, strict=True):
        hw = HardwareConfig.load(name)
        assert (
            f"{hw.array.rows}x{hw.array.cols}" in line
            and f"array {hw.array.dsps:,} of {hw.board.dsp:,} DSP" in line
        )
    zcu102 = board_lines[boards.index("zcu102")]
    assert "XCZU9EG" in zcu102 and "2,520 DSP" in zcu102 and "912 BRAM36" in zcu102


def test_help_speaks_to_users(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "How fast does a ViT run on an FPGA accelerator" in text
    for command in ("simulate", "lower", "configs", "eval", "search"):
        assert f"accelsim {command}" in text  # an example of each


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulat"], "unknown choice 'simulat'; did you mean 'simulate'?"),
        (
            ["simulate", "{graph}", "--hw", "zcu1O2"],
            "unknown hardware config 'zcu1O2'; did you mean 'zcu102'",
        ),
        (["lower", "m", "--format", "jsn"], "unknown choice 'jsn'; did you mean 'json'?"),
        (
            ["eval", "--workload", "{workloads}/ref_deit_w8a88.yaml"],
            "did you mean '{workloads}/ref_deit_w8a8.yaml'",
        ),
        (
            ["search", "--space", "{workloads}/search_smal.yaml"],
            "did you mean '{workloads}/search_small.yaml'?",
        ),
    ],
)
def test_unknown_names_suggest_close_ones(
    argv: list[str], message: str, graph_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workloads = Path(__file__).parent.parent / "workloads"
    argv = [a.format(graph=graph_path, workloads=workloads) for a in argv]
    message = message.format(workloads=workloads)
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own usage errors
        rc = int(e.code or 0)
    assert rc == 2 and message in capsys.readouterr().err


def test_suggest_ranks_by_edit_distance_to_a_name_or_its_prefix() -> None:
    names = [
        "deit_tiny_patch16_224",
        "deit_tiny_distilled_patch16_224",
        "deit_small_patch16_224",
        "davit_tiny",
    ]
    assert suggest("deit_tinyy", names) == ["deit_tiny_patch16_224", "deit_tiny_distilled_patch16_224"]
    assert suggest("deit_smal_patch16_224", names)[0] == "deit_small_patch16_224"
    assert suggest("resnet50", names) == []
    assert suggest("array.rowz", ["array.rows", "array.cols", "clock_mhz"]) == ["array.rows"]
