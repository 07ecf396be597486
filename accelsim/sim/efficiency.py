"""Efficiency figures every report gives, both families: GOPS per kLUT and per equivalent DSP.

LUT multipliers make GOPS/DSP meaningless (HG-PIPE's 17.8 TOPS on 312 DSPs is 57 GOPS/DSP), so
FPGA ViT reviewers ask for GOPS/kLUT too, and for an equivalent-DSP figure that converts the LUTs
spent on multipliers into DSPs at a stated rate.
"""

from __future__ import annotations

#: LUTs that make one MAC unit, the rate HG-PIPE's own roofline uses for the VC1902: "900k LUTs
#: ~ 20k MAC units" (45 LUTs per MAC) beside "2k DSPs = 4k MAC units" [Q: the HG-PIPE paper's
#: text through a third party, research notes anchors_turn3.md N1]. One such MAC unit is
#: counted as one equivalent DSP (a DSP counts as one whatever it packs).
LUT_PER_MAC = 45


def gops_per_klut(gops: float, lut: int) -> float:
    """GOPS per thousand LUTs used (0 for a design that reports no LUTs)."""
    return gops / (lut / 1000) if lut else 0.0


def equivalent_dsps(dsp: int, multiplier_luts: int) -> float:
    """DSPs plus the LUTs spent on multipliers converted at :data:`LUT_PER_MAC` LUTs per DSP."""
    return dsp + multiplier_luts / LUT_PER_MAC


def gops_per_equivalent_dsp(gops: float, dsp: int, multiplier_luts: int) -> float:
    """GOPS per equivalent DSP (:func:`equivalent_dsps`)."""
    eq = equivalent_dsps(dsp, multiplier_luts)
    return gops / eq if eq else 0.0


__all__ = ["LUT_PER_MAC", "equivalent_dsps", "gops_per_equivalent_dsp", "gops_per_klut"]
