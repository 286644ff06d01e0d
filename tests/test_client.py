"""The first cut of the async client on the real model: one request at a time, in order, with real timings."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from llmclient import ChatResult, ClientClosedError, LlmClient

pytestmark = pytest.mark.anyio


async def test_concurrent_requests_run_one_at_a_time_and_report_their_wait(smollm2: Path) -> None:
    results: dict[int, ChatResult] = {}
    async with await LlmClient.from_path(smollm2, ctx=1024, temperature=0.0, max_tokens=24) as client:

        async def ask(i: int) -> None:
            results[i] = await client.chat(f"Write the number {i} in words.")

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(ask, i)
                await anyio.sleep(0.01)  # arrive in this order
    waits = [results[i].timings.queued for i in range(3)]
    assert waits[0] < 0.05 < waits[1] < waits[2], f"FIFO: each waits for those before it: {waits}"
    for result in results.values():
        assert result.usage.prompt_tokens > 5 and 0 < result.usage.completion_tokens <= 24
        assert result.timings.total >= result.timings.queued + result.timings.first_token
    assert waits[2] >= results[0].timings.total - results[0].timings.queued - 0.05


async def test_leaving_a_stream_early_frees_the_model_and_close_is_final(smollm2: Path) -> None:
    client = await LlmClient.from_path(smollm2, ctx=1024, temperature=0.0)
    async for chunk in client.stream("Count from 1 to 100, one number per line.", max_tokens=200):
        if chunk.text.strip() == "3":
            break
    answer = await client.chat("What is the capital of France? Answer in one word.", max_tokens=16)
    assert "Paris" in answer.text and answer.timings.queued < 0.5
    await client.close()
    with pytest.raises(ClientClosedError):
        await client.chat("hello")
