"""Server-sent events, read strictly: each event's `data`, with comments skipped and anything else refused.

OpenAI-compatible servers stream `data: {json}` events separated by blank lines and end with `data: [DONE]`;
llama-server sends `:` comment lines as keep-alives during a long prompt. A line that is no SSE field is a broken
or foreign stream (an HTML error page, a proxy's text), raised as `MalformedResponseError`, never skipped.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from llmclient.errors import MalformedResponseError

__all__ = ["DONE", "sse_data"]

DONE = "[DONE]"
"""The data of the event that ends an OpenAI stream."""

_FIELDS = frozenset({"data", "event", "id", "retry"})


async def sse_data(lines: AsyncIterator[str], url: str) -> AsyncGenerator[str, None]:
    """The data of each event in `lines` (one text line each, without its line ending), up to `[DONE]` or the end.

    Multi-line data is joined with newlines, as the SSE specification says; `event`, `id` and `retry` fields are
    accepted and ignored. Raises `MalformedResponseError` for a line that is not an SSE field or comment."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                payload, data = "\n".join(data), []
                if payload == DONE:
                    return
                yield payload
            continue
        if line.startswith(":"):  # a comment: llama-server's keep-alive while it reads a long prompt
            continue
        name, colon, value = line.partition(":")
        if not colon or name not in _FIELDS:
            raise MalformedResponseError(
                f"{url} sent {line[:80]!r} in its event stream, which is no server-sent event; is this an "
                "OpenAI-compatible API?",
                url=url,
            )
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data and (payload := "\n".join(data)) != DONE:  # the last event, without its blank line
        yield payload
