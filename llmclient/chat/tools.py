"""Tools the model may call: `Tool` (a name, a description and a JSON Schema of its arguments, with the Python
function behind it if there is one), made from a callable or an OpenAI tool dict, and `ToolCall`, one call the
model made, its arguments parsed and checked against that schema.

A callable's schema comes from its signature: each parameter's type hint (str, int, list[str], Literal, Enum,
dataclasses, TypedDicts, pydantic models: what `schema_for_type` covers), required unless it has a default, and
described by its docstring (Google `Args:`, reST `:param x:` or numpy `Parameters` sections).
"""

from __future__ import annotations

import inspect
import json
import re
import secrets
import string
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from llmclient.chat.messages import MessageToolCall
from llmclient.errors import InvalidRequestError, InvalidRequestTypeError, SchemaError, ToolCallError
from llmclient.structured._types import schema_for_type, value_as

__all__ = [
    "Tool",
    "ToolCall",
    "ToolChoice",
    "ToolLike",
    "ToolOptions",
    "new_call_id",
    "tool_choice_of",
    "tool_from",
    "tools_from",
]

ToolLike = Callable[..., Any] | Mapping[str, Any]
"""What `tools=` takes: a Python function (sync or async) or an OpenAI tool dict."""
ToolChoice = Literal["auto", "none", "required"] | Mapping[str, Any]
"""`auto` (text or calls), `none` (text), `required` (at least one call) or `{"type": "function", "function":
{"name": ...}}` (a call of that tool)."""


class ToolOptions(TypedDict, total=False):
    """The keyword options of a request with `tools`."""

    tool_choice: ToolChoice | None
    """Whether and which tool the model must call (default `auto`)."""
    parallel_tool_calls: bool
    """Whether one turn may hold several calls (default True)."""


_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ID_CHARS = string.ascii_letters + string.digits


def new_call_id() -> str:
    """A fresh tool-call id: 9 letters and digits (the shape Mistral's templates insist on; fine for all)."""
    return "".join(secrets.choice(_ID_CHARS) for _ in range(9))


@dataclass(frozen=True)
class ToolCall:
    """One call the model made: `arguments` are parsed JSON, already checked against the tool's schema."""

    id: str
    name: str
    arguments: dict[str, Any]

    @classmethod
    def from_dict(cls, call: Mapping[str, Any]) -> ToolCall:
        """A call in OpenAI's shape (a server's, or an assistant message's) as a `ToolCall`: its arguments parsed
        (`ToolCallError`, with the raw call, where they are not a JSON object); an id made where it has none."""
        inner = call.get("function")
        function: Mapping[str, Any] = inner if isinstance(inner, Mapping) else call
        name, arguments = function.get("name"), function.get("arguments", {})
        raw = json.dumps(call, ensure_ascii=False, default=str)
        if not isinstance(name, str) or not name:
            raise ToolCallError("the tool call names no tool (no function name)", raw=raw)
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as error:
                raise ToolCallError(
                    f"{name}'s arguments are not valid JSON ({error.msg})", raw=raw, name=name
                ) from None
        if not isinstance(arguments, dict):
            raise ToolCallError(f"{name}'s arguments are not a JSON object", raw=raw, name=name)
        ident = call.get("id")
        return cls(ident if isinstance(ident, str) and ident else new_call_id(), name, arguments)

    def to_dict(self) -> MessageToolCall:
        """The call in OpenAI's shape, for an assistant message's `tool_calls` (arguments as a JSON string)."""
        text = json.dumps(self.arguments, ensure_ascii=False)
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": text}}


@dataclass(frozen=True)
class Tool:
    """A tool the model may call: its name, what it does, and the JSON Schema of its arguments (an object)."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    """The Python function behind it (None for a tool given as a dict: `run_tools` cannot call it)."""

    def definition(self) -> dict[str, Any]:
        """The tool as OpenAI writes it (what chat templates and servers read)."""
        function: dict[str, Any] = {"name": self.name, "description": self.description, "parameters": self.parameters}
        return {"type": "function", "function": function}

    def checked(self, call: ToolCall, raw: str) -> ToolCall:
        """`call` if its arguments match this tool's schema, else `ToolCallError` naming the first mismatch."""
        import jsonschema

        validator = jsonschema.validators.validator_for(self.parameters)(self.parameters)
        error = jsonschema.exceptions.best_match(validator.iter_errors(call.arguments))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the arguments"
            raise ToolCallError(
                f"the model called {self.name} with arguments that do not match its schema ({where}: {error.message})",
                raw=raw,
                name=self.name,
            )
        return call

    def keyword_arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """`arguments` as the function's keyword arguments: dataclasses, pydantic models and enums built."""
        hints = _hints(self.function) if self.function is not None else {}
        return {name: value_as(hints.get(name, Any), value) for name, value in arguments.items()}


def tool_from(tool: Any) -> Tool:
    """`tool` (a `ToolLike` or a `Tool`) as a `Tool`: a callable's schema from its signature and docstring, or an
    OpenAI tool dict's own; `InvalidRequestTypeError` for anything else."""
    if isinstance(tool, Tool):
        return tool
    if isinstance(tool, Mapping):
        return _from_dict(tool)
    if not callable(tool):
        raise InvalidRequestTypeError(
            f"a tool must be a function or an OpenAI tool dict ({{'type': 'function', 'function': {{...}}}}), got "
            f"{type(tool).__name__}"
        )
    name = getattr(tool, "__name__", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidRequestError(f"tool {tool!r} needs a name of letters, digits, _ or - (give a named function)")
    description, documented = _docstring(inspect.getdoc(tool) or "")
    return Tool(name, description, _parameters(tool, documented), tool)


def tools_from(tools: Sequence[Any] | None) -> tuple[Tool, ...]:
    """Each of `tools` (`ToolLike`s or `Tool`s: typed loosely, as mypy types a list of functions of different
    signatures as `list[function]`) as a `Tool`, their names distinct."""
    if tools is None:
        return ()
    if isinstance(tools, Mapping | str) or not isinstance(tools, Sequence):
        raise InvalidRequestTypeError("tools must be a list of functions or OpenAI tool dicts; wrap one in [ ]")
    made = tuple(tool_from(t) for t in tools)
    names = [t.name for t in made]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidRequestError(f"two tools are named {', '.join(twice)}; give each tool its own name")
    return made


def tool_choice_of(choice: ToolChoice | None, tools: Sequence[Tool]) -> tuple[str, str | None]:
    """(`auto` | `none` | `required`, the one tool's name a call must be of or None), checked against `tools`."""
    if choice is None:
        return "auto", None
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise InvalidRequestError(f"tool_choice {choice!r}: use 'auto', 'none', 'required' or a function's dict")
        if choice == "required" and not tools:
            raise InvalidRequestError("tool_choice='required' needs tools: give tools=[...]")
        return choice, None
    function = choice.get("function") if isinstance(choice, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str):
        raise InvalidRequestError('a named tool_choice is {"type": "function", "function": {"name": "..."}}')
    if name not in {t.name for t in tools}:
        known = ", ".join(t.name for t in tools) or "none given"
        raise InvalidRequestError(f"tool_choice names {name!r}, which is not among the tools ({known})")
    return "required", name


def _from_dict(tool: Mapping[str, Any]) -> Tool:
    function = tool.get("function", tool) if tool.get("type", "function") == "function" else None
    if not isinstance(function, Mapping):
        raise InvalidRequestError(f"tool type {tool.get('type')!r}: only 'function' tools can be called")
    name = function.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidRequestError(f"tool name {name!r}: use 1-64 letters, digits, _ or -")
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
        raise SchemaError(f"tool {name}: parameters must be a JSON Schema of an object")
    import jsonschema

    try:
        jsonschema.validators.validator_for(parameters).check_schema(dict(parameters))
    except jsonschema.exceptions.SchemaError as error:
        raise SchemaError(f"tool {name}: its parameters are not a valid JSON Schema ({error.message})") from None
    return Tool(name, str(function.get("description") or ""), dict(parameters))


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except Exception as error:  # a forward reference that does not resolve, say
        raise SchemaError(f"cannot read the type hints of tool {function!r}: {error}") from None


def _parameters(function: Callable[..., Any], documented: dict[str, str]) -> dict[str, Any]:
    """The JSON Schema of `function`'s parameters (an object; nested definitions gathered at its `$defs`)."""
    hints = _hints(function)
    properties: dict[str, Any] = {}
    required: list[str] = []
    defs: dict[str, Any] = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
            raise SchemaError(f"tool {function.__name__}: parameter {name} must be one a keyword can pass")
        schema = dict(schema_for_type(hints.get(name, Any)))
        defs.update(schema.pop("$defs", {}))
        if name in documented and "$ref" not in schema:
            schema["description"] = documented[name]
        properties[name] = schema
        if parameter.default is parameter.empty:
            required.append(name)
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    return {**parameters, "$defs": defs} if defs else parameters


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params):\s*$")
_GOOGLE = re.compile(r"^\s+(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_REST = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+):\s*(.*)$")


def _docstring(doc: str) -> tuple[str, dict[str, str]]:
    """A docstring's description (its first paragraph) and each parameter's text (Google `Args:` or reST
    `:param name:`)."""
    described: list[str] = []
    params: dict[str, str] = {}
    current: str | None = None
    in_args = False
    for line in doc.splitlines():
        stripped = line.strip()
        rest = _REST.match(stripped)
        google = _GOOGLE.match(line) if in_args else None
        if rest or google:
            match = rest or google
            assert match is not None
            current, params[match[1]] = match[1], match[2].strip()
        elif _SECTION.match(stripped):
            in_args, current = True, None
        elif current is not None and stripped and line.startswith((" ", "\t")):
            params[current] = f"{params[current]} {stripped}".strip()
        elif in_args and stripped:  # a section after the arguments (Returns:)
            in_args, current = False, None
        elif not in_args and current is None:
            described.append(stripped)
    description = "\n".join(described).strip().split("\n\n")[0].replace("\n", " ")
    return description, {k: v for k, v in params.items() if v}
