"""Regression pins: whole-model cycles of two synthetic models on every shipped config.

These are not oracles (the hand-computed, PE-level and SCALE-Sim tests are): they catch a change
in simulated cycles that nobody meant to make. When a change is meant to move them, rerun
``python tests/sim/test_golden.py`` (it prints the table to paste below) and say why in the commit.
"""

from __future__ import annotations

import pytest

from accelsim.config.hardware import HardwareConfig, list_configs
from accelsim.ir import Graph
from accelsim.ir.builders import add_linear_attention, add_mbconv, vit_graph
from accelsim.sim import simulate


def _models() -> dict[str, Graph]:
    mb = Graph("mbconv_linear_attention")
    add_mbconv(mb, "m", ch=32, hw=28, out_ch=64)
    add_linear_attention(mb, "la", heads=4, tokens=196, hd=16)
    return {"deit_tiny": vit_graph("tiny"), "mbconv_la": mb.validate()}


#: (config, model) -> total cycles
GOLDEN: dict[tuple[str, str], int] = {
    # issue 23: every other move (at most -0.12%, u250's DeiT-Tiny) is the mapper running an op on
    # a sub-array with balanced folds where that is faster (partial folds cost their skew only)
    ("kv260", "deit_tiny"): 827605,
    ("kv260", "mbconv_la"): 28908,
    # issue 23 (RTL of the adder-tree engine, tests/sim/rtl/test_rtl_tree.py): the five adder-tree
    # designs lose one cycle per GEMM on the critical path (the engine's fill is depth - 1 cycles,
    # was counted as depth): -1 to -73 cycles, at most -0.03%
    ("published/auto_vit_acc", "deit_tiny"): 522328,
    ("published/auto_vit_acc", "mbconv_la"): 16120,
    ("published/auto_vit_acc_fixed", "deit_tiny"): 660276,
    ("published/auto_vit_acc_fixed", "mbconv_la"): 16120,
    # issue 23: the assisting pool takes the share of a GEMM that finishes it soonest (was: by
    # peak rates), -0.3%; and it no longer assists the pointwise conv while it runs the depthwise
    # conv and the linear attention beside it (it was in two places at once), +21.5%
    ("published/efficientvit_fpga", "deit_tiny"): 1079282,
    ("published/efficientvit_fpga", "mbconv_la"): 3396,
    ("published/heatvit", "deit_tiny"): 686730,
    ("published/heatvit", "mbconv_la"): 16365,
    ("published/huang_tcas1", "deit_tiny"): 756001,
    ("published/huang_tcas1", "mbconv_la"): 31817,
    ("published/p2_vit", "deit_tiny"): 943996,
    ("published/p2_vit", "mbconv_la"): 30130,
    ("published/trio_vit", "deit_tiny"): 1528917,
    ("published/trio_vit", "mbconv_la"): 3756,
    ("u250", "deit_tiny"): 136549,
    ("u250", "mbconv_la"): 28904,
    ("u280", "deit_tiny"): 140903,
    ("u280", "mbconv_la"): 28780,
    ("vck190", "deit_tiny"): 336569,
    ("vck190", "mbconv_la"): 28919,
    ("vcu118", "deit_tiny"): 159993,
    ("vcu118", "mbconv_la"): 28702,
    ("zcu102", "deit_tiny"): 427893,
    ("zcu102", "mbconv_la"): 28946,
    ("zcu102_softmax", "deit_tiny"): 419229,
    ("zcu102_softmax", "mbconv_la"): 28946,
    ("zcu102_trio", "deit_tiny"): 659773,
    ("zcu102_trio", "mbconv_la"): 3016,
    ("zcu104", "deit_tiny"): 644040,
    ("zcu104", "mbconv_la"): 28957,
}


@pytest.mark.parametrize(("config", "model"), sorted(GOLDEN))
def test_whole_model_cycles_are_pinned(config: str, model: str) -> None:
    assert simulate(_models()[model], HardwareConfig.load(config)).total_cycles == GOLDEN[(config, model)]


def test_every_shipped_config_is_pinned() -> None:
    # dataflow designs time their own stages (tests/sim/dataflow/ pins them against HG-PIPE's RTL)
    overlay = {c for c in list_configs() if HardwareConfig.load(c).dataflow is None}
    assert {c for c, _ in GOLDEN} == overlay


if __name__ == "__main__":  # pragma: no cover
    models = _models()
    for config in list_configs():
        if HardwareConfig.load(config).dataflow is not None:
            continue
        for name, g in models.items():
            print(f'    ("{config}", "{name}"): {simulate(g, HardwareConfig.load(config)).total_cycles},')
