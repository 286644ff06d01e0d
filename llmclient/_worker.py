"""The decode thread that runs every model of the process, and each model's queue of requests (`Worker`).

A model is loaded on a thread of its own, then only the decode thread touches it (llama.cpp's model and context
are not thread-safe). Between two decode steps it takes new requests: a model's oldest waiting one starts as soon
as its backend has room for it (a free sequence and its KV space), and nothing overtakes it. Results travel back to
the caller's event loop without blocking the decode thread: `call_soon_threadsafe` on asyncio, anyio's portal
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
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

from llmclient.backends import Backend, GenerateRequest, Piece, Prepared
from llmclient.backends._threads import RunDelay, Runnable, ThreadPolicy
from llmclient.constants import adaptive_threads, worker_nice
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


def _lower_priority(increment: int) -> None:
    """Lower this thread's priority by `increment` (Linux, where nice is per thread; the compute threads llama.cpp
    starts from it inherit it). Off by default: a niced team gets a small share of the CPU whenever anything else is
    runnable, and an unprivileged thread can never take the nice back."""
    if increment <= 0 or not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + increment))
    except OSError as error:  # a sandbox may forbid it; generation works the same without
        logger.debug("could not lower the decode thread's priority: %s", error)


@dataclass
class Job:
    """A request waiting for, or running on, the decode thread."""

    request: GenerateRequest
    emit: Callable[[Piece | BaseException], None]
    cancel: threading.Event
    submitted: float = 0.0
    """`time.perf_counter()` when it was queued."""
    started: float | None = None
    """When the decode thread began it (None while it waits)."""
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
    """One model's requests: loaded on a thread of its own, then served first come first served by the process's
    decode thread, until `stop()`."""

    def __init__(self, load: Callable[[], Backend], name: str = "llmclient-model") -> None:
        self._decoder = _decode_thread()  # first: a bad setting fails in the caller, not silently in a thread
        self._load = load
        self._loaded = threading.Event()
        self._done = threading.Event()
        self._load_error: BaseException | None = None
        self._lock = threading.Lock()
        self._running: list[Job] = []
        self._waiting_jobs: dict[int, Job] = {}
        self._waiting: collections.deque[Job] = collections.deque()
        """Jobs the decode thread holds that have not started (only that thread touches it)."""
        self._attached = False
        self._stopping = False
        self.backend: Backend | None = None
        self.closed = False
        # loading takes seconds for a large model: on its own thread, so that other models keep generating; it
        # computes nothing, so it starts no compute team
        threading.Thread(target=self._load_then_attach, name=name, daemon=True).start()

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
        with self._lock:
            self._waiting_jobs[id(job)] = job
        self._decoder.post(self, job)

    def waiting(self) -> int:
        """Requests queued and not yet started (cancelled ones not counted)."""
        with self._lock:
            return sum(1 for job in self._waiting_jobs.values() if not job.cancel.is_set())

    def stop(self) -> None:
        """Ask for the end: running requests stop at the next step, queued ones fail with `ClientClosedError`, the
        model is freed."""
        with self._lock:
            self.closed = True
            running, attached = list(self._running), self._attached
        for job in running:
            job.cancel.set()
        if attached:
            self._decoder.post(self, None)

    async def join(self) -> None:
        """Wait until the model is freed."""
        await anyio.to_thread.run_sync(self._done.wait)

    def _load_then_attach(self) -> None:
        try:
            backend = self._load()
        except BaseException as error:  # reported to whoever awaits the load
            self._load_error = error
            self.closed = True
            self._loaded.set()
            self._done.set()
            return
        with self._lock:
            closed = self.closed
            self._attached = not closed
            self.backend = backend
            if not closed:  # before any stop signal of `stop()` can be posted
                self._decoder.attach(self)
        if closed:  # stopped while loading: free it here; it never decoded
            self._close_backend()
        self._loaded.set()

    # --- on the decode thread ---------------------------------------------------------------------

    def _take(self, job: Job | None) -> None:
        """A job, or the stop signal (None), from the decode thread's inbox."""
        if job is None:
            self._stopping = True
            self._fail_waiting()
        elif self._stopping:
            self._refuse(job)
        else:
            self._waiting.append(job)

    def _has_work(self) -> bool:
        assert self.backend is not None
        return bool(self._waiting) or bool(self.backend.active) or self._stopping

    def _start_waiting(self) -> None:
        """Start waiting jobs in order while the backend has room; the first that does not fit blocks the rest."""
        backend, waiting = self.backend, self._waiting
        assert backend is not None
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
            with self._lock:
                self._waiting_jobs.pop(id(job), None)
                self._running.append(job)

    def _step(self, threads: int) -> bool:
        """Start what can start and advance what runs by one step, with at most `threads` compute threads; False
        once stopped and freed (the decode thread then forgets this model)."""
        backend = self.backend
        assert backend is not None
        if not self._stopping:
            self._start_waiting()
        if backend.active:
            backend.set_threads(min(threads, backend.threads))
            try:
                backend.step()
            except Exception as error:  # a bug of ours: fail what runs rather than hang it
                logger.exception("decode step failed")
                self._fail_running(error)
        with self._lock:
            self._running = [job for job in self._running if not job.finished]
        if self._stopping and not backend.active:
            self._close_backend()
            return False
        return True

    def _close_backend(self) -> None:
        try:
            if self.backend is not None:
                self.backend.close()
        except Exception as error:
            logger.warning("closing the model failed: %s", error)
        finally:
            self._done.set()

    def _fail_running(self, error: BaseException) -> None:
        with self._lock:
            running, self._running = self._running, []
        for job in running:
            job.cancel.set()
            job.deliver(error)

    def _unwait(self, job: Job) -> None:
        with self._lock:
            self._waiting_jobs.pop(id(job), None)

    def _fail_waiting(self) -> None:
        while self._waiting:
            self._refuse(self._waiting.popleft())

    def _refuse(self, job: Job) -> None:
        self._unwait(job)
        job.emit(ClientClosedError("the client was closed before this request ran"))


class _DecodeThread:
    """The one thread that decodes for every model of the process.

    llama.cpp's CPU backend (OpenMP builds, the default on Linux) starts a team of compute threads for each OS
    thread that decodes, and once two teams take turns every generation runs 2-3 times slower on a small CPU
    (bench/omp_teams.py, bench/two_models.py). So all models step here, in turn, one step each per round: a model
    waits at most one step of each other model's, and each model's requests keep their own first-come order. The
    compute-thread count of every step comes from one `ThreadPolicy`.
    """

    def __init__(self) -> None:
        self._nice = worker_nice()
        self._adaptive = adaptive_threads()
        self._inbox: queue.SimpleQueue[tuple[Worker, Job | None] | tuple[Worker, str]] = queue.SimpleQueue()
        self._workers: list[Worker] = []
        self.pid = os.getpid()
        self.policy: ThreadPolicy | None = None
        """Set once the thread runs; read it for the latest thread decisions."""
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="llmclient-decode", daemon=True)
        self.thread.start()
        self._ready.wait()

    def post(self, worker: Worker, job: Job | None) -> None:
        self._inbox.put((worker, job))

    def attach(self, worker: Worker) -> None:
        self._inbox.put((worker, "attach"))

    def _receive(self, item: tuple[Worker, Job | None] | tuple[Worker, str]) -> None:
        worker, what = item
        if isinstance(what, str):
            self._workers.append(worker)
            self._plan_most()
        else:
            worker._take(what)

    def _run(self) -> None:
        _lower_priority(self._nice)
        delay, runnable = RunDelay(), Runnable()  # opened here: it measures this thread
        policy = self.policy = ThreadPolicy(1, adaptive=self._adaptive and delay.read() is not None)
        self._ready.set()
        started = False

        def others(ours: int) -> int | None:
            running = runnable.read()
            return None if running is None else running - ours

        while True:
            if not any(w._has_work() for w in self._workers):
                idle_since = time.perf_counter()
                self._receive(self._inbox.get())
                if started:
                    policy.resume(time.perf_counter() - idle_since, others(1))
            if not started and any(w._has_work() for w in self._workers):
                started = True
                policy.start(others(1))
            while True:
                try:
                    self._receive(self._inbox.get_nowait())
                except queue.Empty:
                    break
            began, waited = time.perf_counter(), delay.read() if policy.adaptive else None
            stepped = any(w.backend is not None and w.backend.active for w in self._workers)
            threads, count = policy.threads, len(self._workers)
            self._workers = [w for w in self._workers if w._step(threads)]
            if stepped and waited is not None:
                now_waited = delay.read()
                if now_waited is not None:
                    policy.observe(time.perf_counter() - began, now_waited - waited, others(threads))
            if len(self._workers) != count:
                self._plan_most()

    def _plan_most(self) -> None:
        """The policy's upper bound: the most threads any attached model's plan gives."""
        assert self.policy is not None
        self.policy.set_most(max((w.backend.threads for w in self._workers if w.backend is not None), default=1))


_decoder: _DecodeThread | None = None
_decoder_lock = threading.Lock()


def _decode_thread() -> _DecodeThread:
    """The process's decode thread, started on first use (and again in a forked child, which has none)."""
    global _decoder
    with _decoder_lock:
        if _decoder is None or _decoder.pid != os.getpid():
            _decoder = _DecodeThread()
        return _decoder


def _as_client_error(error: BaseException) -> BaseException:
    """An error for the request's caller: ours as they are (they say what to do), others wrapped with the cause."""
    if isinstance(error, LlmClientError):
        return error
    logger.warning("generation failed: %r", error)
    failure = GenerationError(f"the model failed while answering: {type(error).__name__}: {error}")
    failure.__cause__ = error
    return failure
