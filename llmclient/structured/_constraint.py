"""`Constraint`: what an answer must look like, checked once, before any token is generated.

Made from exactly one of `schema=` (a JSON Schema dict, a pydantic model, a dataclass, a TypedDict or a type such
as `list[str]`), `response_format=` (OpenAI's `json_object` / `json_schema` shapes), `regex=`, `choices=` or
`grammar=` (llguidance's Lark syntax). It carries the llguidance grammar a local engine enforces token by token,
the JSON Schema a remote engine passes on, and how to turn the finished text into the caller's value.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from llmclient.errors import IncompleteOutputError, InvalidRequestError, InvalidRequestTypeError, SchemaError
from llmclient.structured._types import schema_for_type, value_as

__all__ = ["JSON_OPTIONS", "Constraint", "ConstraintOptions", "constraint_from"]


class ConstraintOptions(TypedDict, total=False):
    """The keyword options that hold an answer to a shape (give at most one; see `constraint_from`)."""

    schema: Any
    response_format: Mapping[str, Any] | None
    regex: str | None
    choices: Sequence[str] | None
    grammar: str | None


#: How llguidance lays out JSON: no free whitespace (a model could otherwise fill the answer with it), and the
#: separators models write anyway.
JSON_OPTIONS: dict[str, Any] = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


@dataclass(frozen=True)
class Constraint:
    """A constraint on an answer; engines read `grammar` (llguidance) or `json_schema` (servers)."""

    kind: str
    """`json_schema`, `json_object`, `regex`, `choices` or `grammar`."""
    grammar: str
    """The llguidance grammar (JSON-encoded top-level grammar) that enforces it."""
    json_schema: dict[str, Any] | None = None
    """For `json_schema` (and `{}` for `json_object`): the schema a server that enforces schemas is given."""
    pattern: str | None = None
    """For `regex` and `choices`: the regular expression."""
    python_type: Any = field(default=None, compare=False)
    """The type the caller asked for (a dataclass, pydantic model, ...), which `parse` builds; None: plain JSON."""

    def parse(self, text: str, finish_reason: str) -> Any:
        """The value `text` holds: the caller's type for a schema, Python objects for JSON, the text otherwise.

        An answer that did not finish (`length`, `cancelled`, or text that is no complete value, as after a stop
        sequence) raises `IncompleteOutputError`."""
        if finish_reason != "stop":
            raise IncompleteOutputError(
                f"the answer ended ({finish_reason}) before its value was complete; raise max_tokens, or bound the "
                "schema's strings and arrays (maxLength, maxItems)",
                text=text,
                finish_reason=finish_reason,
            )
        if self.kind not in ("json_schema", "json_object"):
            return text
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise IncompleteOutputError(
                f"the answer is not a complete JSON value ({error.msg} at {error.pos}); was it cut by a stop sequence?",
                text=text,
                finish_reason=finish_reason,
            ) from None
        return value_as(self.python_type, value) if self.python_type is not None else value


def constraint_from(
    *,
    schema: Any = None,
    response_format: Mapping[str, Any] | None = None,
    regex: str | None = None,
    choices: Sequence[str] | None = None,
    grammar: str | None = None,
) -> Constraint | None:
    """The constraint the keywords ask for (None for none); `SchemaError` if it cannot be enforced exactly."""
    given = [
        name
        for name, value in (
            ("schema", schema),
            ("response_format", response_format),
            ("regex", regex),
            ("choices", choices),
            ("grammar", grammar),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise InvalidRequestError(f"give one of schema, response_format, regex, choices, grammar; got {given}")
    if not given:
        return None
    from llguidance import LLMatcher

    if response_format is not None:
        return _from_response_format(response_format)
    if schema is not None:
        python_type = None if isinstance(schema, Mapping) else schema
        json_schema = dict(schema) if isinstance(schema, Mapping) else schema_for_type(schema)
        return _checked(Constraint("json_schema", _json_grammar(json_schema), json_schema, None, python_type))
    if regex is not None:
        if not isinstance(regex, str):
            raise InvalidRequestTypeError(f"regex must be a string, got {type(regex).__name__}")
        return _checked(Constraint("regex", _regex_grammar(regex), pattern=regex))
    if choices is not None:
        if isinstance(choices, str) or not choices or not all(isinstance(c, str) and c for c in choices):
            raise InvalidRequestTypeError("choices must be a non-empty list of non-empty strings")
        pattern = "|".join(re.escape(c) for c in choices)
        return _checked(Constraint("choices", _regex_grammar(pattern), pattern=pattern))
    assert grammar is not None
    if not isinstance(grammar, str):
        raise InvalidRequestTypeError(f"grammar must be a string (llguidance's Lark syntax), got {type(grammar)}")
    return _checked(Constraint("grammar", LLMatcher.grammar_from_lark(grammar)))


def _from_response_format(response_format: Mapping[str, Any]) -> Constraint:
    kind = response_format.get("type")
    if kind == "text":
        raise SchemaError('response_format {"type": "text"} constrains nothing; leave response_format out')
    if kind == "json_object":
        return _checked(Constraint("json_object", _json_grammar({"type": "object"}), {}))
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        inner = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(inner, Mapping):
            raise SchemaError('response_format json_schema needs {"json_schema": {"name": ..., "schema": {...}}}')
        schema = dict(inner)
        return _checked(Constraint("json_schema", _json_grammar(schema), schema))
    raise SchemaError(f"response_format type {kind!r}: use 'json_object' or 'json_schema' (OpenAI's shapes)")


def _regex_grammar(regex: str) -> str:
    r"""The whole answer matching `regex`, with `\d` meaning the ASCII digits (as in JSON Schema's `pattern`): a
    date's `\d{4}` should not be filled with other scripts' digits."""
    from llguidance import LLMatcher, regex_to_lark

    return LLMatcher.grammar_from_lark(f"start: /{regex_to_lark(regex, 'd')}/")


def _json_grammar(schema: Mapping[str, Any]) -> str:
    from llguidance import LLMatcher

    try:
        return LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults=JSON_OPTIONS)  # type: ignore[arg-type]
    except (ValueError, TypeError) as error:
        raise SchemaError(f"the schema is not valid JSON Schema: {error}") from None


def _checked(constraint: Constraint) -> Constraint:
    """`constraint` if llguidance can enforce it exactly; else `SchemaError` with llguidance's reason (which names
    an unsupported keyword)."""
    problem = _problem(constraint.grammar)
    if problem:
        what = {"json_schema": "schema", "json_object": "schema", "choices": "choices"}.get(constraint.kind)
        raise SchemaError(f"this {what or constraint.kind} cannot be enforced: {problem}")
    return constraint


@functools.lru_cache(maxsize=256)
def _problem(grammar: str) -> str:
    """llguidance's reason why `grammar` cannot be enforced ('' if it can): 0.25 ms, once per grammar (requests
    with one schema ask again and again)."""
    from llguidance import LLMatcher

    return LLMatcher.validate_grammar(grammar)
