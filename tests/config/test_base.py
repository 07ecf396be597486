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


def _strict_models() -> list[type]:
    import importlib

    from accelsim.config._base import Strict

    for module in ("accelsim.config", "accelsim.config.search", "accelsim.testing"):  # every config model
        importlib.import_module(module)

    found, todo = [], [Strict]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def test_the_scalar_fields_read_from_the_class_body_are_the_ones_pydantic_resolves() -> None:
    # the type check is attached at class creation from the annotations as written (strings, aliases
    # such as compression's ``Bits``): a field form it misread would silently accept ``rows: true``
    # (a field it could not read is checked too, its types looked up when first validated)
    from accelsim.config._base import _SCALAR_FIELDS, _UNREAD, _scalar_types

    models = _strict_models()
    assert len(models) >= 40
    for model in models:
        unread = {name for name, accepts in _SCALAR_FIELDS[model].items() if accepts is _UNREAD}
        resolved = {
            name: accepts
            for name, field in model.__pydantic_fields__.items()
            if (accepts := _scalar_types(field.annotation)) is not None and name not in unread
        }
        assert {k: v for k, v in _SCALAR_FIELDS[model].items() if k not in unread} == resolved, model.__name__
    assert sum(len(_SCALAR_FIELDS[m]) for m in models) >= 150


def test_a_subclass_keeps_its_parents_checks_and_adds_its_own() -> None:
    from typing import Annotated

    from pydantic import Field

    from accelsim.config._base import _SCALAR_FIELDS, _UNREAD, Strict

    Count = Annotated[int, Field(ge=0)]

    class Parent(Strict):
        rows: int = 1
        name: str = "x"

    class Child(Parent):
        scale: float | None = None
        count: Count = 0

    assert _SCALAR_FIELDS[Child]["count"] is _UNREAD  # a local alias: read once resolved
    for data, message in [
        ({"rows": True}, r"^rows: Input should be a valid integer \(got True\)$"),
        ({"scale": "2"}, r"^scale: Input should be a valid number \(got '2'\)$"),
        ({"count": 1.0}, r"^count: Input should be a valid integer \(got 1.0\)$"),
        ({"rows": 2**31}, r"^rows: Input should be at most 2147483647 in size \(got 2147483648\)$"),
    ]:
        with pytest.raises(ConfigError, match=message):
            validate_config(Child, data)
    assert validate_config(Child, {"rows": 2, "scale": 3, "count": 4}).scale == 3
    with pytest.raises(ConfigError, match=r"^rows: Input should be a valid integer \(got 1.5\)$"):
        validate_config(Parent, {"rows": 1.5})


def test_a_field_redeclared_as_not_scalar_is_not_held_to_the_parents_type() -> None:
    from accelsim.config._base import Strict

    class Parent(Strict):
        size: int = 1

    class Child(Parent):
        size: str = "x"  # type: ignore[assignment]

    assert validate_config(Child, {"size": "big"}).size == "big"
    with pytest.raises(ConfigError, match=r"^size: Input should be a valid integer \(got 'big'\)$"):
        validate_config(Parent, {"size": "big"})
