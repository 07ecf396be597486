"""HardwareConfig, board presets and the resource model."""

import pytest
from _helpers import tiny_hw

from accelsim.config.hardware import (
    BOARD_DIR,
    DEFAULT_PACKING,
    STATIC_W_PER_LUT,
    HardwareConfig,
    PackingEntry,
    get_board,
    list_boards,
    list_configs,
)
from accelsim.errors import ConfigError
from accelsim.sim.resources import EpilogueResources, epilogue_resources, estimate_resources

BOARDS = {"zcu102", "zcu104", "kv260", "vcu118", "u250", "u280", "vck190"}


def test_board_presets_with_datasheet_numbers() -> None:
    assert set(list_boards()) >= BOARDS
    zcu102 = get_board("zcu102")  # Xilinx DS891, XCZU9EG
    assert (zcu102.dsp, zcu102.bram36, zcu102.uram, zcu102.lut) == (2520, 912, 0, 274080)
    assert get_board("vck190").dsp_kind == "dsp58"
    assert get_board("u280").dram_bandwidth_gbs == 460.0


def test_unknown_board_lists_known_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown board 'zcu999' \(known: .*zcu102"):
        get_board("zcu999")
    with pytest.raises(ConfigError, match=r"board: .*unknown board 'nope'"):
        tiny_hw(board="nope")


def test_unknown_config_name_lists_known() -> None:
    with pytest.raises(ConfigError, match=r"unknown hardware config 'zcu1' \(known: .*zcu102"):
        HardwareConfig.load("zcu1")


@pytest.mark.parametrize("name", list_configs())
def test_every_shipped_config_loads_and_fits_its_board(name: str) -> None:
    hw = HardwareConfig.load(name)
    res = estimate_resources(hw)
    assert res.fits, res.overflow
    assert res.dsp <= hw.board.dsp


@pytest.mark.parametrize("name", [n for n in list_configs() if not n.startswith("published/")])
def test_our_designs_use_at_least_half_the_boards_dsps(name: str) -> None:
    """A published design is what its paper built; ours should make use of the board."""
    hw = HardwareConfig.load(name)
    assert estimate_resources(hw).dsp >= 0.5 * hw.board.dsp


def test_default_zcu102_design() -> None:
    hw = HardwareConfig.load("zcu102")
    assert (hw.array.rows, hw.array.cols, hw.array.dataflow, hw.clock_mhz) == (32, 64, "ws", 200)
    assert hw.array.timing == "pipelined"
    assert hw.packing == DEFAULT_PACKING["dsp48e2"]
    assert hw.peak_macs_per_cycle(8) == 32 * 64 * 2
    assert hw.dram_bytes_per_cycle() == pytest.approx(96.0)  # 19.2 GB/s at 200 MHz
    res = estimate_resources(hw)
    # 2048 array DSPs + 64 vector lanes + one requantisation DSP per output lane (64 columns x 2
    # packed INT8 products); buffers (64 + 64 + 128 BRAM36 of 4 KiB) x 2 (double buffered)
    assert res.dsp == 2048 + 64 + 128
    assert res.bram36 == (64 + 64 + 128) * 2
    # + per output lane: bias/round/saturate/activation table (112) and layernorm statistics (96)
    assert res.lut == 20_000 + 40 * 2048 + 64 * 300 + 128 * (112 + 96)
    assert epilogue_resources(hw) == EpilogueResources(lanes=128, dsp=128, lut=128 * 208, ff=128 * (128 + 64))
    bare = hw.with_changes(**{"epilogue.activation": False, "epilogue.layernorm_stats": False})
    assert estimate_resources(bare).dsp == 2048 + 64 and epilogue_resources(bare) == EpilogueResources()
    in_luts = hw.with_changes(**{"epilogue.requant_multiplier": "lut"})
    assert estimate_resources(in_luts).dsp == 2048 + 64
    assert estimate_resources(in_luts).lut == res.lut + 128 * 216


def test_packing_lookup() -> None:
    hw = HardwareConfig.load("vck190")
    # DSP58 INT8 vector mode: a three-term dot product (along K), not three independent products
    assert hw.packing_for(8, 8) == PackingEntry(wbits=8, abits=8, k=3)
    assert hw.macs_per_dsp(8) == 3 and hw.macs_per_dsp(6) == 3 and hw.macs_per_dsp(12) == 1
    with pytest.raises(
        ConfigError, match=r"no entry for 32-bit weights and 32-bit activations \(entries: w16a16, w8a8\)"
    ):
        hw.macs_per_dsp(32)
    zcu = HardwareConfig.load("zcu102")
    # keyed by (weight, activation) bits: W4A8 and W8A4 take the INT8 packing, W4A4 the 2x2 INT4 one
    assert zcu.packing_for(4, 8) == zcu.packing_for(8, 4) == PackingEntry(wbits=8, abits=8, n=2)
    assert zcu.packing_for(4, 4) == PackingEntry(wbits=4, abits=4, m=2, n=2)
    assert zcu.macs_per_dsp(12, 16) == 1
    # fewer bits never pack fewer products
    for w in range(1, 17):
        for a in range(1, 17):
            assert zcu.macs_per_dsp(w, a) >= zcu.macs_per_dsp(min(w + 1, 16), a)
    # the short form {bits: products} packs along N
    assert tiny_hw(packing={8: 2}).packing == (PackingEntry(wbits=8, abits=8, n=2),)


def test_port_need_can_exceed_capacity_need() -> None:
    # 4 KiB output buffer needs 1 BRAM36 for capacity but a 128 x 2 x 32-bit edge needs 8192/72 -> 114.
    hw = tiny_hw(array={"rows": 4, "cols": 128, "dataflow": "ws"}, packing={8: 2}, buffers__output_kib=4)
    res = estimate_resources(hw)
    per = {"input": max(1, 1), "weight": max(1, -(-128 * 2 * 8 // 72)), "output": -(-128 * 2 * 32 // 72)}
    assert res.bram36 == 2 * sum(per.values())


@pytest.mark.parametrize(
    ("over", "pattern"),
    [
        ({"array": {"rows": 0, "cols": 4, "dataflow": "ws"}}, r"array\.rows: Input should be greater than 0"),
        (
            {"array": {"rows": 4, "cols": 4, "dataflow": "xs"}},
            r"array\.dataflow: Value error, must be one of 'ws', 'os', 'is' or a list of them \(got 'xs'\)$",
        ),
        ({"buffers__input_kib": -1}, r"buffers\.input_kib: Input should be greater than 0"),
        ({"dram__bandwidth_gbs": 0}, r"dram\.bandwidth_gbs: Input should be greater than 0"),
        ({"clock_mhz": "fast"}, r"clock_mhz: Input should be a valid number"),
        ({"packing": {8: 0}}, r"packing\.0\.n: Input should be greater than or equal to 1"),
        ({"array": {"rows": 4, "cols": 4, "dataflow": ["ws", "ws"]}}, r"lists a dataflow twice"),
        ({"buffers__input_kb": 4}, r"buffers\.input_kb: unknown field"),
    ],
)
def test_config_errors_name_field_and_allowed_values(over: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        tiny_hw(**over)


def test_yaml_errors(tmp_path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nboard: [zcu102\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML at line"):
        HardwareConfig.load(p)


def test_design_exceeding_board_is_reported() -> None:
    hw = HardwareConfig.load("kv260").with_changes(**{"array.rows": 64, "array.cols": 64})
    res = estimate_resources(hw)
    assert not res.fits
    # 4096 array DSPs + 32 vector lanes + 128 requantisation DSPs (64 columns x 2 products)
    assert res.overflow[0].startswith("dsp: 4256 used > 1248")


def test_with_changes_validates() -> None:
    hw = HardwareConfig.load("zcu102")
    assert hw.with_changes(**{"array.rows": 16}).array.rows == 16
    with pytest.raises(ConfigError, match=r"no config field 'array\.depth'"):
        hw.with_changes(**{"array.depth": 3})


# -- board power (coefficients and their sources are in hw_configs/boards/*.yaml) ----------------
def test_every_board_preset_has_a_power_section() -> None:
    for name in BOARDS:
        text = (BOARD_DIR / f"{name}.yaml").read_text()
        assert "\npower:\n" in text, name
        p = get_board(name).power
        assert p.static_w is not None and p.static_w > 0, name
        assert p.toggle_default == 0.125  # XPE's default toggle rate (UG440)


def test_zcu102_power_coefficients() -> None:
    p = get_board("zcu102").power
    assert (p.static_w, p.ps_static_w, p.ps_w, p.ps_included) == (0.79, 0.096, 1.36, True)
    assert p.device_static_w == pytest.approx(0.886)  # PL + PS static, the notes' worked example
    assert (p.dsp_uw_per_mhz, p.bram36_uw_per_mhz, p.lut_nw_per_mhz) == (4.4, 15.0, 51.0)
    assert (p.ff_nw_per_mhz, p.clock_nw_per_ff_mhz, p.dram_pj_per_bit) == (1.14, 20.6, 18.11)
    # the Alveo card carries its shell and HBM; the Versal board has no PS figure, so none is counted
    u280 = get_board("u280").power
    assert (u280.platform_w, u280.memory_static_w, u280.dram_pj_per_bit, u280.ps_included) == (
        3.40,
        0.264,
        7.0,
        False,
    )
    assert get_board("vck190").power.ps_included is False


def test_board_without_static_power_derives_it_from_its_luts() -> None:
    # VC1902's static power was not found: 2.335 W / 870,016 LUT (XCU50 report) x 899,840 LUT
    assert get_board("vck190").power.static_w == pytest.approx(2.335 / 870_016 * 899_840)
    assert get_board("vck190").power.static_w == pytest.approx(2.415, abs=1e-3)
    # an inline board without a power section loads, with the UltraScale+ defaults
    inline = {"name": "mine", "dsp": 100, "bram36": 10, "lut": 100_000, "dram_bandwidth_gbs": 10}
    hw = tiny_hw(board=inline)
    assert hw.board.power.static_w == pytest.approx(100_000 * STATIC_W_PER_LUT)
    assert hw.board.power.dsp_uw_per_mhz == 4.4 and hw.board.power.ps_w == 0.0
    # the derived value is what a dump shows, so a dumped config loads to the same board
    again = HardwareConfig.model_validate(hw.model_dump())
    assert again.board.power == hw.board.power


@pytest.mark.parametrize(
    ("power", "pattern"),
    [
        ({"busy_toggle": -0.1}, r"board\.power\.busy_toggle: Input should be greater than or equal to 0"),
        ({"toggle_default": 0}, r"board\.power\.toggle_default: Input should be greater than 0"),
        ({"dsp_uw_per_mhz": "x"}, r"board\.power\.dsp_uw_per_mhz: Input should be a valid number"),
        ({"dsp_uw": 4.4}, r"board\.power\.dsp_uw: unknown field"),
    ],
)
def test_board_power_errors_name_the_field(power: dict, pattern: str) -> None:
    board = {"name": "mine", "dsp": 100, "bram36": 10, "lut": 1000, "dram_bandwidth_gbs": 10, "power": power}
    with pytest.raises(ConfigError, match=pattern):
        tiny_hw(board=board)
