"""The one workload pipeline: every caller lowers a compressed workload to the same Graph."""

from __future__ import annotations

import pytest

from accelsim.config.compression import CompressionRecipe
from accelsim.config.workload import Workload
from accelsim.lower import graph_bits
from accelsim.models import WORKLOADS_DIR


def test_uncovered_tensors_take_the_recipes_bits_or_16_for_fp32() -> None:
    assert graph_bits(None) == (16, 16)
    assert graph_bits(CompressionRecipe()) == (16, 16)
    assert graph_bits(CompressionRecipe.model_validate({"quant": {"wbits": 4, "abits": 8}})) == (4, 8)


@pytest.mark.slow
def test_simulate_workload_and_the_search_see_the_same_graph() -> None:
    # Issue 16: `accelsim simulate --workload ref_deit_fp32.yaml` lowered at 8/8 bits and the search at
    # 16/16, so one design point had two latencies (35,278 vs 42,674 cycles on zcu102).
    from accelsim.pipeline import simulate_workload
    from accelsim.search.objective import WorkloadEvaluator
    from accelsim.sim import simulate

    path = WORKLOADS_DIR / "ref_deit_fp32.yaml"
    workload = Workload.load(path)
    via_cli = simulate_workload(path, "zcu102")
    point = WorkloadEvaluator(workload, "zcu102").compress(workload.compression)
    assert simulate(point.graph, "zcu102").total_cycles == via_cli.report.total_cycles
    assert {t.bits for t in point.graph.tensors.values()} == {16}
