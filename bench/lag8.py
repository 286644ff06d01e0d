"""8 concurrent llmclient streams with a 1 ms ticker, round after round: a small target for profiling loop lag.

Prints each round's chunks per second and the ticker's p99 and max lateness. Meant to run under a profiler:

    py-spy record --nonblocking -r 1000 -f raw --threads -o lag8.txt -- python bench/lag8.py --model M --rounds 8
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anyio
from _common import pct, tick_until  # bench/ is on sys.path when run as a script

from llmclient import LlmClient


async def main(model: Path, rounds: int, threads: int | None) -> None:
    options = {"threads": threads} if threads else {}
    client = await LlmClient.from_path(model, ctx=1024, parallel=8, **options)
    await client.chat("Hi", max_tokens=8)
    chunks = 0

    async def one(i: int) -> None:
        nonlocal chunks
        async for _ in client.stream(f"Tell me a story about the number {i}.", max_tokens=128, temperature=0.0):
            chunks += 1

    for r in range(rounds):
        lags: list[float] = []
        done = anyio.Event()
        started, chunks = time.perf_counter(), 0
        async with anyio.create_task_group() as tg:
            tg.start_soon(tick_until, done.is_set, lags)
            async with anyio.create_task_group() as requests:
                for i in range(8):
                    requests.start_soon(one, i)
            done.set()
        rate = chunks / (time.perf_counter() - started)
        p99, worst = pct(lags, 0.99), max(lags)
        print(f"round {r}: {rate:.0f} chunks/s, lag p99 {p99:.2f} max {worst:.2f} ms, {len(lags)} ticks")
    await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.model is None:
        from llmclient.testing import smollm2_gguf

        args.model = smollm2_gguf()
    anyio.run(main, args.model, args.rounds, args.threads)
