"""The decode thread that runs every model of the process, and each model's queue of requests (`Worker`).

A model is loaded on a thread of its own, then only the decode thread touches it (llama.cpp's model and context
are not thread-safe). Between two decode steps it takes new requests: a model's oldest waiting one starts as soon
as its model has room for it (a free sequence and its KV space), and nothing overtakes it. Results travel back to
the caller's event loop without blocking the decode thread (`llmclient.backends._loop`).
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import anyio
import anyio.to_thread

from llmclient.backends import Embedded, EmbedRequest, GenerateRequest, Piece
from llmclient.backends.llama_cpp._step import Prepared, PreparedEmbed, StepModel
from llmclient.backends.llama_cpp._threads import RunDelay, Runnable, ThreadPolicy
from llmclient.constants import adaptive_threads, worker_nice
from llmclient.errors import ClientClosedError, GenerationError, LlmClientError

__all__ = ["Job", "Worker"]

logger = logging.getLogger("llmclient")


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
    """A request waiting for, or running on, the decode thread: a generation, or texts to embed."""

    request: GenerateRequest | EmbedRequest
    emit: Callable[[Piece | Embedded | BaseException], None]
    cancel: threading.Event
    submitted: float = 0.0
    """`time.perf_counter()` when it was queued."""
    started: float | None = None
    """When the decode thread began it (None while it waits)."""
    prepared: Prepared | PreparedEmbed | None = None
    """The request as tokens (made on the decode thread where not given: texts to embed come tokenized)."""
    finished: bool = False
    matcher: Any = None
    """The llguidance matcher of a constrained request (made off the decode thread)."""

    def deliver(self, item: Piece | Embedded | BaseException) -> None:
        """What the model reports, passed on; an error, the vectors or a finish reason ends the job."""
        if isinstance(item, BaseException):
            item = _as_client_error(item)
            self.finished = True
        elif isinstance(item, Embedded) or item.finish_reason is not None:
            self.finished = True
        self.emit(item)


class Worker:
    """One model's requests: loaded on a thread of its own, then served first come first served by the process's
    decode thread, until `stop()`."""

    def __init__(self, load: Callable[[], StepModel], name: str = "llmclient-model") -> None:
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
        self.model: StepModel | None = None
        self.closed = False
        # loading takes seconds for a large model: on its own thread, so that other models keep generating; it
        # computes nothing, so it starts no compute team
        threading.Thread(target=self._load_then_attach, name=name, daemon=True).start()

    async def wait_loaded(self) -> StepModel:
        """The model once loaded; re-raises the load's error."""
        await anyio.to_thread.run_sync(self._loaded.wait, abandon_on_cancel=True)  # cancellable while loading
        if self._load_error is not None:
            raise self._load_error
        assert self.model is not None
        return self.model

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
            model = self._load()
        except BaseException as error:  # reported to whoever awaits the load
            self._load_error = error
            self.closed = True
            self._loaded.set()
            self._done.set()
            return
        with self._lock:
            closed = self.closed
            self._attached = not closed
            self.model = model
            if not closed:  # before any stop signal of `stop()` can be posted
                self._decoder.attach(self)
        if closed:  # stopped while loading: free it here; it never decoded
            self._close_model()
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
        assert self.model is not None
        return bool(self._waiting) or bool(self.model.active) or self._stopping

    def _start_waiting(self) -> None:
        """Start waiting jobs in order while the model has room; the first that does not fit blocks the rest."""
        model, waiting = self.model, self._waiting
        assert model is not None
        while waiting:
            job = waiting[0]
            if job.cancel.is_set():
                waiting.popleft()
                self._unwait(job)
                job.emit(Piece("", "cancelled"))
                continue
            try:
                if job.prepared is None:
                    prepared = model.prepare(job.request)
                    job.prepared = replace(prepared, matcher=job.matcher) if job.matcher is not None else prepared
                started = model.start(job.prepared, job.deliver, job.cancel.is_set)
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
        model = self.model
        assert model is not None
        if not self._stopping:
            self._start_waiting()
        if model.active:
            model.set_threads(min(threads, model.threads))
            try:
                model.step()
            except Exception as error:  # a bug of ours: fail what runs rather than hang it
                logger.exception("decode step failed")
                self._fail_running(error)
        with self._lock:
            self._running = [job for job in self._running if not job.finished]
        if self._stopping and not model.active:
            self._close_model()
            return False
        return True

    def _close_model(self) -> None:
        try:
            if self.model is not None:
                self.model.close()
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
        policy.competing = runnable.competing
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
            stepped = any(w.model is not None and w.model.active for w in self._workers)
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
        self.policy.set_most(max((w.model.threads for w in self._workers if w.model is not None), default=1))


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
