"""A search over both architecture families: ``family.kind`` picks the overlay or a dataflow design
the allocator sizes from the trial's lowered model (accelsim.search.families)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from accelsim.config.dataflow import FamilyChoice
from accelsim.config.search import SearchSpace
from accelsim.errors import ConfigError
from accelsim.search.families import dataflow_metrics, simulate_points
from accelsim.search.objective import accelsim_simulate
from accelsim.testing import SyntheticEvaluator


class _FamiliesEvaluator(SyntheticEvaluator):
    """The synthetic model on VCK190 with the space's ``family`` section in its base (as
    :class:`accelsim.search.objective.WorkloadEvaluator` does for ``hardware.family``)."""

    def __init__(self, family: FamilyChoice, **kw: Any) -> None:
        super().__init__(**kw)
        self.family = family

    def base_hardware(self) -> dict[str, Any]:
        return {**super().base_hardware(), "family": self.family.model_dump(mode="json")}


def _space(make_space: Any) -> SearchSpace:
    space: SearchSpace = make_space(
        hardware={
            "base": "vck190",
            "family": {"kind": "overlay", "budget": 1.0, "fifo_depth": 2, "tp": 1},
            "knobs": {
                "family.kind": ["overlay", "dataflow"],
                "family.budget": [0.5, 1.0],
                "array.rows": [16, 32],
            },
        },
        hw_points_per_trial=8,
        objectives=["accuracy", "fps"],
    )
    return space


def test_search_over_both_families_finds_designs_of_each(make_space: Any, tmp_path: Path) -> None:
    from accelsim.search import search
    from accelsim.search.outputs import collect_designs

    space = _space(make_space)
    assert space.hardware.family == FamilyChoice(tp=1)
    ev = _FamiliesEvaluator(space.hardware.family, depth=2, tokens=64, hardware="vck190")
    study = search(space, trials=2, out=None, evaluator=ev, progress=False)
    designs = collect_designs(study)
    assert len(designs) == 2 * 8  # the whole 2 x 2 x 2 grid for each compression point
    by_kind: dict[str, list[Any]] = {"overlay": [], "dataflow": []}
    for d in designs:
        by_kind[str(d.hardware["family.kind"])].append(d)
    assert all(d.fits and d.metrics["fps"] > 0 for ds in by_kind.values() for d in ds)
    # the overlay's first-frame latency is simulated; the dataflow plan leaves it out (NaN)
    assert all(math.isfinite(d.metrics["latency_ms"]) for d in by_kind["overlay"])
    assert all(math.isnan(d.metrics["latency_ms"]) for d in by_kind["dataflow"])
    # a dataflow design ignores the overlay's array, and half the board never beats it all
    for d in by_kind["dataflow"]:
        twin = next(
            e for e in by_kind["dataflow"]
            if e.trial == d.trial and e.hardware["family.budget"] == d.hardware["family.budget"]
            and e.hardware["array.rows"] != d.hardware["array.rows"]
        )  # fmt: skip
        assert twin.metrics["fps"] == d.metrics["fps"]
        if d.hardware["family.budget"] == 0.5:
            whole = next(
                e for e in by_kind["dataflow"]
                if e.trial == d.trial and e.hardware["family.budget"] == 1.0
            )  # fmt: skip
            assert whole.metrics["fps"] >= d.metrics["fps"]


def test_dataflow_point_uses_each_layers_bits_and_costs_its_fifos() -> None:
    from accelsim.config.compression import CompressionRecipe

    ev = SyntheticEvaluator(depth=1, tokens=64, hardware="vck190")
    base = ev.base_hardware()
    w4 = ev.compress(CompressionRecipe.model_validate({"quant": {"wbits": 4, "abits": 4}})).graph
    w8 = ev.compress(CompressionRecipe.model_validate({"quant": {"wbits": 8, "abits": 8}})).graph
    fam = FamilyChoice(kind="dataflow", budget=0.2)
    m4, fits4, _ = dataflow_metrics(w4, base, fam)
    m8, fits8, _ = dataflow_metrics(w8, base, fam)
    # 4-bit operands: LUT multipliers of 8 operand bits instead of 16 (2 x 2 LUT6 columns x 8 vs
    # 5 x 16), so the same LUT budget buys engines several times as parallel
    assert fits4 and fits8 and m4["fps"] > 2 * m8["fps"] > 0
    # FIFOs of 1,024 beats leave the SRLs for block RAM
    deep, _, _ = dataflow_metrics(w8, base, fam.model_copy(update={"fifo_depth": 1024}))
    assert deep["bram36_used"] > m8["bram36_used"] and deep["fps"] < m8["fps"]


def test_points_without_a_family_are_the_overlay_as_before() -> None:
    ev = SyntheticEvaluator(depth=1, tokens=64, hardware="vck190")
    from accelsim.config.compression import CompressionRecipe

    g = ev.compress(CompressionRecipe()).graph
    base = ev.base_hardware()
    plain = accelsim_simulate(g, [base])
    mixed = simulate_points(g, [{**base, "family": {"kind": "overlay"}}], accelsim_simulate)
    assert plain == mixed
    bad = accelsim_simulate(g, [{**base, "family": {"kind": "systolic"}}])
    assert not bad[0].fits and "kind" in bad[0].overflow


def test_family_fields_are_checked_by_name() -> None:
    from accelsim.config._base import validate_config

    with pytest.raises(ConfigError, match="budget"):
        validate_config(
            SearchSpace,
            {"workload": "synthetic", "hardware": {"base": "vck190", "family": {"budget": 2.0}}},
            "space",
        )
