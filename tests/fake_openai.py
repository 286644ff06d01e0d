"""A scripted OpenAI-compatible server on 127.0.0.1, a few lines of asyncio: for what a real server will not do
on demand (a 503 with `Retry-After`, a stream cut after two tokens, an event that is not JSON).

Each connection carries one request (`Connection: close`); `chat` decides the answer to
`POST /v1/chat/completions` and `/v1/completions`. `/v1/models`, `/props` and `/health` answer from the
constructor's arguments. Every request is kept (`requests`), and a client leaving in the middle of an answer is
seen (`disconnects`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio


@dataclass
class Request:
    """One request as the fake server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    port: int
    at: float = 0.0


@dataclass
class Out:
    """How a script answers: a status with a body, or an event stream written piece by piece."""

    writer: asyncio.StreamWriter
    left: asyncio.Event = field(default_factory=asyncio.Event)

    async def status(self, code: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        """A whole answer: `body` as JSON (or bytes as they are)."""
        data = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
        lines = [f"HTTP/1.1 {code} X", "Content-Type: application/json", f"Content-Length: {len(data)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()] + ["Connection: close", "", ""]
        self.writer.write("\r\n".join(lines).encode() + data)
        await self.writer.drain()

    async def start(self, content_type: str = "text/event-stream") -> None:
        """The head of a chunked streamed answer."""
        head = ["HTTP/1.1 200 OK", f"Content-Type: {content_type}", "Transfer-Encoding: chunked", "Connection: close"]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await self.writer.drain()

    async def raw(self, text: str) -> None:
        """`text` as one chunk of the body."""
        data = text.encode()
        self.writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await self.writer.drain()

    async def event(self, payload: Any) -> None:
        """One `data:` event (JSON, or a string as it is)."""
        await self.raw(f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n")

    async def end(self) -> None:
        """The body's proper end."""
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()


def chunk(text: str = "", finish: str | None = None, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    """A chat completion chunk."""
    choices = [] if usage is not None and not text and finish is None else [
        {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
    ]  # fmt: skip
    event: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "choices": choices}
    if usage is not None:
        event["usage"] = usage
    return event


async def stream(out: Out, words: Sequence[str], *, delay: float = 0.0, finish: str | None = "stop") -> None:
    """A well-formed answer: each word an event, the finish reason, usage, `[DONE]`."""
    await out.start()
    for word in words:
        await out.event(chunk(word))
        await asyncio.sleep(delay)
    if finish is not None:
        await out.event(chunk(finish=finish))
        await out.event(chunk(usage={"prompt_tokens": 5, "completion_tokens": len(words)}))
    await out.event("[DONE]")
    await out.end()


Script = Callable[[Request, Out], Awaitable[None]]


async def hello(request: Request, out: Out) -> None:
    """The default answer: `Hello there!` in two events."""
    await stream(out, ["Hello", " there!"])


class FakeServer:
    """`async with FakeServer(script) as server:` then `LlmClient.remote(server.url)`."""

    def __init__(
        self,
        chat: Script = hello,
        *,
        models: Sequence[str] = ("fake-model",),
        total_slots: int | None = None,
        health: int = 200,
        api_key: str | None = None,
        port: int = 0,
        supports_tools: bool | None = None,
    ) -> None:
        self.chat = chat
        self.models = list(models)
        self.total_slots = total_slots
        self.health = health
        self.api_key = api_key
        self.supports_tools = supports_tools
        self.requests: list[Request] = []
        self.disconnects = 0
        self.active = 0
        self.peak = 0
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def generations(self) -> list[Request]:
        """The requests for an answer (not the model list, props or health)."""
        return [r for r in self.requests if r.method == "POST"]

    async def __aenter__(self) -> FakeServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:] if ":" in h)}
            data = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(
                method, path, headers, json.loads(data) if data else None, self.port, anyio.current_time()
            )
            self.requests.append(request)
            out = Out(writer)
            watch = asyncio.ensure_future(self._watch(reader, out))
            try:
                await self._answer(request, out)
            except ConnectionError:  # a write found the client gone before the watch did
                self._left(out)
            finally:
                watch.cancel()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _watch(self, reader: asyncio.StreamReader, out: Out) -> None:
        if not await reader.read(1):  # the client closed its side in the middle of the answer
            self._left(out)

    def _left(self, out: Out) -> None:
        if not out.left.is_set():
            self.disconnects += 1
            out.left.set()

    async def _answer(self, request: Request, out: Out) -> None:
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            await out.status(401, {"error": {"message": "Invalid API Key", "type": "authentication_error"}})
        elif request.path == "/v1/models":
            await out.status(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})
        elif request.path == "/props":
            if self.total_slots is None and self.supports_tools is None:
                await out.status(404, {"error": {"message": "File Not Found"}})
            else:
                caps = {} if self.supports_tools is None else {"supports_tools": self.supports_tools}
                await out.status(200, {"total_slots": self.total_slots, "chat_template_caps": caps})
        elif request.path == "/health":
            await out.status(self.health, {"status": "ok" if self.health == 200 else "loading"})
        else:
            self.active += 1
            self.peak = max(self.peak, self.active)
            try:
                await self.chat(request, out)
            finally:
                self.active -= 1
