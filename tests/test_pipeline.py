"""The one workload pipeline: every caller lowers a compressed workload to the same Graph."""

from __future__ import annotations

import pytest

from accelsim.config.compression import CompressionRecipe
from accelsim.config.workload import Workload
from accelsim.errors import ConfigError
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


RECIPE = {
    "quant": {"wbits": 4, "abits": 8},
    "prune": {"mlp_keep": 0.5, "saliency": "taylor"},
    "distill": {"epochs": 1},
}


def test_the_timed_model_takes_the_recipes_structure_and_bits() -> None:
    from accelsim.config.search import TimingModel
    from accelsim.ir import OpKind
    from accelsim.pipeline import timing_graph

    g = timing_graph(
        TimingModel(model="deit_tiny_patch16_224", img_size=32), CompressionRecipe.model_validate(RECIPE)
    )
    assert g.name == "deit_tiny_patch16_224" and g.meta["input_shape"] == [1, 3, 32, 32]
    assert (g.meta["wbits"], g.meta["abits"]) == (4, 8)
    fc1 = [op for op in g.ops() if op.kind == OpKind.MATMUL and op.module.endswith("mlp.fc1")]
    # DeiT-Tiny's MLP is 192 -> 768: half its neurons kept in each of the 12 blocks; 32 px = 2 x 2 patches + CLS
    assert len(fc1) == 12 and {op.attrs["N"] for op in fc1} == {384} and {op.attrs["M"] for op in fc1} == {5}
    with pytest.raises(ConfigError, match="grow changes the architecture"):
        timing_graph(TimingModel(model="deit_tiny_patch16_224"), CompressionRecipe.model_validate(
            {"grow": {"embed_dim": 128, "depth": 6}}))  # fmt: skip


@pytest.mark.slow
def test_a_search_times_the_deployed_model_and_takes_accuracy_from_the_proxy() -> None:
    from accelsim.config.search import TimingModel
    from accelsim.search.objective import WorkloadEvaluator

    workload = Workload.load(WORKLOADS_DIR / "ref_deit_fp32.yaml")
    recipe = CompressionRecipe.model_validate({"quant": {"wbits": 8, "abits": 8}})
    proxy = WorkloadEvaluator(workload, "zcu102").compress(recipe)
    timed = WorkloadEvaluator(workload, "zcu102", TimingModel(model="deit_tiny_patch16_224", img_size=32))
    point = timed.compress(recipe)
    assert point.accuracy == proxy.accuracy
    assert point.graph.name == "deit_tiny_patch16_224" and proxy.graph.total_macs < point.graph.total_macs
    assert timed.identity()["timing"]["model"] == "deit_tiny_patch16_224"  # its own cache entries


def test_a_space_that_times_another_model_cannot_grow_the_workloads() -> None:
    from accelsim.config._base import validate_config
    from accelsim.config.search import SearchSpace

    space = {"workload": "w.yaml", "timing": {"model": "deit_small_patch16_224"}}
    validate_config(SearchSpace, space, "space")
    with pytest.raises(ConfigError, match="growth changes the workload model's architecture"):
        validate_config(SearchSpace, {**space, "compression": {"knobs": {"grow.depth": [4, 6]}}}, "space")
