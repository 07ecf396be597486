"""The search driver: Optuna NSGA-II over compression points, batched ask/tell, resumable storage.

One loop serves every backend. Each round asks a batch of trials (sampling happens here, in the
driver), compresses the batch's new recipes (once each: :class:`CompressionCache`), simulates every
trial's hardware sweep, and tells the results **in ask order**. Executors only decide where the
tasks run, so a seed gives the same study locally and on Ray.

Resume: the study lives in an Optuna storage (``sqlite:///OUT/study.db`` by default). Running the
same command again loads it, marks trials a killed run left RUNNING as FAIL (user attribute
``interrupted``) and re-enqueues their parameters, then continues until the study holds ``trials``
COMPLETE trials; completed trials are never touched.

Same seed, same study, resumed or not: every trial has a *slot*, its position in an uninterrupted
run (its number less the interrupted trials before it; a retry takes its original's slot). Its
sampler and its hardware sweep are seeded by its slot, and the retries of an interrupted batch are
run as a batch of their own together with the slots of that batch the kill left unasked, so the
batches after a resume line up with those of a run that was never stopped. The COMPLETE trials of a
resumed study then have the parameters, hardware sweeps and values of the uninterrupted study's,
in the same order; only their trial numbers are higher, by the number of interrupted trials.

One driver per study: the parallelism is in the executor. A second ``search`` on the same ``out``
(or the same SQLite storage file, by whatever name) is refused while the first runs
(:mod:`accelsim.search.storage`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from accelsim._io import check_outputs
from accelsim._progress import bar
from accelsim.config._base import get_path
from accelsim.config.search import SearchSpace
from accelsim.errors import AccelsimError, ConfigError
from accelsim.search.cache import CompressionCache
from accelsim.search.executors import Executor, check_backend, make_executor
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
    apply_knobs_many,
    build_recipe,
    hardware_rng,
    knob_probes,
    recipe_key,
    sample_hardware,
    space_fingerprint,
    suggest_compression,
    unvisited_compression,
)
from accelsim.search.storage import (
    check_storage_url,
    default_storage,
    lock_created_database,
    lock_database,
    lock_run,
    open_storage,
    sqlite_path,
    storage_error,
)

log = logging.getLogger(__name__)


#: the system attribute in which NSGA-II records a trial's generation
_GENERATION = optuna.samplers.NSGAIISampler._get_generation_key()


def make_sampler(space: SearchSpace, seed: int) -> optuna.samplers.NSGAIISampler:
    """NSGA-II; constraints come from each trial's ``set_constraint`` (Deb's constrained domination)."""
    return optuna.samplers.NSGAIISampler(population_size=space.population_size, seed=seed)


def trial_seed(seed: int, slot: int) -> int:
    """The sampler seed of the trial in ``slot``.

    NSGA-II keeps its population in the storage, so a fresh sampler per trial loses nothing; seeded
    by the slot, a trial draws the same point whether it is asked in one run or after a resume (and
    a resumed run draws new points instead of replaying the first generation's draws).
    """
    return int(np.random.SeedSequence([seed, slot]).generate_state(1)[0])


def check_space(space: SearchSpace, evaluator: DesignEvaluator) -> None:
    """Fail fast on a knob whose path or value the configs reject, or a ``timing`` model that
    cannot take its ``img_size`` (before any work is done).

    Every choice and both ends of every range are tried once.

    Raises:
        ConfigError: naming the knob and the config's complaint.
        InputShapeError: the timing model's patch embedding cannot take ``timing.img_size`` whole.
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
    timing = space.timing
    if timing is not None and timing.img_size is not None:
        # the architecture the designs are timed on must take the size whole (no weights needed)
        from accelsim.models import create_timm_model

        nc: dict[str, Any] = {} if timing.num_classes is None else {"num_classes": timing.num_classes}
        create_timm_model(timing.model, timing.img_size, meta=True, where="timing.img_size", **nc)
    for path in space.hardware.knobs:
        try:
            get_path(base, path)
        except KeyError:
            raise ConfigError(
                f"search space hardware knob {path!r}: no such field in the base config"
            ) from None


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


def recover_interrupted(study: optuna.Study, space: SearchSpace | None = None) -> int:
    """Fail the trials a killed run left RUNNING and enqueue their parameters again; returns how many.

    A retry keeps the original's ``slot``, batch and NSGA-II generation (and names the first trial
    it retries in ``retry_of``, however often the run was killed). A trial killed before it had
    every knob of ``space`` is retried with none fixed: its slot's seed draws them all again, as
    the uninterrupted run did.
    """
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study.tell(t.number, state=TrialState.FAIL)
        attrs = {"retry_of": t.user_attrs.get("retry_of", t.number), "slot": _slot_of(study, t)}
        for key in ("batch",):
            if key in t.user_attrs:
                attrs[key] = t.user_attrs[key]
        if _GENERATION in t.system_attrs:
            attrs["generation"] = t.system_attrs[_GENERATION]
        whole = space is None or set(t.params) == set(space.compression.knobs)
        study.enqueue_trial(dict(t.params) if whole else {}, user_attrs=attrs)
    if stale:
        log.info("resuming: %d interrupted trial(s) will be run again", len(stale))
    return len(stale)


def n_complete(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def n_slots(study: optuna.Study) -> int:
    """Trials asked so far, less the interrupted ones: the slot of the next new trial."""
    return sum(not t.user_attrs.get("interrupted") for t in study.get_trials(deepcopy=False))


def _slot_of(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> int:
    if "slot" in trial.user_attrs:
        return int(trial.user_attrs["slot"])
    # a trial of a study made before slots were recorded: count the interrupted trials before it
    before = study.get_trials(deepcopy=False)[: trial.number]
    return trial.number - sum(bool(t.user_attrs.get("interrupted")) for t in before)


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
            next_slot = n_slots(study)
            waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if waiting:
                # an interrupted batch: its retries, then the slots a kill left unasked, so that
                # the batches after it start at the slots an uninterrupted run's would
                start, size = waiting[0].user_attrs.get("batch", (next_slot, 0))
                slots = [int(t.user_attrs.get("slot", next_slot)) for t in waiting]
                slots += list(range(next_slot, start + size))
            else:
                start, size = next_slot, min(space.trial_batch_size, trials - done)
                slots = list(range(start, start + size))
            batch: list[_Pending] = []
            for slot in slots[: trials - done]:
                study.sampler = make_sampler(space, trial_seed(seed, slot))
                if not waiting and slot < space.population_size:
                    # the first generation draws without replacement while untried points remain
                    _enqueue_untried(study, space, seed, slot)
                trial = study.ask()  # a waiting retry first, in the order of ``waiting``
                if "slot" not in trial.user_attrs:
                    trial.set_user_attr("slot", slot)
                if "batch" not in trial.user_attrs:
                    trial.set_user_attr("batch", [start, size])
                if "generation" in trial.user_attrs:
                    # NSGA-II gives an enqueued trial no generation; without its original's, the
                    # retry would count in no population and the next generation would breed
                    # from other parents than an uninterrupted run's
                    study._storage.set_trial_system_attr(
                        trial._trial_id, _GENERATION, trial.user_attrs["generation"]
                    )
                slot = int(trial.user_attrs["slot"])
                values = suggest_compression(trial, space)
                try:
                    recipe = build_recipe(space, values)
                except ConfigError as e:  # a combination of valid knob values may still be invalid
                    trial.set_user_attr("error", str(e))
                    study.tell(trial, state=TrialState.FAIL)
                    failures, last_error = failures + 1, str(e)
                    continue
                key = recipe_key(recipe, evaluator.identity())
                hw_points = sample_hardware(space, hardware_rng(seed, slot))
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
                [(ev, graphs[p.key], apply_knobs_many(base_hw, p.hw_points)) for p in runnable],
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
            if failures >= max_failures or (done == 0 and failures >= min(space.trial_batch_size, trials)):
                # a first batch that failed whole fails the same way again (a missing checkpoint,
                # a workload that does not load): say so now instead of after max_failures trials
                raise AccelsimError(f"{failures} trials failed (e.g. {last_error}); stopping the search")


def _enqueue_untried(study: optuna.Study, space: SearchSpace, seed: int, slot: int) -> None:
    """Fix the next trial's compression knobs to a point no trial has drawn (if one is left): a
    first-generation trial, so it gets generation 0 as NSGA-II would have given it."""
    visited = [t.params for t in study.get_trials(deepcopy=False)]
    point = unvisited_compression(space, visited, np.random.default_rng([seed, slot, 1]))
    if point is None:
        return
    study.enqueue_trial(point, user_attrs={"generation": 0, "untried_compression": True})


def search(
    space: SearchSpace | str | Path,
    trials: int = 20,
    storage: str | None = None,
    out: str | Path | None = None,
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
        out: output folder (also holds the compression cache); ``None`` (the default) writes nothing.
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
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        # NSGA-II seeds NumPy's legacy generator, which takes 0 .. 2**32-1 only
        raise ConfigError(f"seed: must be an integer in 0..{2**32 - 1} (got {seed!r})")
    if out is not None:
        check_outputs({}, folders={"out": out})
    if storage is not None:
        check_storage_url(storage)
    check_backend(backend, ray_address)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    evaluator = evaluator if evaluator is not None else make_evaluator(space)
    check_space(space, evaluator)
    # the database's lock (which every run on that file takes, whatever its --out or the name it
    # gives the file) first, then a given storage is opened, then --out is made and locked: a run
    # refused for any of them, or given a bad storage, leaves no --out behind
    db = (
        sqlite_path(storage) if storage is not None else (Path(out) / "study.db" if out is not None else None)
    )
    from sqlalchemy.exc import SQLAlchemyError

    with contextlib.ExitStack() as held:
        existed = db is not None and held.enter_context(lock_database(db))
        given = open_storage(storage) if storage is not None else None
        if out is not None:
            held.enter_context(lock_run(Path(out) / ".lock"))
        if db is not None and not existed:
            held.enter_context(lock_created_database(db))
        try:
            study = open_study(space, given if given is not None else default_storage(out), seed)
            recover_interrupted(study, space)
            executor = make_executor(backend, address=ray_address, num_cpus=ray_num_cpus)
            cache = CompressionCache(Path(out) / "cache" if out is not None else None)
            try:
                run_trials(study, space, evaluator, executor, cache, trials, seed, progress)
            finally:
                executor.close()
        except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as e:
            # the database failed under the run (full disk, server gone)
            raise storage_error(storage or f"sqlite:///{db}", e) from None
        if out is not None:
            from accelsim.search.outputs import write_outputs

            write_outputs(study, space, out, evaluator.base_hardware())
    return study


__all__ = [
    "check_space",
    "make_sampler",
    "n_complete",
    "n_slots",
    "open_study",
    "recover_interrupted",
    "run_trials",
    "search",
    "trial_seed",
]
