"""Python types as JSON Schemas, and JSON values back as those types, without pydantic.

Covers what an answer is usually shaped as: `str`, `int`, `float`, `bool`, `None`, `list[T]`, `tuple[...]`,
`dict[str, T]`, `Literal[...]`, `Enum`s, unions and `Optional`, dataclasses and `TypedDict`s (nested, and
recursive through `$defs`). A pydantic model is asked for its own schema and validates its own values.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

from llmclient.errors import SchemaError

__all__ = ["is_pydantic_model", "schema_for_type", "value_as"]

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
}


def is_pydantic_model(tp: object) -> bool:
    """Whether `tp` is a pydantic model class (pydantic itself is not imported for this)."""
    return isinstance(tp, type) and hasattr(tp, "model_json_schema") and hasattr(tp, "model_validate")


def _is_typeddict(tp: object) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def schema_for_type(tp: Any) -> dict[str, Any]:
    """The JSON Schema of values of type `tp`; raises `SchemaError` for a type it cannot describe."""
    if is_pydantic_model(tp):
        # a model ignores keys it does not declare, so generating them is waste (and a small model may never stop)
        return _closed(tp.model_json_schema())  # type: ignore[no-any-return]
    defs: dict[str, Any] = {}
    root = _schema(tp, defs, set())
    return {**root, "$defs": defs} if defs else root


def _closed(schema: Any) -> Any:
    """`schema` with every object that declares its properties closed to others (`additionalProperties: false`
    where it says nothing)."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {k: _closed(v) for k, v in schema.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


def _schema(tp: Any, defs: dict[str, Any], seen: set[str]) -> dict[str, Any]:
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    if tp is Any:
        return {}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return {"enum": list(args)}
    if origin is Union or (sys.version_info >= (3, 10) and origin is types.UnionType):
        return {"anyOf": [_schema(a, defs, seen) for a in args]}
    if origin in (list, Sequence, set, frozenset) or tp in (list, set, frozenset):
        item = _schema(args[0], defs, seen) if args else {}
        return {"type": "array", "items": item}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema(args[0], defs, seen)}
        items = [_schema(a, defs, seen) for a in args]
        return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
    if origin in (dict, Mapping) or tp is dict:
        if args and args[0] is not str:
            raise SchemaError(f"{tp!r}: JSON object keys are strings; use dict[str, ...]")
        value = _schema(args[1], defs, seen) if args else {}
        return {"type": "object", "additionalProperties": value}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if isinstance(tp, type) and (dataclasses.is_dataclass(tp) or _is_typeddict(tp)):
        return _object(tp, defs, seen)
    if is_pydantic_model(tp):
        raise SchemaError(f"{tp.__name__}: a pydantic model inside another type; pass it as the schema itself")
    raise SchemaError(f"cannot turn {tp!r} into a JSON Schema; use a dataclass, TypedDict, pydantic model or dict")


def _object(tp: type, defs: dict[str, Any], seen: set[str]) -> dict[str, Any]:
    """A named object type, defined once in `$defs` and referred to (so a recursive one terminates)."""
    name = tp.__name__
    ref = {"$ref": f"#/$defs/{name}"}
    if name in seen or name in defs:
        return ref
    seen.add(name)
    hints = typing.get_type_hints(tp)
    if dataclasses.is_dataclass(tp):
        fields = [f for f in dataclasses.fields(tp) if f.init]
        names = [f.name for f in fields]
        required = [
            f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
    else:
        names = list(hints)
        required = [n for n in names if n in tp.__required_keys__]  # type: ignore[attr-defined]
    properties = {n: _schema(hints[n], defs, seen) for n in names}
    defs[name] = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return ref


def value_as(tp: Any, value: Any) -> Any:
    """The JSON `value` as a `tp`: dataclasses and enums built, tuples made tuples; the rest as parsed."""
    if is_pydantic_model(tp):
        return tp.model_validate(value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        hints = typing.get_type_hints(tp)
        return tp(**{k: value_as(hints[k], v) for k, v in value.items()})
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if _is_typeddict(tp) and isinstance(value, dict):
        hints = typing.get_type_hints(tp)
        return {k: value_as(hints.get(k, Any), v) for k, v in value.items()}
    if origin is Union or (sys.version_info >= (3, 10) and origin is types.UnionType):
        for option in args:  # the first the value fits
            if _fits(option, value):
                return value_as(option, value)
        return value
    if origin in (list, Sequence) and args and isinstance(value, list):
        return [value_as(args[0], v) for v in value]
    if origin in (set, frozenset) and isinstance(value, list):
        return origin(value_as(args[0], v) for v in value) if args else origin(value)
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(value_as(args[0], v) for v in value)
        return tuple(value_as(a, v) for a, v in zip(args, value, strict=False))
    if origin in (dict, Mapping) and len(args) == 2 and isinstance(value, dict):
        return {k: value_as(args[1], v) for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _fits(tp: Any, value: Any) -> bool:
    """Whether a JSON value could be of type `tp` (for choosing among a union's options)."""
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if isinstance(tp, type) and (dataclasses.is_dataclass(tp) or _is_typeddict(tp)):
        return isinstance(value, dict) and set(value) <= set(typing.get_type_hints(tp))
    origin = typing.get_origin(tp) or tp
    if origin in (list, tuple, set, frozenset, Sequence):
        return isinstance(value, list)
    if origin in (dict, Mapping):
        return isinstance(value, dict)
    if origin is Literal:
        return value in typing.get_args(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return value in [m.value for m in tp]
    return True
