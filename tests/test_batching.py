"""Continuous batching on the real model: many requests decode together, each as if it ran alone."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from llmclient import ChatResult, LlmClient
from llmclient.estimate import estimate
from llmclient.metadata import read_gguf_info

pytestmark = pytest.mark.anyio

QUESTIONS = [f"Tell me a fact about the number {n}." for n in range(16)]


async def _alone(client: LlmClient, questions: list[str], **options: object) -> list[str]:
    return [(await client.chat(q, **options)).text for q in questions]  # type: ignore[arg-type]


async def test_sixteen_concurrent_greedy_requests_give_what_each_gives_alone(smollm2: Path) -> None:
    async with await LlmClient.from_path(smollm2, ctx=512, parallel=16, temperature=0.0, max_tokens=32) as client:
        assert client.plan is not None and client.plan.parallel == 16
        alone = await _alone(client, QUESTIONS)
        spans: dict[int, tuple[float, float]] = {}
        texts: dict[int, str] = {}

        async def ask(i: int) -> None:
            sent = anyio.current_time()
            result = await client.chat(QUESTIONS[i])
            texts[i] = result.text
            spans[i] = (sent + result.timings.queued, sent + result.timings.total)

        async with anyio.create_task_group() as tg:
            for i in range(16):
                tg.start_soon(ask, i)
    assert [texts[i] for i in range(16)] == alone, "each answer is the one it gives alone"
    assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values()), "all 16 ran at the same time"


async def test_cancelling_five_of_sixteen_midway_leaves_the_other_eleven_correct(smollm2: Path) -> None:
    async with await LlmClient.from_path(smollm2, ctx=512, parallel=16, temperature=0.0, max_tokens=40) as client:
        alone = await _alone(client, QUESTIONS)
        texts: dict[int, str] = {}
        cancelled: dict[int, int] = {}

        async def ask(i: int) -> None:
            parts: list[str] = []
            async for chunk in client.stream(QUESTIONS[i]):
                parts.append(chunk.text)
                if i in (1, 4, 7, 10, 13) and len(parts) == 5:  # five leave midway
                    cancelled[i] = len(parts)
                    return
            texts[i] = "".join(parts)

        async with anyio.create_task_group() as tg:
            for i in range(16):
                tg.start_soon(ask, i)
        after = await client.chat(QUESTIONS[0])
    assert sorted(cancelled) == [1, 4, 7, 10, 13]
    others = {i: alone[i] for i in range(16) if i not in cancelled}
    assert texts == others, "the others are unchanged"
    # free at once; (its text is not compared: alone over a cache now holding 16 answers, llama.cpp's CPU flash
    # attention splits a single query's 512+ cells across threads, which may change a greedy near-tie)
    assert after.timings.queued < after.timings.total - after.timings.queued, "it waited less than its own answer took"
    assert after.finish_reason == "length" and after.text.startswith("The number 0")


async def test_a_long_prompt_joins_running_streams_in_chunks_without_changing_them(smollm2: Path) -> None:
    long_prompt = "Summarise this list in one sentence: " + ", ".join(f"item {n}" for n in range(180))
    stories = [f"Write a story about a {animal}." for animal in ("cat", "dog", "fox")]
    async with await LlmClient.from_path(smollm2, ctx=2048, parallel=4, temperature=0.0, max_tokens=120) as client:
        alone = await _alone(client, [*stories, long_prompt])
        counts = [0, 0, 0]
        texts: dict[int, str] = {}
        joined = anyio.Event()
        seen_at_join: list[int] = []
        seen_at_answer: list[int] = []

        async def story(i: int) -> None:
            parts: list[str] = []
            async for chunk in client.stream(stories[i]):
                parts.append(chunk.text)
                counts[i] += 1
                if min(counts) >= 10 and not joined.is_set():
                    joined.set()
            texts[i] = "".join(parts)

        async def long_one() -> None:
            await joined.wait()
            seen_at_join.extend(counts)
            parts: list[str] = []
            async for chunk in client.stream(long_prompt, max_tokens=120):
                if not parts:
                    seen_at_answer.extend(counts)
                parts.append(chunk.text)
            texts[3] = "".join(parts)

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(story, i)
            tg.start_soon(long_one)
        prompt_tokens = (await client.chat(long_prompt, max_tokens=1)).usage.prompt_tokens
    assert [texts[i] for i in range(4)] == alone, "nobody's answer changed"
    assert prompt_tokens > 400
    grew = [b - a for a, b in zip(seen_at_join, seen_at_answer, strict=True)]
    assert all(g >= 5 for g in grew), f"the streams kept going while the long prompt was read in chunks: {grew}"


async def test_when_the_kv_cache_is_short_requests_wait_instead_of_failing(smollm2: Path) -> None:
    # a memory budget that leaves the shared KV cache 1024 tokens: two requests of 40 + 400 fit, not three
    need = estimate(read_gguf_info(smollm2), 1024, n_seq_max=4).cpu
    gigabytes = (need + 1_000_000) / 1e9
    questions = [f"Count from {n} to {n + 400}, one number per line." for n in range(4)]
    async with await LlmClient.from_path(
        smollm2, ctx=512, parallel=4, memory_gb=gigabytes, temperature=0.0, max_tokens=400
    ) as client:
        assert client.plan is not None and (client.plan.parallel, client.plan.kv_tokens) == (4, 1024), client.plan
        alone = await _alone(client, questions)
        results: dict[int, ChatResult] = {}
        spans: list[tuple[float, float]] = []

        async def ask(i: int) -> None:
            sent = anyio.current_time()
            results[i] = await client.chat(questions[i])
            spans.append((sent + results[i].timings.queued, sent + results[i].timings.total))

        async with anyio.create_task_group() as tg:
            for i in range(4):
                tg.start_soon(ask, i)
                await anyio.sleep(0.01)
    assert [results[i].text for i in range(4)] == alone
    # a finished request's slot is reused at once on the worker while its last piece is still on its way to the
    # loop, so spans timed on the loop touch at their ends; only an overlap of a tenth of a span counts as running
    # together (three in the cache at once would overlap for most of their length)
    inner = [(s + (e - s) / 10, e - (e - s) / 10) for s, e in spans]
    most = max(sum(1 for s, e in inner if s <= t < e) for t, _ in inner)
    assert most == 2, f"two at a time fit in the cache: {most} ran together ({sorted(spans)})"
    assert results[2].timings.queued > 0.2 and results[3].timings.queued > 0.2, "the others waited their turn"
