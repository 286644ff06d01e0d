"""`embed` over the remote engine against scripted servers on 127.0.0.1 (`fake_openai`): the order of the vectors
over chunks and replicas, floats and base64, retries, a server that does not embed, an over-long text named, a
malformed answer. The real llama-server's embeddings are tested in `test_remote_server.py`."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest

from llmclient import (
    ContextOverflowError,
    LlmClient,
    MalformedResponseError,
    ServerError,
    UnsupportedFeatureError,
)
from llmclient.backends.remote._embed import CHUNK
from tests.fake_openai import FakeServer, Out, Request

pytestmark = pytest.mark.anyio


def vector_of(text: str) -> list[float]:
    """The scripted model: "text 17" embeds as [17, 1, 0]."""
    return [float(text.split()[-1]), 1.0, 0.0]


def embedder(*, fail_first: int = 0, status: int = 503, longest: int | None = None) -> Any:
    """A script answering `/v1/embeddings` (shuffled rows; base64 where the request's first number is odd);
    `fail_first` requests get `status`; a text longer than `longest` characters: llama-server's overflow."""
    seen = [0]

    async def script(request: Request, out: Out) -> None:
        assert request.path == "/v1/embeddings", request.path
        seen[0] += 1
        if seen[0] <= fail_first:
            await out.status(status, {"error": {"message": f"scripted {status}"}}, {"Retry-After": "0.05"})
            return
        texts = request.body["input"]
        if longest is not None and any(len(t) > longest for t in texts):
            error = {"code": 400, "message": "input (900 tokens) is larger than the max context size (512 tokens)",
                     "type": "exceed_context_size_error", "n_prompt_tokens": 900, "n_ctx": 512}  # fmt: skip
            await out.status(400, {"error": error})
            return
        odd = int(vector_of(texts[0])[0]) % 2 == 1
        rows = []
        for i, text in enumerate(texts):
            vector = vector_of(text)
            packed = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            rows.append({"object": "embedding", "index": i, "embedding": packed if odd else vector})
        await out.status(200, {"object": "list", "data": rows[::-1], "usage": {"prompt_tokens": 3 * len(texts)}})

    return script


async def test_vectors_come_back_in_order_over_chunks_and_replicas_as_floats_or_base64() -> None:
    texts = [f"text {i}" for i in range(2 * CHUNK + 7)]
    async with (
        FakeServer(embedder()) as a,
        FakeServer(embedder()) as b,
        await LlmClient.remote([a.url, b.url]).init() as client,
    ):
        assert client.capabilities.embeddings
        raw = await client.embed_array(texts, normalize=False)
        unit = await client.embed("text 3")
    assert raw.shape == (len(texts), 3) and raw.dtype.name == "float32"
    assert raw[:, 0].tolist() == [float(i) for i in range(len(texts))]  # the texts' order, whatever the rows'
    assert unit[0] == pytest.approx([3 / 10**0.5, 1 / 10**0.5, 0.0])  # normalized by default
    bodies = [r.body for r in a.generations + b.generations]
    assert all(len(body["input"]) <= CHUNK and body["model"] == "fake-model" for body in bodies)
    assert all(body["encoding_format"] == "float" for body in bodies)
    assert a.generations and b.generations  # the chunks went to both replicas at once
    assert sum(len(body["input"]) for body in bodies) == len(texts) + 1


async def test_a_busy_or_failing_server_is_retried_and_a_refusal_is_not() -> None:
    async with FakeServer(embedder(fail_first=1)) as server, await LlmClient.remote(server.url).init() as client:
        assert await client.embed(["text 1"], normalize=False) == [[1.0, 1.0, 0.0]]
    assert len(server.generations) == 2
    async with (
        FakeServer(embedder(fail_first=1, status=422)) as server,
        await LlmClient.remote(server.url).init() as client,
    ):
        with pytest.raises(ServerError, match="scripted 422"):
            await client.embed(["text 1"])
    assert len(server.generations) == 1


async def test_a_server_that_does_not_embed_says_how_to_fix_it() -> None:
    async def script(request: Request, out: Out) -> None:
        message = "This server does not support embeddings. Start it with `--embeddings`"
        await out.status(501, {"error": {"code": 501, "message": message, "type": "not_supported_error"}})

    async with FakeServer(script) as server, await LlmClient.remote(server.url).init() as client:
        with pytest.raises(UnsupportedFeatureError, match="--embeddings") as raised:
            await client.embed(["a text"])
    assert raised.value.feature == "embeddings" and len(server.generations) == 1


async def test_an_over_long_text_is_named_and_the_others_are_not_blamed() -> None:
    texts = [f"text {i}" for i in range(100)]
    texts[70] = "a very long text " * 10 + "70"
    async with (
        FakeServer(embedder(longest=40)) as server,
        await LlmClient.remote(server.url).init() as client,
    ):
        for truncate in (True, False):
            with pytest.raises(ContextOverflowError, match="text 70 of 100 is too long") as raised:
                await client.embed(texts, truncate=truncate)
            assert (raised.value.prompt_tokens, raised.value.n_ctx) == (900, 512)
            assert "does not truncate" in str(raised.value)
        assert len(await client.embed(texts[:70] + texts[71:])) == 99
    # the refused chunk halved down to one text: a few requests, not one per text
    assert len(server.generations) < 2 * (2 + 2 * 6) + 2


@pytest.mark.parametrize(
    "answer",
    [
        {"data": [{"index": 0, "embedding": [1.0]}]},  # one vector for two texts
        {"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]},  # different sizes
        {"data": [{"index": 0, "embedding": []}, {"index": 1, "embedding": []}]},  # empty vectors
        {"object": "list"},  # no data
        {"data": [{"index": 0, "embedding": "%%%"}, {"index": 1, "embedding": "%%%"}]},  # not base64
    ],
)
async def test_a_malformed_answer_is_an_error_naming_the_server(answer: dict[str, Any]) -> None:
    async def script(request: Request, out: Out) -> None:
        await out.status(200, answer)

    async with FakeServer(script) as server, await LlmClient.remote(server.url).init() as client:
        with pytest.raises(MalformedResponseError, match="not an OpenAI embeddings response") as raised:
            await client.embed(["text 1", "text 2"])
    assert raised.value.url == server.url


async def test_prefixes_for_queries_and_documents_are_the_builders() -> None:
    async with (
        FakeServer(embedder()) as server,
        await LlmClient.remote(server.url).embed_prefixes(query="search_query: ", document="doc: ").init() as client,
    ):
        await client.embed(["text 1"], kind="query")
        await client.embed(["text 2"], kind="document")
        await client.embed(["text 3"])
    assert [json.dumps(r.body["input"]) for r in server.generations] == [
        '["search_query: text 1"]',
        '["doc: text 2"]',
        '["text 3"]',
    ]
