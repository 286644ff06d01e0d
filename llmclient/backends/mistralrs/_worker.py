"""The threads that serve one mistral.rs model: a loader, then `parallel` generation threads over one queue.

mistral.rs has no async API: a streamed answer is a blocking iterator whose `next()` releases the GIL while it
waits for the next token. Each generation thread takes the oldest waiting request (first come, first served),
starts it through the admission lock (`workarounds.AdmissionLock`), iterates its stream and hands each piece to
the caller's event loop (`llmclient.backends._loop`). Leaving the iterator aborts the generation in mistral.rs,
so a cancel takes effect at the next token. Every call on the `Runner` goes through `call`, under one lock.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread

from llmclient.backends import GenerateRequest, Piece
from llmclient.backends.mistralrs._requests import as_error, chat_request, completion_request, finish_reason
from llmclient.backends.mistralrs._settings import MistralRsSettings
from llmclient.backends.mistralrs.workarounds import AdmissionLock, ToolMarkupFilter
from llmclient.errors import ClientClosedError, ContextOverflowError, GenerationError
from llmclient.types import Usage

__all__ = ["Job", "Worker"]

logger = logging.getLogger("llmclient")
_TOO_LONG = re.compile(r"Prompt sequence length is greater than (\d+)")


@dataclass
class Job:
    """A request waiting for, or running on, a generation thread."""

    request: GenerateRequest
    emit: Callable[[Piece | BaseException], None]
    cancel: threading.Event
    submitted: float = 0.0
    """`time.perf_counter()` when it was queued."""
    started: float | None = None
    """When a generation thread took it (None while it waits)."""


class Worker:
    """One mistral.rs model and its queue: loaded on a thread of its own, then served by `settings.parallel`
    generation threads until `stop()`."""

    def __init__(self, load: Callable[[], tuple[Any, Any]], settings: MistralRsSettings, name: str) -> None:
        """`load` returns the `mistralrs` module and a loaded `Runner`; it runs on a thread of its own."""
        self.settings = settings
        self._load = load
        self._name = name
        self._loaded = threading.Event()
        self._load_error: BaseException | None = None
        self._mistralrs: Any = None
        self._runner: Any = None
        self._calls = threading.Lock()  # workaround 2: one call on the Runner at a time
        self.admission = AdmissionLock()  # workaround 1: one prompt prefilled at a time
        self._cond = threading.Condition()
        self._queue: collections.deque[Job] = collections.deque()
        self._running: set[int] = set()
        self._threads: list[threading.Thread] = []
        self.closed = False
        loader = threading.Thread(target=self._load_then_serve, name=name, daemon=True)
        self._threads.append(loader)
        loader.start()

    async def wait_loaded(self) -> None:
        """Return once loaded; re-raises the load's error."""
        await anyio.to_thread.run_sync(self._loaded.wait, abandon_on_cancel=True)  # cancellable while loading
        if self._load_error is not None:
            raise self._load_error

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """`runner.<method>(...)` under the lock every call on the Runner takes (workaround 2)."""
        with self._calls:
            if self._runner is None:
                raise ClientClosedError("the client is closed; create a new one with init()")
            return getattr(self._runner, method)(*args, **kwargs)

    def submit(self, job: Job) -> None:
        """Queue `job`; a generation thread starts it when one is free and every older job has started."""
        job.submitted = time.perf_counter()
        with self._cond:
            if self.closed:
                raise ClientClosedError("the client is closed; create a new one with init()")
            self._queue.append(job)
            self._cond.notify()

    def waiting(self) -> int:
        """Requests queued and not yet started (cancelled ones not counted)."""
        with self._cond:
            return sum(1 for job in self._queue if not job.cancel.is_set())

    def running(self) -> int:
        """Requests a generation thread is working on."""
        with self._cond:
            return len(self._running)

    def stop(self) -> None:
        """Ask for the end: running requests stop at their next token, queued ones fail with `ClientClosedError`,
        the model is freed once the threads are done."""
        with self._cond:
            self.closed = True
            queued = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for job in queued:
            job.emit(ClientClosedError("the client was closed before this request started"))

    async def join(self) -> None:
        """Wait until every thread has ended and the model is freed."""

        def finish() -> None:
            for thread in self._threads:
                thread.join()
            with self._calls:
                self._runner = None  # mistral.rs frees the model when its Runner goes

        await anyio.to_thread.run_sync(finish)

    # --- the threads -------------------------------------------------------------------------------

    def _load_then_serve(self) -> None:
        try:
            self._mistralrs, self._runner = self._load()
        except BaseException as error:  # reported to whoever awaits the load
            self._load_error = error
            self.closed = True
            self._loaded.set()
            return
        with self._cond:
            if not self.closed:  # a load cancelled meanwhile starts nothing
                for i in range(max(1, self.settings.parallel)):
                    thread = threading.Thread(target=self._serve, name=f"{self._name}-{i}", daemon=True)
                    self._threads.append(thread)
                    thread.start()
        self._loaded.set()

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self.closed:
                    self._cond.wait()
                if self.closed:
                    return
                job = self._queue.popleft()
                if job.cancel.is_set():  # the caller left while it waited
                    continue
                self._running.add(id(job))
            try:
                job.started = time.perf_counter()
                self._generate(job)
            except BaseException as error:
                job.emit(as_error(error))
            finally:
                with self._cond:
                    self._running.discard(id(job))

    def _checked_max_tokens(self, request: GenerateRequest) -> int | None:
        """The request's max_tokens, within the context; `ContextOverflowError` for a prompt that does not fit
        (a chat's is counted without its template's tokens: mistral.rs does not show the templated prompt)."""
        n_ctx = self.settings.n_ctx
        raw = request.messages is None
        texts = [request.prompt or ""] if raw else [m.get("content") or "" for m in request.messages or ()]
        prompt = sum(len(self.call("tokenize_text", text, raw, None)) for text in texts)
        if prompt >= n_ctx:
            raise ContextOverflowError(
                f"the prompt is {prompt} tokens but the context holds {n_ctx}; shorten it, or load the model with a "
                "larger .ctx()",
                prompt_tokens=prompt,
                n_ctx=n_ctx,
            )
        asked = request.sampling.settings().get("max_tokens")
        return min(asked, n_ctx - prompt) if asked is not None else n_ctx - prompt

    def _generate(self, job: Job) -> None:
        request = job.request
        max_tokens = self._checked_max_tokens(request)
        if request.messages is None:
            return self._complete(job, max_tokens)
        markup = ToolMarkupFilter() if request.tools else None
        produced = 0
        with self.admission:  # from the submission to the first token: no other prompt is prefilled meanwhile
            if job.cancel.is_set() or self.closed:
                return job.emit(Piece("", "cancelled", Usage(0, 0)))
            try:
                stream = self.call("send_chat_completion_request", chat_request(self._mistralrs, request, max_tokens))
                chunk = next(stream, None)
            except ValueError as error:
                raise _overflow(error) or error from None
        while chunk is not None:
            choice = chunk.choices[0]
            text = choice.delta.content or ""
            if markup is not None:
                text = markup.feed(text) + (markup.flush() if choice.finish_reason is not None else "")
            produced += 1
            if choice.finish_reason is not None:
                usage = chunk.usage
                counted = Usage(0, produced) if usage is None else Usage(usage.prompt_tokens, usage.completion_tokens)
                return job.emit(Piece(text, finish_reason(choice.finish_reason), counted))
            if text:
                job.emit(Piece(text))
            if job.cancel.is_set() or self.closed:
                del stream  # dropping the iterator aborts the generation in mistral.rs
                return job.emit(Piece("", "cancelled", Usage(0, produced)))
            chunk = next(stream, None)
        raise GenerationError("mistral.rs ended the stream without a finish reason")

    def _complete(self, job: Job, max_tokens: int | None) -> None:
        """A raw prompt: mistral.rs has no streamed completion, so it is one call that cannot be stopped (it holds
        the Runner, and the admission lock, until the answer is complete: other requests wait to start)."""
        request = completion_request(self._mistralrs, job.request, max_tokens)
        with self.admission:
            if job.cancel.is_set() or self.closed:
                return job.emit(Piece("", "cancelled", Usage(0, 0)))
            try:
                response = self.call("send_completion_request", request)
            except ValueError as error:
                raise _overflow(error) or error from None
        choice = response.choices[0]
        usage = Usage(response.usage.prompt_tokens, response.usage.completion_tokens)
        job.emit(Piece(choice.text, finish_reason(choice.finish_reason), usage))


def _overflow(error: ValueError) -> ContextOverflowError | None:
    """mistral.rs's refusal of a prompt longer than the model takes as `ContextOverflowError` (None for any other
    error)."""
    too_long = _TOO_LONG.search(str(error))
    if too_long is None:
        return None
    limit = int(too_long.group(1))
    return ContextOverflowError(
        f"the prompt with its chat template is longer than the {limit} tokens mistral.rs takes for this model; "
        "shorten it",
        prompt_tokens=limit + 1,
        n_ctx=limit,
    )
