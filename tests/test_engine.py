"""The engine seam: `LlmClient` over any `Engine`, `FakeEngine`, requests as typed values, errors in our tree."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import llmclient
from llmclient import (
    UNSET,
    BusyError,
    Capabilities,
    ClientClosedError,
    Engine,
    GenerateRequest,
    GenerationError,
    InvalidRequestError,
    InvalidRequestTypeError,
    InvalidSettingError,
    LlmClient,
    LlmClientError,
    Piece,
    Sampling,
    UnsupportedFeatureError,
    Usage,
)
from llmclient.sampling import INT_MINIMUMS, NUMBER_RANGES
from llmclient.testing import FakeEngine

pytestmark = pytest.mark.anyio


async def test_a_fake_engine_answers_chat_stream_and_ask_with_its_script() -> None:
    engine = FakeEngine(["Hello", " there", "!"])
    async with LlmClient(engine, system_prompt="Be brief.") as client:
        result = await client.chat("Hi", temperature=0.0)
        assert (result.text, result.finish_reason) == ("Hello there!", "stop")
        assert result.usage == Usage(3, 3)  # "Be brief." + "Hi": 3 words; 3 pieces
        chunks = [c async for c in client.stream("Hi")]
        assert [c.text for c in chunks] == ["Hello", " there", "!", ""] and chunks[-1].finish_reason == "stop"
        assert await client.ask("Hi") == "Hello there!"
    first = engine.requests[0]
    assert first.messages == ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"})
    assert first.sampling.temperature == 0.0 and first.sampling.top_p is UNSET


async def test_max_tokens_and_stop_end_a_fake_answer_as_a_real_engines_do() -> None:
    async with LlmClient(FakeEngine("one two three four five")) as client:
        cut = await client.chat("count", max_tokens=2)
        assert (cut.text, cut.finish_reason, cut.usage.completion_tokens) == ("one two", "length", 2)
        stopped = await client.chat("count", stop=["thr"])
        assert (stopped.text, stopped.finish_reason) == ("one two ", "stop")


async def test_requests_start_first_come_first_served_and_a_full_queue_says_busy() -> None:
    engine = FakeEngine(lambda r: f"answer to {r.messages[-1]['content']}", first_delay=0.2)  # type: ignore[index]
    outcomes: dict[int, object] = {}
    async with LlmClient(engine, max_queue=2) as client:

        async def ask(i: int) -> None:
            try:
                outcomes[i] = (await client.chat(f"q{i}")).text
            except BusyError as error:
                outcomes[i] = error

        async with anyio.create_task_group() as tg:
            for i in range(5):  # parallel 1: q0 runs, q1 and q2 wait, q3 and q4 are refused at once
                tg.start_soon(ask, i)
                await anyio.sleep(0.01)  # in this order (q0 is still reading its prompt, 0.2 s)
    assert [outcomes[i] for i in range(3)] == ["answer to q0", "answer to q1", "answer to q2"]
    assert all(isinstance(outcomes[i], BusyError) for i in (3, 4)), outcomes
    assert [r.messages[-1]["content"] for r in engine.started] == ["q0", "q1", "q2"]  # type: ignore[index]
    assert "max_queue" in str(outcomes[3])


@pytest.mark.parametrize("timeout", [None, 5.0])
async def test_a_finished_request_leaves_the_queue_before_chat_returns(timeout: float | None) -> None:
    """With no room to wait (max_queue 0, one at a time), requests one after another each run: the one before
    has left the queue by the time its `chat` returns, or its stream ends or is closed."""
    engine = FakeEngine("a b c")
    async with LlmClient(engine, max_queue=0) as client:
        for _ in range(3):
            assert (await client.chat("q", timeout=timeout)).text == "a b c"
        for _ in range(2):
            assert "".join([c.text async for c in client.stream("q", timeout=timeout)]) == "a b c"
        for _ in range(2):
            async with contextlib.aclosing(client.stream("q", timeout=timeout)) as stream:
                async for chunk in stream:
                    if chunk.text:
                        break  # left early, closed by aclosing: the engine is told now, not when it is collected
        assert (await client.chat("q", timeout=timeout)).finish_reason == "stop"


async def test_a_timeout_stops_the_generation_and_cancelling_a_waiting_request_keeps_the_order() -> None:
    engine = FakeEngine("a b c d e f g h", delay=0.02)
    async with LlmClient(engine) as client:
        with pytest.raises(TimeoutError):
            await client.chat("slow", timeout=0.05)
        with pytest.raises(TimeoutError):
            async for _ in client.stream("slow", timeout=0.05):
                pass
        assert [reason for _, reason in engine.finished] == ["cancelled", "cancelled"]
        assert engine.running == 0, "a timed-out request still holds the engine"

        async with anyio.create_task_group() as tg:
            tg.start_soon(client.chat, "first")  # 8 pieces, 0.14 s
            await anyio.sleep(0.01)
            with anyio.move_on_after(0.01):
                await client.chat("second, cancelled while waiting")
            tg.start_soon(client.chat, "third")
        assert [r.messages[-1]["content"] for r in engine.started[2:]] == ["first", "third"]  # type: ignore[index]


async def test_close_fails_the_queued_requests_and_refuses_new_ones() -> None:
    engine = FakeEngine("a b c d", delay=0.2)
    client = LlmClient(engine)
    outcomes: list[object] = []

    async def ask() -> None:
        try:
            outcomes.append(await client.chat("hi"))
        except ClientClosedError as error:
            outcomes.append(error)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        tg.start_soon(ask)
        await anyio.sleep(0.02)  # the first has its first piece and waits 0.2 s for the next; the second queues
        await client.close()
    queued, running = outcomes  # the queued one fails at once, the running one at its next piece
    assert getattr(running, "finish_reason", None) == "cancelled" and isinstance(queued, ClientClosedError)
    with pytest.raises(ClientClosedError, match="closed"):
        await client.chat("again")


async def test_an_error_in_the_script_reaches_the_caller_and_the_client_stays_usable() -> None:
    script: list[str | BaseException] = ["partial", GenerationError("the model failed while answering: boom")]
    engine = FakeEngine(lambda r: script if r.messages[-1]["content"] == "fail" else "fine")  # type: ignore[index]
    async with LlmClient(engine) as client:
        with pytest.raises(GenerationError, match="boom"):
            await client.chat("fail")
        assert await client.ask("again") == "fine"


class EchoEngine:
    """An engine written here, not in llmclient: it knows only the public protocol."""

    def __init__(self) -> None:
        self.closed = False

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(tools=True)

    async def generate(self, request: GenerateRequest) -> AsyncIterator[Piece]:
        words = (request.messages[-1].get("content") or "").split() if request.messages else []
        for word in reversed(words):
            yield Piece(word + " ")
        yield Piece("", "stop", Usage(len(words), len(words)))

    async def aclose(self) -> None:
        self.closed = True


async def test_an_engine_of_our_own_plugs_in_through_the_public_protocol() -> None:
    engine = EchoEngine()
    assert isinstance(engine, Engine)
    tool = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
    async with LlmClient(engine) as client:
        result = await client.chat("one two three", tools=[tool])
        assert result.text == "three two one " and result.usage == Usage(3, 3)
        assert result.timings.total >= result.timings.first_token >= 0  # measured by the client
    assert engine.closed


async def test_asking_for_what_the_engine_lacks_fails_before_any_work() -> None:
    engine = FakeEngine("never")
    tool = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
    async with LlmClient(engine) as client:
        with pytest.raises(UnsupportedFeatureError, match="does not take tools") as raised:
            await client.chat("what time is it?", tools=[tool])
        assert raised.value.feature == "tools"
    assert engine.requests == []
    unseeded = FakeEngine("never", capabilities=Capabilities(seed=False))
    async with LlmClient(unseeded, defaults=Sampling(seed=7)) as client:
        with pytest.raises(UnsupportedFeatureError, match="no per-request seed") as raised:
            await client.chat("hi")
        assert raised.value.feature == "seed"
        assert (await client.chat("hi", seed=None)).text == "never", "None asks for the engine's own: no seed"
    assert len(unseeded.requests) == 1


async def test_messages_reach_the_engine_whole_and_bad_ones_are_refused_in_our_tree() -> None:
    engine = FakeEngine("ok")
    call = {"id": "call_1", "type": "function", "function": {"name": "now", "arguments": "{}"}}
    conversation: list[dict[str, Any]] = [
        {"role": "user", "content": "What time is it?", "name": "ana"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "12:00", "tool_call_id": "call_1"},
    ]
    async with LlmClient(engine) as client:
        await client.chat(conversation)
        assert list(engine.requests[0].messages or ()) == conversation
        refused: list[tuple[Any, type[Exception], str]] = [
            ([{"role": "wizard", "content": "hi"}], InvalidRequestError, "role 'wizard'"),
            ([{"role": "user", "content": 3}], InvalidRequestTypeError, "content of type int"),
            ([{"role": "user"}], InvalidRequestError, "has no content"),
            ([], InvalidRequestError, "no messages"),
            ({"role": "user", "content": "hi"}, InvalidRequestTypeError, r"wrap a single one in \[ \]"),
        ]
        for messages, kind, message in refused:
            with pytest.raises(kind, match=message):
                await client.chat(messages)
        with pytest.raises(InvalidRequestTypeError, match="unknown sampling option"):
            await client.chat("hi", temprature=0.1)  # type: ignore[call-arg]
    assert len(engine.requests) == 1
    for kind in (InvalidRequestError, InvalidRequestTypeError, UnsupportedFeatureError):
        assert issubclass(kind, LlmClientError)
    assert issubclass(InvalidRequestError, ValueError) and issubclass(InvalidRequestTypeError, TypeError)
    assert not issubclass(llmclient.InsufficientMemoryError, MemoryError)


async def test_none_overrides_a_client_default_and_unset_keeps_it() -> None:
    engine = FakeEngine("ok")
    async with LlmClient(engine, defaults=Sampling(temperature=0.2, max_tokens=50)) as client:
        await client.chat("a")
        await client.chat("b", temperature=None, max_tokens=7)
    kept, overridden = (r.sampling for r in engine.requests)
    assert kept.settings() == {"temperature": 0.2, "max_tokens": 50}
    assert overridden.temperature is None and overridden.settings() == {"max_tokens": 7}


def test_the_builder_and_a_request_accept_exactly_the_same_ranges() -> None:
    builder = LlmClient.llama_cpp()
    for name, (low, high) in NUMBER_RANGES.items():
        for value in (low, high):
            getattr(builder, name)(value)
            Sampling.of({name: value})
        for value in (low - 0.001, high + 0.001):
            with pytest.raises(InvalidRequestError, match=f"{name} must be a number from {low:g} to {high:g}"):
                getattr(builder, name)(value)
            with pytest.raises(InvalidRequestError, match=f"{name} must be a number from {low:g} to {high:g}"):
                Sampling.of({name: value})
    for name, minimum in INT_MINIMUMS.items():
        getattr(builder, name)(minimum)
        for bad in (minimum - 1, 1.5):
            with pytest.raises(InvalidRequestError, match=f"{name} must be a whole number >= {minimum}"):
                getattr(builder, name)(bad)
            with pytest.raises(InvalidRequestError, match=f"{name} must be a whole number >= {minimum}"):
                Sampling.of({name: bad})
    with pytest.raises(InvalidRequestError, match=r"repeat_penalty must be a number from 0\.01 to 10"):
        builder.repeat_penalty(0.0)
    with pytest.raises(InvalidSettingError, match="ctx must be a positive whole number"):
        builder.ctx(0)


async def test_a_builder_default_reaches_a_real_llama_cpp_request(smollm2: Path) -> None:
    """The range the builder accepts is the one the llama.cpp engine runs with: its lowest repeat penalty works."""
    builder = LlmClient.llama_cpp().local(smollm2).ctx(512).parallel(1).temperature(0.0).repeat_penalty(0.01)
    async with await builder.init() as client:
        result = await client.chat("Name a colour.", max_tokens=6)
        assert result.usage.completion_tokens > 0 and result.finish_reason in ("stop", "length")
        tool_history: list[dict[str, Any]] = [
            {"role": "user", "content": "What time is it?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{}"}}]},
            {"role": "tool", "content": "12:00", "tool_call_id": "c1"},
        ]  # fmt: skip
        answered = await client.chat(tool_history, max_tokens=6, repeat_penalty=None)
        assert answered.usage.prompt_tokens > 0
        tool_history[1]["content"] = None  # SmolLM2's template adds content to a string
        with pytest.raises(InvalidRequestError, match="chat template cannot render these messages"):
            await client.chat(tool_history, max_tokens=6)
        assert client.capabilities.cancel_in_prompt and client.capabilities.parallel == 1


def test_llmclient_and_its_testing_tools_import_without_llama_cpp(tmp_path: Path) -> None:
    code = f"""
import sys
sys.modules["llama_cpp"] = None  # as if llama-cpp-python were not installed
import anyio, llmclient, llmclient.testing
from llmclient import LlmClient, ModelCache
from llmclient.testing import FakeEngine

async def main():
    async with LlmClient(FakeEngine("fine")) as client:
        print(await client.ask("hi"))
anyio.run(main)
ModelCache({str(tmp_path)!r})
print("numpy" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["fine", "False"]  # nor does it load numpy for that


async def test_llama_cpps_overflow_note_is_printed_only_when_a_request_could_overflow(
    smollm2: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """4 requests of 8192 share a cache of 32768: no request can pass SmolLM2's trained 8192, so llama.cpp's
    `possible training context overflow` (error level, printed by llama-cpp-python) is not shown; a context of
    9000 per request could pass it, and is."""
    async with await LlmClient.llama_cpp().local(smollm2).ctx(8192).parallel(4).init():
        pass
    assert "possible training context overflow" not in capfd.readouterr().err
    async with await LlmClient.llama_cpp().local(smollm2).ctx(9000).parallel(1).init():
        pass
    assert "n_ctx_seq (9216) > n_ctx_train (8192) -- possible training context overflow" in capfd.readouterr().err
