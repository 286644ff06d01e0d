"""`LlmClient`: the async facade over a loaded model, and `SyncLlmClient`, its twin for scripts.

Every call hands the work to the process's decode thread and awaits the answer, so the event loop never blocks.
Up to the plan's `parallel` requests decode together; more wait and start in arrival order. Leaving a `stream`
early, or cancelling the task awaiting `chat`, stops the generation at the next step.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread

from llmclient._worker import Job, Worker, loop_sender
from llmclient.backends import GenerateRequest, Piece
from llmclient.errors import BusyError, ClientClosedError
from llmclient.types import ChatResult, Chunk, Plan, Timings, Usage

if TYPE_CHECKING:
    from llmclient.builder import LlamaCppBuilder

__all__ = ["LlmClient", "Messages", "SyncLlmClient"]

Messages = str | Sequence[Mapping[str, str]]
_ROLES = frozenset({"system", "user", "assistant", "tool"})
_SAMPLING = ("max_tokens", "temperature", "top_p", "top_k", "min_p", "repeat_penalty", "stop", "seed")


def _messages(messages: Messages, system_prompt: str | None) -> list[dict[str, str]]:
    if isinstance(messages, str):
        items: list[dict[str, str]] = [{"role": "user", "content": messages}]
    elif isinstance(messages, Mapping):
        raise TypeError("messages must be a string or a list of {'role', 'content'} dicts; wrap a single one in [ ]")
    else:
        items = []
        for i, message in enumerate(messages):
            role, content = message.get("role"), message.get("content")
            if role not in _ROLES:
                raise ValueError(f"message {i} has role {role!r}; use one of {', '.join(sorted(_ROLES))}")
            if not isinstance(content, str):
                raise TypeError(f"message {i} has content of type {type(content).__name__}; it must be a str")
            items.append({"role": role, "content": content})
    if not items:
        raise ValueError("no messages: give a prompt string or a list of {'role', 'content'} messages")
    if system_prompt is not None and items[0]["role"] != "system":
        items.insert(0, {"role": "system", "content": system_prompt})
    return items


_RANGES = {"temperature": (0.0, 5.0), "top_p": (0.0, 1.0), "min_p": (0.0, 1.0), "repeat_penalty": (0.01, 10.0)}


def _validate(sampling: Mapping[str, Any]) -> None:
    """Reject sampling values llama.cpp would misbehave on, naming the value and the allowed range."""
    for name, (low, high) in _RANGES.items():
        value = sampling.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high
        ):
            raise ValueError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    for name, low in (("max_tokens", 1), ("top_k", 0)):
        value = sampling.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    seed = sampling.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be a whole number, got {seed!r}")
    stop = sampling.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list | tuple) and all(isinstance(s, str) for s in stop))
    ):
        raise ValueError(f"stop must be a string or a list of strings, got {stop!r}")


class LlmClient:
    """A local model, ready to answer. Create it with `LlmClient.llama_cpp()...init()` or `from_path`."""

    def __init__(
        self,
        worker: Worker,
        *,
        plan: Plan | None = None,
        defaults: Mapping[str, Any] | None = None,
        system_prompt: str | None = None,
        max_queue: int | None = None,
    ) -> None:
        """Used by the builder; call `init()` on a builder instead."""
        self.max_queue = max_queue
        """How many requests may wait for a place among those running; beyond it, `BusyError` at once (None: no
        limit)."""
        self._worker = worker
        self.plan = plan
        """How the model was sized to this machine (None for `from_path` without planning)."""
        self.defaults = dict(defaults or {})
        self.system_prompt = system_prompt

    @staticmethod
    def llama_cpp() -> LlamaCppBuilder:
        """A builder for a llama.cpp model: `LlmClient.llama_cpp().mistral7b_instruct_v0_3().init()`."""
        from llmclient.builder import LlamaCppBuilder

        return LlamaCppBuilder()

    @classmethod
    async def from_path(cls, path: str | os.PathLike[str], **settings: Any) -> LlmClient:
        """A client for a local GGUF file, sized to this machine: the builder's `.local(path)` then `init()`."""
        from llmclient.builder import LlamaCppBuilder

        client: LlmClient = await LlamaCppBuilder.for_file(path, **settings).init()
        return client

    # --- requests ---------------------------------------------------------------------------------

    def _request(self, messages: Messages | None, prompt: str | None, options: dict[str, Any]) -> GenerateRequest:
        sampling = {k: v for k, v in {**self.defaults, **options}.items() if v is not None}
        unknown = set(sampling) - set(_SAMPLING)
        if unknown:
            raise TypeError(f"unknown sampling option(s) {sorted(unknown)}; known: {', '.join(_SAMPLING)}")
        _validate(sampling)
        chat = _messages(messages, self.system_prompt) if messages is not None else None
        if prompt is not None and not prompt:
            raise ValueError("the prompt is empty: give some text to continue")
        return GenerateRequest(chat, prompt, sampling)

    async def _pieces(
        self, request: GenerateRequest, job_out: list[Job] | None = None
    ) -> AsyncIterator[tuple[Piece, float]]:
        if self._worker.closed:
            raise ClientClosedError("the client is closed; create a new one with init()")
        send, receive = anyio.create_memory_object_stream[Piece | BaseException](math.inf)
        cancel = threading.Event()

        def offer(item: Piece | BaseException) -> None:
            # the caller may have stopped listening; the cancel flag then stops the worker at the next token
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                send.send_nowait(item)

        if self.max_queue is not None and self._worker.waiting() >= self.max_queue:
            raise BusyError(
                f"{self.max_queue} requests are already waiting for this model (max_queue); try again later, or "
                "raise the limit with .max_queue(n)"
            )
        job = Job(request, loop_sender(offer), cancel)
        if job_out is not None:
            job_out.append(job)
        self._worker.submit(job)
        try:
            async with receive:
                async for item in receive:
                    if isinstance(item, BaseException):
                        raise item
                    yield item, time.perf_counter()
                    if item.finish_reason is not None:
                        return
        finally:
            cancel.set()  # left early, cancelled or failed: stop generating at the next token

    async def _run(self, request: GenerateRequest) -> ChatResult:
        first: float | None = None
        parts: list[str] = []
        jobs: list[Job] = []
        async for piece, at in self._pieces(request, jobs):
            if piece.text:
                first = first if first is not None else at
                parts.append(piece.text)
            if piece.finish_reason is not None:
                end = at
                usage = Usage(piece.prompt_tokens, piece.completion_tokens, piece.cached_tokens)
                decode = end - (first or end)
                rate = (usage.completion_tokens - 1) / decode if decode > 0 and usage.completion_tokens > 1 else 0.0
                job = jobs[0]
                began = job.started if job.started is not None else job.submitted
                timings = Timings(began - job.submitted, (first or end) - began, end - job.submitted, rate)
                return ChatResult("".join(parts), piece.finish_reason, usage, timings)
        raise ClientClosedError("the model stopped without finishing the request")

    async def chat(self, messages: Messages, *, timeout: float | None = None, **options: Any) -> ChatResult:
        """Answer `messages` (a string, or OpenAI-shaped `{"role", "content"}` dicts) with the model's chat template.

        Options: max_tokens, temperature, top_p, top_k, min_p, repeat_penalty, stop, seed; unset ones take the
        builder's defaults. `timeout`: seconds for the whole request, queue included; past it, `TimeoutError`
        and the generation stops.
        """
        request = self._request(messages, None, options)
        with anyio.fail_after(timeout):
            return await self._run(request)

    async def complete(self, prompt: str, *, timeout: float | None = None, **options: Any) -> ChatResult:
        """Continue raw `prompt` text (no chat template); the same options as `chat`."""
        request = self._request(None, prompt, options)
        with anyio.fail_after(timeout):
            return await self._run(request)

    async def stream(self, messages: Messages, **options: Any) -> AsyncGenerator[Chunk, None]:
        """The answer piece by piece: `async for chunk in client.stream(...)`. Leaving the loop early cancels."""
        request = self._request(messages, None, options)
        async for piece, _ in self._pieces(request):
            if piece.finish_reason is not None:
                yield Chunk(
                    piece.text,
                    piece.finish_reason,
                    Usage(piece.prompt_tokens, piece.completion_tokens, piece.cached_tokens),
                )
            elif piece.text:
                yield Chunk(piece.text)

    # --- lifecycle --------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the worker and free the model; requests still queued get `ClientClosedError`."""
        if not self._worker.closed:
            self._worker.stop()
        await self._worker.join()

    async def __aenter__(self) -> LlmClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class SyncLlmClient(AbstractContextManager["SyncLlmClient"]):
    """The blocking twin of `LlmClient` for scripts: the same calls, run on a private event loop thread."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, portal_cm: Any, client: LlmClient) -> None:
        """Made by `builder.init_sync()`."""
        self._portal, self._portal_cm, self.client = portal, portal_cm, client
        self.plan = client.plan
        self._closed = False

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], **settings: Any) -> SyncLlmClient:
        """`LlmClient.from_path`, blocking: a client for a local GGUF file, sized to this machine."""
        from llmclient.builder import LlamaCppBuilder

        return LlamaCppBuilder.for_file(path, **settings).init_sync()

    def chat(self, messages: Messages, **options: Any) -> ChatResult:
        """`LlmClient.chat`, blocking."""
        return self._portal.call(lambda: self.client.chat(messages, **options))

    def complete(self, prompt: str, **options: Any) -> ChatResult:
        """`LlmClient.complete`, blocking."""
        return self._portal.call(lambda: self.client.complete(prompt, **options))

    def stream(self, messages: Messages, **options: Any) -> Iterator[Chunk]:
        """`LlmClient.stream` as a plain iterator."""
        agen = self.client.stream(messages, **options)
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
