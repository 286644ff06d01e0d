"""`LlmClient`: the async facade over any `Engine`, and `SyncLlmClient`, its twin for scripts.

The client checks a request once (messages, sampling, what the engine can do), applies its defaults and hands the
engine a `GenerateRequest`; it never blocks the event loop. How many requests run at once and in what order is
the engine's (llama.cpp: the plan's `parallel`, first come first served); the client refuses one more than
`max_queue` waiting at once. Leaving a `stream` early, or cancelling the task awaiting `chat`, stops the
generation at the next step.

`LlmClient.llama_cpp()` starts a builder; this module adds `init()` to the builder's configuration (builder.py
never imports the client, so the data flows one way: configuration -> plan -> engine -> client).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import anyio
import anyio.from_thread
from typing_extensions import Unpack

from llmclient.backends import Capabilities, Engine, GenerateRequest, Piece
from llmclient.builder import LlamaCppConfig
from llmclient.chat.messages import Messages, normalize_messages
from llmclient.embeddings import Embeddings, SyncEmbeddings
from llmclient.errors import (
    BusyError,
    ClientClosedError,
    InvalidRequestError,
    InvalidSettingError,
    UnsupportedFeatureError,
)
from llmclient.sampling import Sampling, SamplingOptions
from llmclient.structured import ConstraintOptions, constraint_from
from llmclient.types import ChatResult, Chunk, Plan, Timings, Usage
from llmclient.workflows import Decision, Workflows

__all__ = ["LlamaCppBuilder", "LlmClient", "Messages", "RequestOptions", "SyncLlmClient"]

Tools = Sequence[Mapping[str, Any]] | None
_CONSTRAINTS = frozenset(ConstraintOptions.__annotations__)


class RequestOptions(SamplingOptions, ConstraintOptions, total=False):
    """The keyword options of `chat`, `complete`, `ask` and `stream`: sampling (`Sampling`'s fields) and at most
    one constraint on the answer's shape (`schema`, `response_format`, `regex`, `choices`, `grammar`)."""


class LlmClient(Workflows, Embeddings):
    """A model ready to answer, over any engine: `await LlmClient.llama_cpp().smollm2_135m_instruct().init()`, or
    `LlmClient(engine)` for an engine of your own (see `llmclient.backends.Engine`)."""

    def __init__(
        self,
        engine: Engine,
        *,
        defaults: Sampling | None = None,
        system_prompt: str | None = None,
        max_queue: int | None = None,
        plan: Plan | None = None,
        embed_prefixes: Mapping[str, str] | None = None,
    ) -> None:
        """A client over `engine`, which it closes on `close()`.

        `defaults`: sampling for requests that do not set a field; `system_prompt`: put first in every chat that
        has no system message; `max_queue`: how many requests may wait for a place among those the engine runs at
        once (beyond it, `BusyError` at once; None: no limit); `embed_prefixes`: what `embed(kind=...)` puts before
        each text, by kind (`{"query": "search_query: ", "document": "search_document: "}`)."""
        if max_queue is not None and (isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 0):
            raise InvalidSettingError(f"max_queue must be a whole number >= 0 or None, got {max_queue!r}")
        self.engine = engine
        self.defaults = defaults if defaults is not None else Sampling()
        self.system_prompt = system_prompt
        self.max_queue = max_queue
        self.plan = plan
        """How the model was sized to this machine (None for an engine given directly)."""
        self.embed_prefixes: Mapping[str, str] = dict(embed_prefixes or {})  # what embed(kind=...) puts first
        self._in_flight = 0
        self._closed = False

    @staticmethod
    def llama_cpp() -> LlamaCppBuilder:
        """A builder for a llama.cpp model: `LlmClient.llama_cpp().mistral7b_instruct_v0_3().init()`."""
        return LlamaCppBuilder()

    @classmethod
    async def from_path(cls, path: str | os.PathLike[str], **settings: Any) -> LlmClient:
        """A client for a local GGUF file, sized to this machine: the builder's `.local(path)` then `init()`."""
        return await LlamaCppBuilder.for_file(path, **settings).init()

    @property
    def capabilities(self) -> Capabilities:
        """What the engine supports; asking for more raises `UnsupportedFeatureError`."""
        return self.engine.capabilities

    # --- requests ---------------------------------------------------------------------------------

    def _request(
        self, messages: Messages | None, prompt: str | None, tools: Tools, options: RequestOptions
    ) -> GenerateRequest:
        asked: dict[str, Any] = dict(options)
        shape = {k: asked.pop(k) for k in list(asked) if k in _CONSTRAINTS}
        sampling = self.defaults.merged(Sampling.of(asked))
        chat = normalize_messages(messages, self.system_prompt) if messages is not None else None
        if not self.capabilities.generation:
            raise UnsupportedFeatureError(
                f"this client's model ({type(self.engine).__name__}) is an embedding model: it turns texts into "
                "vectors (client.embed) and generates no text; load a chat model for chat",
                feature="generation",
            )
        if prompt is not None and not prompt:
            raise InvalidRequestError("the prompt is empty: give some text to continue")
        if tools and not self.capabilities.tools:
            raise UnsupportedFeatureError(
                f"this client's engine ({type(self.engine).__name__}) does not take tools; leave `tools` out or use "
                "an engine whose capabilities include tools",
                feature="tools",
            )
        constraint = constraint_from(**shape)
        if constraint is not None and not self.capabilities.structured_output:
            raise UnsupportedFeatureError(
                f"this client's engine ({type(self.engine).__name__}) does not enforce structured output; leave out "
                f"{', '.join(shape)} or use an engine whose capabilities include structured_output",
                feature="structured_output",
            )
        return GenerateRequest(chat, prompt, sampling, tuple(dict(t) for t in tools or ()), constraint)

    def _admit(self) -> None:
        if self._closed:
            raise ClientClosedError("the client is closed; create a new one with init()")
        if self.max_queue is None:
            return
        waiting = self._in_flight - (self.capabilities.parallel or 0)
        if waiting >= self.max_queue:
            raise BusyError(
                f"{self.max_queue} requests are already waiting for this model (max_queue); try again later, or "
                "raise the limit with .max_queue(n)"
            )

    async def _pieces(self, request: GenerateRequest, timeout: float | None) -> AsyncIterator[tuple[Piece, float]]:
        """The engine's pieces with the time each arrived; past `timeout` seconds from now, `TimeoutError`."""
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        self._admit()
        self._in_flight += 1
        pieces = self.engine.generate(request)
        try:
            if timeout is None:  # no deadline scope per piece: a stream's tokens cost the loop as little as may be
                async for piece in pieces:
                    yield piece, time.perf_counter()
                    if piece.finish_reason is not None:
                        return
                raise ClientClosedError("the engine stopped without finishing the request")
            while True:
                with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                    try:
                        piece = await pieces.__anext__()
                    except StopAsyncIteration:
                        raise ClientClosedError("the engine stopped without finishing the request") from None
                yield piece, time.perf_counter()
                if piece.finish_reason is not None:
                    return
        finally:
            self._in_flight -= 1
            with anyio.CancelScope(shield=True):  # the engine stops generating for a caller who left
                with contextlib.suppress(Exception):
                    await pieces.aclose()  # type: ignore[attr-defined]

    async def chat(
        self,
        messages: Messages,
        *,
        timeout: float | None = None,
        tools: Tools = None,
        **options: Unpack[RequestOptions],
    ) -> ChatResult:
        """Answer `messages` (a string, or OpenAI-shaped message dicts) with the model's chat template.

        Options (`Sampling`'s fields): max_tokens, temperature, top_p, top_k, min_p, repeat_penalty, stop, seed;
        an unset one takes the client's default, None the engine's. At most one of `schema=` (a JSON Schema dict,
        pydantic model, dataclass, TypedDict or a type such as `list[str]`), `response_format=` (OpenAI's
        shapes), `regex=`, `choices=` or `grammar=` (llguidance's Lark) holds the answer to that shape, and the
        result's `.parsed` is its value. `timeout`: seconds for the whole request, queue included; past it,
        `TimeoutError` and the generation stops. `tools` needs an engine that takes them (`capabilities.tools`)."""
        return await self._run(self._request(messages, None, tools, options), timeout)

    async def complete(
        self, prompt: str, *, timeout: float | None = None, **options: Unpack[RequestOptions]
    ) -> ChatResult:
        """Continue raw `prompt` text (no chat template); the same options as `chat`."""
        return await self._run(self._request(None, prompt, None, options), timeout)

    async def ask(
        self,
        question: str,
        *,
        system: str | None = None,
        context: str | None = None,
        timeout: float | None = None,
        **options: Unpack[RequestOptions],
    ) -> str:
        """The answer's text alone: `await client.ask("What is Rust?")`; `system` replaces the client's system
        prompt for this question, `context` is text the question is about (put before it)."""
        content = f"Context:\n{context}\n\n{question}" if context else question
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system is not None else []
        return (await self.chat([*messages, {"role": "user", "content": content}], timeout=timeout, **options)).text

    async def stream(
        self,
        messages: Messages,
        *,
        timeout: float | None = None,
        tools: Tools = None,
        **options: Unpack[RequestOptions],
    ) -> AsyncGenerator[Chunk, None]:
        """The answer piece by piece: `async for chunk in client.stream(...)`. Leaving the loop early cancels;
        `timeout` bounds the whole stream (then `TimeoutError`)."""
        request = self._request(messages, None, tools, options)
        async for piece, _ in self._pieces(request, timeout):
            if piece.finish_reason is not None:
                yield Chunk(piece.text, piece.finish_reason, piece.usage or Usage(0, 0))
            elif piece.text:
                yield Chunk(piece.text)

    async def _run(self, request: GenerateRequest, timeout: float | None) -> ChatResult:
        began = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        async for piece, at in self._pieces(request, timeout):
            if piece.text:
                first = first if first is not None else at
                parts.append(piece.text)
            if piece.finish_reason is not None:
                usage = piece.usage or Usage(0, 0)
                timings = piece.timings or _measured(began, first, at, usage)
                return ChatResult("".join(parts), piece.finish_reason, usage, timings, request.constraint)
        raise ClientClosedError("the engine stopped without finishing the request")

    # --- lifecycle --------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the engine (for llama.cpp: free the model); requests still queued get `ClientClosedError`."""
        self._closed = True
        await self.engine.aclose()

    async def __aenter__(self) -> LlmClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _measured(began: float, first: float | None, end: float, usage: Usage) -> Timings:
    """Timings as the client saw them, for an engine that reports none (no queue time known)."""
    decode = end - (first or end)
    produced = usage.completion_tokens
    rate = (produced - 1) / decode if decode > 0 and produced > 1 else 0.0
    return Timings(0.0, (first or end) - began, end - began, rate)


class LlamaCppBuilder(LlamaCppConfig):
    """Configuration for a llama.cpp model, then `plan()`, `init()` or `init_sync()`; immutable (each method
    returns a changed copy). Start it with `LlmClient.llama_cpp()`."""

    async def init(self) -> LlmClient:
        """Plan, fetch the chosen file (verified, into the cache) and load it: the client, ready to answer."""
        loaded = await self.load()
        return LlmClient(
            loaded.engine,
            defaults=loaded.defaults,
            system_prompt=loaded.system_prompt,
            max_queue=loaded.max_queue,
            plan=loaded.plan,
            embed_prefixes=loaded.embed_prefixes,
        )

    def init_sync(self) -> SyncLlmClient:
        """`init()` for scripts: a blocking client running on a private event loop thread."""
        portal_cm = anyio.from_thread.start_blocking_portal()
        portal = portal_cm.__enter__()
        try:
            client = portal.call(self.init)
        except BaseException:
            portal_cm.__exit__(*sys.exc_info())  # cancels what is still running (Ctrl-C during a download)
            raise
        return SyncLlmClient(portal, portal_cm, client)


class SyncLlmClient(SyncEmbeddings, AbstractContextManager["SyncLlmClient"]):
    """The blocking twin of `LlmClient` for scripts: the same calls, run on a private event loop thread."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, portal_cm: Any, client: LlmClient) -> None:
        """Made by `builder.init_sync()`."""
        self._portal, self._portal_cm = portal, portal_cm
        self.client: LlmClient = client
        self.plan = client.plan
        self._closed = False
        self._reasoning = threading.local()

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], **settings: Any) -> SyncLlmClient:
        """`LlmClient.from_path`, blocking: a client for a local GGUF file, sized to this machine."""
        return LlamaCppBuilder.for_file(path, **settings).init_sync()

    def chat(
        self,
        messages: Messages,
        *,
        timeout: float | None = None,
        tools: Tools = None,
        **options: Unpack[RequestOptions],
    ) -> ChatResult:
        """`LlmClient.chat`, blocking."""
        return self._portal.call(lambda: self.client.chat(messages, timeout=timeout, tools=tools, **options))

    def complete(self, prompt: str, *, timeout: float | None = None, **options: Unpack[RequestOptions]) -> ChatResult:
        """`LlmClient.complete`, blocking."""
        return self._portal.call(lambda: self.client.complete(prompt, timeout=timeout, **options))

    def ask(self, question: str, *, system: str | None = None, context: str | None = None, **options: Any) -> str:
        """`LlmClient.ask`, blocking: the answer's text."""
        return self._portal.call(lambda: self.client.ask(question, system=system, context=context, **options))

    def _typed(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A typed-answer method of the async client, blocking; its reasoning kept for this thread."""

        async def call() -> tuple[Any, str | None]:
            value = await getattr(self.client, method)(*args, **kwargs)
            return value, self.client.last_reasoning  # read in the task that made it

        value, self._reasoning.text = self._portal.call(call)
        return value

    @property
    def last_reasoning(self) -> str | None:
        """The reasoning of this thread's last call with `reason=True`."""
        return getattr(self._reasoning, "text", None)

    def boolean(self, question: str, **kwargs: Any) -> bool | None:
        """`LlmClient.boolean`, blocking."""
        return self._typed("boolean", question, **kwargs)  # type: ignore[no-any-return]

    def integer(self, question: str, **kwargs: Any) -> int | None:
        """`LlmClient.integer`, blocking."""
        return self._typed("integer", question, **kwargs)  # type: ignore[no-any-return]

    def choice(self, question: str, options: Sequence[str], **kwargs: Any) -> str | None:
        """`LlmClient.choice`, blocking."""
        return self._typed("choice", question, options, **kwargs)  # type: ignore[no-any-return]

    def extract(self, instruction: str, text: str, **kwargs: Any) -> list[Any]:
        """`LlmClient.extract`, blocking."""
        return self._typed("extract", instruction, text, **kwargs)  # type: ignore[no-any-return]

    def decide(self, question: str, options: Sequence[str] | type, **kwargs: Any) -> Decision:
        """`LlmClient.decide`, blocking."""
        return self._typed("decide", question, options, **kwargs)  # type: ignore[no-any-return]

    def stream(
        self,
        messages: Messages,
        *,
        timeout: float | None = None,
        tools: Tools = None,
        **options: Unpack[RequestOptions],
    ) -> Iterator[Chunk]:
        """`LlmClient.stream` as a plain iterator."""
        agen = self.client.stream(messages, timeout=timeout, tools=tools, **options)
        try:
            while True:
                try:
                    yield self._portal.call(agen.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            self._portal.call(agen.aclose)

    def close(self) -> None:
        """Free the model and stop the private event loop; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        try:
            self._portal.call(self.client.close)
        finally:
            self._portal_cm.__exit__(None, None, None)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
