"""SearchSpace: knob kinds, one-line errors naming the field, YAML loading."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from accelsim.config.search import FloatRange, IntRange, SearchSpace, knob_size
from accelsim.errors import ConfigError


def test_knob_kinds_and_sizes() -> None:
    s = SearchSpace.model_validate(
        {
            "workload": "w.yaml",
            "compression": {
                "knobs": {
                    "quant.wbits": [4, 8],
                    "prune.heads_keep": {"low": 0.5, "high": 1.0, "step": 0.25},
                    "prune.mlp_keep": {"low": 0.5, "high": 1.0},
                }
            },
            "hardware": {
                "knobs": {"array.rows": {"low": 16, "high": 64, "step": 16}, "dataflow": ["ws", "os"]}
            },
        }
    )
    c, h = s.compression.knobs, s.hardware.knobs
    assert c["quant.wbits"] == [4, 8]
    assert isinstance(c["prune.heads_keep"], FloatRange) and knob_size(c["prune.heads_keep"]) == 3
    assert knob_size(c["prune.mlp_keep"]) == math.inf
    assert isinstance(h["array.rows"], IntRange) and [h["array.rows"].value(i) for i in range(4)] == [
        16,
        32,
        48,
        64,
    ]
    assert s.directions == ["maximize", "maximize", "maximize"]  # accuracy, fps, gops_per_dsp
    assert s.trial_batch_size == s.population_size == 8
    # the dump validates back to an equal space (the study stores it)
    assert SearchSpace.model_validate(s.model_dump(mode="json")) == s


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"objectives": ["acc"]}, "objectives.0: Input should be 'accuracy', 'kl_div'"),
        ({"objectives": ["fps", "fps"]}, "objectives listed twice: fps"),
        (
            {"compression": {"knobs": {"quant.wbits": []}}},
            "compression.knobs.quant.wbits.choices: List should have",
        ),
        (
            {"hardware": {"knobs": {"rows": {"low": 64, "high": 16}}}},
            "low must be <= high (got low=64, high=16)",
        ),
        ({"hardware": {"knobs": {"a..b": [1]}}}, "knob 'a..b' is not a dotted field path"),
        ({"constraints": {"fps": {}}}, "constraints.fps: Value error, give min, max or both"),
        ({"hw_points": 3}, "hw_points: unknown field"),
        ({"population_size": 1}, "population_size: Input should be greater than or equal to 2"),
    ],
)
def test_errors_name_the_field(data: dict[str, object], message: str) -> None:
    from accelsim.config._base import validate_config

    with pytest.raises(ConfigError, match=None) as e:
        validate_config(SearchSpace, {"workload": "w.yaml", **data}, "space.yaml")
    assert message in str(e.value)
    assert str(e.value).startswith("space.yaml: ")
    assert "\n" not in str(e.value)


def test_load_resolves_paths_next_to_the_yaml(tmp_path: Path) -> None:
    (tmp_path / "wl.yaml").write_text("model: x\n")
    (tmp_path / "space.yaml").write_text("name: s\nworkload: wl.yaml\nhardware: {base: zcu102}\n")
    s = SearchSpace.load(tmp_path / "space.yaml")
    assert s.workload == str(tmp_path / "wl.yaml")
    assert s.hardware.base == "zcu102"  # a name, not a path: untouched


def test_load_bad_yaml(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("workload: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML at line 2"):
        SearchSpace.load(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        SearchSpace.load(tmp_path / "missing.yaml")
