"""Pareto machinery: non-dominance against brute force, infeasible points, best per objective."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from accelsim.config.search import SearchSpace
from accelsim.search.outputs import DesignRecord, best_per_objective, non_dominated, pareto_front


def _brute(costs: np.ndarray) -> list[bool]:
    n = len(costs)
    return [
        not any(np.all(costs[j] <= costs[i]) and np.any(costs[j] < costs[i]) for j in range(n) if j != i)
        for i in range(n)
    ]


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64, st.tuples(st.integers(1, 40), st.integers(1, 4)), elements=st.integers(0, 5).map(float)
    )
)
def test_non_dominated_matches_brute_force(costs: np.ndarray) -> None:
    assert non_dominated(costs).tolist() == _brute(costs)


def _design(i: int, acc: float, fps: float, eff: float, violation: float = 0.0) -> DesignRecord:
    return DesignRecord(
        trial=i,
        index=0,
        recipe_key=f"k{i}",
        compression={"quant.wbits": 8},
        hardware={"array.rows": 16},
        metrics={"accuracy": acc, "fps": fps, "gops_per_dsp": eff, "dsp_used": 100.0 * i},
        fits=violation == 0.0,
        overflow="" if violation == 0.0 else "dsp",
        violation=violation,
    )


def test_front_drops_dominated_infeasible_and_duplicates() -> None:
    designs = [
        _design(0, 0.8, 100.0, 0.5),
        _design(1, 0.7, 200.0, 0.5),
        _design(2, 0.7, 100.0, 0.4),  # dominated by 0 and 1
        _design(3, 0.9, 900.0, 0.9, violation=1.0),  # dominates all, but does not fit
        _design(0, 0.8, 100.0, 0.5),  # the same design point again
    ]
    front = pareto_front(designs, ["accuracy", "fps", "gops_per_dsp"])
    assert [d.trial for d in front] == [0, 1]  # sorted by accuracy, best first
    # minimising dsp_used: the direction comes from the metric
    front = pareto_front(designs, ["accuracy", "dsp_used"])
    assert [d.trial for d in front] == [0]
    best = best_per_objective(pareto_front(designs, ["accuracy", "fps"]), ["accuracy", "fps"])
    assert best["accuracy"].trial == 0 and best["fps"].trial == 1
    assert pareto_front([_design(3, 0.9, 900.0, 0.9, violation=0.2)], ["accuracy"]) == []


def test_report_says_loudly_when_a_search_times_a_proxy(make_space: Any) -> None:
    from accelsim.models import WORKLOADS_DIR
    from accelsim.search.outputs import proxy_timing_warning

    shipped = SearchSpace.load(WORKLOADS_DIR / "search_small.yaml")
    assert shipped.timing is not None and proxy_timing_warning(shipped) is None
    proxy = shipped.model_copy(update={"timing": None})
    warning = proxy_timing_warning(proxy)
    assert warning is not None and "timing a proxy" in warning and "`ref_deit`, a 32-px" in warning
    assert proxy_timing_warning(make_space()) is None  # the synthetic evaluator times no model


def test_every_shipped_space_times_the_deployed_model_and_bounds_agreement() -> None:
    """kl_div under an agreement bound, timed on a timm architecture; the exceptions say why."""
    from accelsim.models import WORKLOADS_DIR

    for path in sorted(WORKLOADS_DIR.glob("search_*.yaml")):
        space = SearchSpace.load(path)
        if path.name in ("search_deit_small_dsp_efficiency.yaml", "search_deit_tiny_vck190_families.yaml"):
            continue  # hardware-only, random weights: the workload is the deployed timm model itself
        assert "kl_div" in space.objectives and "accuracy" not in space.objectives, path.name
        assert space.constraints["agreement"].min is not None, path.name
        grows = space.compression.base.grow is not None
        assert (space.timing is None) == grows, path.name  # growth has no fixed deployed model
