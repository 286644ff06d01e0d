"""The systems `bench/peers.py` measures: how each is opened in its own process and streams an answer.

Each opener is an async context manager yielding a `Peer` (a `Stream` function, the server's pid if any, and a
one-request-at-a-time fallback where batching fails). See `bench/peers.py` for what is measured and how.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import free_port, llama_server_command  # bench/ is on sys.path when run as a script

CONCURRENT = 8
CTX = 1024
SENTINEL = "\x00user\x00"

Stream = Callable[[list[dict[str, str]], int], AsyncIterator[str]]
"""Streams the answer to these messages, at most this many tokens, as text pieces."""


@dataclass(frozen=True)
class Settings:
    """What every system gets, passed to each child process as JSON."""

    model: str
    tokens: int
    threads: int
    gpu: bool
    t0: float = 0.0
    """The parent's `time.time()` just before it spawned this process."""
    gpt4all_template: str | None = None
    """The model's chat template rendered around `{0}`, for gpt4all's prompt template."""
    loop: str = "default"
    """The app's asyncio loop: `default`, or `select` (a `SelectorEventLoop` on `select()`)."""


@dataclass
class Peer:
    """An opened system: how to stream, and what the measurement needs to know about it."""

    stream: Stream
    server_pid: int | None = None
    serial_fallback: Callable[[], contextlib.AbstractAsyncContextManager[Peer]] | None = None
    """For a batch that fails: the same system taking one request at a time."""


# --- the systems, each opened in its own process --------------------------------------------------------------


async def thread_stream(
    pieces: Callable[[], Iterator[str]], lock: asyncio.Lock | None = None, executor: Executor | None = None
) -> AsyncIterator[str]:
    """Run a blocking iterator in `asyncio.to_thread` (or on `executor`), handing each piece to the event loop as it
    comes; with `lock`, one such stream at a time (for a model object that is not thread-safe)."""
    if lock is not None:
        async with lock:
            async for piece in thread_stream(pieces, executor=executor):
                yield piece
        return
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()

    def pump() -> None:
        try:
            for piece in pieces():
                if piece:
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
        except BaseException as exc:
            loop.call_soon_threadsafe(queue.put_nowait, exc)
            return
        loop.call_soon_threadsafe(queue.put_nowait, None)

    done = asyncio.ensure_future(asyncio.to_thread(pump) if executor is None else loop.run_in_executor(executor, pump))
    while (item := await queue.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item
    await done


@contextlib.asynccontextmanager
async def open_llmclient(s: Settings, parallel: int = CONCURRENT) -> AsyncIterator[Peer]:
    from llmclient import LlmClient

    # CPU: cpu_only, so a GPU machine does not offload; --gpu: the plan offloads (all of a model this small)
    options: dict[str, Any] = {} if s.gpu else {"cpu_only": True}
    client = await LlmClient.from_path(s.model, ctx=CTX, threads=s.threads, parallel=parallel, **options)

    async def stream(messages: list[dict[str, str]], tokens: int) -> AsyncIterator[str]:
        async for chunk in client.stream(messages, max_tokens=tokens, temperature=0.0):
            if chunk.text:
                yield chunk.text

    try:
        yield Peer(stream)
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def open_to_thread(s: Settings, executor: Executor | None = None) -> AsyncIterator[Peer]:
    import llama_cpp

    llm: Any = llama_cpp.Llama(s.model, n_ctx=CTX, n_threads=s.threads, n_threads_batch=s.threads, flash_attn=True,
                          n_gpu_layers=-1 if s.gpu else 0, verbose=False)  # fmt: skip
    lock = asyncio.Lock()

    async def stream(messages: list[dict[str, str]], tokens: int) -> AsyncIterator[str]:
        def pieces() -> Iterator[str]:
            for chunk in llm.create_chat_completion(messages, stream=True, max_tokens=tokens, temperature=0.0):
                yield chunk["choices"][0]["delta"].get("content") or ""

        async for piece in thread_stream(pieces, lock, executor):
            yield piece

    try:
        yield Peer(stream)
    finally:
        llm.close()


@contextlib.asynccontextmanager
async def open_one_thread(s: Settings) -> AsyncIterator[Peer]:
    """`to_thread` on one dedicated thread: llama.cpp (OpenMP) starts a team of compute threads for each OS thread
    that decodes, and `asyncio.to_thread` hands calls to any of the executor's threads (bench/omp_teams.py)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama") as executor:
        async with open_to_thread(s, executor) as peer:
            yield peer


@contextlib.asynccontextmanager
async def open_server(s: Settings) -> AsyncIterator[Peer]:
    openai: Any = importlib.import_module("openai")  # Any: CI type-checks without the bench extra

    port = free_port()
    with tempfile.TemporaryFile() as log:
        command = llama_server_command(Path(s.model), port, CTX, s.threads, s.gpu)
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)  # noqa: ASYNC220
        try:
            client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"the server exited: {log.read().decode(errors='replace')[-2000:]}")
                try:
                    await client.models.list()
                    break
                except openai.APIConnectionError:
                    await asyncio.sleep(0.05)

            async def stream(messages: list[dict[str, str]], tokens: int) -> AsyncIterator[str]:
                response = await client.chat.completions.create(
                    model="local", messages=messages, max_tokens=tokens, temperature=0.0, stream=True,
                    extra_body={"repeat_penalty": 1.0},  # the server's default is 1.1
                )  # fmt: skip
                async for chunk in response:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content

            yield Peer(stream, server_pid=server.pid)
            await client.close()
        finally:
            server.terminate()
            server.wait()


@contextlib.asynccontextmanager
async def open_mistralrs(s: Settings, as_is: bool = False) -> AsyncIterator[Peer]:
    """mistral.rs through llmclient's engine (`LlmClient.mistral_rs()`): its workarounds (the admission lock, the
    lock around calls, streaming only) replace what this bench did by hand before (a submission lock, and a rerun on
    a `Runner(max_seqs=1)` when the batch failed); `as_is`: the file's weights as they are, not requantized."""
    from llmclient import LlmClient

    builder = LlmClient.mistral_rs().local(s.model).ctx(CTX).threads(s.threads).parallel(CONCURRENT)
    client = await (builder.in_situ_quant(None) if as_is else builder).init()

    async def stream(messages: list[dict[str, str]], tokens: int) -> AsyncIterator[str]:
        async for chunk in client.stream(messages, max_tokens=tokens, temperature=0.0):
            if chunk.text:
                yield chunk.text

    try:
        yield Peer(stream)
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def open_mistralrs_as_is(s: Settings) -> AsyncIterator[Peer]:
    async with open_mistralrs(s, as_is=True) as peer:
        yield peer


@contextlib.asynccontextmanager
async def open_gpt4all(s: Settings) -> AsyncIterator[Peer]:
    gpt4all: Any = importlib.import_module("gpt4all")

    path = Path(s.model)
    model = gpt4all.GPT4All(path.name, model_path=path.parent, allow_download=False, device="cuda" if s.gpu else "cpu",
                    n_threads=s.threads, n_ctx=CTX, ngl=100 if s.gpu else 0)  # fmt: skip
    lock = asyncio.Lock()
    template = s.gpt4all_template or "{0}"

    async def stream(messages: list[dict[str, str]], tokens: int) -> AsyncIterator[str]:
        def pieces() -> Iterator[str]:
            with model.chat_session(system_prompt="", prompt_template=template):
                yield from model.generate(
                    messages[-1]["content"], max_tokens=tokens, temp=0.0, repeat_penalty=1.0, streaming=True
                )

        async for piece in thread_stream(pieces, lock):
            yield piece

    try:
        yield Peer(stream)
    finally:
        model.close()


OPENERS: dict[str, Callable[[Settings], contextlib.AbstractAsyncContextManager[Peer]]] = {
    "llmclient": open_llmclient, "to_thread": open_to_thread, "one_thread": open_one_thread,
    "llama_cpp.server": open_server,
    "mistralrs": open_mistralrs, "mistralrs.gguf": open_mistralrs_as_is, "gpt4all": open_gpt4all,
}  # fmt: skip


def gpt4all_template(model: Path) -> str | None:
    """The file's chat template rendered for one user message `{0}`: gpt4all's prompt template for a sideloaded
    model (its own default is Alpaca), so that it sees the same text the llama.cpp systems do."""
    import jinja2

    from llmclient._gguf.parse import TruncatedHeader, parse_header

    size = 1 << 20
    while True:
        with model.open("rb") as f:
            data = f.read(size)
        try:
            template = parse_header(data).fields.get("tokenizer.chat_template")
            break
        except TruncatedHeader as exc:
            size = max(exc.need, 2 * size)
    if not isinstance(template, str):
        return None
    message = {"role": "user", "content": SENTINEL}
    text = jinja2.Environment().from_string(template).render(messages=[message], add_generation_prompt=True)
    return text.replace("{", "{{").replace("}", "}}").replace(SENTINEL, "{0}")
