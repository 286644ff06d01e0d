"""Several chats at once with `asyncio.gather`: the model decodes them together, one batch per step.

    python examples/concurrent_chats.py

The same questions are asked twice: one after another, then all at once. Together, each request joins the
running batch at once (up to the plan's `parallel` requests; more wait their turn, shown as `queued`) instead of
waiting for the others to finish, so every answer starts early; the columns show, for each request, when its
first token and its last arrived, counted from the start of the round. How much wall time batching saves
depends on the machine: where a decoding step is bound by reading the weights (a GPU, a large model) a step for
several requests costs little more than a step for one; on a small CPU, decoding a small model is bound by
arithmetic and the two rounds take about as long (see BENCHMARKS.md).

The first run downloads SmolLM2-135M-Instruct (about 100 MB) into the cache (`$LLMCLIENT_CACHE_DIR`, else the
user cache directory); `HF_ENDPOINT` points it at a mirror or a LocalHub instead of huggingface.co.
(Named `concurrent_chats.py`, not `concurrent.py`: that would shadow the standard library's `concurrent`
package, which asyncio imports.)
"""

from __future__ import annotations

import asyncio
import time

from llmclient import ChatResult, LlmClient

QUESTIONS = [
    "What is the capital of France? Answer in one word.",
    "Name three primary colours.",
    "What is 12 times 12?",
    "Why is the sky blue? One sentence.",
]
MAX_TOKENS = 48


async def ask(client: LlmClient, question: str, round_start: float) -> tuple[float, ChatResult]:
    """The answer to `question`, and when it was asked in seconds after `round_start`."""
    asked = time.perf_counter() - round_start
    return asked, await client.chat(question, max_tokens=MAX_TOKENS, temperature=0)


def report(title: str, rows: list[tuple[float, ChatResult]], wall: float) -> None:
    """Print one line per request and the wall time of the round."""
    print(f"{title}: {wall:.2f} s for {len(rows)} requests")
    print(f"  {'asked':>6} {'queued':>6} {'1st tok':>7} {'done':>6} {'tokens':>6} {'tok/s':>6}  question")
    for question, (asked, result) in zip(QUESTIONS, rows, strict=True):
        t = result.timings
        first = asked + t.queued + t.first_token
        print(
            f"  {asked:>6.2f} {t.queued:>6.2f} {first:>7.2f} {asked + t.total:>6.2f}"
            f" {result.usage.completion_tokens:>6} {t.tokens_per_second:>6.1f}  {question}"
        )


async def main() -> None:
    """Ask `QUESTIONS` one by one, then concurrently, and compare the timings."""
    async with await LlmClient.llama_cpp().smollm2_135m_instruct().init() as client:
        parallel = client.plan.parallel if client.plan is not None else 1
        print(f"the model decodes up to {parallel} requests together\n")

        start = time.perf_counter()
        one_by_one = [await ask(client, q, start) for q in QUESTIONS]
        report("one after another", one_by_one, time.perf_counter() - start)

        start = time.perf_counter()
        together = await asyncio.gather(*(ask(client, q, start) for q in QUESTIONS))
        report("all at once", list(together), time.perf_counter() - start)

        print("\nanswers:")
        for question, (_, result) in zip(QUESTIONS, together, strict=True):
            print(f"  {question} -> {result.text.strip()!r}")


if __name__ == "__main__":
    asyncio.run(main())
