"""End-to-end searches on the synthetic evaluator: fronts, constraints, determinism, resume, cache, Ray."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

import accelsim
from accelsim.config.compression import CompressionRecipe
from accelsim.config.search import METRIC_DIRECTIONS
from accelsim.errors import ConfigError
from accelsim.ir import Graph
from accelsim.search import search
from accelsim.search.objective import CompressedPoint, HardwareResult
from accelsim.search.optimizer import _GENERATION
from accelsim.search.outputs import collect_designs, pareto_front
from accelsim.testing import SyntheticEvaluator


def _dominates(a: Mapping[str, float], b: Mapping[str, float], objectives: Sequence[str]) -> bool:
    better = worse = False
    for o in objectives:
        x, y = (a[o], b[o]) if METRIC_DIRECTIONS[o] == "maximize" else (-a[o], -b[o])
        better |= x > y
        worse |= x < y
    return better and not worse


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(TrialState.COMPLETE,))


def test_front_is_non_dominated_and_feasible(make_space: Any, tmp_path: Path) -> None:
    space = make_space(constraints={"accuracy": {"min": 0.45}})
    # seed 1 draws both kinds of infeasible point (asserted below)
    study = search(space, trials=8, out=tmp_path, evaluator=SyntheticEvaluator(), seed=1, progress=False)
    assert len(_complete(study)) == 8
    designs = collect_designs(study)
    assert len(designs) == 8 * 12  # every design point of every trial is recorded
    objectives = space.objectives
    front = pareto_front(designs, objectives)
    assert front
    # the run has infeasible points of both kinds, and none is on the front
    assert any(not d.fits for d in designs) and any(d.fits and d.metrics["accuracy"] < 0.45 for d in designs)
    for d in front:
        assert d.fits and d.metrics["accuracy"] >= 0.45 and d.violation == 0.0
    # pairwise: no front point dominates another, and no feasible design point dominates a front point
    feasible = [d for d in designs if d.feasible]
    for a in front:
        assert not any(_dominates(b.metrics, a.metrics, objectives) for b in feasible)
    # ... and every feasible point not on the front is dominated by (or equal to) a front point
    keys = {(d.trial, d.index) for d in front}
    for b in feasible:
        if (b.trial, b.index) not in keys:
            assert any(
                _dominates(a.metrics, b.metrics, objectives)
                or all(a.metrics[o] == b.metrics[o] for o in objectives)
                for a in front
            )

    # the files agree with the front
    rows = (tmp_path / "pareto.csv").read_text().splitlines()
    assert len(rows) == 1 + len(front)
    assert rows[0].startswith("design,trial,recipe_key,accuracy,fps,gops_per_dsp,")
    payload = json.loads((tmp_path / "pareto.json").read_text())
    assert [p["design"] for p in payload["points"]] == [d.name for d in front]
    p0, d0 = payload["points"][0], front[0]
    assert p0["recipe"]["quant"]["wbits"] == d0.compression["quant.wbits"]
    assert p0["recipe"]["quant"]["calibrator"] == "percentile"
    assert p0["hardware"]["array"]["rows"] == d0.hardware["array.rows"]
    assert p0["hardware"]["board"]["dsp"] == 2520  # the full config, not just the knobs
    assert len((tmp_path / "designs.csv").read_text().splitlines()) == 1 + 8 * 12
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    report = (tmp_path / "report.md").read_text()
    assert "## Best design per objective" in report and f"| accuracy | {front[0].name} |" in report


def test_trial_values_summarise_the_best_feasible_hardware(make_space: Any) -> None:
    space = make_space()
    study = search(space, trials=4, out=None, evaluator=SyntheticEvaluator(), progress=False)
    for t in _complete(study):
        ds = [d for d in collect_designs(study) if d.trial == t.number and d.feasible]
        assert ds, "the small space always has a feasible point"
        assert t.values[1] == max(d.metrics["fps"] for d in ds)
        assert t.values[2] == max(d.metrics["gops_per_dsp"] for d in ds)
        assert t.values[0] == t.user_attrs["accuracy"] == ds[0].metrics["accuracy"]
        assert t.constraints == {"violation": 0.0}


def _snapshot(study: optuna.Study) -> list[tuple[int, dict[str, Any], list[float], Any]]:
    return [(t.number, t.params, t.values, t.user_attrs["designs"]) for t in _complete(study)]


def test_same_seed_same_study_and_other_seed_differs(make_space: Any) -> None:
    space = make_space()
    runs = [
        search(space, trials=6, out=None, evaluator=SyntheticEvaluator(), seed=s, progress=False)
        for s in (3, 3, 4)
    ]
    assert _snapshot(runs[0]) == _snapshot(runs[1])
    assert [t[1] for t in _snapshot(runs[0])] != [t[1] for t in _snapshot(runs[2])]


class _Counting(SyntheticEvaluator):
    """Counts compressions; raises KeyboardInterrupt (as Ctrl-C would) on the ``stop_at``-th simulate call."""

    def __init__(self, stop_at: int | None = None) -> None:
        super().__init__()
        self.compressions = 0
        self.simulations = 0
        self.stop_at = stop_at

    def compress(self, recipe: CompressionRecipe) -> CompressedPoint:
        self.compressions += 1
        return super().compress(recipe)

    def simulate(self, graph: Graph, configs: Sequence[Mapping[str, Any]]) -> list[HardwareResult]:
        self.simulations += 1
        if self.simulations == self.stop_at:
            raise KeyboardInterrupt
        return super().simulate(graph, configs)


def test_resume_after_interrupt_keeps_completed_trials(make_space: Any, tmp_path: Path) -> None:
    space = make_space()  # batches of 4 (the population size)
    first = _Counting(stop_at=6)  # interrupted in the middle of the second batch
    with pytest.raises(KeyboardInterrupt):
        search(space, trials=10, out=tmp_path, evaluator=first, progress=False)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.load_study(study_name=space.name, storage=storage)
    before = _snapshot(study)
    assert len(before) == 4
    running = study.get_trials(states=(TrialState.RUNNING,))
    assert len(running) == 4  # the interrupted batch, left RUNNING as a kill would leave it
    assert not (tmp_path / "pareto.csv").exists()
    cached_before = {p.stem for p in (tmp_path / "cache").glob("*.json")}

    again = _Counting()
    study = search(space, trials=10, out=tmp_path, evaluator=again, progress=False)
    after = _snapshot(study)
    assert len(after) == 10
    assert after[:4] == before  # the completed trials are untouched
    states = [t.state for t in study.trials]
    assert states.count(TrialState.FAIL) == 4 and TrialState.RUNNING not in states
    # the interrupted trials were retried with the same parameters
    retried = [t for t in _complete(study) if "retry_of" in t.user_attrs]
    assert sorted(t.user_attrs["retry_of"] for t in retried) == [r.number for r in running]
    assert sorted(map(str, (t.params for t in retried))) == sorted(map(str, (r.params for r in running)))
    # every compression of the first run was cached on disk and not redone: the second run
    # compressed exactly the recipes that were new to it
    first_keys = cached_before
    assert len(first_keys) == first.compressions > 0
    new_keys = {t.user_attrs["recipe_key"] for t in study.trials if t.number >= 8} - first_keys
    assert again.compressions == len(new_keys)
    assert {p.stem for p in (tmp_path / "cache").glob("*.json")} == first_keys | new_keys

    # re-running a finished search does no work and changes nothing
    third = _Counting()
    study = search(space, trials=10, out=tmp_path, evaluator=third, progress=False)
    assert _snapshot(study) == after and third.compressions == third.simulations == 0
    assert (tmp_path / "pareto.csv").exists()


def test_resume_refuses_another_space_or_seed(make_space: Any, tmp_path: Path) -> None:
    search(make_space(), trials=2, out=tmp_path, evaluator=SyntheticEvaluator(), progress=False)
    with pytest.raises(ConfigError, match="another search space"):
        search(make_space(hw_points_per_trial=3), trials=2, out=tmp_path, evaluator=SyntheticEvaluator())
    with pytest.raises(ConfigError, match=r"another seed \(0, now 1\)"):
        search(make_space(), trials=2, out=tmp_path, evaluator=SyntheticEvaluator(), seed=1)


class _FailingRecipes(SyntheticEvaluator):
    """Rejects recipes with 4-bit weights, as a compressor rejects a recipe that does not suit its model."""

    def compress(self, recipe: CompressionRecipe) -> CompressedPoint:
        if recipe.quant is not None and recipe.quant.wbits == 4:
            raise ConfigError("quant.wbits: 4 not supported by this model")
        return super().compress(recipe)


def test_failed_compressions_are_recorded_and_not_counted(make_space: Any) -> None:
    # seed 1 draws wbits 4 (the failing recipes) in 6 trials
    study = search(make_space(), trials=6, out=None, evaluator=_FailingRecipes(), seed=1, progress=False)
    assert len(_complete(study)) == 6
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert failed and all("4 not supported" in t.user_attrs["error"] for t in failed)
    assert all(t.params["quant.wbits"] == 4 for t in failed)


def test_accelsim_search_is_callable_as_module_and_function(make_space: Any) -> None:
    import accelsim.search as mod

    study = accelsim.search(make_space(), trials=1, out=None, evaluator=SyntheticEvaluator(), progress=False)
    assert len(_complete(study)) == 1
    assert callable(mod)


@pytest.mark.slow
def test_ray_backend_gives_the_local_front(make_space: Any, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    space = make_space()
    kw: dict[str, Any] = {"trials": 8, "evaluator": SyntheticEvaluator(), "seed": 5, "progress": False}
    local = search(space, out=tmp_path / "local", **kw)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = search(space, out=tmp_path / "ray", backend="ray", **kw)
    finally:
        ray.shutdown()
    assert _snapshot(remote) == _snapshot(local)
    front_l = pareto_front(collect_designs(local), space.objectives)
    front_r = pareto_front(collect_designs(remote), space.objectives)
    assert [(d.name, d.metrics) for d in front_r] == [(d.name, d.metrics) for d in front_l]
    assert (tmp_path / "ray" / "pareto.csv").read_text() == (tmp_path / "local" / "pareto.csv").read_text()
    assert all(math.isfinite(v) for t in _complete(remote) for v in t.values)


def test_search_with_the_accelsim_simulator_on_zcu102(make_space: Any, tmp_path: Path) -> None:
    """Hardware knobs are dotted paths into a real HardwareConfig; designs over the board's DSPs never reach the front."""
    space = make_space(
        hardware={
            "base": "zcu102",
            "knobs": {
                "array.rows": [16, 32, 64],
                "array.cols": [32, 64],
                "array.dataflow": ["ws", "os"],
                "clock_mhz": [150.0, 250.0],
                "units.vector.lanes": [32, 64],
            },
        },
        hw_points_per_trial=8,
        objectives=["accuracy", "fps", "dsp_used"],
    )
    ev = SyntheticEvaluator(depth=2, tokens=64, hardware="zcu102")
    study = search(space, trials=4, out=tmp_path, evaluator=ev, progress=False)
    designs = collect_designs(study)
    assert len(designs) == 4 * 8
    too_big = [d for d in designs if d.hardware["array.rows"] * d.hardware["array.cols"] > 2520]
    assert too_big and all(not d.fits and "dsp" in d.overflow for d in too_big)
    front = pareto_front(designs, space.objectives)
    assert front and all(d.fits and d.metrics["dsp_used"] <= 2520 for d in front)
    payload = json.loads((tmp_path / "pareto.json").read_text())
    hw = payload["points"][0]["hardware"]
    assert hw["name"] == "sa32x64_ws.zcu102" and hw["board"]["name"] == "zcu102"
    assert hw["array"]["rows"] == front[0].hardware["array.rows"]
    # the full config written out is a valid HardwareConfig again
    from accelsim.config.hardware import HardwareConfig

    assert HardwareConfig.model_validate(hw).array.dataflow == front[0].hardware["array.dataflow"]


_KILLED_RUN = """
import sys, time
sys.path.insert(0, {conftest_dir!r})
from conftest import small_space
from accelsim.search import search
from accelsim.testing import SyntheticEvaluator

class Slow(SyntheticEvaluator):
    # slow enough that a poller on a loaded machine sees 3 done trials long before all 12 are
    def simulate(self, graph, configs):
        time.sleep(1.0)
        return super().simulate(graph, configs)

search(small_space(population_size=2), trials=12, out={out!r}, evaluator=Slow(), progress=False)
"""


@pytest.mark.slow
def test_resume_after_sigkill(make_space: Any, tmp_path: Path) -> None:
    """Kill -9 a search process once it has completed trials, then resume it in this process."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = _KILLED_RUN.format(conftest_dir=str(Path(__file__).parent), out=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    deadline = time.monotonic() + 120
    done: list[Any] = []
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name="syn", storage=storage)
            done = _complete(study)
        except Exception:  # the study or its tables may not exist yet
            continue
        if len(done) >= 3:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode() if proc.stderr else ""
    before = _snapshot(optuna.load_study(study_name="syn", storage=storage))
    assert 3 <= len(before) < 12

    study = search(
        make_space(population_size=2), trials=12, out=tmp_path, evaluator=SyntheticEvaluator(), progress=False
    )
    after = _snapshot(study)
    assert len(after) == 12 and after[: len(before)] == before
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_a_search_minimises_energy_under_a_power_cap(make_space: Any, tmp_path: Path) -> None:
    """energy_mj and power_w come from the power model (accelsim.sim.power) of each design point."""
    space = make_space(
        hardware={
            "base": "zcu102",
            "knobs": {
                "array.rows": [8, 16, 32],
                "array.cols": [16, 64],
                "clock_mhz": [100.0, 300.0],
            },
        },
        hw_points_per_trial=12,
        objectives=["accuracy", "energy_mj"],
        constraints={"power_w": {"max": 4.0}},
    )
    ev = SyntheticEvaluator(depth=2, tokens=64, hardware="zcu102")
    study = search(space, trials=4, out=tmp_path, evaluator=ev, progress=False)
    designs = collect_designs(study)
    assert len(designs) == 4 * 12  # the whole grid, every trial
    for d in designs:
        # energy per frame is the report's power over the frame's latency
        assert d.metrics["energy_mj"] == pytest.approx(d.metrics["power_w"] * d.metrics["latency_ms"])
        assert d.metrics["gops_per_watt"] == pytest.approx(d.metrics["gops"] / d.metrics["power_w"])
    # the cap splits the grid: some points draw more than 4 W, and none of them is feasible
    hot = [d for d in designs if d.metrics["power_w"] > 4.0]
    assert hot and all(d.violation > 0 for d in hot)
    for t in _complete(study):
        ds = [d for d in designs if d.trial == t.number and d.feasible]
        assert ds and t.values[1] == min(d.metrics["energy_mj"] for d in ds)
    front = pareto_front(designs, space.objectives)
    assert front and all(d.feasible and d.metrics["power_w"] <= 4.0 for d in front)
    best = min((d for d in designs if d.feasible), key=lambda d: d.metrics["energy_mj"])
    assert best.metrics["energy_mj"] == min(d.metrics["energy_mj"] for d in front)
    # the cap costs energy: static power dominates, so the lowest energy per frame is the fastest
    # (biggest, highest-clocked) design, which draws more than 4 W
    fastest = min(designs, key=lambda d: d.metrics["energy_mj"])
    assert fastest.metrics["power_w"] > 4.0 and fastest.hardware["clock_mhz"] == 300.0
    report = (tmp_path / "report.md").read_text()
    assert "energy_mj (minimize)" in report


def test_the_roofline_prices_power_too(make_space: Any) -> None:
    space = make_space(objectives=["accuracy", "gops_per_watt"], constraints={"power_w": {"max": 10.0}})
    study = search(space, trials=2, out=None, evaluator=SyntheticEvaluator(), progress=False)
    designs = collect_designs(study)
    fitting = [d for d in designs if d.fits]
    assert fitting and all(2.246 < d.metrics["power_w"] < 10.0 for d in fitting)  # above ZCU102 static + PS
    for t in _complete(study):
        ds = [d for d in designs if d.trial == t.number and d.feasible]
        assert t.values[1] == max(d.metrics["gops_per_watt"] for d in ds)


def test_fidelity_objectives_and_an_agreement_constraint(make_space: Any, tmp_path: Path) -> None:
    """Maximise FPS, minimise KL to FP32, subject to top-1 agreement >= 0.7 (the synthetic
    evaluator's fidelity: agreement 1 - d, KL d for its accuracy penalty d)."""
    space = make_space(objectives=["fps", "kl_div"], constraints={"agreement": {"min": 0.7}})
    study = search(space, trials=8, out=tmp_path, evaluator=SyntheticEvaluator(), progress=False)
    designs = collect_designs(study)
    assert {"kl_div", "agreement", "sqnr_db"} <= set(designs[0].metrics)
    for d in designs:  # a compression point's fidelity is shared by all its hardware points
        assert d.metrics["agreement"] == pytest.approx(1.0 - d.metrics["kl_div"])
        assert d.metrics["sqnr_db"] == pytest.approx(-10 * math.log10(d.metrics["kl_div"]))
    # the constraint splits the run, and only points that agree on >= 70% of images reach the front
    assert any(d.fits and d.metrics["agreement"] < 0.7 for d in designs)
    front = pareto_front(designs, space.objectives)
    assert front and all(d.metrics["agreement"] >= 0.7 for d in front)
    for t in _complete(study):
        ds = [d for d in designs if d.trial == t.number and d.feasible]
        if ds:  # the trial's KL is its compression point's, the same on every hardware point
            assert t.values[1] == ds[0].metrics["kl_div"]
    assert "kl_div (minimize)" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "pareto.png").stat().st_size > 0


def test_a_small_space_is_drawn_without_replacement(make_space: Any) -> None:
    """2 x 2 compression points and a first generation of 4: four trials compress four points
    (independent draws repeated two of them in search_efficientvit_b1_trio)."""
    knobs = {"quant.wbits": [4, 8], "prune.mlp_keep": [0.5, 1.0]}
    space = make_space(compression={"base": {"quant": {"calibrator": "minmax"}}, "knobs": knobs})
    for seed in (0, 1, 2):
        ev = _Counting()
        study = search(space, trials=4, out=None, evaluator=ev, seed=seed, progress=False)
        points = {(t.params["quant.wbits"], t.params["prune.mlp_keep"]) for t in _complete(study)}
        assert len(points) == 4 and ev.compressions == 4
        assert all(t.system_attrs.get(_GENERATION) == 0 for t in _complete(study))
