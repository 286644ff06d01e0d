"""The async client on the real model: requests in order with real timings, cancel, timeouts, queue and close.

The tests taking `engine_client` (or parametrised over `ENGINES`) run on every engine: llama.cpp and mistral.rs
(SmolLM2 requantized to Q8_0 while loading; `test_mistralrs.py` runs the file as it is); the others look at
llama.cpp's own workings.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from llmclient import ChatResult, ClientClosedError, LlmClient, SyncLlmClient
from tests.conftest import ENGINES, builder_for, llama_model, running

pytestmark = pytest.mark.anyio

STORY = "Write a long story about a lighthouse keeper and a storm."


async def test_with_parallel_1_requests_run_one_at_a_time_and_report_their_wait(smollm2: Path) -> None:
    results: dict[int, ChatResult] = {}
    async with await LlmClient.from_path(smollm2, ctx=1024, temperature=0.0, max_tokens=24, parallel=1) as client:

        async def ask(i: int) -> None:
            results[i] = await client.chat(f"Write the number {i} in words.")

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(ask, i)
                await anyio.sleep(0.01)  # arrive in this order
    waits = [results[i].timings.queued for i in range(3)]
    assert waits[0] < waits[1] / 4 and waits[1] < waits[2], f"FIFO: each waits for those before it: {waits}"
    for result in results.values():
        assert result.usage.prompt_tokens > 5 and 0 < result.usage.completion_tokens <= 24
        assert result.timings.total >= result.timings.queued + result.timings.first_token
    assert waits[2] >= results[0].timings.total - results[0].timings.queued - 0.05


async def test_leaving_a_stream_early_or_cancelling_a_chat_frees_the_model(engine_client: LlmClient) -> None:
    client = engine_client
    seen = ""
    async for chunk in client.stream("Count from 1 to 100, one number per line.", max_tokens=200):
        seen += chunk.text
        if "3" in seen:
            break
    with anyio.move_on_after(0.3):
        await client.chat(STORY, max_tokens=500)  # cancelled while it reads its prompt or generates
    answer = await client.chat("What is the capital of France? Answer in one word.", max_tokens=16)
    # freed at the next token: it waited less than its own short answer took (the stream had 190 tokens to go)
    assert "Paris" in answer.text and answer.timings.queued < answer.timings.total - answer.timings.queued
    for _ in range(4):  # on a loaded machine a generation thread may see its cancel only some tokens later: up to
        if not running(client):  # four short answers (32 tokens), far fewer than either request had to go (hundreds)
            break
        await client.chat("Say hi.", max_tokens=8)
    assert running(client) == 0, "the stream left early, or the chat cancelled, is not still generating"


async def test_eight_concurrent_identical_prompts_all_complete(engine_client: LlmClient) -> None:
    """Identical prompts have equal token lengths: mistral.rs prefilling two of them in one batch fails them all
    (`input tensor is not contiguous`), which its engine's admission lock prevents. Four chats, four streams."""
    client = engine_client
    question = "Name three colours."
    results: list[tuple[str, str, int]] = []

    async def chat() -> None:
        result = await client.chat(question, max_tokens=16)
        results.append((result.text, result.finish_reason, result.usage.completion_tokens))

    async def stream() -> None:
        chunks = [c async for c in client.stream(question, max_tokens=16)]
        usage = chunks[-1].usage
        assert usage is not None
        results.append(("".join(c.text for c in chunks), chunks[-1].finish_reason or "", usage.completion_tokens))

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(chat if i % 2 else stream)
    assert len(results) == 8
    for text, finish, produced in results:
        assert finish in ("stop", "length") and text and 0 < produced <= 16, results


@pytest.mark.parametrize("engine", ENGINES)
async def test_close_stops_the_running_request_and_fails_the_queued_ones(smollm2: Path, engine: str) -> None:
    client = await builder_for(engine, smollm2).ctx(2048).temperature(0.0).parallel(1).init()
    outcomes: dict[str, object] = {}

    async def ask(key: str) -> None:
        try:
            outcomes[key] = await client.chat("Count from 1 to 1000, one number per line.", max_tokens=1500)
        except ClientClosedError as error:
            outcomes[key] = error

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask, "running")
        await anyio.sleep(0.3)
        tg.start_soon(ask, "queued")
        await anyio.sleep(0.05)
        await client.close()
    running, queued = outcomes["running"], outcomes["queued"]
    assert isinstance(running, ChatResult) and running.finish_reason == "cancelled"
    assert running.usage.completion_tokens < 1500
    assert isinstance(queued, ClientClosedError)
    with pytest.raises(ClientClosedError):
        await client.chat("hello")


async def test_leaving_a_stream_early_prints_nothing(smollm2: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """llama.cpp reports every decode stopped by its abort callback on stderr, at error level (`decode: removing
    memory module entries ...`). Only a batch that reads a prompt is stopped for a cancel; a step of generated
    tokens finishes (one token's time), so an app whose clients leave streams early prints nothing."""
    async with await LlmClient.from_path(smollm2, ctx=1024, temperature=0.0, parallel=2) as client:
        alone = (await client.chat("What is the capital of France? Answer in one word.", max_tokens=16)).text
        for _ in range(3):
            async for chunk in client.stream("Count from 1 to 100, one number per line.", max_tokens=200):
                if chunk.text.strip() == "3":
                    break
        decoder = llama_model(client)._decoder
        async with anyio.create_task_group() as tg:  # a chat cancelled once it generates (not by a clock: on a
            tg.start_soon(lambda: client.chat(STORY, max_tokens=500))  # loaded machine its prompt read takes long)
            while not any(r.produced >= 2 for r in list(decoder._running)):
                await anyio.sleep(0.005)
            tg.cancel_scope.cancel()
        after = (await client.chat("What is the capital of France? Answer in one word.", max_tokens=16)).text
    assert after == alone
    printed = capfd.readouterr()
    assert "removing memory module entries" not in printed.err + printed.out, printed.err[-500:]


async def test_complete_runs_past_llama_cpp_pythons_16_token_default(smollm2: Path) -> None:
    async with await LlmClient.from_path(smollm2, ctx=1024, temperature=0.0) as client:
        result = await client.complete("1, 2, 3, 4, 5, 6,", max_tokens=40)
        assert result.usage.completion_tokens == 40 and result.finish_reason == "length"
        with pytest.raises(ValueError, match="the prompt is empty"):
            await client.complete("")
        with pytest.raises(TypeError, match="wrap a single one in"):
            await client.chat({"role": "user", "content": "hi"})  # type: ignore[arg-type]


async def test_greedy_output_stops_history_and_context_limits(smollm2: Path) -> None:
    from llmclient import ContextOverflowError

    async with await LlmClient.from_path(smollm2, ctx=512, temperature=0.0) as client:
        question = "List three colours, comma separated."
        first, again = await client.chat(question, max_tokens=20), await client.chat(question, max_tokens=20)
        assert first.text == again.text, "greedy decoding is deterministic"
        assert again.usage.cached_tokens == again.usage.prompt_tokens - 1, "the same prompt is not evaluated twice"

        history = [
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Nice to meet you, Ada."},
        ]
        await client.chat([*history, {"role": "user", "content": "Say hi."}], max_tokens=8)
        turn = await client.chat([*history, {"role": "user", "content": "What is my name?"}], max_tokens=12)
        reused = turn.usage.cached_tokens
        alone = await client.chat("What is my name?", max_tokens=1)
        assert turn.usage.prompt_tokens >= alone.usage.prompt_tokens + 15, "the history goes through the template"
        assert reused > 20, "a chat's history is reused from the KV cache"

        counted = await client.complete("1, 2, 3, 4, 5,", max_tokens=30)
        stopped = await client.complete("1, 2, 3, 4, 5,", max_tokens=30, stop=[" 9"])
        assert " 9" in counted.text and stopped.finish_reason == "stop"
        assert stopped.text == counted.text[: counted.text.index(" 9")], "the stop sequence and all after it cut"
        assert (await client.complete("Once", max_tokens=5)).finish_reason == "length"

        with pytest.raises(ContextOverflowError, match=r"the prompt is \d+ tokens but the context holds 512") as e:
            await client.complete("word " * 600)
        assert e.value.prompt_tokens > 512 and e.value.n_ctx == 512
        assert "Paris" in (await client.chat("What is the capital of France? One word.", max_tokens=8)).text


async def test_a_full_queue_says_busy_at_once_and_bad_settings_are_refused(engine_client: LlmClient) -> None:
    from llmclient import BusyError

    client = LlmClient(engine_client.engine, defaults=engine_client.defaults, max_queue=2)  # left open: shared
    parallel = client.capabilities.parallel or 1
    outcomes: list[object] = []

    async def ask() -> None:
        try:
            outcomes.append(await client.chat("Count from 1 to 50.", max_tokens=20))
        except BusyError as error:
            outcomes.append(error)

    async with anyio.create_task_group() as tg:
        for _ in range(parallel + 4):  # `parallel` run, two wait, two are refused
            tg.start_soon(ask)
            await anyio.sleep(0.02)
    busy = [o for o in outcomes if isinstance(o, BusyError)]
    assert len(busy) == 2 and "max_queue" in str(busy[0])
    assert sum(isinstance(o, ChatResult) for o in outcomes) == parallel + 2

    cases: list[tuple[dict[str, Any], str]] = [
        ({"temperature": 7}, "temperature must be a number from 0 to 5"),
        ({"top_p": 1.5}, "top_p must be a number from 0 to 1"),
        ({"top_k": -1}, "top_k must be a whole number >= 0"),
        ({"max_tokens": 0}, "max_tokens must be a whole number >= 1"),
        ({"stop": 3}, "stop must be a string or a list of strings"),
    ]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            await client.chat("hi", **options)
    with pytest.raises(ValueError, match="role 'wizard'"):
        await client.chat([{"role": "wizard", "content": "hi"}])
    with pytest.raises(TypeError, match="content of type int"):
        await client.chat([{"role": "user", "content": 3}])
    with pytest.raises(ValueError, match="no messages"):
        await client.chat([])


async def test_a_timeout_stops_the_request(engine_client: LlmClient) -> None:
    client = engine_client
    with pytest.raises(TimeoutError):
        await client.chat("Count from 1 to 500.", max_tokens=800, timeout=0.3)
    quick = await client.chat("What is the capital of France? One word.", max_tokens=8)
    waited, took = quick.timings.queued, quick.timings.total - quick.timings.queued
    assert "Paris" in quick.text and waited < took, f"the timed-out request stopped at once: {waited=} {took=}"
    for _ in range(4):  # as above: a thread slow to see its cancel has up to four short answers' time (32 of 800)
        if not running(client):
            break
        await client.chat("Say hi.", max_tokens=8)
    assert running(client) == 0, "the timed-out request is not still generating"


async def test_a_worker_failure_reaches_its_caller_and_the_client_stays_usable(
    smollm2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmclient import GenerationError
    from llmclient.backends.llama_cpp._model import LlamaCppModel as LlamaCppBackend

    async with await LlmClient.from_path(smollm2, ctx=1024, temperature=0.0) as client:
        real = LlamaCppBackend.prepare
        calls = {"n": 0}

        def fails_once(self: LlamaCppBackend, request: object) -> object:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("simulated fault inside the worker")  # a disk or driver fault cannot be real here
            return real(self, request)  # type: ignore[arg-type]

        monkeypatch.setattr(LlamaCppBackend, "prepare", fails_once)
        with pytest.raises(GenerationError, match="simulated fault") as raised:
            await client.chat("hello")
        assert isinstance(raised.value.__cause__, RuntimeError)
        assert "Paris" in (await client.chat("What is the capital of France? One word.", max_tokens=8)).text


async def test_twenty_concurrent_chats_one_at_a_time_are_answered_in_order_as_if_alone(smollm2: Path) -> None:
    questions = [f"What is {n} plus {n}?" for n in range(4)]
    async with await LlmClient.from_path(smollm2, ctx=1024, temperature=0.0, max_tokens=12, parallel=1) as client:
        alone = {q: (await client.chat(q)).text for q in questions}
        answers: list[tuple[int, str, float]] = []

        async def ask(i: int) -> None:
            result = await client.chat(questions[i % 4])
            answers.append((i, result.text, result.timings.queued))

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(ask, i)
                await anyio.sleep(0.002)
    assert len(answers) == 20
    assert [i for i, _, _ in answers] == list(range(20)), "served in arrival order"
    assert all(text == alone[questions[i % 4]] for i, text, _ in answers), "no state leaks between requests"


async def test_cancelling_during_a_long_prompt_frees_the_model_at_once(smollm2: Path) -> None:
    filler = " ".join(f"item{n}" for n in range(400))
    async with await LlmClient.from_path(smollm2, ctx=2048, temperature=0.0) as client:
        started = anyio.current_time()
        await client.complete("A " + filler, max_tokens=1)
        full = anyio.current_time() - started  # evaluating the whole prompt, as the baseline

        with anyio.move_on_after(full * 0.1):
            await client.complete("B " + filler, max_tokens=1)  # a different prompt: nothing cached
        nxt = await client.complete("C", max_tokens=1)
    assert nxt.timings.queued < 0.5 * full, f"waited {nxt.timings.queued:.3f} s; the prompt takes {full:.3f} s"


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_the_client_runs_on_asyncio_and_trio(smollm2: Path, anyio_backend: str) -> None:
    async with await LlmClient.from_path(smollm2, ctx=1024, temperature=0.0) as client:
        assert "Paris" in (await client.chat("What is the capital of France? One word.", max_tokens=8)).text
        pieces = [c.text async for c in client.stream("Count from 1 to 5.", max_tokens=12)]
    assert len(pieces) > 3


# The baseline for the loop-lag test: llama-cpp-python generating the same tokens in another process, one line to the
# test's event loop per token, at the decode thread's priority (nice 0 unless LLMCLIENT_WORKER_NICE says otherwise).
_STREAMING_CHILD = """
import os, sys
from llama_cpp import Llama
os.nice(int(sys.argv[4]))
model = Llama(sys.argv[1], n_ctx=2048, n_threads=int(sys.argv[2]), verbose=False)
prompt = model.tokenize(sys.argv[3].encode())
print("ready", flush=True)
for _ in sys.stdin:
    for produced, _token in enumerate(model.generate(prompt, temp=0.0, top_k=1, reset=True), start=1):
        print(produced, flush=True)
        if produced == 256:
            break
"""


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_the_event_loop_keeps_ticking_during_a_long_generation(smollm2: Path, anyio_backend: str) -> None:
    """A 1 ms ticker runs beside a 256-token stream, and, side by side, beside a baseline that holds nothing of ours:
    llama-cpp-python generating 256 tokens in another process and sending each to this loop as a line. The baseline
    carries this machine's noise and the loop's own (after any wake-up, epoll rounds the next timer up to a whole
    millisecond, so both p99s sit near 1 ms). In at least one of five attempts (the order of the two alternates) the
    stream's lag must be level with the baseline's: p99 at most 1.5 times it, and at most 2 more late ticks (over
    5 ms). Code of ours that blocked the loop would show in every attempt: a 6 ms sleep in 3% of the loop's deliveries
    fails it, and so does 1.5 ms in each."""
    from anyio.streams.buffered import BufferedByteReceiveStream

    Lag = tuple[float, int, int]  # p99 ms, ticks over 5 ms, ticks

    async def with_ticker(work: Any) -> Lag:
        lags: list[float] = []
        done = anyio.Event()

        async def ticker() -> None:
            while not done.is_set():
                before = anyio.current_time()
                await anyio.sleep(0.001)
                lags.append((anyio.current_time() - before - 0.001) * 1000)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            await work()
            done.set()
        lags.sort()
        return lags[int(len(lags) * 0.99)], sum(lag > 5.0 for lag in lags), len(lags)

    def level(mine: Lag, base: Lag) -> bool:
        return mine[0] <= 1.5 * base[0] and mine[1] <= base[1] + 2

    from llmclient.constants import worker_nice

    threads = str(os.cpu_count() or 1)
    attempts: list[tuple[Lag, Lag]] = []
    async with await anyio.open_process(
        [sys.executable, "-c", _STREAMING_CHILD, str(smollm2), threads, STORY, str(worker_nice())]
    ) as child:
        assert child.stdin is not None and child.stdout is not None
        lines = BufferedByteReceiveStream(child.stdout)
        assert await lines.receive_until(b"\n", 100) == b"ready"

        async def baseline() -> None:
            assert child.stdin is not None
            await child.stdin.send(b"go\n")
            while await lines.receive_until(b"\n", 100) != b"256":
                pass

        async with await LlmClient.from_path(smollm2, ctx=2048, temperature=0.0) as client:

            async def ours() -> None:
                chunks = [c async for c in client.stream(STORY, max_tokens=256)]
                assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 256

            await ours()  # both warmed up
            await baseline()
            for attempt in range(5):
                if attempt % 2:
                    base = await with_ticker(baseline)
                    mine = await with_ticker(ours)
                else:
                    mine = await with_ticker(ours)
                    base = await with_ticker(baseline)
                attempts.append((mine, base))
                if level(mine, base):
                    break
        await child.stdin.aclose()
    summary = "; ".join(
        f"ours p99 {m[0]:.2f} ms, {m[1]} late of {m[2]} vs baseline p99 {b[0]:.2f} ms, {b[1]} late of {b[2]}"
        for m, b in attempts
    )
    assert all(m[2] > 300 and b[2] > 300 for m, b in attempts), f"the ticker hardly ran: {summary}"
    assert any(level(m, b) for m, b in attempts), f"the loop lags behind the baseline's: {summary}"


async def test_every_model_decodes_on_the_one_decode_thread_of_the_process(
    smollm2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """llama.cpp's CPU backend (OpenMP builds) starts a team of compute threads for each OS thread that decodes,
    and with two teams taking turns every generation runs 2-3 times slower on 2 cores (bench/omp_teams.py,
    bench/two_models.py). So every model of the process decodes on one thread only: loading, chats, streams,
    concurrent requests, a cancel, a second model, and the sync client's calls alike."""
    import llama_cpp

    callers: dict[int, set[int]] = {}
    real_decode = llama_cpp.llama_decode

    def spy(ctx: Any, batch: Any) -> Any:
        callers.setdefault(getattr(ctx, "value", None) or id(ctx), set()).add(threading.get_native_id())
        return real_decode(ctx, batch)

    monkeypatch.setattr(llama_cpp, "llama_decode", spy)
    async with await LlmClient.from_path(smollm2, ctx=1024, parallel=4, temperature=0.0) as client:
        await client.chat("Hi", max_tokens=4)
        async with anyio.create_task_group() as tg:
            for i in range(4):
                tg.start_soon(client.chat, f"Count to {i + 3}.")
        with anyio.move_on_after(0.05):
            await client.chat(STORY, max_tokens=200)
        assert [c.text async for c in client.stream("Say hello.", max_tokens=8)]
    with await anyio.to_thread.run_sync(lambda: SyncLlmClient.from_path(smollm2, ctx=512)) as sync_client:
        await anyio.to_thread.run_sync(lambda: sync_client.chat("Hi", max_tokens=4))
        await anyio.to_thread.run_sync(lambda: list(sync_client.stream("Hi", max_tokens=4)))
    assert len(callers) == 2, f"two models, two contexts: {callers}"
    threads = set().union(*callers.values())
    assert len(threads) == 1, f"the models decoded on several threads: {callers}"
    assert threading.get_native_id() not in threads, "a decode ran on the event loop"


async def test_two_models_take_turns_a_step_each_and_keep_their_own_order(
    smollm2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Model B's requests, asked while model A streams a long answer, start within a few of A's steps, not after
    A's answer, and A keeps streaming while B answers and while a third model loads (loading is not done on the
    decode thread: the third model's load waits, on its loading thread, until A has decoded more tokens, which would
    never come if the load held the decode thread; a cached 98 MB file otherwise loads faster than one of A's steps
    on a busy machine). Each model answers its own requests in arrival order. Counted in A's tokens, not seconds."""
    from llmclient.backends.llama_cpp import _model

    async with (
        await LlmClient.from_path(smollm2, ctx=1024, parallel=1, temperature=0.0) as a,
        await LlmClient.from_path(smollm2, ctx=1024, parallel=1, temperature=0.0) as b,
    ):
        events: list[str] = []

        async def stream_a() -> None:
            async for _ in a.stream(STORY, max_tokens=300):
                events.append("a")

        async def ask_b(i: int) -> None:
            async for chunk in b.stream(f"What is {i} plus {i}?", max_tokens=6):
                if chunk.text and f"b{i} first" not in events:
                    events.append(f"b{i} first")
            events.append(f"b{i} done")

        async with anyio.create_task_group() as tg:
            tg.start_soon(stream_a)
            while events.count("a") < 20:
                await anyio.sleep(0.005)
            events.append("ask b")
            async with anyio.create_task_group() as asks:
                for i in range(3):
                    asks.start_soon(ask_b, i)
                    await anyio.sleep(0.001)
            decoder = llama_model(a)._decoder  # A's progress on the decode thread

            def a_produced() -> int:
                return sum(r.produced for r in decoder._running)

            advanced: list[bool] = []

            class SlowLoad(_model.LlamaCppModel):
                def __init__(self, *args: Any, **kwargs: Any) -> None:
                    if threading.current_thread() is not threading.main_thread():  # the loading thread
                        start, waited = a_produced(), 0.0
                        while a_produced() < start + 2 and waited < 60:
                            time.sleep(0.01)
                            waited += 0.01
                        advanced.append(a_produced() >= start + 2)
                    super().__init__(*args, **kwargs)

            monkeypatch.setattr(_model, "LlamaCppModel", SlowLoad)
            events.append("load c")
            async with await LlmClient.from_path(smollm2, ctx=512, parallel=1) as c:
                events.append("c loaded")
                await c.chat("Hi", max_tokens=2)

    def a_between(start: str, end: str) -> int:
        return events[events.index(start) + 1 : events.index(end)].count("a")

    assert a_between("ask b", "b0 first") <= 10, f"B waited for A: {events}"
    assert a_between("ask b", "b2 done") >= 3, f"A stood still while B answered: {events}"
    assert [e for e in events if e.endswith(" done")] == ["b0 done", "b1 done", "b2 done"], "B's order"
    assert "a" in events[events.index("c loaded") :], "A finished before the third model loaded: make its answer longer"
    assert advanced == [True], "A stood still on the decode thread while a model loaded"
