"""The remote engine's wire format, piece by piece: server-sent events, chunks, error bodies, `Retry-After`."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator

import pytest

from llmclient import MalformedResponseError, ServerError, Usage
from llmclient.backends.remote._sse import sse_data
from llmclient.backends.remote._wire import error_message, parse_chunk, retry_after

pytestmark = pytest.mark.anyio


async def lines(*items: str) -> AsyncIterator[str]:
    for item in items:
        yield item


async def events(*items: str) -> list[str]:
    return [data async for data in sse_data(lines(*items), "http://s")]


async def test_events_join_multi_line_data_ignore_other_fields_and_stop_at_done() -> None:
    got = await events(": hello", "event: message", "id: 7", "retry: 100", "data: {\"a\":", "data:1}", "",
                       "data: x", "", "data: [DONE]", "", "data: after")  # fmt: skip
    assert got == ['{"a":\n1}', "x"]


async def test_a_last_event_without_its_blank_line_still_counts_but_done_does_not() -> None:
    assert await events("data: one", "", "data: two") == ["one", "two"]
    assert await events("data: one", "", "data: [DONE]") == ["one"]


async def test_a_line_that_is_no_sse_field_is_malformed() -> None:
    for bad in ("<html>", "Data: x", "value"):
        with pytest.raises(MalformedResponseError, match="no server-sent event"):
            await events("data: ok", "", bad)


def test_chunks_of_chat_and_completions_with_llama_servers_usage_and_timings() -> None:
    chat = parse_chunk('{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}', "u")
    assert (chat.text, chat.finish_reason, chat.usage) == ("Hi", None, None)
    text = parse_chunk('{"choices":[{"index":0,"text":"upon","finish_reason":"length"}]}', "u")
    assert (text.text, text.finish_reason) == ("upon", "length")
    last = parse_chunk('{"choices":[],"usage":{"prompt_tokens":30,"completion_tokens":4},'
                       '"timings":{"cache_n":21,"predicted_per_second":41.5}}', "u")  # fmt: skip
    assert last.usage == Usage(30, 4, 21) and last.tokens_per_second == 41.5
    openai = parse_chunk('{"choices":[],"usage":{"prompt_tokens":30,"completion_tokens":4,'
                         '"prompt_tokens_details":{"cached_tokens":16}}}', "u")  # fmt: skip
    assert openai.usage == Usage(30, 4, 16)


def test_error_events_and_odd_chunks() -> None:
    with pytest.raises(ServerError, match="out of memory") as raised:
        parse_chunk('{"error":{"code":503,"message":"out of memory"}}', "u")
    assert raised.value.status == 503
    with pytest.raises(ServerError, match="plain words"):
        parse_chunk('{"error":"plain words"}', "u")
    for bad, message in (("[1]", "not a JSON object"), ('{"choices":[3]}', "not an object"),
                         ('{"choices":[],"usage":{"prompt_tokens":"many"}}', "not token counts")):  # fmt: skip
        with pytest.raises(MalformedResponseError, match=message):
            parse_chunk(bad, "u")


def test_error_bodies_give_the_servers_words() -> None:
    assert error_message(b'{"error":{"message":"model not found","type":"x"}}') == "model not found"
    assert error_message(b'{"detail":"Not Found"}') == "Not Found"
    assert error_message(b"<html>Bad Gateway</html>") == "<html>Bad Gateway</html>"
    assert error_message(b"") == "(no message)"


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after("2.5") == 2.5 and retry_after(None) is None and retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    when = retry_after(later)
    assert when is not None and 25 < when <= 30
