"""What ``accelsim simulate`` and ``accelsim eval`` tell a researcher: the per-layer bound, the
hint for ops on an engine that suits them badly, no board claims for a SCALE-Sim config, the
graph's precision, per-layer power and energy, the recipe and teacher of an evaluation."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from _helpers import matmul_graph, tiny_hw

from accelsim.cli import main
from accelsim.config.hardware import HardwareConfig, get_board
from accelsim.config.workload import Workload
from accelsim.eval import EvalResult, recipe_summary, teacher_summary
from accelsim.ir import Graph
from accelsim.ir.builders import add_mbconv, vit_graph
from accelsim.sim import simulate

SCALESIM = Path(__file__).parent / "data" / "scalesim" / "reference"
WORKLOADS = Path(__file__).parent.parent / "workloads"


def test_gemv_on_a_ws_array_is_weight_load_bound() -> None:
    # M = 1 on a 4x4 ws array (SCALE-Sim timing): 16 folds of 2R + C + T - 2 = 11 cycles, each
    # waiting for its 4 weight rows; DRAM at 1,000 B/cycle moves the 288 B in under one cycle.
    fast = tiny_hw(dram__bandwidth_gbs=100.0, dram__latency_cycles=0)
    (row,) = simulate(matmul_graph(1, 16, 16), fast).layers
    assert row.compute_cycles == 16 * 11 - 1 and row.stall_cycles <= 1
    assert row.bound == "weight load"
    # 8 rows stream through each fold (T = 8 >= R = 4): the array computes
    (row,) = simulate(matmul_graph(8, 16, 16), fast).layers
    assert row.bound == "compute"


def test_dram_bound_op_names_weights_or_activations() -> None:
    # 4 B/cycle: a 64x64 weight (4,096 B, 1,024 cycles) against 64 compute-fold cycles
    (row,) = simulate(matmul_graph(1, 64, 64), tiny_hw()).layers
    assert row.bound == "weight load" and row.dram_load_bytes == 64 + 4096
    # activations dominate: x 512 B and y 256 B against w 64 B (12 + 8 DRAM cycles > 18 compute)
    (row,) = simulate(matmul_graph(128, 4, 2), tiny_hw()).layers
    assert row.bound == "memory"


def test_deit_classifier_is_weight_load_on_zcu102() -> None:
    r = simulate(vit_graph("tiny"), HardwareConfig.load("zcu102"))
    head = next(x for x in r.layers if x.name == "head")
    assert head.bound == "weight load"
    assert next(x for x in r.layers if x.name == "blocks.0.mlp.fc1").bound == "compute"


def _mbconv_graph(n: int) -> Graph:
    g = Graph("mbconvs")
    for i in range(n):
        add_mbconv(g, f"b{i}", 64, 28, 64)
    return g


def test_hint_when_many_dwconvs_fall_back_to_the_array() -> None:
    r = simulate(_mbconv_graph(6), HardwareConfig.load("zcu102"))
    (hint,) = r.hints()
    assert hint.startswith("6 dwconv2d ops on the array (") and hint.endswith(
        "a config with units.dwconv runs them"
    )
    assert "hint: 6 dwconv2d ops on the array" in r.table()
    assert simulate(_mbconv_graph(6), HardwareConfig.load("zcu102_trio")).hints() == []
    assert simulate(_mbconv_graph(3), HardwareConfig.load("zcu102")).hints() == []  # not many


def test_scalesim_config_reports_no_board_fit_and_no_power(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    cfg, topo = SCALESIM / "sa32x32_ws.cfg", SCALESIM / "deit_tiny_gemm.csv"
    argv = ["simulate", "--scalesim-config", str(cfg), "--topology", str(topo), "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "board: none" in text and "fits:" not in text and "power ~" not in text and " W" not in text
    r = json.loads(out.read_text())
    assert r["fits"] is None and r["power_w_estimate"] is None and r["energy_mj_estimate"] is None
    assert r["power_breakdown_w_estimate"] == {}
    assert all(x["power_w_estimate"] is None for x in r["layers"])


def test_header_names_the_graph_precision_not_the_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = vit_graph((64, 1, 2), img_size=32, bits=4).save(tmp_path / "w4.json")
    assert main(["simulate", str(path)]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.startswith("vit_64x1h2 (W4A4) on sa32x64_ws.zcu102 (")
    assert "int8" not in header.lower()


def test_layer_power_and_energy_in_the_csv(tmp_path: Path) -> None:
    path = vit_graph((64, 1, 2), img_size=32).save(tmp_path / "g.json")
    out = tmp_path / "l.csv"
    assert main(["simulate", str(path), "--csv", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    board = get_board("zcu102").power
    fixed = board.device_static_w + board.ps_w + board.platform_w
    worked = [r for r in rows if int(r["cycles"]) > 0]
    assert worked and all(r["power_w_estimate"] and r["energy_uj_estimate"] for r in worked)
    for r in worked:
        power, energy = float(r["power_w_estimate"]), float(r["energy_uj_estimate"])
        assert power > fixed  # static and PS power plus the op's dynamic power
        assert energy == pytest.approx(power * int(r["cycles"]) / 200.0, rel=1e-9)  # W x us at 200 MHz
    # the MLP's GEMMs keep the array's DSPs busier than the softmax keeps the vector unit's
    by_name = {r["name"]: float(r["power_w_estimate"]) for r in worked}
    assert by_name["blocks.0.mlp.fc1"] > by_name["blocks.0.attn.softmax"]
    idle = [r for r in rows if int(r["cycles"]) == 0]
    assert all(r["power_w_estimate"] == "" for r in idle)


def _eval_result(recipe: dict[str, object], teacher: str) -> EvalResult:
    return EvalResult(
        workload="w", model="ref_deit", accuracy=0.9, top5=1.0, correct=9, images=10, macs=1, macs_source="graph",
        params=1, dataset="digits", recipe=recipe, teacher=teacher,
    )  # fmt: skip


def test_eval_summary_names_the_recipe_and_the_teacher() -> None:
    distilled = Workload.load(WORKLOADS / "ref_deit_distilled_prune50.yaml")
    teacher = teacher_summary(distilled, distilled.compression)
    assert teacher == "ref_cnn (pretrained)"
    recipe = distilled.compression.model_dump(exclude_none=True)
    line = recipe_summary(distilled.compression.model_dump(exclude_unset=True, exclude_none=True))
    assert line == (
        "prune(heads_keep=0.5, mlp_keep=0.5, saliency=magnitude); "
        "distill(epochs=2, lr=0.0005, use_dist_token=True, kind=hard)"
    )
    assert recipe_summary(recipe).startswith("prune(heads_keep=0.5, mlp_keep=0.5")  # defaults spelt out
    table = _eval_result(recipe, teacher).table()
    lines = {line.split()[0]: line.split(None, 1)[1] for line in table.splitlines()}
    assert lines["recipe"].startswith("prune(heads_keep=0.5") and lines["teacher"] == "ref_cnn (pretrained)"
    w8a8 = Workload.load(WORKLOADS / "ref_deit_w8a8.yaml")
    assert teacher_summary(w8a8, w8a8.compression) == ""
    table = _eval_result(w8a8.compression.model_dump(exclude_none=True), "").table()
    assert recipe_summary({}) == "none (the uncompressed model)"
    lines = {line.split()[0]: line.split(None, 1)[1] for line in table.splitlines()}
    assert lines["teacher"] == "none (no distillation)" and lines["recipe"].startswith(
        "quant(wbits=8, abits=8"
    )
