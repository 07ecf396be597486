"""The base of every user-facing config: strict pydantic models loaded from YAML.

Errors name the field (dotted path) and what is allowed, all of them at once, on one line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from accelsim.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """A config model where a typo is an error, not a silently ignored key."""

    model_config = ConfigDict(extra="forbid", frozen=True)


#: pydantic error types that only say "the input is not of this member's type": in a union, the
#: member that failed on a value (not a type) is the one the user meant.
_TYPE_MISMATCH = frozenset(
    {
        "bool_parsing", "bool_type", "dict_type", "float_parsing", "float_type", "int_from_float",
        "int_parsing", "int_type", "is_instance_of", "list_type", "literal_error", "model_attributes_type",
        "model_type", "none_required", "string_type", "tuple_type",
    }
)  # fmt: skip
_MEMBER_TAG = re.compile(r"[A-Z]|.*[\[-]|(int|float|str|bool|list|dict|tuple|none)$")


def _is_member_tag(part: object) -> bool:
    # pydantic names a smart union's member in ``loc`` by its schema ('constrained-float',
    # 'list[constrained-float]', 'LutMacConfig', 'function-after[...]'), never a snake_case field
    return isinstance(part, str) and _MEMBER_TAG.match(part) is not None


def _union_errors(errors: list[Any]) -> list[Any]:
    """Keep, for each union, the errors of the members the input matched in type; when it matched
    none, one error that lists what each member wanted (instead of one line per member)."""
    out: list[Any] = []
    unions: dict[tuple[object, ...], dict[str, list[Any]]] = {}
    for e in errors:
        loc = tuple(e["loc"])
        cut = next((i for i, p in enumerate(loc) if _is_member_tag(p)), None)
        if cut is None:
            out.append(e)
            continue
        field, member = loc[:cut], str(loc[cut])
        if field not in unions:
            out.append(field)  # placeholder: the union's errors go where its first one was
            unions[field] = {}
        unions[field].setdefault(member, []).append({**e, "loc": field + loc[cut + 1 :], "orig_loc": loc})
    result: list[Any] = []
    for item in out:
        if not isinstance(item, tuple):
            result.append(item)
            continue
        members = unions[item]
        if len(members) == 1:  # not a union after all (a dict key that looks like a tag): as it was
            result.extend({**x, "loc": x["orig_loc"]} for x in next(iter(members.values())))
            continue
        matched = [es for es in members.values() if not all(x["type"] in _TYPE_MISMATCH for x in es)]
        if matched:
            result.extend(x for es in matched for x in es)
            continue
        first = next(iter(members.values()))[0]
        wanted = []
        for es in members.values():
            for x in es:
                what = x["msg"].removeprefix("Input should be ").split(",")[0]
                if what not in wanted:
                    wanted.append(what)
        result.append({**first, "msg": "Input should be " + " or ".join(wanted)})
    return result


def format_validation_error(err: ValidationError, source: str = "") -> str:
    """One line naming each failing field and why, e.g. ``array.dataflow: Input should be 'ws', 'os' or 'is' (got 'xs')``."""
    parts = []
    for e in _union_errors(err.errors()):
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        elif "input" in e and e["type"] not in ("missing",) and not isinstance(e["input"], dict | list):
            msg = f"{msg} (got {e['input']!r})"
        parts.append(f"{loc}: {msg}")
    prefix = f"{source}: " if source else ""
    return prefix + "; ".join(parts)


def validate_config(model: type[M], data: Any, source: str = "") -> M:
    """``model.model_validate(data)`` with errors turned into one-line :class:`ConfigError`."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from None


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or invalid YAML is a one-line :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None


def load_config(path: str | Path, model: type[M]) -> M:
    """Read ``path`` as YAML and validate it as ``model``."""
    return validate_config(model, read_yaml(path), str(path))
