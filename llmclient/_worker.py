"""The worker thread that owns a model: loads it, then serves requests first come first served.

Nothing but this thread touches the backend (llama.cpp's model and context are not thread-safe). Between two
decode steps it takes new requests: the oldest waiting one starts as soon as the backend has room for it (a
free sequence and its KV space), and nothing overtakes it. Results travel back to the caller's event loop
without blocking the worker: `call_soon_threadsafe` on asyncio, anyio's portal otherwise.
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
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

from llmclient.backends import Backend, GenerateRequest, Piece, Prepared
from llmclient.constants import worker_nice
from llmclient.errors import ClientClosedError, GenerationError, LlmClientError

__all__ = ["Job", "Worker", "loop_sender"]

logger = logging.getLogger("llmclient")


class _Mailbox:
    """Items bound for one event loop, from any thread, delivered in order by one wake-up of the loop for all
    that arrived since the last: with many requests, a decode step's tokens cost the loop one wake-up, not one per
    request (each wake-up is a write to the loop's self-pipe, and a GIL hand-off between the two threads)."""

    def __init__(self, native: Any, call_soon: str) -> None:
        self._loop = weakref.ref(native)  # not the loop itself: the registry's entry must not keep it alive
        self._call_soon = call_soon
        self._pending: collections.deque[tuple[Callable[[Any], None], Any]] = collections.deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def send(self, deliver: Callable[[Any], None], item: Any) -> None:
        with self._lock:
            self._pending.append((deliver, item))
            if self._scheduled:
                return
            self._scheduled = True
        loop = self._loop()
        try:
            if loop is None:
                raise RuntimeError("the event loop is gone")
            getattr(loop, self._call_soon)(self._flush)
        except RuntimeError:  # the loop is closed (trio: RunFinishedError): nobody listens
            with self._lock:
                self._pending.clear()
                self._scheduled = False

    def _flush(self) -> None:
        with self._lock:
            items = list(self._pending)
            self._pending.clear()
            self._scheduled = False
        for deliver, item in items:
            try:
                deliver(item)
            except Exception:  # one receiver's failure must not cost the others their items
                logger.exception("delivering a result to the event loop failed")


_mailboxes: weakref.WeakKeyDictionary[Any, _Mailbox] = weakref.WeakKeyDictionary()
_mailboxes_lock = threading.Lock()


def loop_sender(deliver: Callable[[Any], None]) -> Callable[[Any], None]:
    """A thread-safe function that hands items to `deliver` on the current event loop, in order, without waiting.

    Items queue up in the loop's mailbox, shared by every sender made on that loop, and one wake-up of the loop
    delivers all that arrived since the last: when the loop is busy, the worker does not pay a wake-up per token
    or per request, and it never waits for the loop. The wake-up is the loop's own thread-safe scheduling call:
    asyncio's `call_soon_threadsafe`, trio's `TrioToken.run_sync_soon`.
    """
    token = anyio.lowlevel.current_token()
    native = token.native_token
    call_soon = next((name for name in ("call_soon_threadsafe", "run_sync_soon") if hasattr(native, name)), None)

    def send_via_portal(item: Any) -> None:
        with contextlib.suppress(RuntimeError):
            anyio.from_thread.run_sync(deliver, item, token=token)

    if call_soon is None:  # another anyio backend: the portal, which waits for the loop at each item
        return send_via_portal
    try:
        with _mailboxes_lock:
            mailbox = _mailboxes.get(native)
            if mailbox is None:
                mailbox = _mailboxes[native] = _Mailbox(native, call_soon)
    except TypeError:  # a loop that cannot be weakly referenced (none of asyncio's or trio's): the portal
        return send_via_portal

    def send(item: Any) -> None:
        mailbox.send(deliver, item)

    return send


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
    prepared: Prepared | None = None
    finished: bool = False

    def deliver(self, item: Piece | BaseException) -> None:
        """What the backend reports, passed on; an error or a finish reason ends the job."""
        if isinstance(item, BaseException):
            item = _as_client_error(item)
            self.finished = True
        elif item.finish_reason is not None:
            self.finished = True
        self.emit(item)


class Worker:
    """One dedicated thread: `load()` then jobs from a FIFO queue until `stop()`."""

    def __init__(self, load: Callable[[], Backend], name: str = "llmclient-model") -> None:
        self._load = load
        self._nice = worker_nice()  # read here: a bad value fails in the caller, not silently in the thread
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._loaded = threading.Event()
        self._load_error: BaseException | None = None
        self._waiting_lock = threading.Lock()
        self._running: list[Job] = []
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
        """Ask the thread to finish: running requests stop at the next step, queued ones fail with
        `ClientClosedError`, the model is freed."""
        self.closed = True
        with self._waiting_lock:
            running = list(self._running)
        for job in running:
            job.cancel.set()
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
        backend = self.backend
        waiting: collections.deque[Job] = collections.deque()
        stopping = False
        while not stopping or backend.active:
            stopping = self._collect(waiting, block=not backend.active and not waiting) or stopping
            if stopping:
                self._fail(waiting)
            self._start_waiting(backend, waiting)
            if backend.active:
                try:
                    backend.step()
                except Exception as error:  # a bug of ours: fail what runs rather than hang it
                    logger.exception("decode step failed")
                    self._fail_running(error)
            self._forget_finished()
        self._fail(waiting)
        try:
            backend.close()
        except Exception as error:
            logger.warning("closing the model failed: %s", error)

    def _collect(self, waiting: collections.deque[Job], block: bool) -> bool:
        """Move newly submitted jobs to `waiting` (waiting for one if `block`); True once `stop` was called."""
        while True:
            try:
                job = self._jobs.get() if block else self._jobs.get_nowait()
            except queue.Empty:
                return False
            if job is None:
                return True
            waiting.append(job)
            block = False

    def _start_waiting(self, backend: Backend, waiting: collections.deque[Job]) -> None:
        """Start waiting jobs in order while the backend has room; the first that does not fit blocks the rest."""
        while waiting:
            job = waiting[0]
            if job.cancel.is_set():
                waiting.popleft()
                self._unwait(job)
                job.emit(Piece("", "cancelled"))
                continue
            try:
                if job.prepared is None:
                    job.prepared = backend.prepare(job.request)
                started = backend.start(job.prepared, job.deliver, job.cancel.is_set)
            except Exception as error:
                waiting.popleft()
                self._unwait(job)
                job.emit(_as_client_error(error))
                continue
            if not started:
                return
            waiting.popleft()
            job.started = time.perf_counter()
            with self._waiting_lock:
                self._waiting_jobs.pop(id(job), None)
                self._running.append(job)

    def _forget_finished(self) -> None:
        with self._waiting_lock:
            self._running = [job for job in self._running if not job.finished]

    def _fail_running(self, error: BaseException) -> None:
        with self._waiting_lock:
            running, self._running = self._running, []
        for job in running:
            job.cancel.set()
            job.deliver(error)

    def _unwait(self, job: Job) -> None:
        with self._waiting_lock:
            self._waiting_jobs.pop(id(job), None)

    def _fail(self, waiting: collections.deque[Job]) -> None:
        while waiting:
            job = waiting.popleft()
            self._unwait(job)
            job.emit(ClientClosedError("the client was closed before this request ran"))
        while True:
            try:
                queued = self._jobs.get_nowait()
            except queue.Empty:
                return
            if queued is not None:
                self._unwait(queued)
                queued.emit(ClientClosedError("the client was closed before this request ran"))


def _as_client_error(error: BaseException) -> BaseException:
    """An error for the request's caller: ours as they are (they say what to do), others wrapped with the cause."""
    if isinstance(error, LlmClientError):
        return error
    logger.warning("generation failed: %r", error)
    failure = GenerationError(f"the model failed while answering: {type(error).__name__}: {error}")
    failure.__cause__ = error
    return failure
