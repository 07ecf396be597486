"""Sampling a :class:`~accelsim.config.search.SearchSpace`: the only module that calls ``trial.suggest_*``.

The outer level (compression) is sampled by Optuna through :func:`suggest_compression`; the inner
level (hardware) by :func:`sample_hardware` from a seeded NumPy generator, because hundreds of
hardware points per trial would drown Optuna's storage and buy nothing: the simulator is cheap
enough to sweep them. Knob values are applied to the base config by dotted path
(:func:`apply_knobs`), and the result is validated by the config's own pydantic model.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import optuna

from accelsim.config._base import get_path, set_path, validate_config
from accelsim.config.compression import CompressionRecipe
from accelsim.config.search import IntRange, Knob, Scalar, SearchSpace, knob_size
from accelsim.errors import ConfigError

KnobValues = dict[str, Scalar]


def suggest_compression(trial: optuna.Trial, space: SearchSpace) -> KnobValues:
    """Ask ``trial`` for one value of every compression knob (Optuna param name = the knob's path)."""
    values: KnobValues = {}
    for path, knob in space.compression.knobs.items():
        if isinstance(knob, list):
            # every Scalar is a categorical choice type; optuna's annotation also admits None
            values[path] = trial.suggest_categorical(path, knob)  # type: ignore[assignment]
        elif isinstance(knob, IntRange):
            values[path] = trial.suggest_int(path, knob.low, knob.high, step=knob.step, log=knob.log)
        else:
            values[path] = trial.suggest_float(path, knob.low, knob.high, step=knob.step, log=knob.log)
    return values


def _draw(knob: Knob, rng: np.random.Generator) -> Scalar:
    if isinstance(knob, list):
        return knob[int(rng.integers(len(knob)))]
    if isinstance(knob, IntRange):
        if knob.log:
            return int(
                min(knob.high, math.floor(math.exp(rng.uniform(math.log(knob.low), math.log(knob.high + 1)))))
            )
        return knob.value(int(rng.integers(knob.size)))
    if knob.step is not None:
        return knob.value(int(rng.integers(int(knob.size))))
    if knob.log:
        # exp(log(x)) may land an ulp outside [low, high]: clamp
        return min(
            knob.high, max(knob.low, float(math.exp(rng.uniform(math.log(knob.low), math.log(knob.high)))))
        )
    return float(rng.uniform(knob.low, knob.high))


def _grid(knob: Knob) -> list[Scalar]:
    if isinstance(knob, list):
        return list(knob)
    return [knob.value(i) for i in range(int(knob.size))]


#: the largest compression grid enumerated to find the points no trial has drawn yet
MAX_ENUMERATED_COMPRESSION = 100_000


def unvisited_compression(
    space: SearchSpace, visited: Sequence[Mapping[str, Any]], rng: np.random.Generator
) -> KnobValues | None:
    """A compression point (one value per knob) that no trial in ``visited`` has drawn, picked by
    ``rng``; None when every point has been drawn, or the grid is continuous or too large to list.

    The first generation of NSGA-II draws its points independently, so a small space repeats
    points (two of four in a 2 x 2 space) where an untried one was left: a repeat compresses
    nothing new (the cache has it) and spends the trial on a known point.
    """
    knobs = space.compression.knobs
    sizes = [knob_size(k) for k in knobs.values()]
    if not knobs or math.prod(sizes) > MAX_ENUMERATED_COMPRESSION:
        return None
    names = list(knobs)
    seen = {tuple(v.get(n) for n in names) for v in visited}
    free = [c for c in itertools.product(*(_grid(k) for k in knobs.values())) if c not in seen]
    if not free:
        return None
    return dict(zip(names, free[int(rng.integers(len(free)))], strict=True))


def hardware_grid_size(space: SearchSpace) -> float:
    """How many distinct hardware points the space holds (``math.inf`` with a continuous knob)."""
    return math.prod(knob_size(k) for k in space.hardware.knobs.values())


def sample_hardware(space: SearchSpace, rng: np.random.Generator, n: int | None = None) -> list[KnobValues]:
    """``n`` (default ``space.hw_points_per_trial``) distinct hardware points.

    When the whole hardware grid has at most ``n`` points it is enumerated (in a fixed order), so a
    small space is swept exhaustively for every compression point; otherwise points are drawn
    uniformly without repetition.
    """
    n = space.hw_points_per_trial if n is None else n
    knobs = space.hardware.knobs
    names = list(knobs)
    if hardware_grid_size(space) <= n:
        return [
            dict(zip(names, combo, strict=True)) for combo in itertools.product(*map(_grid, knobs.values()))
        ]
    seen: set[str] = set()
    points: list[KnobValues] = []
    # Rejection of repeats terminates quickly: the grid is larger than n, so each draw is new with
    # probability >= 1/(n+1) even in the worst case; the cap only guards against bad luck.
    for _ in range(100 * n):
        point = {name: _draw(knobs[name], rng) for name in names}
        key = json.dumps(point, sort_keys=True)
        if key not in seen:
            seen.add(key)
            points.append(point)
            if len(points) == n:
                break
    return points


def hardware_rng(seed: int, slot: int) -> np.random.Generator:
    """The generator of a trial's hardware sweep: a pure function of the search seed and the trial's
    slot (its position in an uninterrupted run, so a retried trial sweeps the same points)."""
    return np.random.default_rng(np.random.SeedSequence([seed, slot]))


def apply_knobs(base: Mapping[str, Any], values: Mapping[str, Scalar]) -> dict[str, Any]:
    """``base`` with each dotted path in ``values`` set (missing sections are created).

    Only the dicts along the set paths are copied (:func:`~accelsim.config._base.set_path`); the rest
    is shared with ``base``, which is never modified (a deep copy per hardware point would cost more
    than validating it).

    Examples:
        >>> apply_knobs({"quant": {"wbits": 8}}, {"quant.abits": 4, "prune.heads_keep": 0.5})
        {'quant': {'wbits': 8, 'abits': 4}, 'prune': {'heads_keep': 0.5}}
    """
    out = dict(base)
    for path, value in values.items():
        try:
            out = set_path(out, path, value, create=True)
        except KeyError as e:
            where = e.args[0]
            raise ConfigError(
                f"knob {path!r}: {where!r} is a value ({get_path(out, where)!r}), not a section"
            ) from None
    return out


def apply_knobs_many(base: Mapping[str, Any], points: Sequence[Mapping[str, Scalar]]) -> list[dict[str, Any]]:
    """:func:`apply_knobs` of each point, the points whose knobs give a section the same values
    sharing that section's dict (built once).

    A sweep draws each knob from a few values, so a section's values (``array``, ``buffers``)
    repeat from point to point; :func:`accelsim.search.objective.accelsim_simulate` validates a
    section object once for all the points that share it, which leaves most points only their
    top-level fields to validate. Values are told apart by type too (``1``, ``1.0`` and ``True``
    are equal in Python, not in a config).

    Examples:
        >>> a, b = apply_knobs_many({"x": {"k": 1}}, [{"x.k": 2, "y": 1}, {"x.k": 2, "y": 3}])
        >>> a["x"] is b["x"], b
        (True, {'x': {'k': 2}, 'y': 3})
    """
    out: list[dict[str, Any]] = [{}] * len(points)
    by_knobs: dict[tuple[str, ...], list[int]] = {}  # a sweep's points have one set of knobs
    for i, values in enumerate(points):
        by_knobs.setdefault(tuple(values), []).append(i)
    sections: dict[tuple[Any, ...], dict[tuple[Any, ...], dict[str, Any]]] = {}
    for names, where in by_knobs.items():
        group = [points[i] for i in where]
        plan = _knob_plan(names)
        if plan is None:
            for i, values in zip(where, group, strict=True):
                out[i] = apply_knobs(base, values)
            continue
        # column by column: each section's dicts, then each top-level knob's values
        configs = [dict(base) for _ in group]
        for head, paths in plan.sections:
            for config, section in zip(
                configs, _section_column(base, head, paths, group, sections), strict=True
            ):
                config[head] = section
        for name in plan.top:
            for config, value in zip(configs, map(operator.itemgetter(name), group), strict=True):
                config[name] = value
        for i, config in zip(where, configs, strict=True):
            out[i] = config
    return out


def _section_column(
    base: Mapping[str, Any],
    head: str,
    paths: tuple[str, ...],
    group: Sequence[Mapping[str, Scalar]],
    sections: dict[tuple[Any, ...], dict[tuple[Any, ...], dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Section ``head`` of each point of ``group`` with knobs ``paths`` set, one dict per distinct
    values (``sections``, by paths and value types, holds them)."""
    values = [list(map(operator.itemgetter(path), group)) for path in paths]
    types = tuple(next(iter(kinds)) if len(kinds := set(map(type, v))) == 1 else None for v in values)
    rows: list[Any] = list(zip(*values, strict=True))
    if None in types:  # a knob of several types: each point's types in its key
        rows = [(row, tuple(map(type, row))) for row in rows]
    made = sections.setdefault((paths, types), {})
    column = []
    for row in rows:
        section = made.get(row)
        if section is None:
            point = row[0] if None in types else row
            section = made[row] = apply_knobs(
                {head: base[head]} if head in base else {}, dict(zip(paths, point, strict=True))
            )[head]
        column.append(section)
    return column


class _KnobPlan(NamedTuple):
    #: each section a knob goes into, and the knobs that do
    sections: tuple[tuple[str, tuple[str, ...]], ...]
    #: the knobs that set a top-level field
    top: tuple[str, ...]


def _knob_plan(names: Sequence[str]) -> _KnobPlan | None:
    """How :func:`apply_knobs_many` applies knobs ``names``: None when a knob sets a whole section
    another one goes into (``array`` and ``array.rows``), which :func:`apply_knobs` handles."""
    groups: dict[str, list[str]] = {}
    top: list[str] = []
    for path in names:
        head, dot, _ = path.partition(".")
        if dot:
            groups.setdefault(head, []).append(path)
        else:
            top.append(path)
    if any(path in groups for path in top):
        return None
    return _KnobPlan(tuple((head, tuple(paths)) for head, paths in groups.items()), tuple(top))


def build_recipe(space: SearchSpace, values: Mapping[str, Scalar]) -> CompressionRecipe:
    """The full :class:`CompressionRecipe` of a compression point.

    Raises:
        ConfigError: the knob values do not make a valid recipe (the message names the field).
    """
    data = apply_knobs(space.compression.base.model_dump(mode="json", exclude_none=True), values)
    return validate_config(CompressionRecipe, data, "compression point")


def recipe_key(recipe: CompressionRecipe, identity: Mapping[str, Any]) -> str:
    """A short stable hash naming (workload, recipe): the key of the compression cache.

    It includes accelsim's version and the graph format's, so a cached graph lowered by another
    release (whose lowering or format may differ) is a miss, not a silently stale hit.
    """
    from accelsim import __version__
    from accelsim.ir.graph import FORMAT_VERSION

    blob = json.dumps(
        {
            "workload": identity,
            "recipe": recipe.model_dump(mode="json"),
            "accelsim": __version__,
            "graph_format": FORMAT_VERSION,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def space_fingerprint(space: SearchSpace) -> str:
    """A hash of everything that shapes a study, to refuse resuming a study with a different space."""
    blob = json.dumps(space.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def knob_probes(space_knobs: Mapping[str, Knob]) -> list[KnobValues]:
    """Knob settings that together try every choice and both ends of every range at least once.

    Used to check a space before searching it: each probe is the first value of every knob but one.
    """

    def ends(k: Knob) -> list[Scalar]:
        if isinstance(k, list):
            return list(k)
        if isinstance(k, IntRange) or k.step is not None:
            return [k.value(0), k.value(int(k.size) - 1)]
        return [k.low, k.high]

    first = {p: ends(k)[0] for p, k in space_knobs.items()}
    probes = [first]
    for p, k in space_knobs.items():
        probes.extend({**first, p: v} for v in ends(k)[1:])
    return probes


__all__ = [
    "KnobValues",
    "apply_knobs",
    "apply_knobs_many",
    "build_recipe",
    "hardware_grid_size",
    "hardware_rng",
    "knob_probes",
    "recipe_key",
    "sample_hardware",
    "space_fingerprint",
    "suggest_compression",
]
