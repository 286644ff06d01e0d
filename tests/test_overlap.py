"""The overlapped step (a GPU's: tokens handed out while the next batch computes) gives what the plain one gives.

It is on by default only where layers run on a GPU; here `LLMCLIENT_OVERLAP=1` forces it on for the CPU, where it
computes the same batches in another order of work, so every answer, finish reason and count must match the plain
step's exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from llmclient import LlmClient
from tests.conftest import llama_model

pytestmark = pytest.mark.anyio

QUESTIONS = [f"Name a city whose name starts with the letter {c}." for c in "ABCDEFGH"]


async def _work(client: LlmClient) -> list[tuple[str, str | None, int, int]]:
    """Eight concurrent requests covering each way to finish: stop sequence, max_tokens, end of generation."""
    results: dict[int, tuple[str, str | None, int, int]] = {}

    async def ask(i: int) -> None:
        options: dict[str, Any] = {"max_tokens": 6 + 5 * i}
        if i % 3 == 0:
            options["stop"] = [" is", "."]
        r = await client.chat(QUESTIONS[i], **options)
        results[i] = (r.text, r.finish_reason, r.usage.prompt_tokens, r.usage.completion_tokens)

    async with anyio.create_task_group() as tg:
        for i in range(len(QUESTIONS)):
            tg.start_soon(ask, i)
    # a chat's next turn after an answer cut by a stop sequence (whose next token was already being decoded)
    first = await client.chat(QUESTIONS[0], stop=["."], max_tokens=40)
    history = [{"role": "user", "content": QUESTIONS[0]}, {"role": "assistant", "content": first.text}]
    second = await client.chat([*history, {"role": "user", "content": "And another one?"}], max_tokens=20)
    return [
        *(results[i] for i in range(len(QUESTIONS))),
        (first.text, first.finish_reason, first.usage.prompt_tokens, first.usage.completion_tokens),
        (second.text, second.finish_reason, second.usage.prompt_tokens, second.usage.completion_tokens),
    ]


async def test_overlapped_steps_give_exactly_what_plain_steps_give(
    smollm2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"ctx": 512, "parallel": 8, "temperature": 0.0}
    async with await LlmClient.from_path(smollm2, **settings) as client:
        assert not llama_model(client)._decoder.overlap
        plain = await _work(client)
    monkeypatch.setenv("LLMCLIENT_OVERLAP", "1")
    async with await LlmClient.from_path(smollm2, **settings) as client:
        assert llama_model(client)._decoder.overlap
        overlapped = await _work(client)
    assert overlapped == plain
    reasons = {reason for _, reason, _, _ in plain}
    assert {"stop", "length"} <= reasons, f"the work covers stop sequences and max_tokens: {reasons}"


async def test_overlapped_steps_cancel_and_free_the_model(smollm2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMCLIENT_OVERLAP", "1")
    async with await LlmClient.from_path(smollm2, ctx=512, parallel=4, temperature=0.0) as client:
        alone = (await client.chat(QUESTIONS[1], max_tokens=24)).text
        chunks = 0
        async for _ in client.stream("Write a long story about a lighthouse.", max_tokens=300):
            chunks += 1
            if chunks == 5:
                break  # leaving cancels
        after = await client.chat(QUESTIONS[1], max_tokens=24)
        assert llama_model(client).active == 0
    assert after.text == alone and after.timings.queued < after.timings.total - after.timings.queued
