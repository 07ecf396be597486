"""The search driver: Optuna NSGA-II over compression points, batched ask/tell, resumable storage.

One loop serves every backend. Each round asks a batch of trials (sampling happens here, in the
driver), compresses the batch's new recipes (once each: :class:`CompressionCache`), simulates every
trial's hardware sweep, and tells the results **in ask order**. Executors only decide where the
tasks run, so a seed gives the same study locally and on Ray.

Resume: the study lives in an Optuna storage (``sqlite:///OUT/study.db`` by default). Running the
same command again loads it, marks trials a killed run left RUNNING as FAIL and re-enqueues their
parameters, then continues until the study holds ``trials`` COMPLETE trials; completed trials are
never touched. One driver per study: the parallelism is in the executor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from accelsim._progress import bar
from accelsim.config.search import SearchSpace
from accelsim.errors import AccelsimError, ConfigError
from accelsim.search.cache import CompressionCache
from accelsim.search.executors import Executor, make_executor
from accelsim.search.objective import (
    CompressedPoint,
    DesignEvaluator,
    HardwareResult,
    TaskError,
    compress_task,
    make_evaluator,
    simulate_task,
    summarise,
)
from accelsim.search.space import (
    KnobValues,
    apply_knobs,
    build_recipe,
    hardware_rng,
    knob_probes,
    recipe_key,
    sample_hardware,
    space_fingerprint,
    suggest_compression,
)

log = logging.getLogger(__name__)


def make_sampler(space: SearchSpace, seed: int) -> optuna.samplers.NSGAIISampler:
    """NSGA-II; constraints come from each trial's ``set_constraint`` (Deb's constrained domination)."""
    return optuna.samplers.NSGAIISampler(population_size=space.population_size, seed=seed)


def batch_seed(seed: int, n_trials_so_far: int) -> int:
    """The sampler seed of the batch that starts after ``n_trials_so_far`` trials.

    NSGA-II keeps its population in the storage, so a fresh sampler per batch loses nothing, and
    reseeding it from the study's size makes a resumed run draw new points instead of replaying
    the random draws of the first generation.
    """
    return int(np.random.SeedSequence([seed, n_trials_so_far]).generate_state(1)[0])


def check_space(space: SearchSpace, evaluator: DesignEvaluator) -> None:
    """Fail fast on a knob whose path or value the configs reject (before any work is done).

    Every choice and both ends of every range are tried once.

    Raises:
        ConfigError: naming the knob and the config's complaint.
    """
    for probe in knob_probes(space.compression.knobs):
        try:
            build_recipe(space, probe)
        except ConfigError as e:
            raise ConfigError(f"search space compression knobs {probe}: {e}") from None
    base = evaluator.base_hardware()
    for probe in knob_probes(space.hardware.knobs):
        try:
            evaluator.check_hardware(apply_knobs(base, probe))
        except ConfigError as e:
            raise ConfigError(f"search space hardware knobs {probe}: {e}") from None
    for path in space.hardware.knobs:
        node: Any = base
        for part in path.split(".")[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or path.split(".")[-1] not in node:
            raise ConfigError(f"search space hardware knob {path!r}: no such field in the base config")


def open_study(space: SearchSpace, storage: str | optuna.storages.BaseStorage, seed: int) -> optuna.Study:
    """Load the space's study from ``storage`` or create it; refuse one made by another space or seed."""
    fingerprint = space_fingerprint(space)
    sampler = make_sampler(space, seed)
    try:
        study = optuna.load_study(study_name=space.name, storage=storage, sampler=sampler)
    except KeyError:
        study = optuna.create_study(
            storage=storage, study_name=space.name, directions=space.directions, sampler=sampler
        )
        study.set_user_attr("space", space.model_dump(mode="json"))
        study.set_user_attr("space_fingerprint", fingerprint)
        study.set_user_attr("seed", seed)
        return study
    old_fp, old_seed = study.user_attrs.get("space_fingerprint"), study.user_attrs.get("seed")
    if old_fp != fingerprint or old_seed != seed:
        what = "search space" if old_fp != fingerprint else f"seed ({old_seed}, now {seed})"
        raise ConfigError(
            f"storage already holds study {space.name!r} made with another {what}; "
            "use another --out/--storage or the same space and seed to resume it"
        )
    return study


def recover_interrupted(study: optuna.Study) -> int:
    """Fail the trials a killed run left RUNNING and enqueue their parameters again; returns how many."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number})
    if stale:
        log.info("resuming: %d interrupted trial(s) will be run again", len(stale))
    return len(stale)


def n_complete(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


@dataclass
class _Pending:
    trial: optuna.Trial
    key: str
    recipe: Any
    hw_points: list[KnobValues]


def _progress(total: int, initial: int, enabled: bool) -> Any:
    return bar(total, "search", initial=initial, unit="trial", show=enabled)


def run_trials(
    study: optuna.Study,
    space: SearchSpace,
    evaluator: DesignEvaluator,
    executor: Executor,
    cache: CompressionCache,
    trials: int,
    seed: int,
    progress: bool = True,
) -> None:
    """Ask/evaluate/tell batches until the study holds ``trials`` COMPLETE trials."""
    base_hw = evaluator.base_hardware()
    ev = executor.put(evaluator)
    done = n_complete(study)
    failures, last_error = 0, ""
    n_compressed = 0
    max_failures = max(10, 2 * trials)
    with _progress(trials, done, progress) as bar:
        while done < trials:
            study.sampler = make_sampler(space, batch_seed(seed, len(study.get_trials(deepcopy=False))))
            batch: list[_Pending] = []
            for _ in range(min(space.trial_batch_size, trials - done)):
                trial = study.ask()
                values = suggest_compression(trial, space)
                try:
                    recipe = build_recipe(space, values)
                except ConfigError as e:  # a combination of valid knob values may still be invalid
                    trial.set_user_attr("error", str(e))
                    study.tell(trial, state=TrialState.FAIL)
                    failures, last_error = failures + 1, str(e)
                    continue
                key = recipe_key(recipe, evaluator.identity())
                hw_points = sample_hardware(space, hardware_rng(seed, trial.number))
                batch.append(_Pending(trial, key, recipe, hw_points))

            # 1. compress every new recipe of the batch once
            todo: dict[str, Any] = {}
            for p in batch:
                if p.key not in todo and cache.get(p.key) is None:
                    todo[p.key] = p.recipe
            compressed = executor.map(compress_task, [(ev, r) for r in todo.values()])
            n_compressed += len(todo)
            errors: dict[str, TaskError] = {}
            for key, done_point in zip(todo, compressed, strict=True):
                if isinstance(done_point, TaskError):
                    errors[key] = done_point
                else:
                    cache.put(key, done_point, todo[key].model_dump(mode="json"))

            # 2. simulate each trial's hardware sweep on its graph
            runnable = [p for p in batch if p.key not in errors]
            points: dict[str, CompressedPoint] = {}
            for p in runnable:
                point = cache.get(p.key)
                assert point is not None
                points[p.key] = point
            graphs = {k: executor.put(pt.graph) for k, pt in points.items()}
            sims = executor.map(
                simulate_task,
                [(ev, graphs[p.key], [apply_knobs(base_hw, h) for h in p.hw_points]) for p in runnable],
            )
            sim_of = {id(p): s for p, s in zip(runnable, sims, strict=True)}

            # 3. tell in ask order
            for p in batch:
                result: TaskError | list[HardwareResult] = errors.get(p.key) or sim_of[id(p)]
                p.trial.set_user_attr("recipe_key", p.key)
                if isinstance(result, TaskError):
                    p.trial.set_user_attr("error", str(result))
                    study.tell(p.trial, state=TrialState.FAIL)
                    failures, last_error = failures + 1, str(result)
                    continue
                point = points[p.key]
                outcome = summarise(space, point, p.hw_points, result)
                p.trial.set_user_attr("accuracy", point.accuracy)
                p.trial.set_user_attr("fidelity", point.fidelity)
                p.trial.set_user_attr("info", point.info)
                p.trial.set_user_attr("designs", outcome.designs)
                p.trial.set_user_attr("violation", outcome.violation)
                # <= 0 when some design point of the trial is feasible
                p.trial.set_constraint("violation", outcome.violation)
                study.tell(p.trial, outcome.values)
                done += 1
                bar.update(1)
                feasible = sum(v <= 0 for v in outcome.designs["violation"])
                bar.set_postfix(feasible=f"{feasible}/{len(p.hw_points)}", compressed=n_compressed)
            if failures >= max_failures:
                raise AccelsimError(f"{failures} trials failed (e.g. {last_error}); stopping the search")


def _sqlite_wal(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; SQLite files get write-ahead logging.

    WAL with ``synchronous=NORMAL`` commits without an fsync each time (2-3x faster here, and a
    trial commits ~20 times) yet loses nothing when the process is killed; only a power cut may
    drop the last commits (https://www.sqlite.org/wal.html), which a resume then redoes.
    """
    storage = optuna.storages.RDBStorage(url)
    if url.startswith("sqlite:"):
        from sqlalchemy import event

        event.listen(storage.engine, "connect", _sqlite_wal)
        storage.engine.dispose()  # reconnect through the listener
    return storage


def default_storage(out: str | Path | None) -> optuna.storages.BaseStorage:
    """``sqlite:///OUT/study.db``, or an in-memory storage when there is no ``out``."""
    if out is None:
        return optuna.storages.InMemoryStorage()
    Path(out).mkdir(parents=True, exist_ok=True)
    return open_storage(f"sqlite:///{Path(out).resolve() / 'study.db'}")


def search(
    space: SearchSpace | str | Path,
    trials: int = 20,
    storage: str | None = None,
    out: str | Path | None = "runs/search",
    backend: str = "local",
    seed: int = 0,
    *,
    evaluator: DesignEvaluator | None = None,
    progress: bool = True,
    ray_address: str | None = None,
    ray_num_cpus: int | None = None,
) -> optuna.Study:
    """Co-design search of compression x hardware; returns the Optuna study.

    Runs (or resumes) until the study holds ``trials`` complete trials, then writes
    ``pareto.csv``, ``pareto.json``, ``pareto.png``, ``designs.csv`` and ``report.md`` to ``out``.

    Args:
        space: a :class:`SearchSpace` or the path of its YAML.
        trials: complete compression trials wanted in the study (a resumed study counts its old ones).
        storage: an Optuna storage URL (e.g. ``postgresql://...`` for a cluster); default
            ``sqlite:///OUT/study.db``, or in memory when ``out`` is ``None``.
        out: output folder (also holds the compression cache); ``None`` writes nothing.
        backend: ``"local"`` or ``"ray"``.
        seed: the seed of NSGA-II and of every hardware sweep.
        evaluator: what compresses and simulates (default: the space's workload with accelsim's
            compression, evaluation, lowering and simulator).
        progress: show a progress bar.
        ray_address: Ray cluster address for ``backend="ray"`` (default: start a local Ray).
        ray_num_cpus: CPUs of a local Ray.

    Raises:
        ConfigError: invalid space, or a storage holding this study with another space or seed.
        AccelsimError: too many trials failed.
    """
    if isinstance(space, str | Path):
        space = SearchSpace.load(space)
    if trials < 1:
        raise ConfigError(f"trials: must be >= 1 (got {trials})")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    evaluator = evaluator if evaluator is not None else make_evaluator(space)
    check_space(space, evaluator)
    study = open_study(space, open_storage(storage) if storage is not None else default_storage(out), seed)
    recover_interrupted(study)
    executor = make_executor(backend, address=ray_address, num_cpus=ray_num_cpus)
    cache = CompressionCache(Path(out) / "cache" if out is not None else None)
    try:
        run_trials(study, space, evaluator, executor, cache, trials, seed, progress)
    finally:
        executor.close()
    if out is not None:
        from accelsim.search.outputs import write_outputs

        write_outputs(study, space, out, evaluator.base_hardware())
    return study


def run_search_cli(space: str, trials: int, storage: str | None, out: str, backend: str, seed: int) -> int:
    """``accelsim search``: run the search, print the front's summary and where the files are; exit code 0."""
    from accelsim.search.outputs import front_summary

    space_obj = SearchSpace.load(space)
    study = search(space_obj, trials=trials, storage=storage, out=out, backend=backend, seed=seed)
    print(front_summary(study, space_obj, Path(out)))
    return 0


__all__ = [
    "batch_seed",
    "check_space",
    "make_sampler",
    "n_complete",
    "open_study",
    "recover_interrupted",
    "run_search_cli",
    "run_trials",
    "search",
]
