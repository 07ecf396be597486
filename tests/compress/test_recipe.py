"""CompressionRecipe validation and the compress() driver (order, copy semantics, data checks)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from accelsim.compress import compress
from accelsim.config import validate_config
from accelsim.config.compression import OP_TYPES, CompressionRecipe, QuantConfig
from accelsim.errors import ConfigError

WORKLOADS = Path(__file__).resolve().parents[2] / "workloads"


def test_recipe_yaml_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(
        "quant:\n  wbits: 4\n  abits: 6\n  per_op: {head: {wbits: 8}, attn_av: {abits: 3}}\n"
        "  calibrator: percentile\n  percentile: 99.9\nprune: {heads_keep: 0.5, mlp_keep: 0.25}\n"
    )
    r = CompressionRecipe.load(p)
    assert r.quant is not None and r.prune is not None
    assert r.quant.bits_for("head") == (8, 6)
    assert r.quant.bits_for("attn_av") == (4, 3)
    assert r.quant.bits_for("fc1") == (4, 6)
    assert (r.prune.heads_keep, r.prune.mlp_keep, r.prune.embed_keep) == (0.5, 0.25, 1.0)
    assert r.tokens is None and not r.is_identity
    assert CompressionRecipe().is_identity
    assert validate_config(CompressionRecipe, r.model_dump()) == r


@pytest.mark.parametrize(
    ("data", "field", "value"),
    [
        ({"quant": {"wbits": 1}}, "quant.wbits", "1"),
        ({"quant": {"abits": 17}}, "quant.abits", "17"),
        ({"quant": {"per_op": {"fc1": {"wbits": 1}}}}, "quant.per_op.fc1.wbits", "1"),
        ({"quant": {"per_op": {"mlp": {"wbits": 4}}}}, "quant.per_op.mlp", "'mlp'"),
        ({"quant": {"calibrator": "kl"}}, "quant.calibrator", "'kl'"),
        ({"prune": {"heads_keep": 0}}, "prune.heads_keep", "0"),
        ({"prune": {"mlp_keep": 1.5}}, "prune.mlp_keep", "1.5"),
        ({"tokens": {"keep_rate": 0.0}}, "tokens.keep_rate", "0.0"),
        ({"lowrank": {"rank_ratio": 1.5}}, "lowrank.rank_ratio", "1.5"),
        ({"quant": {"wbitz": 4}}, "quant.wbitz", "unknown field"),
        ({"quantize": {}}, "quantize", "unknown field"),
    ],
)
def test_bad_recipe_names_field_and_value(data: dict, field: str, value: str, tmp_path: Path) -> None:
    import yaml

    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as e:
        CompressionRecipe.load(p)
    msg = str(e.value)
    assert str(p) in msg and field in msg and value in msg
    assert "\n" not in msg


def test_bits_error_says_allowed_range() -> None:
    with pytest.raises(ConfigError, match=r"quant\.wbits: Input should be greater than or equal to 2"):
        validate_config(CompressionRecipe, {"quant": {"wbits": 1}})
    with pytest.raises(ConfigError, match=r"quant\.abits: Input should be less than or equal to 16"):
        validate_config(CompressionRecipe, {"quant": {"abits": 17}})


def test_op_types_cover_the_issue() -> None:
    assert {
        "qkv",
        "proj",
        "fc1",
        "fc2",
        "attn_qk",
        "attn_av",
        "conv",
        "dwconv",
        "linear_attention",
        "head",
    } <= set(OP_TYPES)


@pytest.mark.parametrize("path", sorted(WORKLOADS.glob("ref_*.yaml")), ids=lambda p: p.name)
def test_shipped_workloads_validate(path: Path) -> None:
    from accelsim.config.workload import Workload

    w = Workload.load(path)
    assert w.name == path.stem
    assert isinstance(w.recipe, CompressionRecipe)
    if w.checkpoint is None:  # trained from scratch by its own recipe (the DeiT-LT workloads)
        assert w.compression.distill is not None and w.compression.distill.epochs >= 50
    else:
        assert Path(w.checkpoint).is_absolute()


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def test_compress_returns_new_module_and_leaves_input_alone() -> None:
    torch.manual_seed(0)
    m = _Tiny().train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x = torch.randn(16, 4)
    out = compress(m, {"quant": {"wbits": 4, "abits": 4}}, calib_data=[(x, None)])
    assert out is not m and not out.training and m.training
    assert type(m.fc1) is nn.Linear and type(out.fc1).__name__ == "QuantLinear"
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    identity = compress(m, CompressionRecipe())
    assert identity is not m
    assert torch.equal(identity(x), m(x))


def test_compress_needs_data_for_calibration_and_distillation() -> None:
    m = _Tiny()
    with pytest.raises(ConfigError, match=r"quant\.calibrate"):
        compress(m, {"quant": {}})
    with pytest.raises(ConfigError, match="calib_data yielded no batch"):
        compress(m, {"quant": {}}, calib_data=[])
    with pytest.raises(ConfigError, match="distill"):
        compress(m, {"distill": {}})
    with pytest.raises(ConfigError, match=r"quant\.qat"):
        compress(m, {"quant": {"qat": {"epochs": 1}}}, calib_data=[(torch.randn(2, 4), None)])


def test_uncalibrated_quant_needs_no_data() -> None:
    m = _Tiny()
    recipe = {
        "quant": {"calibrate": False, "uncalibrated_range": 2.0, "abits": 8, "symmetric_activations": True}
    }
    q = compress(m, recipe).fc1.input_quantizer
    # symmetric 8-bit over [-2, 2]: scale 2/127, zero point 0
    assert float(q.scale) == pytest.approx(2 / 127)
    assert int(q.zero_point) == 0
    assert float(q(torch.tensor(5.0))) == pytest.approx(2.0)  # clipped to the data-free range


def test_quant_config_defaults() -> None:
    c = QuantConfig()
    assert (c.wbits, c.abits, c.calibrator, c.calibrate, c.power_of_two) == (8, 8, "minmax", True, False)
