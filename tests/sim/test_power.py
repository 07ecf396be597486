"""The power model: a design's power by hand, its properties, and the coefficient table checked
against the published ZCU102 figures of the research notes (checks, not calibration targets)."""

import json

import pytest
from _helpers import chain_graph, matmul_graph, tiny_hw

from accelsim.config.hardware import get_board
from accelsim.sim import map_graph, simulate
from accelsim.sim.power import FF_PER_LUT, RESOURCE_CLASSES, ResourceCounts, estimate_power, xpe_power
from accelsim.sim.schedule import run

ZCU102 = get_board("zcu102").power


def test_ff_per_lut_is_the_mean_of_the_published_ratios() -> None:
    # CoQMoE ZCU102 198.2/156.1 = 1.2697, U280 454.1/311.6 = 1.4573; UbiMoE ZCU102 142.6/123.4 =
    # 1.1556, U280 385.9/316.1 = 1.2208; mean 1.2759
    ratio = FF_PER_LUT
    assert ratio == pytest.approx(1.2759, abs=1e-4)


def test_one_design_by_hand() -> None:
    # matmul 8x4x4 on the 4x4 tiny array at 100 MHz (tests/sim/test_engine.py derives the schedule):
    # 48 cycles; the array computes 18 of them; the DRAM channel moves 48 + 32 B in 12 + 8 cycles.
    # Resources: 16 array + 4 vector DSPs; 8 BRAM36 (input 1, weight 1, output 2, double
    # buffered); LUT 20,000 control + 40 x 16 array + 4 x 300 vector = 21,840.
    r = simulate(matmul_graph(8, 4, 4), tiny_hw())
    assert (r.total_cycles, r.engine_busy_cycles["array"], r.dram_bytes) == (48, 18, 80)
    assert (r.dsp_used, r.bram36_used, r.lut_used) == (20, 8, 21_840)
    f = 100.0
    util = 8 * 4 * 4 / (48 * 16)  # MACs over PE-cycles = 1/6
    array_busy, dram_busy = 18 / 48, 20 / 48
    w = r.power_breakdown_w_estimate
    assert w["static"] == pytest.approx(0.79 + 0.096)
    assert w["ps"] == pytest.approx(1.36)
    # the array's 16 DSPs at the utilisation; the vector unit's 4 idle
    assert w["dsp"] == pytest.approx(16 * 4.4e-6 * f * util)  # 1.173 mW
    # buffers: one half feeds the array, the other is filled by DMA
    assert w["bram"] == pytest.approx(8 * 15e-6 * f * (array_busy + dram_busy) / 2)  # 4.75 mW
    # control LUTs with the DRAM channel, the array's with the array, the vector unit's idle
    lut = 20_000 * 51e-9 * f * dram_busy + 640 * 51e-9 * f * array_busy
    assert w["lut"] == pytest.approx(lut)  # 43.72 mW
    assert w["ff"] == pytest.approx(lut * FF_PER_LUT * 1.14 / 51)
    assert w["clock"] == pytest.approx(21_840 * FF_PER_LUT * 20.6e-9 * f)  # every FF, every cycle: 57.4 mW
    # 80 B x 8 bit x 18.11 pJ over 0.48 us
    assert w["dram"] == pytest.approx(80 * 8 * 18.11e-12 / 0.48e-6)  # 24.15 mW
    assert w["uram"] == w["platform"] == 0.0
    assert r.power_w_estimate == pytest.approx(sum(w.values()))
    assert r.power_w_estimate == pytest.approx(2.37844, abs=1e-5)
    assert r.energy_mj_estimate == pytest.approx(r.power_w_estimate * 0.48e-6 * 1e3)
    assert r.gops_per_watt_estimate == pytest.approx(r.gops / r.power_w_estimate)
    # the same from the schedule and its run, with the activities and counts it used
    schedule = map_graph(matmul_graph(8, 4, 4), tiny_hw())
    p = estimate_power(schedule, run(schedule))
    assert p.breakdown() == pytest.approx(w) and p.total_w == pytest.approx(r.power_w_estimate)
    assert p.activity["dsp"] == pytest.approx((16 * util + 4 * 0.0) / 20)
    assert p.activity["bram36"] == pytest.approx((array_busy + dram_busy) / 2)
    assert (p.counts.dsp, p.counts.bram36, p.counts.lut) == (20, 8, 21_840)


def test_energy_per_frame_is_power_times_latency() -> None:
    for hw in (tiny_hw(), tiny_hw(clock_mhz=250), tiny_hw(buffers__double_buffer=False)):
        r = simulate(chain_graph(16, 8, 32), hw)
        assert r.energy_mj_estimate == pytest.approx(r.power_w_estimate * r.latency_ms)
        assert r.gops_per_watt_estimate == pytest.approx(r.gops / r.power_w_estimate)


def test_power_grows_with_clock() -> None:
    counts = ResourceCounts(dsp=1000, bram36=200, lut=80_000, ff=100_000)
    watts = [xpe_power(ZCU102, f, counts).total_w for f in (100.0, 200.0, 300.0)]
    # linear in f: the dynamic part doubles from 100 to 200 MHz and triples at 300
    fixed = 0.886 + 1.36
    assert watts[1] - fixed == pytest.approx(2 * (watts[0] - fixed))
    assert watts[2] - fixed == pytest.approx(3 * (watts[0] - fixed))
    # simulated: a compute-bound MLP at a higher clock burns more (about the same cycles: half the
    # DRAM bytes per cycle adds 3 stall cycles to 10,505)
    hw = tiny_hw(dram__bandwidth_gbs=100.0, dram__latency_cycles=0)
    lo, hi = (simulate(chain_graph(64, 16, 64), hw.with_changes(clock_mhz=f)) for f in (100, 200))
    assert (lo.total_cycles, hi.total_cycles) == (10_505, 10_508)
    assert hi.power_w_estimate > lo.power_w_estimate
    assert hi.energy_mj_estimate < lo.energy_mj_estimate  # static energy shrinks with the latency


def test_power_grows_with_utilisation() -> None:
    counts = ResourceCounts(dsp=1000, bram36=200, uram=10, lut=80_000, ff=100_000)
    for cls in RESOURCE_CLASSES:
        watts = [xpe_power(ZCU102, 200.0, counts, {cls: a}).total_w for a in (0.0, 0.5, 1.0)]
        assert watts[0] < watts[1] < watts[2], cls
    # simulated: more rows of the same GEMM fill the array's folds better
    hw = tiny_hw(dram__bandwidth_gbs=100.0, dram__latency_cycles=0)
    small, big = (simulate(matmul_graph(m, 16, 16), hw) for m in (2, 64))
    assert big.array_utilization > small.array_utilization
    assert big.power_breakdown_w_estimate["dsp"] > small.power_breakdown_w_estimate["dsp"]
    # (not the total: both hold the DRAM channel for 32 cycles, 32 of 194 for the small GEMM and 32
    # of 1,186 for the big one, so the small one's DMA and interconnect LUTs switch more often)
    assert big.power_breakdown_w_estimate["lut"] < small.power_breakdown_w_estimate["lut"]


def test_zero_activity_leaves_static_and_clock() -> None:
    counts = ResourceCounts(dsp=1000, bram36=200, uram=10, lut=80_000, ff=100_000)
    idle = xpe_power(ZCU102, 200.0, counts, dict.fromkeys(RESOURCE_CLASSES, 0.0))
    assert idle.dsp_w == idle.bram_w == idle.uram_w == idle.lut_w == idle.ff_w == idle.dram_w == 0.0
    # the clock tree keeps switching: 100,000 FF x 20.6 nW x 200 MHz
    assert idle.clock_w == pytest.approx(0.412)
    assert idle.total_w == pytest.approx(0.886 + 1.36 + 0.412)
    # no design at all: the device's static power and the PS, nothing else
    empty = xpe_power(ZCU102, 200.0, ResourceCounts())
    assert empty.total_w == pytest.approx(ZCU102.device_static_w + ZCU102.ps_w) == pytest.approx(2.246)
    without_ps = xpe_power(ZCU102.model_copy(update={"ps_included": False}), 200.0, ResourceCounts())
    assert without_ps.total_w == pytest.approx(0.886)


def test_busy_toggle_scales_dynamic_power_linearly() -> None:
    counts = ResourceCounts(dsp=1000, bram36=200, lut=80_000, ff=100_000)
    base = xpe_power(ZCU102, 200.0, counts)
    random_data = xpe_power(ZCU102.model_copy(update={"busy_toggle": 0.375}), 200.0, counts)
    assert random_data.dsp_w == pytest.approx(3 * base.dsp_w)
    assert random_data.lut_w == pytest.approx(3 * base.lut_w)
    assert random_data.clock_w == base.clock_w  # the clock's rate is the clock's


def test_bad_activity_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"activity\['dsp'\] = 1.5 is outside \[0, 1\]"):
        xpe_power(ZCU102, 200.0, ResourceCounts(dsp=1), {"dsp": 1.5})
    with pytest.raises(ValueError, match=r"unknown resource class 'bram'"):
        xpe_power(ZCU102, 200.0, ResourceCounts(dsp=1), {"bram": 0.5})


def test_without_a_frame_there_is_no_energy_or_efficiency() -> None:
    p = xpe_power(ZCU102, 200.0, ResourceCounts(dsp=10))
    assert p.total_w > 0 and p.energy_mj == 0.0 and p.gops_per_w == 0.0


# -- the coefficient table against published ZCU102 figures (research notes §1.5-1.6) ------------
# Every resource at XPE's default toggle (activity 1), as a vectorless Vivado estimate assumes.
def test_worked_example_of_the_notes() -> None:
    # 2,000 DSP + 500 BRAM36 + 150k LUT + 200k FF @ 200 MHz on the ZCU102, 2 GB/s DDR4: the notes'
    # central 8.2 W = 0.886 static + 1.36 PS + 1.76 DSP + 1.50 BRAM + 1.53 LUT + 0.05 FF + 0.82 clock
    # + 0.29 DRAM
    p = xpe_power(
        ZCU102, 200.0, ResourceCounts(dsp=2000, bram36=500, lut=150_000, ff=200_000), dram_bytes_per_s=2e9
    )
    assert (p.dsp_w, p.bram_w, p.lut_w) == pytest.approx((1.76, 1.50, 1.53))
    assert (p.ff_w, p.clock_w, p.dram_w) == pytest.approx((0.0456, 0.824, 0.28976))
    assert p.total_w == pytest.approx(8.195, abs=1e-3)


def test_coqmoe_zcu102_published_power() -> None:
    # CoQMoE on the ZCU102 ([Q] its Table 2/3): 1754 DSP, 383 BRAM, 156.1k LUT, 198.2k FF @ 300 MHz,
    # 9.83 W reported. The model gives 9.965 W (+1.4 %); DRAM traffic is not published, so not counted.
    p = xpe_power(ZCU102, 300.0, ResourceCounts(dsp=1754, bram36=383, lut=156_100, ff=198_200))
    assert p.total_w == pytest.approx(9.965, abs=1e-3)
    assert abs(p.total_w / 9.83 - 1) < 0.25


def test_ubimoe_zcu102_published_power() -> None:
    # UbiMoE on the ZCU102 ([Q] its Table II): 1850 DSP, 458 BRAM, 123.4k LUT, 142.6k FF @ 300 MHz,
    # 11.50 W reported. The model gives 9.567 W (-16.8 %).
    p = xpe_power(ZCU102, 300.0, ResourceCounts(dsp=1850, bram36=458, lut=123_400, ff=142_600))
    assert p.total_w == pytest.approx(9.567, abs=1e-3)
    assert abs(p.total_w / 11.50 - 1) < 0.25


def test_report_json_and_table_carry_the_breakdown() -> None:
    r = simulate(matmul_graph(8, 4, 4), tiny_hw())
    d = json.loads(r.to_json())
    parts = d["power_breakdown_w_estimate"]
    assert set(parts) == {"static", "ps", "platform", "dsp", "bram", "uram", "lut", "ff", "clock", "dram"}
    assert sum(parts.values()) == pytest.approx(d["power_w_estimate"])
    line = next(x for x in r.table().splitlines() if "GOPS/W" in x)
    assert line.startswith("  power ~2.38 W, ~0.00 mJ/frame") and "(estimate: static 0.89, ps 1.36" in line


def test_epilogues_cost_power_as_built() -> None:
    # The tiny 4x4 array (one product per DSP: 4 output lanes) with the requantisation,
    # activation and layernorm statistics in its drain path: 4 DSPs, 4 x (112 + 96) LUTs and
    # 4 x (128 + 64) pipeline FFs more, all switching with the array's busy fraction (18 / 48).
    g = matmul_graph(8, 4, 4)
    plain = simulate(g, tiny_hw())
    hw = tiny_hw().with_changes(**{"epilogue.activation": True, "epilogue.layernorm_stats": True})
    r = simulate(g, hw)
    assert r.total_cycles == plain.total_cycles == 48  # nothing to fuse here: the same schedule
    assert (r.dsp_used, r.lut_used) == (plain.dsp_used + 4, plain.lut_used + 4 * 208)
    f, array_busy = 100.0, 18 / 48
    w, w0 = r.power_breakdown_w_estimate, plain.power_breakdown_w_estimate
    assert w["dsp"] - w0["dsp"] == pytest.approx(4 * 4.4e-6 * f * array_busy)
    assert w["lut"] - w0["lut"] == pytest.approx(4 * 208 * 51e-9 * f * array_busy)
    ff = (21_840 + 4 * 208) * FF_PER_LUT + 4 * 192
    assert w["clock"] == pytest.approx(ff * 20.6e-9 * f)
    schedule = map_graph(g, hw)
    assert estimate_power(schedule, run(schedule)).counts.ff == pytest.approx(ff)
    # the multiplier in LUTs instead: no DSP, 216 LUTs per lane more
    lut_mult = simulate(g, hw.with_changes(**{"epilogue.requant_multiplier": "lut"}))
    assert (lut_mult.dsp_used, lut_mult.lut_used) == (plain.dsp_used, r.lut_used + 4 * 216)


@pytest.mark.parametrize(
    "name, changes",
    [
        ("zcu102", {}),
        ("zcu102", {"buffers.double_buffer": False, "epilogue.activation": True}),
        ("zcu102_trio", {"epilogue.layernorm_stats": True}),
        ("u280", {"buffers.weight_memory": "uram", "clock_mhz": 300.0}),
        ("published/auto_vit_acc", {}),
    ],
)
def test_the_reports_generated_frame_power_equals_the_general_code_to_the_bit(
    name: str, changes: dict[str, object]
) -> None:
    import random

    import numpy as np

    from accelsim.config.hardware import HardwareConfig
    from accelsim.sim.power import frame_power, frame_watts, model_frame_watts, power_model

    hw = HardwareConfig.load(name).with_changes(**changes)
    rng = random.Random(7)
    for _ in range(50):
        total = rng.randrange(1, 10**7)
        frame = dict(
            total_cycles=total,
            busy_cycles=[rng.randrange(0, total + 1) if rng.random() < 0.7 else 0 for _ in range(6)],
            dram_busy_cycles=float(rng.randrange(0, 2 * total)),
            dram_bytes=rng.randrange(0, 10**9),
            array_dsp_cycles=rng.random() * total * hw.array.dsps * 1.2,
            macs=rng.randrange(1, 10**10),
        )
        e = frame_power(hw, **frame)  # type: ignore[arg-type]
        fast = model_frame_watts(power_model(hw), *frame.values())  # type: ignore[arg-type]
        assert fast == (e.breakdown(), e.total_w, e.energy_mj, e.gops_per_w)
        frame["busy_cycles"] = np.array(frame["busy_cycles"], dtype=np.int64)  # as a run has them
        assert frame_watts(hw, **frame) == fast  # type: ignore[arg-type]
        assert all(type(w) is float for w in fast[0].values())
