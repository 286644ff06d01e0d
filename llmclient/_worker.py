"""The worker thread that owns a model: loads it, then runs requests one at a time, first come first served.

Nothing but this thread touches the backend (a `llama_cpp.Llama` is not thread-safe). Results travel back to
the caller's event loop without blocking the worker: `call_soon_threadsafe` on asyncio, anyio's portal
otherwise.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

from llmclient.backends import Backend, GenerateRequest, Piece
from llmclient.constants import worker_nice
from llmclient.errors import ClientClosedError, GenerationError, LlmClientError

__all__ = ["Job", "Worker", "loop_sender"]

logger = logging.getLogger("llmclient")


def loop_sender(deliver: Callable[[Any], None]) -> Callable[[Any], None]:
    """A thread-safe function that hands items to `deliver` on the current event loop, in order, without waiting.

    On asyncio, items queue up and one wake-up of the loop delivers all that arrived since the last: when the
    loop is busy, the worker does not pay a wake-up per token.
    """
    token = anyio.lowlevel.current_token()
    native = getattr(token, "native_token", None)
    call_soon = getattr(native, "call_soon_threadsafe", None)  # an asyncio loop
    if call_soon is not None:
        pending: collections.deque[Any] = collections.deque()
        lock = threading.Lock()
        scheduled = False

        def flush() -> None:
            nonlocal scheduled
            with lock:
                items = list(pending)
                pending.clear()
                scheduled = False
            for item in items:
                deliver(item)

        def send(item: Any) -> None:
            nonlocal scheduled
            with lock:
                pending.append(item)
                if scheduled:
                    return
                scheduled = True
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening any more
                call_soon(flush)

        return send

    def send_via_portal(item: Any) -> None:
        with contextlib.suppress(RuntimeError):
            anyio.from_thread.run_sync(deliver, item, token=token)

    return send_via_portal


def _yield_to_the_event_loop(increment: int) -> None:
    """Lower this thread's priority (Linux, where nice is per thread).

    The compute threads llama.cpp starts from this thread inherit it. When they keep every core busy, the
    kernel then runs the event loop's thread as soon as it wakes instead of after their time slice: on 2 cores
    this turns the loop's 3-5 ms stalls during generation into none (bench/overhead.py), and costs nothing when
    nothing else wants the CPU.
    """
    if increment <= 0 or not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + increment))
    except OSError as error:  # a sandbox may forbid it; generation works the same without
        logger.debug("could not lower the worker's priority: %s", error)


@dataclass
class Job:
    """A request waiting for, or running on, the worker."""

    request: GenerateRequest
    emit: Callable[[Piece | BaseException], None]
    cancel: threading.Event
    submitted: float = 0.0
    """`time.perf_counter()` when it was queued."""
    started: float | None = None
    """When the worker began it (None while it waits)."""


class Worker:
    """One dedicated thread: `load()` then jobs from a FIFO queue until `stop()`."""

    def __init__(self, load: Callable[[], Backend], name: str = "llmclient-model") -> None:
        self._load = load
        self._nice = worker_nice()  # read here: a bad value fails in the caller, not silently in the thread
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._loaded = threading.Event()
        self._load_error: BaseException | None = None
        self._current: Job | None = None
        self._waiting_lock = threading.Lock()
        self._waiting_jobs: dict[int, Job] = {}
        self.backend: Backend | None = None
        self.closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def wait_loaded(self) -> Backend:
        """The backend once loaded; re-raises the load's error."""
        await anyio.to_thread.run_sync(self._loaded.wait, abandon_on_cancel=True)  # cancellable while loading
        if self._load_error is not None:
            raise self._load_error
        assert self.backend is not None
        return self.backend

    def submit(self, job: Job) -> None:
        if self.closed:
            raise ClientClosedError("the client is closed; create a new one with init()")
        job.submitted = time.perf_counter()
        with self._waiting_lock:
            self._waiting_jobs[id(job)] = job
        self._jobs.put(job)

    def waiting(self) -> int:
        """Requests queued and not yet started (cancelled ones not counted)."""
        with self._waiting_lock:
            return sum(1 for job in self._waiting_jobs.values() if not job.cancel.is_set())

    def stop(self) -> None:
        """Ask the thread to finish: the running job stops at its next token, queued ones fail with
        `ClientClosedError`, the model is freed."""
        self.closed = True
        current = self._current
        if current is not None:
            current.cancel.set()
        self._jobs.put(None)

    async def join(self) -> None:
        await anyio.to_thread.run_sync(self._thread.join)

    def _run(self) -> None:
        try:
            _yield_to_the_event_loop(self._nice)
            self.backend = self._load()
        except BaseException as error:  # reported to whoever awaits the load
            self._load_error = error
            self.closed = True
            return
        finally:
            self._loaded.set()
        while True:
            job = self._jobs.get()
            if job is not None:
                with self._waiting_lock:
                    self._waiting_jobs.pop(id(job), None)
            if job is None or self.backend is None or self.closed:
                if job is not None:
                    job.emit(ClientClosedError("the client was closed before this request ran"))
                break
            if job.cancel.is_set():
                continue
            job.started = time.perf_counter()
            self._current = job
            try:
                self.backend.generate(job.request, job.emit, job.cancel.is_set)
            except LlmClientError as error:  # ours already says what to do: delivered to the caller as is
                job.emit(error)
            except Exception as error:  # delivered to the request's caller; the worker goes on
                logger.warning("generation failed: %r", error)
                failure = GenerationError(f"the model failed while answering: {type(error).__name__}: {error}")
                failure.__cause__ = error
                job.emit(failure)
            finally:
                self._current = None
        self._drain()
        if self.backend is not None:
            try:
                self.backend.close()
            except Exception as error:
                logger.warning("closing the model failed: %s", error)

    def _drain(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.emit(ClientClosedError("the client was closed before this request ran"))
