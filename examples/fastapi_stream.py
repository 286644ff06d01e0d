"""A FastAPI app that streams a local model's answer as server-sent events, and stops generating when the
client goes away.

    python -m uvicorn examples.fastapi_stream:app --port 8000      # from the repository root
    curl -N localhost:8000/chat -H 'content-type: application/json' -d '{"prompt": "Tell me a story."}'
    curl localhost:8000/stats

The model is loaded once, in the app's lifespan, and closed at shutdown. `POST /chat` answers with
`text/event-stream`: one `data: {"text": ...}` event per piece of the answer, then `event: done` with the finish
reason and token usage. `GET /stats` lists the streams served so far: how many chunks each sent and how it ended
(`stop`, `length`, `cancelled`, or `running`).

What happens when a client disconnects mid-answer: uvicorn reports the closed connection, and Starlette's
`StreamingResponse` cancels the task that iterates `sse_events` and sends its events. The cancellation reaches
the `async for` over `client.stream()`, and the stream's exit tells the model's worker to stop at the next
token, so nobody pays for tokens no one reads. (Should the cancellation land while an event is being sent, the
generator is instead closed when Python finalizes it; `aclosing` then closes the model's stream right away.)
`/stats` shows the outcome: the stream is `cancelled` and its chunk count stops growing.

The first start downloads SmolLM2-135M-Instruct (about 100 MB) into the cache (`$LLMCLIENT_CACHE_DIR`, else the
user cache directory); `HF_ENDPOINT` points it at a mirror or a LocalHub instead of huggingface.co.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from llmclient import LlmClient

logger = logging.getLogger("uvicorn.error")  # uvicorn shows this logger's INFO lines by default


class ChatRequest(BaseModel):
    """The body of `POST /chat`."""

    prompt: str = Field(min_length=1)
    max_tokens: int = Field(default=256, ge=1, le=4096)
    temperature: float = Field(default=0.7, ge=0.0, le=5.0)


@dataclass
class StreamRecord:
    """One streamed answer as `/stats` reports it."""

    id: int
    max_tokens: int
    chunks: int = 0
    """Pieces of text sent so far (about one per generated token)."""
    state: str = "running"
    """`running`, then the finish reason (`stop`, `length`), or `cancelled` when the client left first."""
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None
    """How long the stream ran, once it has ended."""


@dataclass
class Streams:
    """Every stream served since startup (a real app would keep a bounded window or export metrics)."""

    records: list[StreamRecord] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def new(self, max_tokens: int) -> StreamRecord:
        """A record for a stream that is starting."""
        record = StreamRecord(next(self._ids), max_tokens)
        self.records.append(record)
        return record


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, object]]:
    """Load the model before the first request is served; free it at shutdown."""
    async with await LlmClient.llama_cpp().smollm2_135m_instruct().init() as client:
        if client.plan is not None:
            logger.info("model loaded: %s on %s", client.plan.file.filename, client.plan.device)
        yield {"llm": client, "streams": Streams()}  # reachable from every request as request.state.<name>


app = FastAPI(title="llmclient streaming example", lifespan=lifespan)


def sse(data: dict[str, object], event: str | None = None) -> str:
    """One server-sent event carrying `data` as JSON."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n"


async def sse_events(client: LlmClient, body: ChatRequest, record: StreamRecord) -> AsyncIterator[str]:
    """The answer to `body.prompt` as server-sent events, counted in `record`."""
    try:
        # aclosing: if this generator is closed rather than cancelled, the model's stream is closed at once too
        async with contextlib.aclosing(
            client.stream(body.prompt, max_tokens=body.max_tokens, temperature=body.temperature)
        ) as chunks:
            async for chunk in chunks:
                if chunk.text:
                    record.chunks += 1
                    yield sse({"text": chunk.text})
                if chunk.finish_reason is not None:
                    record.state = chunk.finish_reason
                    usage = asdict(chunk.usage) if chunk.usage is not None else None
                    yield sse({"finish_reason": chunk.finish_reason, "usage": usage}, event="done")
    finally:
        if record.state == "running":  # left before the model finished: the client disconnected
            record.state = "cancelled"
        record.seconds = round(time.monotonic() - record.started, 3)
        logger.info("stream %d %s after %d chunks", record.id, record.state, record.chunks)


@app.post("/chat")
async def chat(body: ChatRequest, request: Request) -> StreamingResponse:
    """Stream the model's answer to `body.prompt` as server-sent events."""
    client: LlmClient = request.state.llm
    streams: Streams = request.state.streams
    record = streams.new(body.max_tokens)
    return StreamingResponse(sse_events(client, body, record), media_type="text/event-stream")


@app.get("/stats")
async def stats(request: Request) -> dict[str, object]:
    """The streams served so far and how each ended; `running` counts those still generating."""
    streams: Streams = request.state.streams
    records = [{k: v for k, v in asdict(r).items() if k != "started"} for r in streams.records]
    return {"running": sum(r.state == "running" for r in streams.records), "streams": records}
