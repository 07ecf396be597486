"""The timm zoo as the lowering test suite: the smallest variant of every vision-transformer family
(attention or token mixer) lowers, and its MACs are torch's flop count exactly.

A family is one line of :data:`FAMILIES`: its name, the model tried, and where timm keeps its
variants (``timm.list_models(pattern, module=module)``). The model is the variant with the fewest
MACs at its default input size by torch's flop counter (ties: fewer parameters), as a new user
would try it; ``python tests/lower/test_lower_zoo.py --pick FAMILY`` walks timm's list again for
a family of the table and prints its five smallest (slow: it builds and counts every variant),
``--table`` lowers them all for the README table.

A family that does not lower is in :data:`NOT_LOWERED` with the op it stops at and why: the test
fails when it starts to lower (so the list stays true) as when an unlisted family breaks.
:data:`EXTRA_FAMILIES` run too with ``ACCELSIM_ZOO=all`` in the environment.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import pytest
import torch

from accelsim.errors import UnsupportedOpError
from accelsim.eval.accuracy import torch_macs
from accelsim.ir import MAC_KINDS, Graph
from accelsim.lower import lower

#: the timm release the table was measured on (the test runs on any; the picks may drift)
TIMM_VERSION = "1.0.31"


@dataclass(frozen=True)
class Family:
    name: str
    model: str
    module: str
    pattern: str = "*"


FAMILIES = [
    Family("vit", "vit_small_patch32_224", "vision_transformer", "vit_*"),
    Family("deit", "deit_tiny_patch16_224", "deit", "deit_*"),
    Family("beit", "beit_base_patch16_224", "beit", "beit_*"),
    Family("vit_hybrid", "vit_tiny_r_s16_p8_224", "vision_transformer_hybrid", "vit_*"),
    Family("samvit", "samvit_base_patch16_224", "vision_transformer_sam"),
    Family("eva02", "eva02_tiny_patch14_224", "eva", "eva02_*"),
    Family("cait", "cait_xxs24_224", "cait"),
    Family("coat", "coat_lite_tiny", "coat"),
    Family("convit", "convit_tiny", "convit"),
    Family("crossvit", "crossvit_tiny_240", "crossvit"),
    Family("levit", "levit_128s", "levit"),
    Family("pit", "pit_ti_224", "pit"),
    Family("tnt", "tnt_s_legacy_patch16_224", "tnt"),
    Family("twins", "twins_svt_small", "twins"),
    Family("xcit", "xcit_nano_12_p16_224", "xcit"),
    Family("volo", "volo_d1_224", "volo"),
    Family("visformer", "visformer_tiny", "visformer"),
    Family("nest", "nest_tiny", "nest"),
    Family("pvt_v2", "pvt_v2_b0", "pvt_v2"),
    Family("gcvit", "gcvit_xxtiny", "gcvit"),
    Family("davit", "davit_tiny", "davit"),
    Family("focalnet", "focalnet_tiny_srf", "focalnet"),
    Family("hiera", "hiera_tiny_224", "hiera"),
    Family("mvitv2", "mvitv2_tiny", "mvitv2"),
    Family("swin", "swin_tiny_patch4_window7_224", "swin_transformer"),
    Family("swinv2", "swinv2_tiny_window8_256", "swin_transformer_v2"),
    Family("maxvit", "maxvit_pico_rw_256", "maxxvit", "maxvit_*"),
    Family("efficientformer", "efficientformer_l1", "efficientformer"),
    Family("efficientformerv2", "efficientformerv2_s0", "efficientformer_v2"),
    Family("efficientvit_mit", "efficientvit_b0", "efficientvit_mit"),
    Family("efficientvit_msra", "efficientvit_m0", "efficientvit_msra"),
    Family("edgenext", "edgenext_xx_small", "edgenext"),
    Family("mobilevit", "mobilevit_xxs", "mobilevit", "mobilevit_*"),
    Family("mobilevitv2", "mobilevitv2_050", "mobilevit", "mobilevitv2_*"),
    Family("fastvit", "fastvit_t8", "fastvit"),
    Family("tiny_vit", "tiny_vit_5m_224", "tiny_vit"),
    Family("nextvit", "nextvit_small", "nextvit"),
    Family("vitamin", "vitamin_small_224", "vitamin"),
    Family("swiftformer", "swiftformer_xs", "swiftformer"),
    Family("shvit", "shvit_s1", "shvit"),
    Family("poolformer", "poolformer_s12", "metaformer", "poolformer_*"),
    Family("convformer", "convformer_s18", "metaformer", "convformer_*"),
    Family("caformer", "caformer_s18", "metaformer", "caformer_*"),
    Family("sequencer2d", "sequencer2d_s", "sequencer"),
    Family("mixer", "mixer_s32_224", "mlp_mixer", "mixer_*"),
    Family("resmlp", "resmlp_12_224", "mlp_mixer", "resmlp_*"),
    Family("gmlp", "gmlp_ti16_224", "mlp_mixer", "gmlp_*"),
    Family("inception_next", "inception_next_atto", "inception_next"),
    Family("mambaout", "mambaout_femto", "mambaout"),
    Family("botnet", "botnet26t_256", "byoanet", "*botnet*"),
]

#: more families, lowered by the test only with ``ACCELSIM_ZOO=all`` (CPU time: the default set
#: keeps the test under two minutes on two cores); near-duplicates of a default family's
#: mixer, or slow to export
EXTRA_FAMILIES = [
    Family("coatnet", "coatnet_pico_rw_224", "maxxvit", "coatnet_*"),
    Family("vit_rope", "vit_tiny_patch16_dinov3_qkvb", "eva", "vit_*"),
    Family("deit3", "deit3_small_patch16_224", "deit", "deit3_*"),
    Family("beit3", "beit3_base_patch16_224", "vision_transformer", "beit3_*"),
    Family("aimv2", "aimv2_large_patch14_224", "vision_transformer", "aimv2_*"),
    Family("vit_relpos", "vit_srelpos_small_patch16_224", "vision_transformer_relpos", "vit_*"),
    Family("naflexvit", "naflexvit_base_patch16_parfac_gap", "naflexvit"),
    Family("hieradet", "hieradet_small", "hieradet_sam2"),
    Family("swinv2_cr", "swinv2_cr_tiny_224", "swin_transformer_v2_cr"),
    Family("maxxvit", "maxxvit_rmlp_nano_rw_256", "maxxvit", "maxxvit*"),
    Family("mobilenetv4_hybrid", "mobilenetv4_hybrid_medium_075", "mobilenetv3", "mobilenetv4_hybrid_*"),
    Family("mobilenetv5", "mobilenetv5_base", "mobilenetv5"),
    Family("iformer", "iformer_t", "iformer"),
    Family("lowformer", "lowformer_b0", "lowformer"),
    Family("poolformerv2", "poolformerv2_s12", "metaformer", "poolformerv2_*"),
    Family("efficientvim", "efficientvim_m1", "efficientvim"),
    Family("csatv2", "csatv2", "csatv2"),
    Family("halonet", "haloregnetz_b", "byoanet", "*halo*"),
    Family("lambda_resnet", "lambda_resnet26t", "byoanet", "lambda_*"),
    Family("qwen3_vit", "qwen3_vit_88m", "qwen3_vit"),
    # the class-token MViTv2 writes its relative-position term into a slice of the logits (copy_)
    Family("mvitv2_cls", "mvitv2_small_cls", "mvitv2", "mvitv2_*_cls"),
    # full CoaT (not Lite): its parallel blocks mix scales through 1-D convolutions
    Family("coat_full", "coat_tiny", "coat", "coat_[!l]*"),
]

#: families whose model does not lower: the ATen op it stops at, and why
NOT_LOWERED: dict[str, tuple[str, str]] = {
    "sequencer2d": ("aten.lstm.input", "recurrent layers are refused on purpose: an LSTM is a chain of dependent steps"),
}  # fmt: skip


def zoo() -> list[Family]:
    """The families the test lowers: the default set, and the extra ones when asked for."""
    return FAMILIES + (EXTRA_FAMILIES if os.environ.get("ACCELSIM_ZOO") == "all" else [])


def build(model: str) -> torch.nn.Module:
    """The model as ``accelsim.lower(name)`` builds it: timm, no weights, on the meta device."""
    import timm

    with torch.device("meta"):
        m = timm.create_model(model, pretrained=False).eval()
    # torch 2.14's FlopCounterMode registers backward hooks on module inputs that need grad and
    # fails on a parameter passed straight into a submodule (PiT, CaiT): nothing here needs grad
    return m.requires_grad_(False)


def test_family_table_is_true_to_timm() -> None:
    """Every family's model is one of its timm variants, every name once, every refusal a family."""
    import timm

    every = FAMILIES + EXTRA_FAMILIES
    assert len({f.name for f in every}) == len(every)
    assert len({f.model for f in every}) == len(every)
    assert set(NOT_LOWERED) <= {f.name for f in every}
    assert set(timm.list_modules()) >= {f.module for f in every}
    for f in every:
        assert f.model in timm.list_models(f.pattern, module=f.module), f"{f.name}: {f.model} left timm"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The tensor attribute")  # timm caches tensors in attributes
@pytest.mark.parametrize("family", zoo(), ids=lambda f: f.name)
def test_family_lowers_with_torchs_macs(family: Family) -> None:
    model = build(family.model)
    if family.name in NOT_LOWERED:
        op, why = NOT_LOWERED[family.name]
        try:
            lower(model, name=family.model)
        except UnsupportedOpError as e:
            assert f"ATen op {op} " in str(e), f"{family.name} now stops elsewhere ({why}): {e}"
            return
        pytest.fail(f"{family.name} ({family.model}) lowers now: take it out of NOT_LOWERED")
    g = lower(model, name=family.model)
    x = torch.zeros(g.meta["input_shape"], device="meta")
    # weight-only math folded at lowering time (SwinV2's position-bias MLP...) is counted apart
    assert g.total_macs + g.meta["folded_macs"] == torch_macs(model, x)
    assert all(op.macs == 0 for op in g.ops() if op.kind not in MAC_KINDS)
    assert all(op.target and op.module_type for op in g.ops())


def pick_smallest(family: Family) -> list[tuple[int, int, str]]:
    """``(MACs, parameters, model)`` of every variant of ``family``, smallest first."""
    import timm

    rows = []
    for name in timm.list_models(family.pattern, module=family.module, exclude_filters=["test_*"]):
        m = build(name)
        x = torch.zeros((1, *m.pretrained_cfg["input_size"]), device="meta")
        rows.append((torch_macs(m, x), sum(p.numel() for p in m.parameters()), name))
    return sorted(rows)


def zoo_table() -> list[dict[str, object]]:
    """Lower every family; one row each: ops, GMACs, folded GMACs and lowering seconds, or the error."""
    rows: list[dict[str, object]] = []
    for f in FAMILIES + EXTRA_FAMILIES:
        model = build(f.model)
        start = time.perf_counter()
        try:
            g: Graph | None = lower(model, name=f.model)
        except UnsupportedOpError as e:
            g, err = None, str(e)
        seconds = time.perf_counter() - start
        row: dict[str, object] = {"family": f.name, "model": f.model, "seconds": round(seconds, 2)}
        if g is None:
            row["error"] = err
        else:
            row.update(ops=len(g), gmacs=g.total_macs / 1e9, folded_gmacs=g.meta["folded_macs"] / 1e9)
        rows.append(row)
    return rows


if __name__ == "__main__":  # pragma: no cover  (PYTHONPATH=. python tests/lower/test_lower_zoo.py ...)
    if sys.argv[1:2] == ["--pick"]:
        for f in FAMILIES + EXTRA_FAMILIES:
            if f.name in sys.argv[2:]:
                for macs, params, name in pick_smallest(f)[:5]:
                    print(f"{f.name:20s} {name:40s} {macs / 1e9:9.3f} GMACs {params / 1e6:8.2f} M params")
    elif sys.argv[1:2] == ["--table"]:
        for r in zoo_table():
            print(r)
