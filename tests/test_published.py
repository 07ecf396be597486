"""The published designs (hw_configs/published/): their reference sections, the assumptions'
alternatives, the figures' metrics, and the fidelity goal where a paper pins the design."""

from __future__ import annotations

import pytest
from _helpers import matmul_graph, tiny_hw

from accelsim.config.hardware import HardwareConfig
from accelsim.config.reference import Assumption, PublishedFigure, PublishedReference
from accelsim.errors import ConfigError
from accelsim.published import GOAL, POWER_GOAL, alternatives, check_design, measure, published_designs
from accelsim.sim import simulate
from accelsim.sim.resources import estimate_resources

DESIGNS = published_designs()


def test_the_papers_designs_are_shipped() -> None:
    assert {d.removeprefix("published/") for d in DESIGNS} >= {
        "efficientvit_fpga", "huang_tcas1", "auto_vit_acc", "heatvit", "trio_vit", "p2_vit",
    }  # fmt: skip


@pytest.mark.parametrize("name", DESIGNS)
def test_every_alternative_of_every_assumption_is_a_config_that_fits(name: str) -> None:
    hw = HardwareConfig.load(name)
    assert hw.reference is not None and hw.reference.assumptions
    for a in hw.reference.assumptions:
        for values in alternatives(hw, a):
            alt = hw.with_changes(**dict(zip(a.fields, values, strict=True)))
            assert alt != hw
            assert estimate_resources(alt).fits, (a.field, values)


def test_default_alternatives_halve_and_double_numbers_and_flip_switches() -> None:
    hw = tiny_hw(epilogue={"activation": True})
    why = "not in the paper"
    assert alternatives(hw, Assumption(field="array.rows", why=why)) == [(2,), (8,)]
    assert alternatives(hw, Assumption(field="dram.bandwidth_gbs", why=why)) == [(0.2,), (0.8,)]
    assert alternatives(hw, Assumption(field="epilogue.activation", why=why)) == [(False,)]
    both = Assumption(field=["array.rows", "array.cols"], why=why, vary=[[2, 8]])
    assert alternatives(hw, both) == [(2, 8)]
    with pytest.raises(ConfigError, match=r"'array\.dataflow' is not a number or a switch; give vary"):
        alternatives(hw, Assumption(field="array.dataflow", why=why))


def test_reference_sections_are_checked_when_loaded() -> None:
    ref = {"paper": "p", "pinned": False, "assumptions": [{"field": "array.nope", "why": "w"}]}
    with pytest.raises(ConfigError, match=r"'array\.nope' is not a field of this config"):
        tiny_hw(reference=ref)
    ref["assumptions"] = [{"field": ["array.rows", "array.cols"], "why": "w", "vary": [[4]]}]
    with pytest.raises(ConfigError, match=r"each alternative needs one value per field"):
        tiny_hw(reference=ref)


def test_figure_metrics_on_one_gemm_by_hand() -> None:
    hw = tiny_hw()
    g = matmul_graph(8, 8, 8)  # 512 MACs
    r = simulate(g, hw)
    (row,) = [x for x in r.layers if x.macs]
    # 2 x 512 MACs over the cycles the layer held the array, at 100 MHz, in GOPS
    assert measure(r, "best_layer_gops") == pytest.approx(2 * 512 * 100 / row.cycles / 1e3)
    assert measure(r, "latency_ms") == r.latency_ms and measure(r, "fps") == r.fps


def test_check_design_predicts_each_figure_and_ranks_the_assumptions() -> None:
    figure = PublishedFigure(model="gemm", metric="latency_ms", value=1.0, label="D", source="s")
    ref = PublishedReference(
        paper="p",
        pinned=True,
        figures=[figure],
        assumptions=[
            Assumption(field="units.vector.lanes", why="w"),
            Assumption(field="dram.bandwidth_gbs", why="w", vary=[0.1]),
        ],
    )
    hw = tiny_hw(reference=ref.model_dump())
    g = matmul_graph(64, 64, 64)
    (check,) = check_design(hw, graphs={"gemm": g})
    assert check.predicted == simulate(g, hw).latency_ms
    assert check.ratio == check.predicted / 1.0
    slower = simulate(g, hw.with_changes(**{"dram.bandwidth_gbs": 0.1})).latency_ms
    assert slower > check.predicted  # a quarter of the bandwidth: the GEMM waits for DRAM
    ms = check.most_sensitive
    assert ms is not None and ms.assumption.field == "dram.bandwidth_gbs" and ms.predicted == slower
    assert check.meets_goal == (abs(check.ratio - 1) <= GOAL)


@pytest.mark.slow
def test_efficientvit_fpga_best_layer_is_within_the_goal_of_the_paper() -> None:
    """The one design its paper pins (2,048 multipliers, 200 MHz): 'up to 780.2 GOPS'."""
    hw = HardwareConfig.load("published/efficientvit_fpga")
    (best,) = [c for c in check_design(hw) if c.figure.metric == "best_layer_gops"]
    assert best.pinned and best.meets_goal, best.ratio


def test_power_figures_are_held_to_the_power_goal_even_where_the_design_is_not_pinned() -> None:
    watts = PublishedFigure(model="gemm", metric="power_w", value=1.0, label="Q", source="s")
    latency = watts.model_copy(update={"metric": "latency_ms"})
    ref = PublishedReference(paper="p", pinned=False, figures=[watts, latency], assumptions=[])
    power, time = check_design(tiny_hw(reference=ref.model_dump()), graphs={"gemm": matmul_graph(8, 8, 8)})
    assert power.goal == POWER_GOAL and time.goal == GOAL
    assert power.meets_goal == (abs(power.ratio - 1) <= POWER_GOAL)
    assert time.meets_goal is None  # nothing pins the design's timing
