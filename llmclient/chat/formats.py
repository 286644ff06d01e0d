"""Tool-call formats of model families: which one a chat template speaks, and the messages it is given.

Detected from markers in the template, as llama.cpp's server does: `<tool_call>` is Hermes (also Qwen 2.5 and 3),
`<|python_tag|>` or an `ipython` header is Llama 3.x, `[TOOL_CALLS]` is Mistral. A template with none of them
(SmolLM2's, or a GGUF without one) gets the generic format, which works with any template: the tools are described
in the system message, calls are written as Hermes writes them (`<tool_call>{"name": ..., "arguments": ...}
</tool_call>`), earlier calls become assistant text and tool results user messages, so the template only ever sees
the roles it knows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmclient.chat.tools import Tool

__all__ = [
    "GENERIC",
    "HERMES",
    "LLAMA3",
    "MISTRAL",
    "ToolFormat",
    "detect_format",
    "system_folded",
    "template_messages",
]


@dataclass(frozen=True)
class ToolFormat:
    """How one family writes tool calls."""

    name: str
    """`hermes`, `llama3`, `mistral` or `generic`."""
    trigger: str
    """The text (or special token) a call starts with."""
    native: bool
    """Whether the template itself renders `tools`, assistant `tool_calls` and `tool` messages."""
    arguments_key: str = "arguments"
    """The key a call's arguments are written under (Llama 3.x writes `parameters`)."""
    end: str = ""
    """The text that closes a call (Hermes: `</tool_call>`), if any."""
    leading_json: bool = False
    """A call may also be a bare JSON object at the very start of the answer (Llama 3.x writes it so)."""


HERMES = ToolFormat("hermes", "<tool_call>", True, end="</tool_call>")
LLAMA3 = ToolFormat("llama3", "<|python_tag|>", True, arguments_key="parameters", leading_json=True)
MISTRAL = ToolFormat("mistral", "[TOOL_CALLS]", True)
GENERIC = ToolFormat("generic", "<tool_call>", False, end="</tool_call>", leading_json=True)
FORMATS = {f.name: f for f in (HERMES, LLAMA3, MISTRAL, GENERIC)}


def detect_format(template: str | None) -> ToolFormat:
    """The tool-call format `template` speaks (GENERIC where it shows none, or there is no template)."""
    if not template:
        return GENERIC
    if "<tool_call>" in template:
        return HERMES
    if "<|python_tag|>" in template or "<|start_header_id|>ipython<|end_header_id|>" in template:
        return LLAMA3
    if "[TOOL_CALLS]" in template:
        return MISTRAL
    return GENERIC


def template_messages(
    fmt: ToolFormat, messages: Sequence[Mapping[str, Any]], tools: Sequence[Tool]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The messages and tools to render `messages` with, for a template of format `fmt`.

    A native template gets the tools as OpenAI dicts and each earlier call's arguments as an object (what
    transformers' templates read: `tool_call.arguments | tojson`). The generic one gets the tools described in the
    system message, earlier calls as the assistant's text and tool results as user messages."""
    if fmt.native:
        return [_with_object_arguments(m) for m in messages], [t.definition() for t in tools] or None
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            calls = [_call_text(c) for c in message.get("tool_calls") or ()]
            content = "\n".join([message["content"], *calls] if message.get("content") else calls)
            out.append({"role": "assistant", "content": content})
        elif role == "tool":
            result = f"<tool_response>\n{message.get('content') or ''}\n</tool_response>"
            if out and out[-1].get("role") == "user" and out[-1]["content"].startswith("<tool_response>"):
                out[-1] = {"role": "user", "content": f"{out[-1]['content']}\n{result}"}  # several results, one turn
            else:
                out.append({"role": "user", "content": result})
        else:
            out.append(dict(message))
    if tools:
        described = generic_instructions(tools)
        if out and out[0].get("role") == "system":
            out[0] = {**out[0], "content": f"{out[0].get('content') or ''}\n\n{described}".strip()}
        else:
            out.insert(0, {"role": "system", "content": described})
    return out, None


def system_folded(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`messages` with the first one, a system message, put at the head of the first user message instead (for a
    template that takes no system role)."""
    system, rest = messages[0], [dict(m) for m in messages[1:]]
    for message in rest:
        if message.get("role") == "user":
            message["content"] = f"{system.get('content') or ''}\n\n{message.get('content') or ''}"
            return rest
    return [{"role": "user", "content": system.get("content") or ""}, *rest]


def generic_instructions(tools: Sequence[Tool]) -> str:
    """The system text that teaches a model without a tool format of its own to call `tools`."""
    listed = "\n".join(json.dumps(t.definition()["function"], ensure_ascii=False) for t in tools)
    return (
        "You can call these tools (each with a JSON Schema of its arguments):\n"
        f"<tools>\n{listed}\n</tools>\n"
        "To call one, write only <tool_call>\n"
        '{"name": "<tool name>", "arguments": {<its arguments>}}\n'
        "</tool_call>\n"
        "Its result comes back as <tool_response>...</tool_response>. To answer without a tool, write text."
    )


def _call_text(call: Mapping[str, Any]) -> str:
    function = call.get("function") or {}
    body = {"name": function.get("name"), "arguments": _arguments(function.get("arguments"))}
    return f"<tool_call>\n{json.dumps(body, ensure_ascii=False)}\n</tool_call>"


def _arguments(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except json.JSONDecodeError:
            return arguments
    return arguments


def _with_object_arguments(message: Mapping[str, Any]) -> dict[str, Any]:
    copied = dict(message)
    if copied.get("tool_calls"):
        copied["tool_calls"] = [
            {**c, "function": {**c["function"], "arguments": _arguments(c["function"].get("arguments"))}}
            for c in copied["tool_calls"]
        ]
    return copied
