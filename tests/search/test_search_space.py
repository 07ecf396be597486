"""Sampling: knob application, hardware sweeps, Optuna suggestions, space checks."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.config.search import SearchSpace
from accelsim.errors import ConfigError
from accelsim.search.optimizer import check_space
from accelsim.search.space import (
    apply_knobs,
    apply_knobs_many,
    build_recipe,
    hardware_grid_size,
    hardware_rng,
    knob_probes,
    recipe_key,
    sample_hardware,
    suggest_compression,
)
from accelsim.testing import SyntheticEvaluator


def test_apply_knobs_sets_paths_and_copies() -> None:
    base = {"array": {"rows": 32, "cols": 32}, "clock_mhz": 200.0}
    out = apply_knobs(base, {"array.rows": 16, "clock_mhz": 250.0, "new.deep.leaf": 1})
    assert out == {"array": {"rows": 16, "cols": 32}, "clock_mhz": 250.0, "new": {"deep": {"leaf": 1}}}
    assert base["array"]["rows"] == 32  # the base is not modified
    with pytest.raises(
        ConfigError, match=r"knob 'clock_mhz.x': 'clock_mhz' is a value \(200.0\), not a section"
    ):
        apply_knobs(base, {"clock_mhz.x": 1})


def test_apply_knobs_many_is_apply_knobs_with_sections_shared() -> None:
    base = {"array": {"rows": 32, "cols": 32}, "units": {"vector": {"lanes": 8}}, "clock_mhz": 200.0}
    points: list[dict[str, Any]] = [
        {"array.rows": 16, "units.vector.lanes": 4, "clock_mhz": 250.0},
        {"array.rows": 16, "units.vector.lanes": 8, "clock_mhz": 300.0},
        {"array.rows": 16.0, "units.vector.lanes": 4, "clock_mhz": 250.0},  # 16.0 is not 16 to a config
        {"array.rows": True, "units.vector.lanes": 4, "new.leaf": 1},
        {"array.rows": 8, "units.vector.lanes": 8, "new.leaf": 1},
    ]
    out = apply_knobs_many(base, points)
    assert out == [apply_knobs(base, p) for p in points]
    assert [type(c["array"]["rows"]) for c in out] == [int, int, float, bool, int]
    assert out[0]["array"] is out[1]["array"]  # the same values: one dict
    assert out[0]["units"] is out[2]["units"] is out[3]["units"]
    assert out[1]["units"] is out[4]["units"]
    assert out[3]["new"] is out[4]["new"]
    assert len({id(c["array"]) for c in out}) == 4
    assert base == {"array": {"rows": 32, "cols": 32}, "units": {"vector": {"lanes": 8}}, "clock_mhz": 200.0}
    # a knob that sets a whole section another knob goes into: applied in order, as apply_knobs does
    mixed = {"array": {"rows": 4}, "array.cols": 8}
    assert (
        apply_knobs_many(base, [mixed])
        == [apply_knobs(base, mixed)]
        == [{**base, "array": {"rows": 4, "cols": 8}}]
    )
    with pytest.raises(
        ConfigError, match=r"knob 'clock_mhz.x': 'clock_mhz' is a value \(200.0\), not a section"
    ):
        apply_knobs_many(base, [{"clock_mhz.x": 1}])


def test_small_grid_is_enumerated(make_space: Any) -> None:
    space = make_space(
        hardware={"knobs": {"array.rows": [8, 16], "clock_mhz": {"low": 100.0, "high": 200.0, "step": 50.0}}}
    )
    assert hardware_grid_size(space) == 6
    pts = sample_hardware(space, hardware_rng(0, 0))  # 12 per trial > 6: the whole grid, in order
    assert pts == [{"array.rows": r, "clock_mhz": c} for r in (8, 16) for c in (100.0, 150.0, 200.0)]


def test_large_grid_is_sampled_distinct_and_seeded(space: SearchSpace) -> None:
    assert hardware_grid_size(space) == 4 * 4 * 4 * 3 * 2
    a = sample_hardware(space, hardware_rng(7, 3))
    assert len(a) == 12
    assert len({tuple(sorted(p.items())) for p in a}) == 12
    assert a == sample_hardware(space, hardware_rng(7, 3))
    assert a != sample_hardware(space, hardware_rng(7, 4))
    for p in a:
        assert p["array.rows"] in (8, 16, 32, 64) and p["clock_mhz"] in (150.0, 200.0, 250.0, 300.0)


@settings(max_examples=30, deadline=None)
@given(low=st.integers(1, 50), span=st.integers(0, 200), seed=st.integers(0, 2**31))
def test_continuous_and_log_draws_stay_in_range(low: int, span: int, seed: int) -> None:
    space = SearchSpace.model_validate(
        {
            "workload": "w",
            "hw_points_per_trial": 5,
            "hardware": {
                "knobs": {
                    "a": {"low": float(low), "high": float(low + span), "log": True},
                    "b": {"low": low, "high": low + span, "log": True},
                    "c": {"low": -1.0, "high": 1.0},
                }
            },
        }
    )
    for p in sample_hardware(space, np.random.default_rng(seed)):
        assert low <= p["a"] <= low + span and low <= p["b"] <= low + span and -1 <= p["c"] <= 1
        assert isinstance(p["b"], int)


def test_suggest_compression_uses_the_knob_paths(space: SearchSpace) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    values = suggest_compression(trial, space)
    assert list(values) == list(space.compression.knobs)
    assert trial.params == values
    recipe = build_recipe(space, values)
    assert recipe.quant is not None and recipe.quant.wbits == values["quant.wbits"]
    assert recipe.quant.calibrator == "percentile"  # from the base recipe
    assert recipe.prune is not None and recipe.prune.mlp_keep == values["prune.mlp_keep"]
    assert recipe.tokens is not None and recipe.tokens.keep_rate == values["tokens.keep_rate"]


def test_recipe_key_is_stable_and_distinguishes() -> None:
    space = SearchSpace.model_validate({"workload": "w"})
    r8, r4 = build_recipe(space, {"quant.wbits": 8}), build_recipe(space, {"quant.wbits": 4})
    ident = {"model": "m"}
    assert recipe_key(r8, ident) == recipe_key(build_recipe(space, {"quant.wbits": 8}), ident)
    assert len({recipe_key(r8, ident), recipe_key(r4, ident), recipe_key(r8, {"model": "n"})}) == 3


def test_knob_probes_try_every_choice_and_both_ends(space: SearchSpace) -> None:
    probes = knob_probes(space.compression.knobs)
    seen = {p: {pr[p] for pr in probes} for p in space.compression.knobs}
    assert seen["quant.wbits"] == {4, 6, 8}
    assert seen["prune.heads_keep"] == {0.34, 1.0}
    assert seen["prune.mlp_keep"] == {0.25, 1.0}
    assert len(probes) == 1 + 2 + 1 + 1 + 1 + 2


@pytest.mark.parametrize(
    ("section", "knobs", "message"),
    [
        ("compression", {"quant.wbits": [8, 1]}, "quant.wbits: Input should be greater than or equal to 2"),
        ("compression", {"quant.wbit": [8]}, "quant.wbit: unknown field"),
        ("hardware", {"array.rows": [16, 0]}, "array.rows: Input should be greater than 0"),
        ("hardware", {"array.depth": [4]}, "array.depth: unknown field"),
    ],
)
def test_check_space_names_the_bad_knob(
    make_space: Any, section: str, knobs: dict[str, Any], message: str
) -> None:
    space = make_space(**{section: {"knobs": knobs}})
    with pytest.raises(ConfigError) as e:
        check_space(space, SyntheticEvaluator())
    assert message in str(e.value) and f"search space {section} knobs" in str(e.value)


def test_check_space_accepts_the_small_space(space: SearchSpace) -> None:
    check_space(space, SyntheticEvaluator())
    assert math.isfinite(hardware_grid_size(space))


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).resolve().parents[2] / "workloads").glob("search_*.yaml")),
    ids=lambda p: p.stem,
)
def test_shipped_search_spaces_pass_the_knob_probes(path: Path) -> None:
    from accelsim.search.objective import WorkloadEvaluator

    space = SearchSpace.load(path)
    # constructing the evaluator loads the workload YAML (not the model) and checks its fields
    check_space(space, WorkloadEvaluator(space.workload, space.hardware.base, family=space.hardware.family))
