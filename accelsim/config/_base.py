"""The base of every user-facing config: strict pydantic models loaded from YAML.

Errors name the field (dotted path) and what is allowed, all of them at once, on one line.
"""

from __future__ import annotations

import functools
import re
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from accelsim._io import read_text
from accelsim.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """A config model where a typo is an error, not a silently ignored key, and a value of the
    wrong scalar type is an error, not coerced.

    pydantic's lax mode would read ``rows: true`` as 1, ``rows: 32.0`` or ``rows: "32"`` as 32 and
    ``double_buffer: 1`` as true; a YAML that says so is more likely a mistake than a wish, and a
    float search range over an integer field would be truncated point by point. Full strict mode
    would also refuse YAML lists for tuple fields, so only the scalar fields are held to their type
    (an int stays acceptable where a float is wanted). ``.inf`` and ``.nan`` are refused too:
    nothing in a config is infinite, and a report computed from one is not JSON.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Runs inside ``type.__new__``, before pydantic collects the class's validators: the type
        # check goes on the scalar fields alone (a "*" validator would cost a Python call for
        # every field of every config validated, and a search validates one per hardware point).
        super().__init_subclass__(**kwargs)
        scalar = {
            name: accepts
            for base in reversed(cls.__mro__[1:])
            for name, accepts in _SCALAR_FIELDS.get(base, {}).items()
        }
        namespace = dict(vars(sys.modules[cls.__module__]))  # eval's globals; the module's own untouched
        for name, annotation in vars(cls).get("__annotations__", {}).items():
            if name.startswith("_"):
                continue
            accepts = _annotation_scalar_types(annotation, namespace)
            if accepts is None:
                scalar.pop(name, None)
            else:
                scalar[name] = accepts
        _SCALAR_FIELDS[cls] = scalar
        if scalar:
            # one name for every class: a subclass's validator replaces its parent's, so a field
            # is checked once
            cls._no_scalar_coercion = field_validator(*scalar, mode="before")(_no_scalar_coercion)  # type: ignore[attr-defined]


def _no_scalar_coercion(cls: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    # (None: a field a subclass redeclared as not scalar, under its parent's validator)
    accepts = _SCALAR_FIELDS[cls].get(info.field_name)  # type: ignore[arg-type]
    if accepts is _UNREAD:  # resolved by pydantic by now
        accepts = _field_scalar_types(cls, info.field_name)
    if accepts is None:
        return value
    if value is None:
        return value
    if type(value) is int and float not in accepts and not -_MAX_INT <= value <= _MAX_INT:
        # every count in a config is far below this; beyond it the simulator's int64 sums overflow
        raise PydanticCustomError("int_too_big", f"Input should be at most {_MAX_INT} in size")
    if type(value) in accepts:
        return value
    if isinstance(value, bool | int | float | str):
        wanted = _WANTED[max(accepts, key=_WANTED_ORDER.index)]
        raise PydanticCustomError(f"{_WANTED_TYPE[wanted]}", f"Input should be {wanted}")
    return value


#: The scalar fields of each :class:`Strict` model (its own and those it inherits) and the
#: Python types each takes as they are; :data:`_UNREAD` for a field whose annotation names
#: something its module had not defined yet (a local alias, a later class), looked up once
#: pydantic has resolved it.
_SCALAR_FIELDS: dict[type, dict[str, frozenset[type]]] = {}
_UNREAD: frozenset[type] = frozenset({object})  # its own object: told apart by identity
_SCALARS = (bool, int, float, type(None))
_MAX_INT = 2**31 - 1
_WANTED_ORDER = [type(None), bool, int, float]
_WANTED = {bool: "true or false", int: "a valid integer", float: "a valid number", type(None): "null"}
_WANTED_TYPE = {"true or false": "bool_type", "a valid integer": "int_type", "a valid number": "float_type",
                "null": "none_required"}  # fmt: skip


def _annotation_scalar_types(annotation: Any, namespace: dict[str, Any]) -> frozenset[type] | None:
    """:func:`_scalar_types` of an annotation as the class body wrote it: a string under ``from
    __future__ import annotations``, read before pydantic resolves it, in the names its module has
    defined so far; :data:`_UNREAD` where it names something else."""
    if isinstance(annotation, str):
        try:
            annotation = eval(annotation, namespace)  # the module's own annotation text
        except NameError:
            return _UNREAD
        except Exception:
            return None
    return _scalar_types(annotation)


@functools.cache
def _field_scalar_types(cls: type[BaseModel], field: str) -> frozenset[type] | None:
    return _scalar_types(cls.__pydantic_fields__[field].annotation)  # type: ignore[arg-type]


@functools.cache
def _scalar_types(annotation: Any) -> frozenset[type] | None:
    """The Python types a field of ``annotation`` takes as they are, when it holds only bools,
    ints, floats and None (an int is a float's value too); None for any other field."""
    args = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )
    # ``Annotated[int, Field(ge=2)]`` (a module's alias) is an int; None written in a union is NoneType
    args = tuple(
        type(None) if a is None else typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a
        for a in args
    )
    if not args or not all(a in _SCALARS for a in args):
        return None
    accepts = set(args)
    if float in accepts:
        accepts.add(int)
    return frozenset(accepts)


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
        # a member that failed inside the input (a nested field's value) matched it in type
        matched = [
            es
            for es in members.values()
            if not all(x["type"] in _TYPE_MISMATCH and len(x["loc"]) == len(item) for x in es)
        ]
        if matched:
            result.extend(x for es in matched for x in es)
            continue
        first = next(iter(members.values()))[0]
        wanted = []
        for es in members.values():
            for x in es:
                what = x["msg"].removeprefix("Input should be ")
                if x["type"] != "literal_error":  # "a valid dictionary or instance of X": the first
                    what = what.split(",")[0]
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


class _UniqueKeys(yaml.constructor.SafeConstructor):
    """Refuses a key given twice in one mapping (PyYAML keeps the last, so a pasted second
    ``clock_mhz:`` would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: let PyYAML's own error report it
                continue
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


class _UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """``yaml.SafeLoader`` with unique keys: its error messages are the ones :func:`read_yaml` gives."""


#: the same with libyaml's parser where PyYAML has it: 6x faster (a published config's 14 kB in
#: 10 ms, not 66), the same documents; its errors are worded differently, so a file it refuses is
#: parsed again by :class:`_UniqueKeyLoader` for the message
_FastLoader: type | None = (
    type("_FastUniqueKeyLoader", (_UniqueKeys, yaml.CSafeLoader), {})
    if hasattr(yaml, "CSafeLoader")
    else None
)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file, undecodable bytes, invalid YAML or a duplicate key is a
    one-line :class:`ConfigError`."""
    path = Path(path)
    text = read_text(path, ConfigError)
    if _FastLoader is not None:
        try:
            return yaml.load(text, Loader=_FastLoader)
        except yaml.YAMLError:
            pass  # worded below
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None


def get_path(data: Any, dotted: str) -> Any:
    """The value at the dotted path ``dotted`` (``"array.rows"``) of nested dicts.

    Raises:
        KeyError: naming the first part of the path that is not there (or not a section).

    Examples:
        >>> get_path({"array": {"rows": 32}}, "array.rows")
        32
    """
    node = data
    parts = dotted.split(".")
    for i, key in enumerate(parts):
        if not isinstance(node, dict) or key not in node:
            raise KeyError(".".join(parts[: i + 1]))
        node = node[key]
    return node


def set_path(data: Mapping[str, Any], dotted: str, value: Any, *, create: bool = False) -> dict[str, Any]:
    """A copy of nested dicts ``data`` with the dotted path ``dotted`` set to ``value``.

    Only the dicts along the path are copied; the rest is shared with ``data``, which is never
    modified (setting many points of one base config costs no deep copy). With ``create``, missing
    sections and fields are made; without, the path must exist.

    Raises:
        KeyError: naming the first part of the path that is missing (without ``create``) or is a
            value where a section is needed.

    Examples:
        >>> set_path({"quant": {"wbits": 8}}, "prune.heads_keep", 0.5, create=True)
        {'quant': {'wbits': 8}, 'prune': {'heads_keep': 0.5}}
    """
    out = dict(data)
    node = out
    *parents, leaf = dotted.split(".")
    for i, part in enumerate(parents):
        child = node.get(part)
        if child is None and create:
            child = {}
        elif not isinstance(child, dict):
            raise KeyError(".".join(parents[: i + 1]))
        else:
            child = dict(child)  # copy on write: data's dict stays as it was
        node[part] = child
        node = child
    if leaf not in node and not create:
        raise KeyError(dotted)
    node[leaf] = value
    return out


def load_config(path: str | Path, model: type[M]) -> M:
    """Read ``path`` as YAML and validate it as ``model``."""
    return validate_config(model, read_yaml(path), str(path))
