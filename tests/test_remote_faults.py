"""The remote engine against a scripted server on 127.0.0.1 (`fake_openai`): what a real server will not do on
demand. Retries only before the first token, strict SSE, typed errors, timeouts, caps, routing, cancellation."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from llmclient import (
    AuthenticationError,
    BusyError,
    ClientClosedError,
    ContextOverflowError,
    InvalidSettingError,
    LlmClient,
    MalformedResponseError,
    RemoteEngine,
    RemoteTimeoutError,
    ServerError,
    ServerUnavailableError,
    StreamInterruptedError,
    ToolCall,
    UnknownModelError,
    UnsupportedFeatureError,
    Usage,
    session_key,
)
from llmclient.backends.remote import _replicas
from llmclient.backends.remote._replicas import Replica
from llmclient.backends.remote._routing import rendezvous
from tests.fake_openai import FakeServer, Out, Request, chunk, hello, stream

pytestmark = pytest.mark.anyio


def dead_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def until(condition: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Wait for `condition` (a liveness bound, not a measurement)."""
    with anyio.fail_after(limit):
        while not condition():
            await anyio.sleep(0.01)


def failing(times: int, status: int, headers: dict[str, str] | None = None) -> Callable[[Request, Out], Any]:
    """A script answering `status` to its first `times` requests, then `Hello there!`."""
    seen = [0]

    async def script(request: Request, out: Out) -> None:
        seen[0] += 1
        if seen[0] <= times:
            await out.status(status, {"error": {"message": f"scripted {status}"}}, headers)
        else:
            await hello(request, out)

    return script


async def test_a_chat_is_one_streamed_request_with_usage_and_the_sampling_named_as_servers_name_it() -> None:
    async with FakeServer() as server:
        builder = LlmClient.remote(server.url + "/v1/").temperature(0.0).max_tokens(9).system_prompt("Be brief.")
        async with await builder.init() as client:
            result = await client.chat("Hi", repeat_penalty=1.1, stop=["\n"], top_k=5)
            chunks = [c async for c in client.stream("Hi")]
    assert (result.text, result.finish_reason, result.usage) == ("Hello there!", "stop", Usage(5, 2))
    assert [c.text for c in chunks] == ["Hello", " there!", ""] and chunks[-1].finish_reason == "stop"
    body = server.generations[0].body
    assert server.generations[0].path == "/v1/chat/completions"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["model"] == "fake-model" and body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (body["temperature"], body["max_tokens"], body["stop"], body["top_k"]) == (0.0, 9, ["\n"], 5)
    assert body["repeat_penalty"] == body["repetition_penalty"] == 1.1
    assert "top_p" not in body  # unset settings are the server's


async def test_complete_uses_the_completions_endpoint() -> None:
    async def script(request: Request, out: Out) -> None:
        await out.start()
        await out.event({"choices": [{"index": 0, "text": "upon a time", "finish_reason": None}]})
        await out.event({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]})
        await out.event("[DONE]")
        await out.end()

    async with FakeServer(script) as server, await LlmClient.remote(server.url).init() as client:
        result = await client.complete("Once", max_tokens=3)
    assert (result.text, result.finish_reason) == ("upon a time", "length")
    assert server.generations[0].path == "/v1/completions" and server.generations[0].body["prompt"] == "Once"


async def test_comment_lines_are_skipped_and_an_error_event_is_a_server_error() -> None:
    async def script(request: Request, out: Out) -> None:
        await out.start()
        await out.raw(": ping\n\n")
        if request.body["messages"][-1]["content"] == "fail":
            await out.event({"error": {"code": 500, "message": "the model crashed"}})
        else:
            await out.event(chunk("fine"))
            await out.raw(": ping\n\n")
            await out.event(chunk(finish="stop"))
        await out.end()

    async with FakeServer(script) as server, await LlmClient.remote(server.url).init() as client:
        assert (await client.chat("hi")).text == "fine"
        with pytest.raises(ServerError, match="the model crashed") as raised:
            await client.chat("fail")
        assert raised.value.status == 500
    assert len(server.generations) == 2  # an error the server reports is not retried


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("data: {not json\n\n", "not JSON"),
        ("<html>502 Bad Gateway</html>\n\n", "no server-sent event"),
        ('data: {"object": "chat.completion.chunk"}\n\n', "without choices"),
        ('data: {"choices": [{"delta": {"content": 7}}]}\n\n', "not a string"),
    ],
)
async def test_a_malformed_stream_is_an_error_not_skipped(written: str, message: str) -> None:
    async def script(request: Request, out: Out) -> None:
        await out.start()
        await out.raw(written)
        await out.event(chunk("text", finish="stop"))
        await out.end()

    async with FakeServer(script) as server, await LlmClient.remote(server.url).init() as client:
        with pytest.raises(MalformedResponseError, match=message):
            await client.chat("hi")
    assert len(server.generations) == 1


async def test_an_answer_that_is_no_event_stream_is_malformed() -> None:
    async def script(request: Request, out: Out) -> None:
        await out.status(200, {"choices": [{"message": {"content": "not streamed"}}]})

    async with FakeServer(script) as server, await LlmClient.remote(server.url).init() as client:
        with pytest.raises(MalformedResponseError, match="not an event stream"):
            await client.chat("hi")


async def test_a_stream_ending_without_finish_reason_is_retried_before_text_and_never_an_empty_success() -> None:
    async def truncated(request: Request, out: Out) -> None:  # llama_cpp.server's interrupted stream
        await out.start()
        await out.event({"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
        await out.event("[DONE]")
        await out.end()

    async with FakeServer(truncated) as server, await LlmClient.remote(server.url).retries(1).init() as client:
        with pytest.raises(MalformedResponseError, match="without a finish reason"):
            await client.chat("hi")
    assert len(server.generations) == 2


async def test_after_text_went_out_a_cut_stream_raises_with_the_partial_text_and_is_not_retried() -> None:
    async def cut(request: Request, out: Out) -> None:
        await out.start()
        await out.event(chunk("Hel"))
        await out.event(chunk("lo"))
        if request.body["messages"][-1]["content"] == "drop":
            return  # the connection closes inside the chunked body: a dropped connection
        await out.event("[DONE]")  # a clean end, but no finish reason
        await out.end()

    async with FakeServer(cut) as server, await LlmClient.remote(server.url).init() as client:
        for ask, cause in (("drop", ServerUnavailableError), ("truncate", MalformedResponseError)):
            seen: list[str] = []
            with pytest.raises(StreamInterruptedError) as raised:
                async for piece in client.stream(ask):
                    seen.append(piece.text)
            assert raised.value.text == "Hello" == "".join(seen)
            assert isinstance(raised.value.__cause__, cause) and raised.value.url == server.url
    assert len(server.generations) == 2


@pytest.mark.parametrize("status", [429, 503])
async def test_a_busy_answer_is_retried_after_its_retry_after(status: int, caplog: pytest.LogCaptureFixture) -> None:
    async with (
        FakeServer(failing(1, status, {"Retry-After": "0.6"})) as server,
        await LlmClient.remote(server.url).init() as client,
    ):
        with caplog.at_level(logging.INFO, logger="llmclient"):
            assert (await client.chat("hi")).text == "Hello there!"
    assert len(server.generations) == 2
    waits = [float(m) for m in re.findall(r"retrying in ([\d.]+) s", caplog.text)]
    assert waits and waits[0] >= 0.6, caplog.text  # the jittered backoff alone is at most 0.25 s here


async def test_busy_through_every_retry_is_server_unavailable_with_the_servers_retry_after() -> None:
    async with (
        FakeServer(failing(99, 429, {"Retry-After": "0.05"})) as server,
        await LlmClient.remote(server.url).retries(2).init() as client,
    ):
        with pytest.raises(ServerUnavailableError, match="busy") as raised:
            await client.chat("hi")
    assert raised.value.retry_after == 0.05 and len(server.generations) == 3


async def test_a_retry_after_past_the_limit_is_not_waited_for() -> None:
    async with (
        FakeServer(failing(99, 503, {"Retry-After": "120"})) as server,
        await LlmClient.remote(server.url).init() as client,
    ):
        with pytest.raises(ServerUnavailableError) as raised:
            await client.chat("hi")
    assert raised.value.retry_after == 120 and len(server.generations) == 1


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_server_failure_before_the_first_token_is_retried(status: int) -> None:
    async with FakeServer(failing(1, status)) as server, await LlmClient.remote(server.url).init() as client:
        assert (await client.chat("hi")).text == "Hello there!"
    assert len(server.generations) == 2


@pytest.mark.parametrize("status", [400, 404, 413, 422])
async def test_other_client_errors_are_not_retried_and_carry_the_servers_message(status: int) -> None:
    async with FakeServer(failing(1, status)) as server, await LlmClient.remote(server.url).init() as client:
        with pytest.raises(ServerError, match=f"scripted {status}") as raised:
            await client.chat("hi")
    assert raised.value.status == status and len(server.generations) == 1


async def test_llama_servers_context_overflow_is_a_context_overflow_error() -> None:
    error = {"code": 400, "message": "request exceeds the available context size", "n_prompt_tokens": 900,
             "n_ctx": 512, "type": "exceed_context_size_error"}  # fmt: skip

    async def script(request: Request, out: Out) -> None:
        await out.status(400, {"error": error})

    async with FakeServer(script) as server, await LlmClient.remote(server.url).init() as client:
        with pytest.raises(ContextOverflowError, match="larger context") as raised:
            await client.chat("hi")
    assert (raised.value.prompt_tokens, raised.value.n_ctx) == (900, 512)


async def test_a_wrong_or_missing_api_key_is_an_authentication_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMCLIENT_API_KEY", raising=False)
    async with FakeServer(api_key="sekrit") as server:
        for key in (None, "wrong"):
            with pytest.raises(AuthenticationError, match="LLMCLIENT_API_KEY") as raised:
                await LlmClient.remote(server.url, api_key=key).init()
            assert raised.value.status == 401
        async with await LlmClient.remote(server.url, api_key="sekrit").init() as client:
            assert await client.ask("hi") == "Hello there!"
        monkeypatch.setenv("LLMCLIENT_API_KEY", "sekrit")
        async with await LlmClient.remote(server.url).init() as client:
            assert await client.ask("hi") == "Hello there!"
            server.api_key = "rotated"
            with pytest.raises(AuthenticationError):
                await client.ask("hi")
    assert [r.headers.get("authorization") for r in server.generations] == ["Bearer sekrit"] * 3


async def test_the_key_goes_only_to_the_given_host_a_redirect_is_not_followed() -> None:
    async with FakeServer() as elsewhere:

        async def redirect(request: Request, out: Out) -> None:
            await out.status(307, {}, {"Location": elsewhere.url + request.path})

        async with FakeServer(redirect) as server, await LlmClient.remote(server.url, api_key="k").init() as client:
            with pytest.raises(ServerError, match="redirects are not followed"):
                await client.chat("hi")
    assert elsewhere.requests == []


async def test_an_unknown_model_lists_the_models_the_server_has() -> None:
    async with FakeServer(models=["llama-3.1-8b", "qwen2.5-7b"]) as server:
        with pytest.raises(UnknownModelError, match="llama-3.1-8b, qwen2.5-7b") as raised:
            await LlmClient.remote(server.url, model="gpt-4").init()
        assert raised.value.available == ("llama-3.1-8b", "qwen2.5-7b")
        with pytest.raises(InvalidSettingError, match="choose one with"):
            await LlmClient.remote(server.url).init()
        async with await LlmClient.remote(server.url, model="qwen2.5-7b").init() as client:
            await client.chat("hi")
    assert server.generations[0].body["model"] == "qwen2.5-7b"


async def test_bad_urls_are_refused_before_any_request_and_a_refused_connection_says_what_to_check() -> None:
    for url in ("127.0.0.1:8080", "ftp://host", "http://", "http://h/?q=1", "", 8080):
        with pytest.raises(InvalidSettingError):
            LlmClient.remote(url)  # type: ignore[arg-type]
    with pytest.raises(InvalidSettingError, match="twice"):
        LlmClient.remote(["http://a:1", "http://a:1/v1"])
    with pytest.raises(ServerUnavailableError, match="is the server running") as raised:
        await LlmClient.remote(f"http://127.0.0.1:{dead_port()}").init()
    assert isinstance(raised.value, ConnectionError)


async def test_a_replica_that_refuses_connections_is_cooled_down_and_the_other_answers() -> None:
    dead = f"http://127.0.0.1:{dead_port()}"
    async with FakeServer() as server, await LlmClient.remote([dead, server.url]).init() as client:
        for _ in range(3):
            assert await client.ask("hi") == "Hello there!"
        engine = client.engine
        assert isinstance(engine, RemoteEngine)
        down, up = engine.stats()
    assert (down.state, down.started, up.completed) == ("down", 0, 3)


async def test_a_cooled_replica_returns_once_its_health_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_replicas, "COOLDOWN_FIRST", 0.2)
    port = dead_port()
    async with FakeServer() as other, await LlmClient.remote([f"http://127.0.0.1:{port}", other.url]).init() as client:
        engine = client.engine
        assert isinstance(engine, RemoteEngine)
        async with FakeServer(port=port, health=503) as back:  # up again, but still loading
            await anyio.sleep(0.25)
            await client.ask("hi")
            assert engine.stats()[0].state == "down" and back.generations == []
            assert [r.path for r in back.requests] == ["/health"]
            back.health = 200
            await anyio.sleep(0.45)  # the second cool-down is twice the first
            await client.ask("hi")
            assert engine.stats()[0].state == "up" and len(back.generations) == 1


async def test_connect_first_token_and_idle_timeouts() -> None:
    async def slow(request: Request, out: Out) -> None:
        await out.start()
        if request.body["messages"][-1]["content"] == "think":
            for _ in range(40):  # keep-alive comments are no token: they do not extend the first-token wait
                await out.raw(": ping\n\n")
                await anyio.sleep(0.05)
        await out.event(chunk("Hello"))
        await anyio.sleep(2.0)
        await out.event(chunk(finish="stop"))
        await out.end()

    async with FakeServer(slow) as server:
        builder = LlmClient.remote(server.url).retries(0).timeouts(first_token=0.5, idle=0.3)
        async with await builder.init() as client:
            with pytest.raises(RemoteTimeoutError, match="first token"):
                await client.chat("think")
            with pytest.raises(StreamInterruptedError) as raised:
                await client.chat("talk")
            assert raised.value.text == "Hello" and isinstance(raised.value.__cause__, RemoteTimeoutError)
    listener = socket.socket()  # a listener whose backlog is full: a connection is never accepted
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers: list[socket.socket] = []
    try:
        while len(fillers) < 16:
            try:
                fillers.append(socket.create_connection(listener.getsockname(), timeout=0.3))
            except TimeoutError:
                break
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(ServerUnavailableError, match="ConnectTimeout"):
            await LlmClient.remote(url).timeouts(connect=0.3).init()
    finally:
        for s in [*fillers, listener]:
            s.close()


async def test_each_replica_is_given_at_most_its_total_slots_and_the_rest_wait_here_in_order() -> None:
    async def slow(request: Request, out: Out) -> None:
        await stream(out, ["a", "b", "c"], delay=0.05)

    async with (
        FakeServer(slow, total_slots=2) as server,
        await LlmClient.remote(server.url).max_queue(2).init() as client,
    ):
        assert client.capabilities.parallel == 2
        outcomes: dict[int, object] = {}

        async def ask(i: int) -> None:
            try:
                outcomes[i] = (await client.chat(f"q{i}")).text
            except BusyError as error:
                outcomes[i] = error

        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(ask, i)
                await anyio.sleep(0.01)
    assert [outcomes[i] for i in range(4)] == ["abc"] * 4 and isinstance(outcomes[4], BusyError)
    assert server.peak == 2
    assert [r.body["messages"][-1]["content"] for r in server.generations] == ["q0", "q1", "q2", "q3"]


async def test_least_busy_spreads_requests_over_the_replicas() -> None:
    async def slow(request: Request, out: Out) -> None:
        await stream(out, ["a", "b"], delay=0.1)

    async with (
        FakeServer(slow, total_slots=4) as a,
        FakeServer(slow, total_slots=4) as b,
        await LlmClient.remote([a.url, b.url]).init() as client,
    ):
        assert client.capabilities.parallel == 8
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(client.chat, "hi")
    assert (a.peak, b.peak) == (3, 3)


def conversation(i: int, turns: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": f"Topic {i}?"}]
    for t in range(turns):
        messages += [{"role": "assistant", "content": f"Answer {t}."}, {"role": "user", "content": f"More {t}?"}]
    return messages


async def test_prefix_affinity_keeps_a_conversation_on_one_replica_and_spreads_conversations() -> None:
    async with (
        FakeServer(total_slots=4) as a,
        FakeServer(total_slots=4) as b,
        await LlmClient.remote([a.url, b.url]).routing("affinity").init() as client,
    ):
        for i in range(12):
            for turns in range(3):
                await client.chat(conversation(i, turns))
        with session_key("user-7"):
            await client.chat("one thing")
            await client.chat("something else entirely")
    by_conversation: dict[str, set[int]] = {}
    for r in a.generations[:36] + b.generations[:36]:
        if r.body["messages"][0]["role"] == "system":
            by_conversation.setdefault(r.body["messages"][1]["content"], set()).add(r.port)
    assert len(by_conversation) == 12 and all(len(ports) == 1 for ports in by_conversation.values())
    assert len({next(iter(p)) for p in by_conversation.values()}) == 2, "every conversation on one replica"
    keyed = [r.port for r in a.generations + b.generations if r.body["messages"][0]["role"] == "user"]
    assert len(keyed) == 2 and keyed[0] == keyed[1]


async def test_affinity_falls_back_to_the_other_replica_when_its_home_is_full() -> None:
    async def slow(request: Request, out: Out) -> None:
        await stream(out, ["a", "b"], delay=0.2)

    async with (
        FakeServer(slow, total_slots=1) as a,
        FakeServer(slow, total_slots=1) as b,
        await LlmClient.remote([a.url, b.url]).routing("affinity").init() as client,
        anyio.create_task_group() as tg,
    ):
        for _ in range(2):
            tg.start_soon(client.chat, conversation(1, 1))
    assert (len(a.generations), len(b.generations)) == (1, 1)


async def test_routing_none_leaves_a_gateway_to_route_and_queue() -> None:
    async def slow(request: Request, out: Out) -> None:
        await stream(out, ["a"], delay=0.2)

    async with (
        FakeServer(slow, total_slots=1) as gateway,
        await LlmClient.remote(gateway.url).routing("none").init() as client,
    ):
        assert client.capabilities.parallel is None
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(client.chat, "hi")
        with pytest.raises(InvalidSettingError, match="one URL"):
            await LlmClient.remote([gateway.url, gateway.url + "/x"]).routing("none").init()
    assert gateway.peak == 3 and "/props" not in [r.path for r in gateway.requests]


async def test_leaving_a_stream_or_a_timeout_closes_the_connection_at_once() -> None:
    async def long(request: Request, out: Out) -> None:
        await out.start()
        for i in range(200):
            if out.left.is_set():
                return
            await out.event(chunk(f"w{i} "))
            await anyio.sleep(0.02)
        await out.event(chunk(finish="length"))
        await out.end()

    async with FakeServer(long) as server, await LlmClient.remote(server.url).init() as client:
        stream_ = client.stream("go")
        async for _ in stream_:
            break
        await stream_.aclose()
        await until(lambda: server.disconnects == 1, "the server saw the client leave")
        with pytest.raises(TimeoutError):
            await client.chat("go", timeout=0.2)
        await until(lambda: server.disconnects == 2, "the server saw the timed-out client leave")
        engine = client.engine
        assert isinstance(engine, RemoteEngine) and engine.stats()[0].in_flight == 0


async def test_close_fails_waiting_requests_and_ends_running_ones_as_cancelled() -> None:
    async def slow(request: Request, out: Out) -> None:
        await stream(out, ["a"] * 20, delay=0.05)

    async with FakeServer(slow, total_slots=1) as server:
        client = await LlmClient.remote(server.url).init()
        outcomes: list[object] = []

        async def ask() -> None:
            try:
                outcomes.append(await client.chat("hi"))
            except ClientClosedError as error:
                outcomes.append(error)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask)
            await anyio.sleep(0.1)
            tg.start_soon(ask)
            await anyio.sleep(0.05)
            await client.close()
        with pytest.raises(ClientClosedError):
            await client.chat("again")
    waiting, running = outcomes
    assert isinstance(waiting, ClientClosedError) and getattr(running, "finish_reason", None) == "cancelled"


async def test_a_schema_is_sent_as_response_format_and_regex_is_refused_before_sending() -> None:
    async def person(request: Request, out: Out) -> None:
        await stream(out, ['{"name": ', '"Ava"}'])

    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    async with FakeServer(person) as server, await LlmClient.remote(server.url).init() as client:
        assert (await client.chat("who?", schema=schema)).parsed == {"name": "Ava"}
        await client.chat("who?", response_format={"type": "json_object"})
        for option in ({"regex": r"\d+"}, {"choices": ["a", "b"]}, {"grammar": 'start: "x"'}):
            with pytest.raises(UnsupportedFeatureError, match="JSON Schemas"):
                await client.chat("n?", **option)
        with pytest.raises(UnsupportedFeatureError, match="chat"):
            await client.complete("n?", schema=schema)
    sent = [r.body["response_format"] for r in server.generations]
    assert sent == [{"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}},
                    {"type": "json_object"}]  # fmt: skip


async def test_tools_are_passed_through_and_a_tool_call_stream_finishes() -> None:
    fragments = [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"tz": '}},
        {"index": 0, "function": {"arguments": '"UTC"}'}},
    ]

    async def calls(request: Request, out: Out) -> None:
        await out.start()
        for fragment in fragments:
            await out.event({"choices": [{"index": 0, "delta": {"tool_calls": [fragment]}, "finish_reason": None}]})
        await out.event(chunk(finish="tool_calls"))
        await out.end()

    tool = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
    async with FakeServer(calls) as server, await LlmClient.remote(server.url).init() as client:
        result = await client.chat("time?", tools=[tool])
    sent = server.generations[0].body["tools"]
    assert [(t["function"]["name"], t["function"]["parameters"]) for t in sent] == [("now", {"type": "object"})]
    # the server's fragments, assembled, come back as the same ToolCall a local engine gives
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == [ToolCall("call_1", "now", {"tz": "UTC"})]


async def test_tools_are_refused_where_the_servers_template_takes_none() -> None:
    tool = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
    async with FakeServer(supports_tools=False) as server, await LlmClient.remote(server.url).init() as client:
        assert not client.capabilities.tools
        with pytest.raises(UnsupportedFeatureError, match="does not take tools"):
            await client.chat("time?", tools=[tool])
    assert server.generations == []


async def test_extra_body_reaches_the_server_and_cannot_replace_what_the_engine_sets() -> None:
    async with FakeServer() as server:
        builder = LlmClient.remote(server.url).extra_body({"cache_prompt": True, "max_tokens": 3})
        async with await builder.init() as client:
            await client.chat("hi")
            await client.chat("hi", max_tokens=5)
    assert [(r.body["cache_prompt"], r.body["max_tokens"]) for r in server.generations] == [(True, 3), (True, 5)]
    with pytest.raises(InvalidSettingError, match="stream"):
        LlmClient.remote(server.url).extra_body({"stream": False})


def test_the_sync_twin_talks_to_a_remote_server() -> None:
    """`init_sync()` runs its own event loop thread; the fake server runs on another."""
    loop = asyncio.new_event_loop()
    server = FakeServer()
    loop.run_until_complete(server.__aenter__())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with LlmClient.remote(server.url).temperature(0.0).init_sync() as client:
            assert client.ask("hi") == "Hello there!"
            assert [c.text for c in client.stream("hi")] == ["Hello", " there!", ""]
    finally:
        asyncio.run_coroutine_threadsafe(server.__aexit__(None, None, None), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    assert [r.body["temperature"] for r in server.generations] == [0.0, 0.0]


def test_rendezvous_hashing_moves_only_the_keys_of_a_replica_that_leaves() -> None:
    replicas = [Replica(f"http://10.0.0.{i}:8000", None) for i in range(4)]
    keys = [f"conversation {i}" for i in range(400)]
    home = {k: rendezvous(k, replicas)[0] for k in keys}
    assert len(set(home.values())) == 4 and min(list(home.values()).count(r) for r in replicas) > 50
    gone = replicas[1]
    after = {k: rendezvous(k, [r for r in replicas if r is not gone])[0] for k in keys}
    assert all(after[k] is home[k] for k in keys if home[k] is not gone)


async def test_typed_answers_on_grammars_are_refused_and_those_on_schemas_work() -> None:
    async def numbers(request: Request, out: Out) -> None:
        await stream(out, ['["3", ', '"4"]'])

    async with FakeServer(numbers) as server, await LlmClient.remote(server.url).init() as client:
        with pytest.raises(UnsupportedFeatureError, match="not grammar constraints"):
            await client.boolean("Is the sky blue?")
        assert await client.extract("The numbers.", "3 and 4", item=str | int) == ["3", "4"]
    assert len(server.generations) == 1 and "response_format" in server.generations[0].body


async def test_a_request_cancelled_while_waiting_for_a_replica_keeps_the_order_of_the_others() -> None:
    async def slow(request: Request, out: Out) -> None:
        await stream(out, ["a", "b"], delay=0.1)

    async with FakeServer(slow, total_slots=1) as server, await LlmClient.remote(server.url).init() as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.chat, "first")
            await anyio.sleep(0.05)
            with anyio.move_on_after(0.05):
                await client.chat("second, cancelled while waiting")
            tg.start_soon(client.chat, "third")
        engine = client.engine
        assert isinstance(engine, RemoteEngine) and engine.waiting == 0 and engine.stats()[0].in_flight == 0
    assert [r.body["messages"][-1]["content"] for r in server.generations] == ["first", "third"]
