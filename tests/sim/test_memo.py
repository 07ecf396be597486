"""The simulator's one bounded memo."""

from __future__ import annotations

from _helpers import tiny_hw

from accelsim.sim._memo import Memo, per_config


def test_memo_computes_once_and_starts_afresh_when_full() -> None:
    calls: list[int] = []
    m: Memo[int, int] = Memo(limit=2)

    def sq(k: int) -> int:
        calls.append(k)
        return k * k

    assert [m.get(k, lambda k=k: sq(k)) for k in (3, 3, 4)] == [9, 9, 16]
    assert calls == [3, 4] and len(m) == 2
    assert m.get(5, lambda: sq(5)) == 25  # full: cleared, then 5 held alone
    assert len(m) == 1
    assert m.get(3, lambda: sq(3)) == 9
    assert calls == [3, 4, 5, 3]


def test_per_config_remembers_by_identity() -> None:
    calls: list[str] = []

    @per_config
    def name_of(hw: object) -> str:
        calls.append("x")
        return hw.name  # type: ignore[attr-defined,no-any-return]

    a, b = tiny_hw(), tiny_hw()
    assert (name_of(a), name_of(a), name_of(b)) == ("tiny", "tiny", "tiny")
    assert len(calls) == 2  # equal configs, distinct objects: asked once each


def test_per_object_remembers_by_identity_and_version_and_forgets_the_dead() -> None:
    import gc

    from accelsim.sim._memo import per_object

    class Box:  # compares by value and is unhashable, like a Graph
        __hash__ = None  # type: ignore[assignment]

        def __init__(self) -> None:
            self.version = 0

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Box) and other.version == self.version

    calls: list[int] = []

    def build(b: Box) -> int:
        calls.append(b.version)
        return b.version * 10

    remembered = per_object(build, lambda b: b.version, limit=8)
    a, b = Box(), Box()
    assert (remembered(a), remembered(a), remembered(b)) == (0, 0, 0)
    assert calls == [0, 0]  # equal objects, asked once each
    a.version = 1  # an edit
    assert remembered(a) == 10 and calls == [0, 0, 1]
    memo = remembered.__closure__  # the entries live in the closure's Memo
    held = next(c.cell_contents for c in memo if hasattr(c.cell_contents, "peek"))  # type: ignore[union-attr]
    assert len(held) == 2
    del a
    gc.collect()
    assert len(held) == 1  # the dead object's entry is gone


def test_model_value_equal_configs_equal_and_every_field_counts() -> None:
    from accelsim.config.hardware import HardwareConfig
    from accelsim.sim._memo import config_values, model_value

    hw = HardwareConfig.load("zcu102")
    twin = HardwareConfig.model_validate(hw.model_dump())  # a new object of every section
    assert twin.board is not hw.board and config_values(twin) == config_values(hw)
    assert model_value(hw.board)[-2] == model_value(hw.board.power)  # a nested model: its values
    # a change anywhere in a section, nested models included, changes its value
    for dotted, value in (
        ("board.power.dsp_uw_per_mhz", 5.0),
        ("board.lut", 1000),
        ("array.dataflow", ("ws", "os")),
        ("buffers.acc_bits", 24),
        ("dram.channels", 2),
        ("units.vector.lut_per_lane", 1),
        ("units.softmax", {"lanes": 8}),
        ("epilogue.lut_per_stats_lane", 7),
    ):
        changed = config_values(hw.with_changes(**{dotted: value}))
        section = dotted.split(".")[0]
        assert getattr(changed, section) != getattr(config_values(hw), section), dotted
    assert [model_value(e) for e in hw.with_changes(**{"packing": {8: 3}}).packing] == [(8, 8, 1, 1, 3)]
    # the dataflows are not in what the array is built from
    ws_os = config_values(hw.with_changes(**{"array.dataflow": ("ws", "os")}))
    assert ws_os.array != config_values(hw).array and ws_os.array_built == config_values(hw).array_built


def test_per_value_shares_answers_between_equal_configs() -> None:
    from accelsim.config.hardware import HardwareConfig
    from accelsim.sim._memo import config_values, per_value

    calls: list[int] = []

    @per_value(lambda hw: config_values(hw).array)
    def dsps(hw: HardwareConfig) -> int:
        calls.append(1)
        return hw.array.dsps

    hw = HardwareConfig.load("zcu102")
    twin = HardwareConfig.model_validate(hw.model_dump())
    other = hw.with_changes(**{"array.rows": 8})
    assert (dsps(hw), dsps(twin), dsps(other)) == (2048, 2048, 512)
    assert len(calls) == 2  # the twin shares the first answer


def test_section_numbers_remembered_by_identity_agree_with_the_values() -> None:
    # the last section object of each kind is remembered by identity (a sweep's points share the
    # sections no knob sets): shared, fresh and changed sections, interleaved, number by value
    from accelsim.config.hardware import HardwareConfig
    from accelsim.sim import _memo
    from accelsim.sim._memo import config_values

    # the value table starts afresh when full (an equal value then gets a new number): not mid-test
    _memo._NUMBERS.clear()
    numbers = config_values.__wrapped__  # type: ignore[attr-defined]  # past the per-config memo
    hw = HardwareConfig.load("zcu102")
    copies = [hw.model_copy(update={"clock_mhz": c}) for c in (100.0, 150.0)]
    assert copies[0].array is hw.array  # what a sweep made by model_copy shares
    twin = HardwareConfig.model_validate(hw.model_dump())
    rows16 = hw.with_changes(**{"array.rows": 16})
    lanes = hw.with_changes(**{"units.vector.lanes": 16, "dram.channels": 2})
    expected = numbers(hw)
    for config in (copies[0], twin, rows16, copies[1], lanes, hw, rows16, twin, lanes, copies[0]):
        got = numbers(config)
        changed = {name for name in expected._fields if getattr(got, name) != getattr(expected, name)}
        want = {rows16: {"array", "array_built"}, lanes: {"units", "dram"}}.get(config, set())
        assert changed == want, (config.array.rows, changed)
