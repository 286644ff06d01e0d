"""The llguidance grammar that holds a model's tool calls to its family's format and to the tools' schemas.

`auto`: free text, or, from the family's trigger on (`<tool_call>`, `<|python_tag|>` or a leading `{`,
`[TOOL_CALLS]`), calls whose name is one of the tools and whose arguments match that tool's schema (a lazy lexeme:
text is never masked until the trigger appears). `required`: the calls from the first token; one named tool:
exactly one call of it. Each tool's call is its own `%json` (the tool's `$defs` at that call's root, so its
references resolve), and a turn holds at most `MAX_CALLS` calls: a small model that repeats its call stops there
(`parallel_tool_calls=False` holds it to one).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from llmclient.chat.formats import ToolFormat
from llmclient.chat.tools import Tool
from llmclient.errors import SchemaError
from llmclient.structured._constraint import JSON_OPTIONS

__all__ = ["MAX_CALLS", "special_markers", "tool_call_grammar"]

MAX_CALLS = 8
"""The most calls one constrained turn may hold."""


def _call_schema(tool: Tool, key: str) -> dict[str, Any]:
    """The JSON Schema of one call of `tool`: `{"name": <its name>, key: <its arguments>}`, in that order."""
    parameters = dict(tool.parameters)
    defs = {**parameters.pop("definitions", {}), **parameters.pop("$defs", {})}
    schema: dict[str, Any] = {
        "x-guidance": JSON_OPTIONS,
        "type": "object",
        "properties": {"name": {"const": tool.name}, key: parameters},
        "required": ["name", key],
        "additionalProperties": False,
    }
    if defs:  # the arguments' references (#/$defs/X, #/definitions/X) resolve from the call's root
        schema["$defs"] = schema["definitions"] = defs
    return schema


def special_markers(tokenizer: Any, fmt: ToolFormat) -> dict[str, int]:
    """Each of `fmt`'s markers that is one special token of `tokenizer`'s vocabulary (llguidance's), with its id:
    such a token never matches text, so the grammar must name it as a token."""
    special: dict[str, int] = {}
    for marker in (fmt.trigger, fmt.end):
        ids = tokenizer.tokenize_str(marker, parse_special=True) if marker else []
        if len(ids) == 1 and tokenizer.is_special_token(ids[0]):
            special[marker] = ids[0]
    return special


def tool_call_grammar(
    fmt: ToolFormat,
    tools: Sequence[Tool],
    mode: str,
    only: str | None = None,
    special: Mapping[str, int] | None = None,
    parallel: bool = True,
) -> str:
    """The Lark grammar (llguidance) for a turn in format `fmt`: `mode` `auto` or `required`, `only` the one tool
    a call must be of; `special` maps each marker that is a single special token of the vocabulary to its id (it is
    then matched as that token, not as text); `parallel=False`, or a named tool, holds a turn to one call. Built
    and checked once per set of arguments (~1 ms), then remembered."""
    defs = json.dumps([[t.name, t.parameters] for t in tools])  # key order kept: llguidance writes it so
    return _grammar(fmt, defs, mode, only, tuple(sorted((special or {}).items())), parallel)


@functools.lru_cache(maxsize=256)
def _grammar(
    fmt: ToolFormat, defs: str, mode: str, only: str | None, special_items: tuple[tuple[str, int], ...], parallel: bool
) -> str:
    from llguidance import LLMatcher

    tools = [Tool(name, "", parameters) for name, parameters in json.loads(defs)]
    chosen = [t for t in tools if only is None or t.name == only]
    if not chosen:
        raise SchemaError("no tool to call: give tools=[...]")
    special = dict(special_items)

    def lit(text: str) -> str:
        return f"<[{special[text]}]>" if text in special else json.dumps(text)

    key = fmt.arguments_key
    calls = " | ".join(f"f{i}" for i in range(len(chosen)))
    rules = [f"f{i}: %json {json.dumps(_call_schema(t, key))}" for i, t in enumerate(chosen)]

    def more(item: str) -> str:  # the calls after the first
        return f"({item}){{0,{MAX_CALLS - 1}}}" if parallel and only is None else ""

    trigger = fmt.trigger
    # text up to the trigger: a special token ends the text by itself; a text trigger ends a lazy lexeme
    head = f"head: TEXT {lit(trigger)}" if trigger in special else f"head[lazy]: TEXT {json.dumps(trigger)}"
    text = "TEXT: /(.|\\n)*/"
    if fmt.name in ("hermes", "generic"):
        rules += [f'body: "\\n" ({calls}) "\\n" {lit(fmt.end)}', f"call: {lit(trigger)} body", "SEP: /\\n{0,2}/"]
        start = f"call {more('SEP call')}" if mode == "required" else f"TEXT | head body {more('SEP call')}"
    elif fmt.name == "llama3":  # a call is the whole answer, a bare object (or after <|python_tag|>)
        rules.append(f"call: {lit(trigger) + '?' if trigger in special else ''} ({calls})")
        start = "call" if mode == "required" else "TEXT | call"
        text = "TEXT: /(\\s*[^{\\s](.|\\n)*)?/"  # text that does not open with a call's brace
    elif fmt.name == "mistral":
        comma = '", "'
        rules.append(f'list: "[" ({calls}) {more(f"{comma} ({calls})")} "]"')
        start = f"{lit(trigger)} list" if mode == "required" else "TEXT | head list"
    else:
        raise SchemaError(f"no grammar for tool-call format {fmt.name!r}")
    if mode != "required":
        rules += [head, text] if "head" in start else [text]
    lark = "\n".join(["%llguidance {}", f"start: {start}", *rules])
    grammar = LLMatcher.grammar_from_lark(lark)
    problem = LLMatcher.validate_grammar(grammar)
    if problem:
        raise SchemaError(f"these tools' schemas cannot be enforced: {problem}")
    return grammar
