"""Shared fixtures of the search tests: a small space over the synthetic evaluator (no torch)."""

from __future__ import annotations

from typing import Any

import pytest

from accelsim.config.search import SearchSpace


def small_space(**overrides: Any) -> SearchSpace:
    """5 compression knobs x 5 hardware knobs; the synthetic board has a ZCU102's 2520 DSPs, so
    64x64 arrays never fit and some points are infeasible."""
    data: dict[str, Any] = {
        "name": "syn",
        "workload": "synthetic",
        "compression": {
            "base": {"quant": {"calibrator": "percentile"}},
            "knobs": {
                "quant.wbits": [4, 6, 8],
                "quant.abits": [4, 8],
                "prune.heads_keep": {"low": 0.34, "high": 1.0},
                "prune.mlp_keep": {"low": 0.25, "high": 1.0, "step": 0.25},
                "tokens.keep_rate": [0.5, 0.7, 1.0],
            },
        },
        "hardware": {
            "knobs": {
                "array.rows": [8, 16, 32, 64],
                "array.cols": [8, 16, 32, 64],
                "clock_mhz": {"low": 150.0, "high": 300.0, "step": 50.0},
                "buffer_kib": [256, 1024, 4096],
                "vector_lanes": [8, 32],
            }
        },
        "hw_points_per_trial": 12,
        "population_size": 4,
    }
    data.update(overrides)
    return SearchSpace.model_validate(data)


@pytest.fixture
def make_space() -> Any:
    return small_space


@pytest.fixture
def space() -> SearchSpace:
    return small_space()
