"""The OpenAI wire format: a `GenerateRequest` as a request body, and stream chunks and error bodies read back.

What the servers add beyond OpenAI's shape is read where it helps and never required: llama-server's `timings`
(`cache_n`: prompt tokens served from its cache), `top_k`, `min_p` and `repeat_penalty` (vLLM and SGLang name the
last `repetition_penalty`; both names are sent).
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmclient.backends import GenerateRequest
from llmclient.errors import MalformedResponseError, ServerError, UnsupportedFeatureError
from llmclient.types import Usage

__all__ = ["Chunk", "ToolCallParts", "error_message", "parse_chunk", "request_body", "retry_after"]

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
_PASSED = ("temperature", "top_p", "top_k", "min_p", "seed", "max_tokens")


def request_body(request: GenerateRequest, model: str, extra: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The path and JSON body for `request`: always streamed, with usage in the last chunk.

    `extra` (the builder's `extra_body`) comes first, so a request's own values win. Raises
    `UnsupportedFeatureError` for a constraint servers cannot take (regex, choices, a grammar) or a constrained raw
    prompt, before anything is sent."""
    body: dict[str, Any] = {**extra, "model": model, "stream": True, "stream_options": {"include_usage": True}}
    if request.messages is not None:
        path = CHAT_PATH
        body["messages"] = [dict(m) for m in request.messages]
    else:
        path = COMPLETIONS_PATH
        body["prompt"] = request.prompt
    settings = request.sampling.settings()
    body.update({name: settings[name] for name in _PASSED if name in settings})
    if "repeat_penalty" in settings:
        body["repeat_penalty"] = body["repetition_penalty"] = settings["repeat_penalty"]
    if "stop" in settings:
        body["stop"] = list(settings["stop"])
    if request.tools:
        body["tools"] = [dict(t) for t in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = request.tool_choice
        if not request.parallel_tool_calls:
            body["parallel_tool_calls"] = False
    constraint = request.constraint
    if constraint is not None:
        if constraint.kind not in ("json_schema", "json_object"):
            raise UnsupportedFeatureError(
                f"OpenAI-compatible servers take JSON Schemas, not {constraint.kind} constraints; give schema= (a "
                "type, a JSON Schema) or response_format= instead, or use the llama.cpp engine for regex=, "
                "choices= and grammar=",
                feature=f"structured_output:{constraint.kind}",
            )
        if path == COMPLETIONS_PATH:
            raise UnsupportedFeatureError(
                "OpenAI-compatible servers hold chat answers to a schema, not raw completions; use chat() with schema=",
                feature="structured_output:completions",
            )
        if constraint.kind == "json_object":
            body["response_format"] = {"type": "json_object"}
        else:
            schema = {"name": "answer", "schema": constraint.json_schema, "strict": True}
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
    return path, body


@dataclass
class ToolCallParts:
    """Tool calls assembled from a stream's `delta.tool_calls` fragments, by their index (OpenAI's shape)."""

    calls: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add(self, fragments: Any) -> None:
        """Append one chunk's fragments: the id and name arrive once, the arguments in pieces."""
        for fragment in fragments if isinstance(fragments, list) else ():
            if not isinstance(fragment, Mapping):
                continue
            call = self.calls.setdefault(
                int(fragment.get("index", len(self.calls))),
                {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
            )
            call["id"] = fragment.get("id") or call["id"]
            function = fragment.get("function")
            if isinstance(function, Mapping):
                call["function"]["name"] += function.get("name") or ""
                call["function"]["arguments"] += function.get("arguments") or ""

    def done(self) -> list[dict[str, Any]]:
        """The calls in index order."""
        return [self.calls[i] for i in sorted(self.calls)]


@dataclass(frozen=True)
class Chunk:
    """What one stream event says."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: Any = None
    """The chunk's `delta.tool_calls` fragments, as sent."""
    tokens_per_second: float | None = None
    """llama-server's `timings.predicted_per_second`, on its last chunk."""


def parse_chunk(payload: str, url: str) -> Chunk:
    """One event's data as a `Chunk`; `ServerError` for an error event, `MalformedResponseError` for anything that
    is not a completion chunk."""
    try:
        event = json.loads(payload)
    except json.JSONDecodeError as error:
        raise MalformedResponseError(
            f"{url} sent an event that is not JSON ({error.msg}): {payload[:120]!r}", url=url
        ) from None
    if not isinstance(event, dict):
        raise MalformedResponseError(f"{url} sent an event that is not a JSON object: {payload[:120]!r}", url=url)
    if "error" in event:
        error_field = event["error"]
        code = error_field.get("code") if isinstance(error_field, Mapping) else None
        raise ServerError(
            f"{url} reported an error in its stream: {error_message(event)}",
            url=url,
            status=code if isinstance(code, int) else None,
            body=payload[:4096],
        )
    choices = event.get("choices")
    try:
        usage = _usage(event)
    except (TypeError, ValueError):
        raise MalformedResponseError(f"{url} sent usage that is not token counts: {payload[:120]!r}", url=url) from None
    if not isinstance(choices, list) or (not choices and usage is None):
        raise MalformedResponseError(f"{url} sent a chunk without choices: {payload[:120]!r}", url=url)
    text, reason, tool_calls = "", None, None
    if choices:
        choice = choices[0]
        if not isinstance(choice, Mapping):
            raise MalformedResponseError(f"{url} sent a choice that is not an object: {payload[:120]!r}", url=url)
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, Mapping) else choice.get("text")
        if content is not None and not isinstance(content, str):
            raise MalformedResponseError(f"{url} sent text that is not a string: {payload[:120]!r}", url=url)
        text = content or ""
        reason = choice.get("finish_reason") or None
        tool_calls = delta.get("tool_calls") if isinstance(delta, Mapping) else None
    timings = event.get("timings")
    rate = timings.get("predicted_per_second") if isinstance(timings, Mapping) else None
    return Chunk(text, reason, usage, tool_calls, float(rate) if isinstance(rate, int | float) else None)


def _usage(event: Mapping[str, Any]) -> Usage | None:
    usage = event.get("usage")
    if not isinstance(usage, Mapping):
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    timings = event.get("timings")
    if cached is None and isinstance(timings, Mapping):
        cached = timings.get("cache_n")  # llama-server: prompt tokens reused from the slot's cache
    return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), int(cached or 0))


def error_message(body: Any) -> str:
    """The server's own words from an error body (OpenAI's `{"error": {"message"}}`, FastAPI's `detail`, or
    text), cut to a line's length."""
    if isinstance(body, (bytes, str)):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            return text.strip()[:300] or "(no message)"
    if isinstance(body, Mapping):
        for key in ("error", "detail", "message"):
            value = body.get(key)
            if isinstance(value, Mapping):
                return str(value.get("message") or value)[:300]
            if value:
                return str(value)[:300]
    return str(body)[:300]


def retry_after(value: str | None) -> float | None:
    """A `Retry-After` header in seconds (a number or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
