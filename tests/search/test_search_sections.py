"""The search validates a config section shared by several hardware points once, and gets the same
results as validating every point on its own."""

from __future__ import annotations

import copy
import math

from accelsim.config.hardware import HardwareConfig
from accelsim.ir.builders import vit_graph
from accelsim.search.objective import accelsim_simulate
from accelsim.search.space import apply_knobs


def _same(a: list, b: list) -> None:  # type: ignore[type-arg]
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert (x.fits, x.overflow) == (y.fits, y.overflow)
        assert all(
            x.metrics[k] == y.metrics[k] or (math.isnan(x.metrics[k]) and math.isnan(y.metrics[k]))
            for k in x.metrics
        )


def test_shared_sections_give_what_unshared_points_give() -> None:
    graph = vit_graph((64, 2, 2), img_size=64)
    base = HardwareConfig.load("zcu102").model_dump(mode="json")
    other = HardwareConfig.load("vck190").model_dump(mode="json")  # DSP58: another default packing
    points = [
        apply_knobs(base, {"array.rows": 8, "dram.bandwidth_gbs": 4.0}),
        apply_knobs(base, {"array.rows": 16, "units.vector.lanes": 7}),
        apply_knobs(base, {"units.vector.lanes": 0}),  # invalid: unfit, with the field named
        apply_knobs(base, {"array.cols": 8}),
        # an empty packing takes the point's own board's default, so it is never shared
        {**apply_knobs(base, {}), "packing": []},
        {**apply_knobs(other, {}), "packing": []},
    ]
    points[5]["packing"] = points[4]["packing"]  # the same empty list under another board
    assert points[0]["board"] is points[1]["board"] is points[3]["board"]  # what the search shares
    shared = accelsim_simulate(graph, points)
    alone = [accelsim_simulate(graph, [copy.deepcopy(p)])[0] for p in points]
    _same(shared, alone)
    assert not shared[2].fits and "units.vector.lanes" in shared[2].overflow
    assert shared[4].metrics != shared[5].metrics  # each its own board's packing


def test_a_board_knob_takes_the_boards_defaults() -> None:
    # the search's base leaves out what the YAML left to a default, so a default that follows the
    # board (the DSP primitive's packing) follows a board knob, not the base board
    from accelsim.config.hardware import DEFAULT_PACKING
    from accelsim.search.objective import accelsim_base_hardware, validate_points

    base = accelsim_base_hardware("zcu102")
    assert "packing" not in base and HardwareConfig.model_validate(base) == HardwareConfig.load("zcu102")
    [(_, on_vck190)] = validate_points([apply_knobs(base, {"board": "vck190"})])
    assert on_vck190.board.dsp_kind == "dsp58" and on_vck190.packing == DEFAULT_PACKING["dsp58"]
    assert on_vck190.dram == HardwareConfig.load("zcu102").dram  # set in the base's YAML: kept
    graph = vit_graph((64, 2, 2), img_size=64)
    [moved] = accelsim_simulate(graph, [apply_knobs(base, {"board": "vck190"})])
    [stayed] = accelsim_simulate(graph, [base])
    assert moved.metrics["gops"] != stayed.metrics["gops"]  # three INT8 products along K, not two along N
