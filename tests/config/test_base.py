"""The one-line config errors: a union names the member the input was meant for."""

from __future__ import annotations

import pytest

from accelsim.config._base import validate_config
from accelsim.config.compression import TokenConfig
from accelsim.errors import ConfigError


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # a number out of range: the list member's "not a list" is noise
        ({"keep_rate": 1.5}, r"^keep_rate: Input should be less than or equal to 1 \(got 1\.5\)$"),
        # a list with a bad entry: the number member's "not a number" is noise
        ({"keep_rate": [0.5, 2]}, r"^keep_rate\.1: Input should be less than or equal to 1 \(got 2\)$"),
        # neither: one line that says what either member wanted
        ({"keep_rate": "x"}, r"^keep_rate: Input should be a valid number or a valid list \(got 'x'\)$"),
    ],
)
def test_union_errors_name_the_member_the_input_meant(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(TokenConfig, data)


def test_errors_outside_unions_are_all_reported_in_order() -> None:
    with pytest.raises(ConfigError, match=r"^method: Input should be .*; keep_rate: Input should be less"):
        validate_config(TokenConfig, {"method": "nope", "keep_rate": 3})
