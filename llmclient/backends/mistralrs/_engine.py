"""`MistralRsEngine`: a GGUF model in mistral.rs, in this process, behind the `Engine` protocol.

The model lives in mistral.rs's own engine (its scheduler batches the sequences that are generating); this side
queues requests and streams each on a generation thread of its own (`_worker.py`), with mistral.rs's known bugs
contained (`workarounds.py`). Importing this package does not import `mistralrs`: `load` does, after setting its
environment.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio

from llmclient.backends import Capabilities, GenerateRequest, Piece
from llmclient.backends._loop import loop_sender
from llmclient.backends.mistralrs._settings import MistralRsSettings
from llmclient.backends.mistralrs._worker import Job, Worker
from llmclient.backends.mistralrs.workarounds import import_mistralrs, refuse_known_bad
from llmclient.errors import ClientClosedError
from llmclient.metadata import read_gguf_info
from llmclient.types import Timings

__all__ = ["MistralRsEngine"]


class MistralRsEngine:
    """A mistral.rs model loaded in this process; make one with `await MistralRsEngine.load(path, settings)`."""

    def __init__(self, worker: Worker, settings: MistralRsSettings) -> None:
        """Wraps a loaded `Worker`; use `load`."""
        self._worker = worker
        self.settings = settings
        # no tools yet: answers' tool calls have no place in a `Piece` until the client's tool types land; no
        # embeddings from a GGUF (mistral.rs embeds only with safetensors models); no per-request seed (its seed
        # is the Runner's); a long prompt is read to its end before a cancel is seen
        self._capabilities = Capabilities(structured_output=True, parallel=max(1, settings.parallel), seed=False)

    @classmethod
    async def load(cls, path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                   settings: MistralRsSettings) -> MistralRsEngine:  # fmt: skip
        """Load the GGUF at `path` (or a split model's shards, in order) on a thread of its own, offline, with the
        file's own tokenizer and chat template; `UnsupportedModelError` for a model mistral.rs gets wrong.
        Cancellable: a cancelled load frees what it loaded."""
        paths = [Path(p) for p in ([path] if isinstance(path, str | os.PathLike) else path)]
        info = await anyio.to_thread.run_sync(read_gguf_info, paths[0])
        refuse_known_bad(info)

        def load() -> tuple[Any, Any]:
            mistralrs = import_mistralrs(settings.threads)
            names = [p.name for p in paths]
            which = mistralrs.Which.GGUF(
                quantized_model_id=str(paths[0].parent), quantized_filename=names[0] if len(names) == 1 else names
            )
            # token_source="none": a local file needs no hub token, and none is looked up
            runner = mistralrs.Runner(which=which, max_seqs=max(1, settings.parallel), token_source="none",
                                      in_situ_quant=settings.in_situ_quant)  # fmt: skip
            return mistralrs, runner

        worker = Worker(load, settings, name=f"llmclient-mistralrs-{paths[0].name}")
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
        """Structured output; `settings.parallel` requests at once; no per-request seed."""
        return self._capabilities

    async def generate(self, request: GenerateRequest) -> AsyncIterator[Piece]:
        """Queue `request` and stream its pieces; the last carries usage and timings. A chat stops at the next token
        when the caller leaves; a raw prompt (`complete`) is one call mistral.rs cannot stop, which holds back the
        start of other requests until it is done."""
        if self._worker.closed:
            raise ClientClosedError("the client is closed; create a new one with init()")
        send, receive = anyio.create_memory_object_stream[Piece | BaseException](math.inf)
        cancel = threading.Event()

        def offer(item: Piece | BaseException) -> None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                send.send_nowait(item)

        job = Job(request, loop_sender(offer), cancel)
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
                    if item.finish_reason is None:
                        yield item
                        continue
                    yield Piece(item.text, item.finish_reason, item.usage, _timings(job, first, now, item))
                    return
        finally:
            cancel.set()  # left early, cancelled or failed: the generation thread drops the stream at the next token

    async def aclose(self) -> None:
        """Stop the generation threads and free the model; requests still queued get `ClientClosedError`."""
        if not self._worker.closed:
            self._worker.stop()
        await self._worker.join()

    def waiting(self) -> int:
        """Requests queued and not yet started (cancelled ones not counted)."""
        return self._worker.waiting()

    def running(self) -> int:
        """Requests being generated now."""
        return self._worker.running()

    @property
    def admitted(self) -> int:
        """Requests started through the admission lock so far (one prompt prefilled at a time)."""
        return self._worker.admission.admitted


def _timings(job: Job, first: float | None, end: float, last: Piece) -> Timings:
    """Where the request's time went, from when it was queued, started, and its pieces reached the loop."""
    produced = last.usage.completion_tokens if last.usage is not None else 0
    decode = end - (first or end)
    rate = (produced - 1) / decode if decode > 0 and produced > 1 else 0.0
    began = job.started if job.started is not None else job.submitted
    return Timings(began - job.submitted, (first or end) - began, end - job.submitted, rate)
