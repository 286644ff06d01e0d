"""`LlamaCppEngine`: a GGUF model in this process, behind the `Engine` protocol.

The model lives on the process's decode thread (`_worker.py`), which runs every llama.cpp model of the process
with continuous batching; `generate` queues a request there and streams its pieces back to the caller's event
loop without blocking either side. A constrained request (a schema, a grammar, tools) carries an llguidance matcher
made here; a request with tools has its calls read out of the text here too (`ToolCallReader`), on the caller's
side, and reported on `Piece.tool_calls`. `embed` tokenizes texts on a worker thread, then queues them
on the decode thread too.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from llmclient.backends import Capabilities, Embedded, EmbedRequest, GenerateRequest, Piece
from llmclient.backends._loop import loop_sender
from llmclient.backends.llama_cpp._settings import LlamaCppSettings
from llmclient.backends.llama_cpp._worker import Job, Worker
from llmclient.chat.formats import ToolFormat
from llmclient.chat.parsers import ToolCallReader
from llmclient.chat.tools import tool_choice_of, tools_from
from llmclient.errors import ClientClosedError, SchemaError
from llmclient.structured._tools import special_markers, tool_call_grammar
from llmclient.types import Timings

__all__ = ["LlamaCppEngine"]

logger = logging.getLogger("llmclient")

#: Grammars whose first matcher is kept to copy for the next request with the same constraint.
TEMPLATES = 64


class LlamaCppEngine:
    """A llama.cpp model loaded in this process; make one with `await LlamaCppEngine.load(path, settings)`."""

    def __init__(self, worker: Worker, settings: LlamaCppSettings) -> None:
        """Wraps a loaded `Worker`; use `load`."""
        self._worker = worker
        self.settings = settings
        self._templates: collections.OrderedDict[str, Any] = collections.OrderedDict()
        """Grammar -> an unused matcher of it, to copy: the latest `TEMPLATES` grammars (only the loop touches it)."""
        self._markers: dict[str, int] | None = None
        """The model's tool-call markers that are special tokens of its vocabulary (found on first use)."""
        model = worker.model
        generates, embeds = (model.generates, model.embeds) if model is not None else (True, False)
        self._capabilities = Capabilities(
            structured_output=generates,
            tools=generates,
            embeddings=embeds,
            generation=generates,
            cancel_in_prompt=generates,
            parallel=max(1, settings.parallel),
        )

    @classmethod
    async def load(cls, path: str | os.PathLike[str], settings: LlamaCppSettings) -> LlamaCppEngine:
        """Load `path` on a thread of its own (cancellable: a cancelled load frees what it loaded)."""
        path = Path(path)

        def load() -> object:
            # on an H100 machine with numpy 2.5.2, a numpy loaded before llama.cpp's native libraries made every CUDA
            # model load crash; llmclient never imports numpy first, an app may have
            if settings.n_gpu_layers != 0 and "numpy" in sys.modules and "llama_cpp" not in sys.modules:
                logger.warning(
                    "numpy was imported before llama-cpp-python; on some CUDA machines that crashes the model load. "
                    "If it does, `import llama_cpp` at the top of your program, before numpy (or pandas, torch, ...)."
                )
            from llmclient.backends.llama_cpp._model import LlamaCppModel  # loads the native library

            return LlamaCppModel(path, settings)

        worker = Worker(load, name=f"llmclient-{path.name}")  # type: ignore[arg-type]
        try:
            await worker.wait_loaded()
        except BaseException:  # cancelled or failed while loading: never leave a loaded model behind
            worker.stop()
            with anyio.CancelScope(shield=True):
                await worker.join()
            raise
        return cls(worker, settings)

    @property
    def capabilities(self) -> Capabilities:
        """Continuous batching of `settings.parallel` requests; structured output and tool calls enforced while
        decoding; cancel stops a long prompt mid-way. Embeddings for an embedding model (which does not generate)
        or a chat model loaded with a pooling."""
        return self._capabilities

    async def embed(self, request: EmbedRequest) -> Embedded:
        """The texts' pooled vectors: tokenized on a worker thread, then embedded on the decode thread, many texts
        per decode, taking turns with every other model's steps."""
        model = self._worker.model
        if self._worker.closed or model is None:
            raise ClientClosedError("the client is closed; create a new one with init()")
        prepared = await anyio.to_thread.run_sync(model.prepare, request)
        send, receive = anyio.create_memory_object_stream[Piece | Embedded | BaseException](1)
        cancel = threading.Event()

        def offer(item: Piece | Embedded | BaseException) -> None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.WouldBlock):
                send.send_nowait(item)

        job = Job(request, loop_sender(offer), cancel, prepared=prepared)
        self._worker.submit(job)
        try:
            async with receive:
                item = await receive.receive()
        finally:
            cancel.set()  # cancelled while waiting: its texts not yet embedded are dropped at the next step
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, Piece):  # the model closed before the texts were embedded
            raise ClientClosedError("the client was closed before these texts were embedded")
        return item

    async def generate(self, request: GenerateRequest) -> AsyncIterator[Piece]:
        """Queue `request` on the decode thread and stream its pieces; the last carries usage and timings."""
        if self._worker.closed:
            raise ClientClosedError("the client is closed; create a new one with init()")
        send, receive = anyio.create_memory_object_stream[Piece | BaseException](math.inf)
        cancel = threading.Event()

        def offer(item: Piece | BaseException) -> None:
            # the caller may have stopped listening; the cancel flag then stops the worker at the next token
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                send.send_nowait(item)

        reader: ToolCallReader | None = None
        if request.tools and request.tool_choice != "none":
            matcher, fmt = await self._tool_matcher(request)
            reader = ToolCallReader(fmt)  # calls are read out of the text here: the decode thread never waits
        else:
            constraint = request.constraint
            refused = f"this {constraint.kind} cannot be enforced" if constraint is not None else ""
            matcher = await self._matcher(constraint.grammar, refused) if constraint is not None else None
        job = Job(request, loop_sender(offer), cancel, matcher=matcher)
        self._worker.submit(job)
        first: float | None = None
        try:
            async with receive:
                async for item in receive:
                    if isinstance(item, BaseException):
                        raise item
                    now = time.perf_counter()
                    if item.text and first is None:
                        first = now
                    text, calls = reader.feed(item.text) if reader is not None else (item.text, [])
                    if item.finish_reason is None:
                        if text or calls:
                            yield Piece(text, tool_calls=tuple(calls))
                        continue
                    if reader is not None and item.finish_reason != "cancelled":
                        rest, more = reader.finish(item.finish_reason)
                        text, calls = text + rest, calls + more
                    timings = _timings(job, first, now, item)
                    yield Piece(text, item.finish_reason, item.usage, timings, tool_calls=tuple(calls))
                    return
        finally:
            cancel.set()  # left early, cancelled or failed: stop generating at the next token

    async def _matcher(self, grammar: str, refused: str) -> Any:
        """A fresh llguidance matcher for `grammar`: a copy of this grammar's first matcher (1 us), or the first,
        made on a worker thread (0.7 ms; the model's tokenizer for it is built there too, the first time: ~0.3 s for
        a 49k vocabulary). Many requests with one schema then start together, none waiting for a thread. `refused`
        starts the `SchemaError` for a grammar llguidance cannot enforce."""
        model = self._worker.model
        if model is None:
            raise ClientClosedError("the client is closed; create a new one with init()")
        template = self._templates.get(grammar)
        if template is not None:
            self._templates.move_to_end(grammar)
            return template.deep_copy()

        def make() -> Any:
            from llguidance import LLMatcher

            matcher = LLMatcher(model.constraint_tokenizer(), grammar, log_level=0)  # type: ignore[attr-defined]
            if matcher.is_error():
                raise SchemaError(f"{refused}: {matcher.get_error()}")
            return matcher

        made = await anyio.to_thread.run_sync(make)
        self._templates[grammar] = made
        while len(self._templates) > TEMPLATES:
            self._templates.popitem(last=False)
        return made.deep_copy()

    async def _tool_matcher(self, request: GenerateRequest) -> tuple[Any, ToolFormat]:
        """The llguidance matcher that holds `request`'s tool calls to the model's format and the tools' schemas,
        and that format."""
        tools = tools_from(request.tools)
        mode, only = tool_choice_of(request.tool_choice, tools)
        model: Any = self._worker.model
        if model is None:
            raise ClientClosedError("the client is closed; create a new one with init()")
        fmt: ToolFormat = model.tool_format
        if self._markers is None:  # once per model: which of its format's markers are special tokens
            self._markers = await anyio.to_thread.run_sync(lambda: special_markers(model.constraint_tokenizer(), fmt))
        grammar = tool_call_grammar(fmt, tools, mode, only, self._markers, request.parallel_tool_calls)
        return await self._matcher(grammar, "these tools' schemas cannot be enforced"), fmt

    async def aclose(self) -> None:
        """Stop the worker and free the model; requests still queued get `ClientClosedError`."""
        if not self._worker.closed:
            self._worker.stop()
        await self._worker.join()

    def waiting(self) -> int:
        """Requests queued and not yet started (cancelled ones not counted)."""
        return self._worker.waiting()


def _timings(job: Job, first: float | None, end: float, last: Piece) -> Timings:
    """Where the request's time went, from when it was queued, started, and its pieces reached the loop."""
    produced = last.usage.completion_tokens if last.usage is not None else 0
    decode = end - (first or end)
    rate = (produced - 1) / decode if decode > 0 and produced > 1 else 0.0
    began = job.started if job.started is not None else job.submitted
    return Timings(began - job.submitted, (first or end) - began, end - job.submitted, rate)
