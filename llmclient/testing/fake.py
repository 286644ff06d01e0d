"""`FakeEngine`: an `Engine` that answers with scripted text, for testing code that uses `LlmClient`.

Like `httpx.MockTransport`: no model, no thread, answers in milliseconds, and every request it received is kept
for the test to look at.

    engine = FakeEngine(["Hello", " there", "!"], delay=0.01)
    async with LlmClient(engine) as client:
        assert (await client.chat("Hi")).text == "Hello there!"
    assert engine.requests[0].messages == ({"role": "user", "content": "Hi"},)

A script may call tools: `FakeEngine([ToolCall("c1", "get_weather", {"city": "Paris"})],
capabilities=Capabilities(tools=True))` answers with that call (checked against the request's tools by the client).
"""

from __future__ import annotations

import collections
import re
from collections.abc import AsyncIterator, Callable, Sequence

import anyio
import anyio.lowlevel

from llmclient.backends import Capabilities, Embedded, EmbedRequest, GenerateRequest, Piece
from llmclient.chat.tools import ToolCall
from llmclient.errors import ClientClosedError, InvalidRequestError
from llmclient.types import Usage

__all__ = ["FakeEngine", "Script"]

Script = str | Sequence[str | BaseException | ToolCall]
"""A reply: a string (streamed word by word) or its pieces in order; an exception among them is raised there, a
`ToolCall` is reported as a call the model made (give the engine `Capabilities(tools=True)`)."""


class FakeEngine:
    """Answers every request with `reply` (or `reply(request)`), `delay` seconds per piece, `parallel` at a time
    and the rest first come first served. Each piece counts as one token for `max_tokens` and the usage; `stop`
    sequences end the answer as a real engine's do."""

    def __init__(
        self,
        reply: Script | Callable[[GenerateRequest], Script] = "Hello! How can I help?",
        *,
        delay: float = 0.0,
        first_delay: float = 0.0,
        parallel: int = 1,
        capabilities: Capabilities | None = None,
        embed_dimension: int = 8,
    ) -> None:
        """`first_delay`: extra seconds before the first piece (the prompt's reading); `capabilities`: what the
        engine claims to support (default: nothing beyond plain generation, `parallel` at once; with
        `embeddings=True` it embeds too, in vectors of `embed_dimension`)."""
        if parallel < 1:
            raise InvalidRequestError(f"parallel must be >= 1, got {parallel}")
        self._reply = reply
        self.delay, self.first_delay, self.parallel = delay, first_delay, parallel
        self._capabilities = capabilities or Capabilities(parallel=parallel)
        self.requests: list[GenerateRequest] = []
        """Every request received, in arrival order."""
        self.started: list[GenerateRequest] = []
        """Requests in the order they began to generate."""
        self.finished: list[tuple[GenerateRequest, str]] = []
        """Requests that ended, with their finish reason (`stop`, `length`, `cancelled`, or `error` where the
        script raised), in the order they ended."""
        self.embed_dimension = embed_dimension
        self.embedded: list[EmbedRequest] = []
        """Every embedding request received, in arrival order."""
        self.closed = False
        self._running = 0
        self._queue: collections.deque[anyio.Event] = collections.deque()

    @property
    def capabilities(self) -> Capabilities:
        """What this engine claims (as given)."""
        return self._capabilities

    @property
    def running(self) -> int:
        """Requests generating now."""
        return self._running

    async def generate(self, request: GenerateRequest) -> AsyncIterator[Piece]:
        """The scripted reply to `request`, after those ahead of it."""
        self._check_open()
        self.requests.append(request)
        await self._take_turn()
        self.started.append(request)
        ended: str | None = None
        try:
            produced, text, reason = 0, "", "stop"
            script = self._reply(request) if callable(self._reply) else self._reply
            pieces = re.findall(r"\s*\S+", script) if isinstance(script, str) else list(script)
            settings = request.sampling.settings()
            limit, stops = settings.get("max_tokens"), settings.get("stop", ())
            await anyio.sleep(self.first_delay)
            for i, piece in enumerate(pieces):
                if i:
                    await anyio.sleep(self.delay)
                if self.closed:
                    reason = "cancelled"
                    break
                if isinstance(piece, BaseException):
                    raise piece
                if isinstance(piece, ToolCall):
                    produced += 1
                    yield Piece("", tool_calls=(piece,))
                    continue
                if limit is not None and produced >= limit:
                    reason = "length"
                    break
                produced += 1
                shown, cut = _until_stop(text, piece, stops)
                text += shown
                if shown:
                    yield Piece(shown)
                if cut:
                    break
            prompt = request.prompt or " ".join(m.get("content") or "" for m in request.messages or ())
            ended = reason
            yield Piece("", reason, Usage(len(prompt.split()), produced))
        except Exception:
            ended = "error"
            raise
        finally:
            self.finished.append((request, ended or "cancelled"))
            self._leave()

    def _check_open(self) -> None:
        if self.closed:
            raise ClientClosedError("the engine is closed")

    async def _take_turn(self) -> None:
        if self._running < self.parallel and not self._queue:
            self._running += 1
            return
        turn = anyio.Event()
        self._queue.append(turn)
        try:
            await turn.wait()  # the one leaving hands its place over (`_leave`), so the count stays right
        except BaseException:
            if turn in self._queue:
                self._queue.remove(turn)
            elif not self.closed:  # handed the place while being cancelled: pass it on
                self._leave()
            raise
        if self.closed:
            raise ClientClosedError("the engine was closed before this request ran")

    def _leave(self) -> None:
        if self._queue:
            self._queue.popleft().set()
        else:
            self._running -= 1

    async def embed(self, request: EmbedRequest) -> Embedded:
        """Vectors of `embed_dimension` for an engine whose capabilities say `embeddings=True`: each text's the same
        every time (seeded by its bytes), another text's unrelated; the request is kept in `embedded`."""
        self._check_open()
        import hashlib

        import numpy

        self.embedded.append(request)
        rows = [
            numpy.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))
            .standard_normal(self.embed_dimension)
            .astype(numpy.float32)
            for text in request.texts
        ]
        vectors = numpy.stack(rows) if rows else numpy.zeros((0, self.embed_dimension), numpy.float32)
        await anyio.lowlevel.checkpoint()
        return Embedded(vectors, sum(len(text.split()) for text in request.texts))

    async def aclose(self) -> None:
        """Close: queued requests fail with `ClientClosedError`, running ones end as `cancelled` at their next
        piece."""
        self.closed = True
        waiting, self._queue = list(self._queue), collections.deque()
        for turn in waiting:
            turn.set()
        await anyio.lowlevel.checkpoint()


def _until_stop(text: str, piece: str, stops: Sequence[str]) -> tuple[str, bool]:
    """The part of `piece` to show after `text`, and whether a stop sequence ended the answer in it."""
    joined = text + piece
    at = min((i for i in (joined.find(s) for s in stops if s) if i >= 0), default=-1)
    if at < 0:
        return piece, False
    return joined[len(text) : max(at, len(text))], True
