"""A workload: a model (+ weights), a compression recipe and the data to measure it on.

YAML (paths are relative to the YAML file)::

    name: ref_deit_w8a8
    model: ref_deit                         # a reference model (accelsim.models) or a timm name
    checkpoint: checkpoints/ref_deit.pt     # or `pretrained: true` (timm hub / shipped reference weights)
    dataset: {kind: digits}                 # digits | mnist | imagefolder (+ path, max_images)
    recipe:                                 # inline, or a path to a recipe YAML
      quant: {wbits: 8, abits: 8}

A recipe that distils learns from the uncompressed model unless the workload names a ``teacher``:
a reference model (``teacher: ref_cnn`` loads its shipped checkpoint), a timm name with
``pretrained`` or a ``checkpoint``::

    teacher: {model: ref_cnn_lt100, pretrained: true}
    teacher: {model: resnet18, checkpoint: teachers/resnet18_digits.pt}
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from accelsim.config._base import Strict, read_yaml, validate_config
from accelsim.config.compression import CompressionRecipe


class DatasetConfig(Strict):
    """Where the images come from (see :mod:`accelsim.eval.datasets`)."""

    kind: Literal["digits", "mnist", "imagefolder"] = "digits"
    path: str | None = Field(default=None, validate_default=True)
    max_images: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=128, ge=1)
    #: A long-tailed train split: the most frequent class has ``imbalance`` times the images of the
    #: rarest, classes ordered by frequency (class 0 first); the test split stays balanced.
    imbalance: float | None = Field(default=None, ge=1.0)

    @field_validator("path")
    @classmethod
    def _path_for_folder(cls, path: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "imagefolder" and path is None:
            raise ValueError("kind 'imagefolder' needs a dataset path")
        if kind != "imagefolder" and path is not None:
            raise ValueError(f"only kind 'imagefolder' reads a path (kind is {kind!r})")
        return path

    @model_validator(mode="after")
    def _offline_long_tail(self) -> DatasetConfig:
        if self.imbalance is not None and self.kind == "imagefolder":
            raise ValueError("imbalance: a long-tailed split is made of the offline kinds (digits, mnist)")
        return self


class TeacherConfig(Strict):
    """The model a distilling recipe learns from; it reads the workload's images as they are."""

    model: str
    checkpoint: str | None = None
    pretrained: bool = False
    num_classes: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_weight_source(self) -> TeacherConfig:
        if self.checkpoint is not None and self.pretrained:
            raise ValueError("checkpoint: give the teacher a checkpoint or pretrained: true, not both")
        return self


def _teacher_shorthand(value: object) -> object:
    """``teacher: NAME`` is ``{model: NAME, pretrained: true}`` (a reference model's shipped weights)."""
    return {"model": value, "pretrained": True} if isinstance(value, str) else value


class Workload(Strict):
    """Model + weights + recipe + data; :func:`accelsim.evaluate` measures it."""

    name: str = "workload"
    model: str
    checkpoint: str | None = None
    pretrained: bool = False
    img_size: int | None = Field(default=None, ge=8)
    num_classes: int | None = Field(default=None, ge=1)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    recipe: CompressionRecipe | str = Field(default_factory=CompressionRecipe)
    teacher: TeacherConfig | None = None

    _teacher_name = field_validator("teacher", mode="before")(_teacher_shorthand)
    #: the recipe YAML a resolved workload read its recipe from (None: inline)
    _recipe_file: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_weight_source(self) -> Workload:
        if self.checkpoint is not None and self.pretrained:
            raise ValueError("checkpoint: give a checkpoint or pretrained: true, not both")
        return self

    @classmethod
    def load(cls, path: str | Path) -> Workload:
        """Read a workload YAML; resolve its relative paths and load a recipe given by path.

        Raises:
            ConfigError: invalid YAML or fields (one line naming each field).
        """
        path = Path(path)
        data = read_yaml(path)
        if isinstance(data, dict):
            data.setdefault("name", path.stem)
        w = validate_config(cls, data, str(path))
        return w.resolved(path.parent)

    def resolved(self, base: Path) -> Workload:
        """A copy with checkpoint/teacher/dataset/recipe paths made absolute against ``base``."""
        update: dict[str, object] = {}
        if self.checkpoint is not None:
            update["checkpoint"] = str((base / self.checkpoint).resolve())
        if self.teacher is not None and self.teacher.checkpoint is not None:
            update["teacher"] = self.teacher.model_copy(
                update={"checkpoint": str((base / self.teacher.checkpoint).resolve())}
            )
        if self.dataset.path is not None:
            update["dataset"] = self.dataset.model_copy(
                update={"path": str((base / self.dataset.path).resolve())}
            )
        recipe_file = self._recipe_file
        if isinstance(self.recipe, str):
            recipe_file = (base / self.recipe).resolve()
            update["recipe"] = CompressionRecipe.load(base / self.recipe)
        out = self.model_copy(update=update)
        out._recipe_file = recipe_file
        return out

    def files(self) -> list[Path]:
        """Every file and folder a resolved workload reads besides its YAML: the checkpoint, the
        recipe file, the teacher's checkpoint and the dataset folder (what no output may replace)."""
        named = [
            self.checkpoint,
            self._recipe_file,
            self.teacher.checkpoint if self.teacher is not None else None,
            self.dataset.path,
        ]
        return [Path(p) for p in named if p is not None]

    @property
    def compression(self) -> CompressionRecipe:
        """The recipe (a path must have been resolved by :meth:`load` / :meth:`resolved`)."""
        if isinstance(self.recipe, str):
            return CompressionRecipe.load(self.recipe)
        return self.recipe


__all__ = ["DatasetConfig", "TeacherConfig", "Workload"]
