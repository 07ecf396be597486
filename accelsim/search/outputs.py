"""Search results: every design point of a study, its Pareto front, and the files written to ``--out``.

The front is over **design points** (a compression point on one hardware point), not over trials:
every design point of every complete trial is read back from the study's storage, the infeasible
ones (not fitting the board, or outside a constraint's bounds) are dropped, and the
non-dominated rest is the front. Files: ``pareto.csv``, ``pareto.json`` (objectives, all metrics,
the full compression recipe and the full hardware config of each point), ``pareto.png`` (the first
compression objective, e.g. accuracy or KL to FP32, vs FPS coloured by GOPS/DSP), ``designs.csv``
(every design point evaluated) and ``report.md``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from accelsim._io import strict_json, write_files_atomic
from accelsim.config.search import METRIC_DIRECTIONS, SearchSpace
from accelsim.errors import AccelsimError, ResourceError
from accelsim.search.objective import COMPRESSION_METRICS, DESIGN_METRICS
from accelsim.search.space import apply_knobs, build_recipe


@dataclass(frozen=True)
class DesignRecord:
    """One evaluated design point of a study."""

    trial: int
    index: int  # position in the trial's hardware sweep
    recipe_key: str
    compression: dict[str, Any]  # compression knob values (the trial's params)
    hardware: dict[str, Any]  # hardware knob values
    metrics: dict[str, float]
    fits: bool
    overflow: str
    violation: float

    @property
    def feasible(self) -> bool:
        return self.violation <= 0.0

    @property
    def name(self) -> str:
        return f"t{self.trial}.h{self.index}"


def collect_designs(study: optuna.Study) -> list[DesignRecord]:
    """Every design point of the study's COMPLETE trials, in trial then sweep order."""
    out: list[DesignRecord] = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        d = t.user_attrs.get("designs")
        if not d:
            continue
        for i, hw_values in enumerate(d["hardware"]):
            out.append(
                DesignRecord(
                    trial=t.number,
                    index=i,
                    recipe_key=str(t.user_attrs.get("recipe_key", "")),
                    compression=dict(t.params),
                    hardware=dict(zip(d["knobs"], hw_values, strict=True)),
                    metrics=dict(zip(d["metrics"], d["values"][i], strict=True)),
                    fits=bool(d["fits"][i]),
                    overflow=str(d["overflow"][i]),
                    violation=float(d["violation"][i]),
                )
            )
    return out


def non_dominated(costs: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``costs`` (n x k, smaller is better) that no other row dominates.

    Row a dominates b when a <= b everywhere and a < b somewhere; equal rows do not dominate each
    other. Rows are visited in lexicographic order, where a dominating row always comes first, so
    each row is compared only with the front found so far.

    Examples:
        >>> non_dominated(np.array([[1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [1.0, 2.0]])).tolist()
        [True, True, False, True]
    """
    n = costs.shape[0]
    mask = np.zeros(n, dtype=bool)
    order = np.lexsort(costs.T[::-1])
    front: list[int] = []
    for i in order:
        c = costs[i]
        if front:
            f = costs[front]
            if np.any(np.all(f <= c, axis=1) & np.any(f < c, axis=1)):
                continue
        front.append(int(i))
        mask[i] = True
    return mask


def pareto_front(designs: Sequence[DesignRecord], objectives: Sequence[str]) -> list[DesignRecord]:
    """The feasible, non-dominated design points (objective vectors with a NaN are dropped).

    Repeated design points (same recipe and hardware, e.g. from a re-run compression point) count once.
    """
    seen: set[tuple[str, str]] = set()
    pool: list[DesignRecord] = []
    for d in designs:
        key = (d.recipe_key, json.dumps(d.hardware, sort_keys=True))
        if not d.feasible or key in seen:
            continue
        if not all(math.isfinite(d.metrics.get(o, math.nan)) for o in objectives):
            continue
        seen.add(key)
        pool.append(d)
    if not pool:
        return []
    sign = np.array([-1.0 if METRIC_DIRECTIONS[o] == "maximize" else 1.0 for o in objectives])
    costs = np.array([[d.metrics[o] for o in objectives] for d in pool]) * sign
    mask = non_dominated(costs)
    front = [d for d, keep in zip(pool, mask, strict=True) if keep]
    # best first in the first objective (sign * value is a cost), then in trial order
    return sorted(front, key=lambda d: (sign[0] * d.metrics[objectives[0]], d.trial, d.index))


def best_per_objective(front: Sequence[DesignRecord], objectives: Sequence[str]) -> dict[str, DesignRecord]:
    """For each objective, the front point best in it (ties broken by the other objectives in order)."""
    best: dict[str, DesignRecord] = {}
    for o in objectives:
        order = [o, *[x for x in objectives if x != o]]

        def key(d: DesignRecord, order: list[str] = order) -> list[float]:
            return [-d.metrics[m] if METRIC_DIRECTIONS[m] == "maximize" else d.metrics[m] for m in order]

        if front:
            best[o] = min(front, key=key)
    return best


# -- files ----------------------------------------------------------------------------------------
def _row(d: DesignRecord, objectives: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"design": d.name, "trial": d.trial, "recipe_key": d.recipe_key}
    for m in [*objectives, *[m for m in DESIGN_METRICS if m not in objectives]]:
        row[m] = d.metrics.get(m)
    row["fits"] = d.fits
    row["violation"] = d.violation
    row["overflow"] = d.overflow
    row.update({f"compression:{k}": v for k, v in d.compression.items()})
    row.update({f"hardware:{k}": v for k, v in d.hardware.items()})
    return row


def _csv_text(rows: list[dict[str, Any]]) -> str:
    fields: list[str] = []
    for r in rows:
        fields.extend(k for k in r if k not in fields)
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _full_point(
    d: DesignRecord, space: SearchSpace, base_hw: Mapping[str, Any], objectives: Sequence[str]
) -> dict[str, Any]:
    return {
        "design": d.name,
        "trial": d.trial,
        "objectives": {o: d.metrics[o] for o in objectives},
        "metrics": d.metrics,
        "compression_knobs": d.compression,
        "hardware_knobs": d.hardware,
        "recipe": build_recipe(space, d.compression).model_dump(mode="json", exclude_none=True),
        "hardware": apply_knobs(base_hw, d.hardware),
    }


#: How the front's plot labels a compression metric on its y axis.
_Y_LABELS = {
    "accuracy": "top-1 accuracy",
    "kl_div": "KL(FP32 || compressed), nats",
    "agreement": "top-1 agreement with FP32",
    "sqnr_db": "logit SQNR vs FP32, dB",
}


def plot_front(
    designs: Sequence[DesignRecord],
    front: Sequence[DesignRecord],
    objectives: Sequence[str] = ("accuracy",),
) -> bytes:
    """The first compression objective (accuracy, KL, agreement or SQNR; accuracy when none is an
    objective) vs FPS: feasible design points in grey, the front coloured by GOPS/DSP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = next((o for o in objectives if o in COMPRESSION_METRICS), "accuracy")
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    feas = [d for d in designs if d.feasible and math.isfinite(d.metrics.get("fps", math.nan))]
    if feas:
        ax.scatter(
            [d.metrics["fps"] for d in feas],
            [d.metrics[y] for d in feas],
            s=8,
            c="0.8",
            label=f"feasible design points ({len(feas)})",
        )
    if front:
        sc = ax.scatter(
            [d.metrics["fps"] for d in front],
            [d.metrics[y] for d in front],
            c=[d.metrics["gops_per_dsp"] for d in front],
            cmap="viridis",
            s=36,
            edgecolors="k",
            linewidths=0.5,
            label=f"Pareto front ({len(front)})",
        )
        fig.colorbar(sc, ax=ax, label="GOPS/DSP")
        # which compression point each front point is: the plot's reason to exist in a co-design
        for d in front[:12]:
            label = ", ".join(f"{k.rsplit('.', 1)[-1]}={_fmt(v)}" for k, v in d.compression.items())
            # to the left: the fastest points sit at the right edge
            ax.annotate(
                label,
                (d.metrics["fps"], d.metrics[y]),
                fontsize=7,
                xytext=(-6, 5),
                textcoords="offset points",
                ha="right",
            )
    if feas and max(d.metrics["fps"] for d in feas) > 20 * min(d.metrics["fps"] for d in feas):
        ax.set_xscale("log")
    # KL spans decades between 8 and 4 bits; FP32's exact 0 has no place on a log axis
    if y == "kl_div" and feas and all(d.metrics[y] > 0 for d in feas):
        ax.set_yscale("log")
    ax.set_xlabel("FPS")
    ax.set_ylabel(_Y_LABELS[y] + (" (log)" if ax.get_yscale() == "log" else ""))
    ax.set_title("co-design Pareto front")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def proxy_timing_warning(space: SearchSpace) -> str | None:
    """A loud line for report.md when the search times one of the shipped small reference models
    (a 32-px proxy trained for accuracy here) instead of a deployed architecture; None otherwise."""
    if space.timing is not None:
        return None
    from accelsim.config.workload import Workload
    from accelsim.errors import AccelsimError
    from accelsim.models import is_reference_model, reference_spec

    wl = space.workload
    if isinstance(wl, str):
        try:
            wl = Workload.load(wl)
        except (AccelsimError, OSError, ValueError):
            return None  # not a workload file (e.g. a synthetic evaluator's name)
    if not is_reference_model(wl.model):
        return None
    px = reference_spec(wl.model).img_size
    return (
        f"> **Warning: timing a proxy.** FPS, latency, GOPS and power are those of `{wl.model}`, a "
        f"{px}-px reference model trained here for accuracy, not of a deployed architecture: at this "
        "size compression can make a design slower, not faster. Set `timing: {model: <timm name>}` "
        "in the space to time the deployed model."
    )


def _timed(space: SearchSpace) -> str:
    t = space.timing
    if t is None:
        return "timing (fps, latency, GOPS, power) from the same model"
    size = f" at {t.img_size} px" if t.img_size else ""
    return f"timing (fps, latency, GOPS, power) from `{t.model}`{size}, compressed with each point's structural recipe"


def _report(
    study: optuna.Study,
    space: SearchSpace,
    designs: Sequence[DesignRecord],
    front: Sequence[DesignRecord],
) -> str:
    objectives = list(space.objectives)
    n_complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    n_failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
    n_feasible = sum(d.feasible for d in designs)
    lines = [
        f"# Co-design search `{space.name}`",
        "",
        f"- workload: `{space.workload if isinstance(space.workload, str) else space.workload.name}`, "
        f"hardware base: `{space.hardware.base}`",
        f"- accuracy from the workload's model; {_timed(space)}",
        *(["", w, ""] if (w := proxy_timing_warning(space)) else []),
        f"- objectives: {', '.join(f'{o} ({METRIC_DIRECTIONS[o]})' for o in objectives)}",
        "- constraints: board resources"
        + "".join(f"; {m} in [{b.min}, {b.max}]" for m, b in space.constraints.items()),
        f"- trials: {n_complete} complete, {n_failed} failed; "
        f"design points: {len(designs)} evaluated, {n_feasible} feasible, {len(front)} on the front",
        "",
        "## Best design per objective",
        "",
    ]
    best = best_per_objective(front, objectives)
    header = ["objective", "design", *objectives, "compression", "hardware"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for o, d in best.items():
        comp = ", ".join(f"{k}={_fmt(v)}" for k, v in d.compression.items())
        hw = ", ".join(f"{k}={_fmt(v)}" for k, v in d.hardware.items())
        lines.append(
            "| " + " | ".join([o, d.name, *(_fmt(d.metrics[m]) for m in objectives), comp, hw]) + " |"
        )
    if not best:
        lines.append("| (no feasible design point) |" + " |" * (len(header) - 1))
    lines += ["", f"## Pareto front ({len(front)} design points)", ""]
    cols = ["design", *objectives, *[m for m in DESIGN_METRICS if m not in objectives]]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for d in front[:50]:
        lines.append("| " + " | ".join([d.name, *(_fmt(d.metrics[m]) for m in cols[1:])]) + " |")
    if len(front) > 50:
        lines.append(f"\n({len(front) - 50} more in pareto.csv)")
    lines += ["", "Files: `pareto.csv`, `pareto.json`, `pareto.png`, `designs.csv`.", ""]
    return "\n".join(lines)


def write_outputs(
    study: optuna.Study, space: SearchSpace, out: str | Path, base_hw: Mapping[str, Any]
) -> dict[str, Path]:
    """Write the front and report files of ``study`` to ``out`` as one set; returns their paths by name.

    Every file is made first, then all are renamed into place together and ``outputs.json`` names
    each one's SHA-256 last (:func:`~accelsim._io.write_files_atomic`): a run killed while it
    writes leaves the previous run's set whole, and a reader can tell by the manifest which set
    each file belongs to.
    """
    objectives = list(space.objectives)
    designs = collect_designs(study)
    front = pareto_front(designs, objectives)
    payload = {
        "study": space.name,
        "objectives": {o: METRIC_DIRECTIONS[o] for o in objectives},
        "points": [_full_point(d, space, base_hw, objectives) for d in front],
    }
    files = {
        "pareto.csv": _csv_text([_row(d, objectives) for d in front]).encode(),
        "pareto.json": (strict_json(payload, indent=1) + "\n").encode(),
        "pareto.png": plot_front(designs, front, objectives),
        "designs.csv": _csv_text([_row(d, objectives) for d in designs]).encode(),
        "report.md": _report(study, space, designs, front).encode(),
    }
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    return write_files_atomic(out, files, manifest={"study": space.name, "complete_trials": complete})


def front_summary(study: optuna.Study, space: SearchSpace, out: Path) -> str:
    """A few lines for the terminal: trial counts, front size, best per objective, where files are."""
    designs = collect_designs(study)
    front = pareto_front(designs, space.objectives)
    lines = [
        f"{len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))} trials, "
        f"{len(designs)} design points, {len(front)} on the Pareto front"
    ]
    for o, d in best_per_objective(front, space.objectives).items():
        vals = ", ".join(f"{m}={_fmt(d.metrics[m])}" for m in space.objectives)
        lines.append(f"best {o}: {d.name} ({vals})")
    lines.append(f"wrote {out}/pareto.csv, pareto.json, pareto.png, designs.csv, report.md")
    return "\n".join(lines)


def check_feasible(study: optuna.Study, space: SearchSpace, out: Path | None = None) -> None:
    """Raise when no design point of ``study`` is feasible, saying what kept each one out.

    Raises:
        ResourceError: no design point fits the board (exit 3).
        AccelsimError: some fit, but none meets the space's constraints.
    """
    designs = collect_designs(study)
    if any(d.feasible for d in designs):
        return
    where = f"; every point is in {out / 'designs.csv'}" if out is not None else ""
    fitting = [d for d in designs if d.fits]
    if not fitting:
        example = designs[0].overflow if designs else "no design point was evaluated"
        raise ResourceError(
            f"no design point of the {len(designs)} evaluated fits the board (e.g. {example}){where}"
        )
    misses = []
    for metric, bound in space.constraints.items():
        n = sum(bound.violation(d.metrics.get(metric, float("nan"))) > 0 for d in fitting)
        if n:
            best = (
                max(d.metrics[metric] for d in fitting)
                if bound.min is not None
                else min(d.metrics[metric] for d in fitting)
            )
            limit = f">= {bound.min}" if bound.min is not None else f"<= {bound.max}"
            misses.append(f"{metric} {limit} ({n} miss it, best {best:.4g})")
    raise AccelsimError(
        f"no design point meets the constraints: {len(fitting)} of {len(designs)} fit the board, "
        f"but {'; '.join(misses) or 'none is within them'}{where}"
    )


__all__ = [
    "DesignRecord",
    "best_per_objective",
    "check_feasible",
    "collect_designs",
    "front_summary",
    "non_dominated",
    "pareto_front",
    "plot_front",
    "write_outputs",
]
