"""`LlmClient`: the async facade over any `Engine`, and `SyncLlmClient`, its twin for scripts.

The client checks a request once (messages, sampling, what the engine can do), applies its defaults and hands the
engine a `GenerateRequest`; it never blocks the event loop. How many requests run at once and in what order is
the engine's (llama.cpp: the plan's `parallel`, first come first served); the client refuses one more than
`max_queue` waiting at once. Leaving a `stream` early, or cancelling the task awaiting `chat`, stops the
generation at the next step. `LlmClient.llama_cpp()`, `LlmClient.mistral_rs()` and `LlmClient.remote(url)` start
builders; this module adds `init()` to their configuration (which never imports the client: configuration -> plan
-> engine -> client).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import anyio
import anyio.from_thread
from typing_extensions import Unpack

from llmclient._request import Tools, build_request
from llmclient.backends import Capabilities, Engine, GenerateRequest, Piece
from llmclient.backends.mistralrs import require_mistralrs
from llmclient.backends.remote._config import RemoteConfig
from llmclient.builder import LlamaCppConfig, Loaded, MistralRsConfig
from llmclient.chat.loop import ToolLoop, checked_call, tool_call_delta
from llmclient.chat.messages import Messages
from llmclient.chat.tools import ToolCall, ToolOptions, tools_from
from llmclient.embeddings import Embeddings, SyncEmbeddings
from llmclient.errors import (
    BusyError,
    ClientClosedError,
    InvalidSettingError,
)
from llmclient.sampling import Sampling, SamplingOptions
from llmclient.structured import ConstraintOptions
from llmclient.types import ChatResult, Chunk, Plan, Timings, Usage
from llmclient.workflows import Workflows
from llmclient.workflows._sync import SyncWorkflows

__all__ = [
    "LlamaCppBuilder", "LlmClient", "Messages", "MistralRsBuilder", "RemoteBuilder", "RequestOptions", "SyncLlmClient"
]  # fmt: skip


class RequestOptions(SamplingOptions, ConstraintOptions, ToolOptions, total=False):
    """The keyword options of `chat`, `complete`, `ask` and `stream`: sampling (`Sampling`'s fields), at most
    one constraint on the answer's shape (`schema`, `response_format`, `regex`, `choices`, `grammar`), and how the
    model may call `tools` (`tool_choice`, `parallel_tool_calls`)."""


class LlmClient(Workflows, ToolLoop, Embeddings):
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

    @staticmethod
    def mistral_rs() -> MistralRsBuilder:
        """A builder for a mistral.rs model (`pip install "llmclient[mistralrs]"`, else `MissingDependencyError`)."""
        require_mistralrs()
        return MistralRsBuilder()

    @staticmethod
    def remote(base_url: str | Sequence[str], *, model: str | None = None, api_key: str | None = None) -> RemoteBuilder:
        """A builder for OpenAI-compatible servers (vLLM, SGLang, llama-server, Ollama), one URL or replicas to route
        across; `model`: default, the one they list; `api_key`: default `$LLMCLIENT_API_KEY`, sent only to them."""
        return RemoteBuilder.to(base_url, model=model, api_key=api_key)

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
        return build_request(self.engine, self.defaults, self.system_prompt, messages, prompt, tools, dict(options))

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

    async def _pieces(self, request: GenerateRequest, timeout: float | None) -> AsyncGenerator[tuple[Piece, float]]:
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
        `TimeoutError` and the generation stops.

        `tools`: Python functions (their schema from the signature and docstring) or OpenAI tool dicts, on an engine
        that takes them (`capabilities.tools`); the result's `tool_calls` are the calls the model made, checked
        against each tool's schema, with `finish_reason="tool_calls"`. `tool_choice`: `auto` (text or calls),
        `none`, `required` (calls from the first token) or `{"type": "function", "function": {"name": ...}}`
        (exactly one call of it); `parallel_tool_calls=False`: at most one call a turn."""
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
        """The answer piece by piece: `async for chunk in client.stream(...)`. Leaving the loop early cancels: at the
        event loop's next turn, when Python closes the stream, or at once inside
        `contextlib.aclosing(client.stream(...))`. `timeout` bounds the whole stream (then `TimeoutError`). With
        `tools`, a chunk's `tool_calls` holds each call as an OpenAI delta once it is complete and checked; text
        never holds a call's markup."""
        request = self._request(messages, None, tools, options)
        made, count = tools_from(request.tools), 0
        async with contextlib.aclosing(self._pieces(request, timeout)) as pieces:
            async for piece, _ in pieces:
                deltas = []
                for call in piece.tool_calls:
                    deltas.append(tool_call_delta(count, checked_call(call, made)))
                    count += 1
                if piece.finish_reason is not None:
                    reason = "tool_calls" if count and piece.finish_reason == "stop" else piece.finish_reason
                    yield Chunk(piece.text, reason, piece.usage or Usage(0, 0), tuple(deltas))
                elif piece.text or deltas:
                    yield Chunk(piece.text, tool_calls=tuple(deltas))

    async def _run(self, request: GenerateRequest, timeout: float | None) -> ChatResult:
        began = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        calls: list[ToolCall] = []
        made = tools_from(request.tools)
        # closed before returning, not when collected: the request has left the queue when its answer comes back
        async with contextlib.aclosing(self._pieces(request, timeout)) as pieces:
            async for piece, at in pieces:
                if piece.text:
                    first = first if first is not None else at
                    parts.append(piece.text)
                calls += [checked_call(call, made) for call in piece.tool_calls]
                if piece.finish_reason is not None:
                    usage = piece.usage or Usage(0, 0)
                    timings = piece.timings or Timings.measured(began, first, at, usage)
                    reason = "tool_calls" if calls and piece.finish_reason == "stop" else piece.finish_reason
                    return ChatResult("".join(parts), reason, usage, timings, request.constraint, calls)
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


class _InitSync:
    """`init_sync()` from a builder's `init()`."""

    init: Callable[[], Awaitable[LlmClient]]

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


class _ModelInit(_InitSync):
    """`init()` over a model configuration's `load()` (plan, fetch, load)."""

    load: Callable[[], Awaitable[Loaded]]

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


class LlamaCppBuilder(LlamaCppConfig, _ModelInit):
    """A llama.cpp model's configuration, then `plan()`, `init()` or `init_sync()`: `LlmClient.llama_cpp()`."""


class MistralRsBuilder(MistralRsConfig, _ModelInit):
    """A mistral.rs model's configuration, then `plan()`, `init()` or `init_sync()`: `LlmClient.mistral_rs()`."""


class RemoteBuilder(RemoteConfig, _InitSync):
    """Configuration for OpenAI-compatible servers, then `init()` or `init_sync()`: `LlmClient.remote(url)`."""

    async def init(self) -> LlmClient:
        """Ask the servers for their models (and slots): the client over them, ready to answer."""
        engine = await self.load()
        return LlmClient(engine, defaults=self._sampling, system_prompt=self._system_prompt, max_queue=self._max_queue,
                         embed_prefixes=dict(self._embed_prefixes or ()))  # fmt: skip


class SyncLlmClient(SyncWorkflows, SyncEmbeddings, AbstractContextManager["SyncLlmClient"]):
    """The blocking twin of `LlmClient` for scripts: the same calls, run on a private event loop thread."""

    client: LlmClient

    def __init__(self, portal: anyio.from_thread.BlockingPortal, portal_cm: Any, client: LlmClient) -> None:
        """Made by `builder.init_sync()`."""
        self._portal, self._portal_cm, self.client = portal, portal_cm, client
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

    def run_tools(self, messages: Messages, tools: Sequence[Any], **kwargs: Any) -> ChatResult:
        """`LlmClient.run_tools`, blocking (its sync tools run in worker threads, its async ones on the client's
        private event loop)."""
        return self._portal.call(lambda: self.client.run_tools(messages, tools, **kwargs))

    def complete(self, prompt: str, *, timeout: float | None = None, **options: Unpack[RequestOptions]) -> ChatResult:
        """`LlmClient.complete`, blocking."""
        return self._portal.call(lambda: self.client.complete(prompt, timeout=timeout, **options))

    def ask(self, question: str, *, system: str | None = None, context: str | None = None, **options: Any) -> str:
        """`LlmClient.ask`, blocking: the answer's text."""
        return self._portal.call(lambda: self.client.ask(question, system=system, context=context, **options))

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
