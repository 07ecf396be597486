"""ArithmeticConfig and the arithmetic a hardware config implies (arithmetic_for)."""

from __future__ import annotations

import pytest
from _helpers import tiny_hw

from accelsim.config.arithmetic import ArithmeticConfig, arithmetic_for
from accelsim.config.hardware import HardwareConfig
from accelsim.errors import ConfigError


def test_arithmetic_follows_the_accumulator_and_the_divider() -> None:
    trio = arithmetic_for(HardwareConfig.load("zcu102_trio"))
    assert (trio.accumulator_bits, trio.la_divisor) == (32, "log2_shift")  # its unit shifts
    plain = arithmetic_for(HardwareConfig.load("zcu102"))
    assert plain.la_divisor == "true_divide"  # no unit: the vector unit divides
    wide = arithmetic_for(tiny_hw(buffers__acc_bits=64))
    # the executor emulates at most 48 bits exactly, and the requantisation product must fit int64
    assert wide.accumulator_bits == 48 and wide.requant_mantissa_bits <= 63 - 48
    base = ArithmeticConfig(softmax="float")
    assert arithmetic_for(HardwareConfig.load("zcu102"), base).softmax == "float"


def test_bad_arithmetic_is_one_line_naming_the_field(tmp_path) -> None:
    p = tmp_path / "a.yaml"
    p.write_text("accumulator_bits: 24\nsoftmax: exp\n")
    with pytest.raises(ConfigError, match=r"softmax: Input should be"):
        ArithmeticConfig.load(p)
