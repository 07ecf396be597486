"""What a published accelerator's paper reports, and what its config assumes: the ``reference:``
section of the configs in ``hw_configs/published/``.

A config rebuilt from a paper is only as good as what the paper pins. This section keeps, beside
the config itself, the figures to check the simulation against (with where each comes from and
how sure we are of it) and every value the paper does not give (an assumption, with the
alternatives it could as well have been), so ``benchmarks/published.py`` can report predicted vs
published and which assumption moves the prediction most::

    reference:
      paper: Shao et al., arXiv:2403.20230
      pinned: true
      figures:
        - {model: efficientvit_b1, metric: best_layer_gops, value: 780.2, label: C, source: abstract}
      assumptions:
        - {field: buffers.weight_kib, why: not in the stored text, vary: [128, 512]}

A figure is never a number to tune a config to: the assumptions are chosen from what the paper and
its kind of design say, and the benchmark shows how far each one moves the prediction.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from accelsim.config._base import Strict

#: What a paper reports, as the simulator measures it: latency per image (ms), frames per second,
#: whole-model GOPS (2 x MACs / latency), the best layer's GOPS, GOPS per DSP of the design, on-chip
#: power (W) and GOPS per watt.
Metric = Literal["latency_ms", "fps", "gops", "best_layer_gops", "gops_per_dsp", "power_w", "gops_per_watt"]
#: How sure we are of a figure (``../shared/research/fpga_anchors.md``): ``C`` confirmed in the
#: cited text, ``Q`` quoted through a third party, ``D`` derived by us from confirmed numbers.
Label = Literal["C", "Q", "D"]


class PublishedFigure(Strict):
    """One figure a paper reports for one model on the design."""

    model: str = Field(min_length=1)
    metric: Metric
    value: float = Field(gt=0)
    label: Label
    source: str = Field(min_length=1)
    #: operand bits the paper runs the model at
    wbits: int = Field(default=8, ge=1, le=32)
    abits: int = Field(default=8, ge=1, le=32)
    #: a compression recipe (:class:`accelsim.config.compression.CompressionRecipe` fields) the
    #: paper applies before the hardware sees the model, e.g. a token-pruning schedule
    compression: dict[str, Any] | None = None
    note: str = ""


class Assumption(Strict):
    """A config value the paper does not give (``field``, dotted), or several that go together (a
    list of fields, e.g. an engine's shape at a pinned multiplier count). ``vary``: other values
    it could as well have been, one per alternative (a list of values for a list of fields);
    default: half and double a number, the other value of a switch."""

    field: str | list[str] = Field(min_length=1)
    why: str = Field(min_length=1)
    vary: list[Any] | None = None

    @property
    def fields(self) -> list[str]:
        """The dotted fields this assumption sets."""
        return [self.field] if isinstance(self.field, str) else list(self.field)

    @model_validator(mode="after")
    def _one_value_per_field(self) -> Assumption:
        if isinstance(self.field, list) and self.vary is not None:
            bad = [v for v in self.vary if not isinstance(v, list) or len(v) != len(self.field)]
            if bad:
                raise ValueError(
                    f"vary: each alternative needs one value per field of {self.field}, got {bad[0]!r}"
                )
        return self


class PublishedReference(Strict):
    """The paper behind a config, its figures, and the config's assumptions."""

    paper: str = Field(min_length=1)
    #: the paper pins what sets the timing (engine sizes, clock, bit widths); only then is a
    #: prediction expected within 15% of its figures
    pinned: bool
    figures: list[PublishedFigure] = Field(default_factory=list)
    assumptions: list[Assumption] = Field(default_factory=list)


__all__ = ["Assumption", "Label", "Metric", "PublishedFigure", "PublishedReference"]
