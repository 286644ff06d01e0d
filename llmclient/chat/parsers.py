"""Reading tool calls out of a model's text, as it streams: `ToolCallReader` splits it into the text to show and
the calls, per family (`formats.py`), tolerant of what unconstrained models write.

Text that might be the start of a call's marker is held back until it is clear, so text shown never contains
markup. A call is handed out whole, once its markup is complete and its JSON parsed. A call that cannot be read
(malformed JSON, no name, cut short by the end of generation) raises `ToolCallError` with the raw text: never
dropped, never shown as text.

Tolerated: `parameters` for `arguments` and back, arguments as a JSON string, OpenAI's `{"function": {...}}`,
llama.cpp's generic `{"tool_call": {...}}`, `{"tool_calls": [...]}` and `{"response": "..."}`, a Hermes call
without its closing tag at the end of the answer, several Llama calls separated by `;`, and Mistral's newer
`[TOOL_CALLS]name[ARGS]{...}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmclient.chat.formats import FORMATS, ToolFormat
from llmclient.chat.tools import ToolCall, new_call_id
from llmclient.errors import ToolCallError

__all__ = ["ToolCallReader", "parse_tool_calls"]

_DECODER = json.JSONDecoder()
_MISTRAL_NAMED = re.compile(r"\s*([A-Za-z0-9_-]+)\[ARGS\]")
_CALL_KEYS = frozenset({"name", "function", "tool_call", "tool_calls", "response"})
"""Keys of which a JSON object opening the answer holds one if it is a call (else it is a JSON answer)."""


@dataclass
class _Found:
    text: str
    calls: list[ToolCall]


class ToolCallReader:
    """Feed it the answer's text as it comes; it gives back (text to show, calls completed) each time."""

    def __init__(self, fmt: ToolFormat | str) -> None:
        self.format = FORMATS[fmt] if isinstance(fmt, str) else fmt
        self._held = ""
        self._in_call = False
        self._at_start = True
        self._raw = ""
        """The text of the call being read, marker included (what an error shows)."""
        self._after_call = False
        self._leading = False
        """The call being read is a JSON object the answer opened with (no marker)."""
        self._block = 0
        """Calls read since the last marker (those without an end tag may follow one another)."""
        self.calls: list[ToolCall] = []
        """Every call read so far."""

    def feed(self, text: str) -> tuple[str, list[ToolCall]]:
        """The text `text` completes that is safe to show, and the calls it completes."""
        self._held += text
        found = self._scan(final=False)
        return found.text, found.calls

    def finish(self, finish_reason: str = "stop") -> tuple[str, list[ToolCall]]:
        """What is still held, at the end of the answer; `ToolCallError` for a call left unfinished."""
        found = self._scan(final=True)
        if self._in_call:
            raise ToolCallError(
                f"the answer ended ({finish_reason}) inside a tool call; raise max_tokens"
                if finish_reason == "length"
                else f"the answer ended ({finish_reason}) before its tool call was complete",
                raw=self._raw + self._held,
            )
        return found.text, found.calls

    # --- scanning ---------------------------------------------------------------------------------

    def _scan(self, final: bool) -> _Found:
        found = _Found("", [])
        while True:
            before = (self._held, self._in_call)
            if self._in_call:
                self._read_call(found, final)
            else:
                self._read_text(found, final)
            if (self._held, self._in_call) == before or (not self._held and not self._in_call):
                break
        self.calls.extend(found.calls)
        return found

    def _read_text(self, found: _Found, final: bool) -> None:
        fmt, held = self.format, self._held
        if self._after_call:  # space between calls (or before the end) is no text
            if not held.strip():
                self._held = "" if final else held
                return
            held, self._after_call = held.lstrip(), False
        if self._at_start and fmt.leading_json:
            stripped = held.lstrip()
            if not stripped and not final:
                return  # nothing but space yet: the answer may still open with a call
            self._at_start = False
            if stripped.startswith("{"):
                self._in_call, self._leading, self._raw, self._held = True, True, "", stripped
                return
        self._at_start = self._at_start and not held.strip()
        at = held.find(fmt.trigger)
        if at >= 0:
            found.text += held[:at]
            self._in_call, self._raw, self._held = True, fmt.trigger, held[at + len(fmt.trigger) :]
            return
        keep = 0 if final else _partial_suffix(held, fmt.trigger)
        found.text += held[: len(held) - keep]
        self._held = held[len(held) - keep :]

    def _read_leading(self, found: _Found, final: bool) -> None:
        """A JSON object the answer opens with: a call if it is shaped as one, else text (a JSON answer)."""
        held = self._held
        try:
            value, end = _DECODER.raw_decode(held)
        except json.JSONDecodeError:
            if final and '"name"' not in held:  # no call was meant: text that opens with a brace
                found.text += held
                self._in_call = self._leading = False
                self._held = ""
            elif final and held.rstrip().endswith("}"):
                self._take(held, held, found)  # complete but malformed: says why
            return  # else wait for more (or, at the end, `finish` says the call was cut)
        self._leading = False
        if not isinstance(value, Mapping) or not _CALL_KEYS & set(value):
            found.text += held[:end]
            self._in_call, self._held = False, held[end:]
            return
        self._raw, self._held = held[:end], held[end:]
        self._found(value, found)
        self._block += 1
        if self.format.end:  # generic: one call without its tags, then text
            self._in_call, self._block = False, 0
            self._held = self._held.lstrip() if self._held.strip() else ""
        # Llama: still in the calls, read on as ever (`; {...}` is another call, other text is text)

    def _read_call(self, found: _Found, final: bool) -> None:
        fmt, held = self.format, self._held
        if self._leading:
            self._read_leading(found, final)
            return
        if fmt.end:
            close = held.find(fmt.end)
            if close >= 0:
                self._take(held[:close], self._raw + held[: close + len(fmt.end)], found)
                rest = held[close + len(fmt.end) :]
                self._in_call, self._held = False, rest.lstrip() if rest.strip() else ""
            elif final and held.strip():  # no closing tag at the end: the JSON alone will do, if it is whole
                try:
                    _DECODER.raw_decode(held.strip())
                except json.JSONDecodeError:
                    return  # cut short: `finish` says so
                self._take(held, self._raw + held, found)
                self._in_call, self._held = False, ""
            return
        named = _MISTRAL_NAMED.match(held) if fmt.name == "mistral" else None
        start = len(held) - len(held.lstrip(" \n\t;"))
        try:
            value, end = _DECODER.raw_decode(held, named.end() if named else start)
        except json.JSONDecodeError:
            rest = held.strip(" \n\t;")
            if rest and self._block and not rest.startswith(("{", "[")):
                self._in_call, self._held = False, rest  # text after the calls: shown, not lost
            elif final and not rest:
                self._in_call, self._held = False, ""
            elif final and held.strip().endswith(("}", "]")):
                self._take(held, self._raw + held, found)  # complete but malformed: says why
            return
        self._raw += held[:end]
        self._held = held[end:]
        self._found({"name": named[1], "arguments": value} if named else value, found)
        self._block += 1
        if not self._held.strip() and not final:
            return  # the answer may still go on with another call
        if fmt.name == "llama3" and self._held.lstrip().startswith(";"):
            return  # another call follows
        self._in_call, self._block = False, 0
        self._held = self._held.lstrip() if self._held.strip() else ""

    def _take(self, body: str, raw: str, found: _Found) -> None:
        """Parse the complete JSON `body` of one call (or a list of them); `ToolCallError` if it is not one."""
        text = body.strip()
        try:
            value, end = _DECODER.raw_decode(text)
        except json.JSONDecodeError as error:
            message = f"the model's tool call is not valid JSON ({error.msg} at {error.pos})"
            raise ToolCallError(message, raw=raw) from None
        if text[end:].strip():
            raise ToolCallError("the model's tool call has text after its JSON", raw=raw)
        self._raw = raw
        self._found(value, found)

    def _found(self, value: Any, found: _Found) -> None:
        raw = self._raw
        for call in _calls_of(value, raw, self.format.arguments_key):
            if isinstance(call, str):  # llama.cpp's generic {"response": ...}: text after all
                found.text += call
            else:
                found.calls.append(call)
        self._raw, self._after_call = "", True


def _calls_of(value: Any, raw: str, key: str) -> list[ToolCall | str]:
    """The calls a parsed JSON value holds."""
    if isinstance(value, list):
        if not value:
            raise ToolCallError("the model's tool call list is empty", raw=raw)
        return [c for v in value for c in _calls_of(v, raw, key)]
    if not isinstance(value, Mapping):
        raise ToolCallError(f"the model's tool call is a JSON {type(value).__name__}, not an object", raw=raw)
    if "tool_calls" in value and "name" not in value:
        return _calls_of(value["tool_calls"], raw, key)
    if "tool_call" in value and "name" not in value:
        return _calls_of(value["tool_call"], raw, key)
    if "response" in value and "name" not in value and isinstance(value["response"], str):
        return [value["response"]]
    function = value.get("function")
    inner: Mapping[str, Any] = function if isinstance(function, Mapping) else value
    name = inner.get("name")
    if not isinstance(name, str) or not name:
        raise ToolCallError("the model's tool call names no tool (no 'name')", raw=raw)
    arguments: Any = next((inner[k] for k in (key, "arguments", "parameters") if k in inner), {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as error:
            raise ToolCallError(f"{name}'s arguments are not valid JSON ({error.msg})", raw=raw, name=name) from None
    if not isinstance(arguments, dict):
        raise ToolCallError(f"{name}'s arguments are not a JSON object", raw=raw, name=name)
    ident = value.get("id")
    return [ToolCall(ident if isinstance(ident, str) and ident else new_call_id(), name, arguments)]


def _partial_suffix(text: str, marker: str) -> int:
    """The length of the longest end of `text` that is a beginning of `marker` (to hold back)."""
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:n]):
            return n
    return 0


def parse_tool_calls(fmt: ToolFormat | str, text: str, finish_reason: str = "stop") -> tuple[str, list[ToolCall]]:
    """A whole answer's text and calls, in format `fmt` (`hermes`, `llama3`, `mistral` or `generic`)."""
    reader = ToolCallReader(fmt)
    shown, calls = reader.feed(text)
    rest, more = reader.finish(finish_reason)
    return shown + rest, calls + more
