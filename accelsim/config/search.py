"""The co-design search space: compression knobs x hardware knobs, objectives and constraints.

A :class:`SearchSpace` is a strict pydantic model read from YAML (``workloads/search_*.yaml``) with
:meth:`SearchSpace.load`. Knobs are named by the dotted path of the field they set, so the space
speaks the same language as the configs it varies: ``quant.wbits`` or ``prune.heads_keep`` in a
:class:`~accelsim.config.compression.CompressionRecipe`, ``array.rows`` or ``clock_mhz`` in a
:class:`~accelsim.config.hardware.HardwareConfig`. A knob is a list of choices or a range::

    name: deit_small_zcu102
    workload: workloads/ref_deit_fp32.yaml      # a Workload YAML path, or the workload inline
    compression:
      base: {quant: {calibrator: percentile}}   # fixed settings every point shares
      knobs:
        quant.wbits: [4, 8]
        quant.per_op.attn_qk.abits: [6, 8]
        prune.heads_keep: {low: 0.5, high: 1.0, step: 0.25}
    timing: {model: deit_small_patch16_224}    # optional: time on the deployed model (TimingModel)
    hardware:
      base: zcu102                              # an accelerator config name in hw_configs/ or a YAML path
      knobs:
        array.rows: [16, 32, 64]
        clock_mhz: {low: 150.0, high: 300.0, step: 50.0}
    hw_points_per_trial: 32
    objectives: [accuracy, fps, gops_per_dsp]
    constraints: {accuracy: {min: 0.5}}

No torch and no optuna here: the space is read by the CLI and the search alike.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from accelsim.config._base import Strict, read_yaml, validate_config
from accelsim.config.compression import CompressionRecipe
from accelsim.config.dataflow import FamilyChoice
from accelsim.config.workload import Workload

#: A value a choice knob can take (what ``optuna``'s categorical distribution stores, too).
Scalar = bool | int | float | str

#: The metrics of a design point and the direction in which each is better. ``accuracy`` and the
#: fidelity to the uncompressed model (:mod:`accelsim.eval.fidelity`: mean KL divergence of the
#: softmax outputs, top-1 agreement, logit SQNR in dB) come from the compression point; the others
#: from simulating it on one hardware point. Where top-1 saturates on a small test set, the
#: fidelity metrics still order compression points.
METRIC_DIRECTIONS: dict[str, Literal["maximize", "minimize"]] = {
    "accuracy": "maximize",
    "kl_div": "minimize",
    "agreement": "maximize",
    "sqnr_db": "maximize",
    "fps": "maximize",
    "gops": "maximize",
    "gops_per_dsp": "maximize",
    "latency_ms": "minimize",
    "dsp_used": "minimize",
    "bram36_used": "minimize",
    # the power model's estimates (accelsim.sim.power): energy per frame, total power, efficiency
    "energy_mj": "minimize",
    "power_w": "minimize",
    "gops_per_watt": "maximize",
}
Metric = Literal[
    "accuracy",
    "kl_div",
    "agreement",
    "sqnr_db",
    "fps",
    "gops",
    "gops_per_dsp",
    "latency_ms",
    "dsp_used",
    "bram36_used",
    "energy_mj",
    "power_w",
    "gops_per_watt",
]
METRICS: tuple[str, ...] = tuple(METRIC_DIRECTIONS)


class IntRange(Strict):
    """Integers ``low, low+step, ..., <= high`` (``log``: sampled log-uniformly, step 1)."""

    low: int
    high: int
    step: int = Field(default=1, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> IntRange:
        if self.low > self.high:
            raise ValueError(f"low must be <= high (got low={self.low}, high={self.high})")
        if self.log and (self.step != 1 or self.low <= 0):
            raise ValueError("log: needs step 1 and low > 0")
        return self

    @property
    def size(self) -> int:
        return (self.high - self.low) // self.step + 1

    def value(self, index: int) -> int:
        return self.low + index * self.step


class FloatRange(Strict):
    """Floats in ``[low, high]``: on the grid ``low + k*step`` when ``step`` is set, else continuous."""

    low: float
    high: float
    step: float | None = Field(default=None, gt=0.0)
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> FloatRange:
        if self.low > self.high:
            raise ValueError(f"low must be <= high (got low={self.low}, high={self.high})")
        if self.log and (self.step is not None or self.low <= 0):
            raise ValueError("log: needs no step and low > 0")
        return self

    @property
    def size(self) -> float:
        """Grid points (``math.inf`` when continuous)."""
        if self.step is None:
            return math.inf if self.high > self.low else 1
        # the 1e-9 absorbs float noise, e.g. (1.0 - 0.5) / 0.25 = 1.9999999
        return math.floor((self.high - self.low) / self.step + 1e-9) + 1

    def value(self, index: int) -> float:
        assert self.step is not None
        # rounding keeps grid values printable and hashable the same way on every machine
        return round(self.low + index * self.step, 12)


def _knob_kind(v: Any) -> str:
    """Tag of a knob's raw value: a list is choices; a mapping is a float range if any number in it is."""
    if isinstance(v, IntRange | FloatRange):
        return "int" if isinstance(v, IntRange) else "float"
    if isinstance(v, dict):
        return "float" if any(isinstance(v.get(k), float) for k in ("low", "high", "step")) else "int"
    return "choices"


#: A knob: a non-empty list of choices, or a range (``{low, high[, step][, log]}``; integer ends and
#: step make an :class:`IntRange`, any float makes a :class:`FloatRange`).
Knob = Annotated[
    Annotated[list[Scalar], Field(min_length=1), Tag("choices")]
    | Annotated[IntRange, Tag("int")]
    | Annotated[FloatRange, Tag("float")],
    Discriminator(_knob_kind),
]


def knob_size(knob: Knob) -> float:
    """How many values a knob can take (``math.inf`` for a continuous range)."""
    return len(knob) if isinstance(knob, list) else knob.size


class Bound(Strict):
    """An acceptable interval of one metric; a design point outside it is infeasible."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _check(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min must be <= max (got min={self.min}, max={self.max})")
        return self

    def violation(self, value: float) -> float:
        """How far ``value`` lies outside the bound (0 inside), relative to the bound's size."""
        if self.min is not None and value < self.min:
            return (self.min - value) / max(abs(self.min), 1e-12)
        if self.max is not None and value > self.max:
            return (value - self.max) / max(abs(self.max), 1e-12)
        return 0.0


def _check_paths(knobs: dict[str, Knob]) -> dict[str, Knob]:
    for path in knobs:
        parts = path.split(".")
        if not path or any(not p.isidentifier() for p in parts):
            raise ValueError(f"knob {path!r} is not a dotted field path like 'quant.wbits'")
    return knobs


class CompressionSpace(Strict):
    """Compression knobs (dotted paths into a :class:`CompressionRecipe`) over a fixed ``base`` recipe."""

    base: CompressionRecipe = Field(default_factory=CompressionRecipe)
    knobs: dict[str, Knob] = Field(default_factory=dict)

    _paths = field_validator("knobs")(_check_paths)


class HardwareSpace(Strict):
    """Hardware knobs (dotted paths into a ``HardwareConfig``) over the accelerator config ``base``.

    ``base`` is a config name in ``hw_configs/`` (e.g. ``zcu102``) or a YAML path; its board's
    resources are the constraints every hardware point must meet.
    """

    base: str = "zcu102"
    knobs: dict[str, Knob] = Field(default_factory=dict)
    #: search both architecture families: each point's ``family.kind`` picks the overlay (``base``)
    #: or a dataflow design the allocator sizes on ``base``'s board (knobs ``family.*``)
    family: FamilyChoice | None = None

    _paths = field_validator("knobs")(_check_paths)


class TimingModel(Strict):
    """The architecture a search times its designs on, where it is not the workload's model.

    Accuracy and fidelity come from the workload (a small proxy trained on the shipped data, or
    the user's own model, weights and data); cycles come from this model (e.g. ``efficientvit_b1``
    at 224 px, ``deit_small_patch16_224``), built by timm with random weights (timing needs only
    shapes) and compressed with the same structural recipe: bits, pruning ratios, token keep
    rates and low-rank ratios. The training steps (distillation, QAT) do not change the shapes and
    are not run on it; growth changes the architecture itself and is refused.
    """

    #: a timm model name
    model: str = Field(min_length=1)
    img_size: int | None = Field(default=None, ge=8, le=4096)
    num_classes: int | None = Field(default=None, ge=1)


class SearchSpace(Strict):
    """What the co-design search explores and optimises (see the module docstring for an example).

    ``population_size`` is NSGA-II's; ``batch_size`` trials are asked together, evaluated (in
    parallel on Ray) and told in ask order; it defaults to the population size. Same seed and same
    batch size give the same study on every backend.
    """

    name: str = Field(default="codesign", pattern=r"^[A-Za-z0-9_.\-]+$")
    workload: str | Workload
    compression: CompressionSpace = Field(default_factory=CompressionSpace)
    hardware: HardwareSpace = Field(default_factory=HardwareSpace)
    #: time the designs on this architecture instead of the workload's model (None: the workload's)
    timing: TimingModel | None = None
    hw_points_per_trial: int = Field(default=32, ge=1, le=100_000)
    objectives: list[Metric] = Field(
        default_factory=lambda: ["accuracy", "fps", "gops_per_dsp"],  # type: ignore[arg-type]
        min_length=1,
    )
    constraints: dict[Metric, Bound] = Field(default_factory=dict)
    population_size: int = Field(default=8, ge=2, le=10_000)
    batch_size: int | None = Field(default=None, ge=1, le=10_000)

    @field_validator("objectives")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dup = sorted({m for m in v if v.count(m) > 1})
        if dup:
            raise ValueError(f"objectives listed twice: {', '.join(dup)}")
        return v

    @model_validator(mode="after")
    def _timing_keeps_its_architecture(self) -> SearchSpace:
        grows = self.compression.base.grow is not None or any(
            k.startswith("grow.") for k in self.compression.knobs
        )
        if self.timing is not None and grows:
            raise ValueError(
                "timing: growth changes the workload model's architecture; the timed model "
                f"{self.timing.model!r} is fixed (drop grow, or time the workload's own model)"
            )
        return self

    @property
    def directions(self) -> list[Literal["maximize", "minimize"]]:
        return [METRIC_DIRECTIONS[m] for m in self.objectives]

    @property
    def trial_batch_size(self) -> int:
        return self.batch_size or self.population_size

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        """Read a search-space YAML.

        A relative ``workload`` or ``hardware.base`` path that does not exist from the current
        directory is taken relative to the YAML file, so a space and its workload can move together.

        Raises:
            ConfigError: unreadable file, invalid YAML or an invalid field (the message names it).
        """
        path = Path(path)
        data = read_yaml(path)
        if isinstance(data, dict):
            data = dict(data)
            data["workload"] = _resolve(data.get("workload"), path.parent)
            hw = data.get("hardware")
            if isinstance(hw, dict) and isinstance(hw.get("base"), str):
                data["hardware"] = {**hw, "base": _resolve(hw["base"], path.parent)}
        space = validate_config(cls, data, str(path))
        if isinstance(space.workload, Workload):  # an inline workload's paths are relative to this file
            space = space.model_copy(update={"workload": space.workload.resolved(path.parent)})
        return space

    def files(self) -> list[Path]:
        """The files a loaded space reads besides its YAML: the workload's YAML and every file it
        names (:meth:`Workload.files`), and the base hardware YAML (what no output may replace)."""
        named: list[Path] = []
        workload = self.workload
        if isinstance(workload, str) and Path(workload).is_file():
            named.append(Path(workload))
            workload = Workload.load(workload)
        if isinstance(workload, Workload):
            named += workload.files()
        if Path(self.hardware.base).is_file():
            named.append(Path(self.hardware.base))
        return named


def _resolve(value: Any, here: Path) -> Any:
    """``value`` as a path relative to ``here`` when it names a YAML file found only there."""
    if not isinstance(value, str) or not value.endswith((".yaml", ".yml")):
        return value
    p = Path(value)
    if p.is_absolute() or p.exists() or not (here / p).exists():
        return value
    return str(here / p)


__all__ = [
    "METRICS",
    "METRIC_DIRECTIONS",
    "Bound",
    "CompressionSpace",
    "FloatRange",
    "HardwareSpace",
    "IntRange",
    "Knob",
    "Metric",
    "SearchSpace",
    "TimingModel",
    "knob_size",
]
