"""The remote engine on real llama-servers: its overhead against the openai SDK, and prefix affinity.

1. One llama-server (`-np 8`): `LlmClient.remote` against `openai.AsyncOpenAI` (streaming, `max_retries=0`) on
   the same server, one stream and 8 at once, every answer run to `--tokens` (llama-server's `ignore_eos`);
   tokens/s (completion tokens over the wall time), time to first token, and the client's own CPU time per token
   (this process's: the server is another, so it is what the client costs, whatever the server's noise). Each
   system gets prompts of its own each round (the server caches prompts), the order alternates, and one request
   each (one alone, then 8 at once) warms the server first.
2. Two llama-servers (`-np 4` each): `--conversations` chats about a document of their own (~300 tokens), run
   at once, `--turns` turns each (a seeded pause of 0-1 s before each turn, answers of 12-36 tokens: users who do
   not move in lockstep), routed `affinity` against `least_busy`: the prompt tokens each later turn found
   in the server's cache (`usage` / `timings.cache_n`), how many found their whole previous prompt there, and the
   second turn's time to first token.

Prints a Markdown section (progress on stderr). `python bench/remote.py --rounds 3`; the llama-server is
`scripts/build_llama_server.py`'s.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from llmclient import LlmClient, RemoteEngine
from llmclient.testing import smollm2_gguf
from llmclient.testing.llama_server import LlamaServer, llama_cpp_python_version

LONG = {"ignore_eos": True}
WORDS = ("river", "copper", "lantern", "orchard", "harbour", "meadow", "signal", "quarry", "violet", "engine")


def story(i: int) -> list[dict[str, str]]:
    """Request i's messages: a prompt of its own (the server caches the last prompt of each slot)."""
    return [{"role": "user", "content": f"Write a long story about a {WORDS[i % 10]} and a {WORDS[i // 10 % 10]} "
             f"(number {i})."}]  # fmt: skip


async def ours(url: str, ids: list[int], tokens: int) -> dict[str, float]:
    """llmclient.remote: the requests `ids` at once; tokens, wall seconds, time to first token (mean)."""
    async with await LlmClient.remote(url).temperature(0.0).extra_body(LONG).init() as client:
        return await _run(ids, tokens, lambda i: _ours_one(client, i, tokens))


async def _ours_one(client: LlmClient, i: int, tokens: int) -> tuple[int, float]:
    began = time.perf_counter()
    first = None
    produced = 0
    async for chunk in client.stream(story(i), max_tokens=tokens):
        first = first if first is not None or not chunk.text else time.perf_counter() - began
        if chunk.usage is not None:
            produced = chunk.usage.completion_tokens
    return produced, first or 0.0


async def sdk(url: str, ids: list[int], tokens: int) -> dict[str, float]:
    """The openai SDK, streaming, on the same server."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
    try:
        return await _run(ids, tokens, lambda i: _sdk_one(client, i, tokens))
    finally:
        await client.close()


async def _sdk_one(client: Any, i: int, tokens: int) -> tuple[int, float]:
    began = time.perf_counter()
    first = None
    produced = 0
    stream = await client.chat.completions.create(
        model="smollm2", messages=story(i), max_tokens=tokens, temperature=0.0, stream=True,
        stream_options={"include_usage": True}, extra_body=LONG,
    )  # fmt: skip
    async with stream:
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - began
            if chunk.usage is not None:
                produced = chunk.usage.completion_tokens
    return produced, first or 0.0


async def _run(ids: list[int], tokens: int, one: Any) -> dict[str, float]:
    results: list[tuple[int, float]] = []

    async def go(i: int) -> None:
        results.append(await one(i))

    began, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as tg:
        for i in ids:
            tg.start_soon(go, i)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    produced = sum(r[0] for r in results)
    assert produced == tokens * len(ids), f"{produced} tokens, expected {tokens * len(ids)}"
    return {"tokens": produced, "wall": wall, "ttft": statistics.mean(r[1] for r in results), "cpu": cpu}


def document(c: int) -> str:
    """Conversation c's document: ~300 tokens no other conversation shares."""
    lines = [f"Log {c}.{k}: the {WORDS[(c + k) % 10]} station recorded {c * 37 + k * 11} units of {WORDS[k % 10]} at "
             f"{(c * 7 + k) % 24:02d}:{(k * 13) % 60:02d}." for k in range(14)]  # fmt: skip
    return "Read these logs.\n" + "\n".join(lines) + "\nWhat is the first log about?"


async def conversations(urls: list[str], routing: str, count: int, turns: int, seed: int) -> list[dict[str, float]]:
    """`count` chats at once over the replicas, `turns` turns each; one row per turn after the first."""
    builder = LlmClient.remote(urls).routing(routing).temperature(0.0)  # type: ignore[arg-type]
    rows: list[dict[str, float]] = []
    async with await builder.init() as client:

        async def chat(c: int) -> None:
            messages: list[dict[str, str]] = [{"role": "user", "content": document(seed + c)}]
            previous = 0
            think = random.Random(seed * 1000 + c)  # a user reads and types between turns, each at a pace
            for turn in range(turns):
                await anyio.sleep(think.uniform(0.0, 1.0))
                result = await client.chat(messages, max_tokens=think.randint(12, 36))
                if turn:
                    usage = result.usage
                    rows.append({"turn": turn + 1, "prompt": usage.prompt_tokens, "cached": usage.cached_tokens,
                                 "whole": float(usage.cached_tokens >= previous),
                                 "ttft": result.timings.first_token})  # fmt: skip
                previous = result.usage.prompt_tokens
                messages += [{"role": "assistant", "content": result.text},
                             {"role": "user", "content": f"And log {turn + 1}?"}]  # fmt: skip

        async with anyio.create_task_group() as tg:
            for c in range(count):
                tg.start_soon(chat, c)
        engine = client.engine
        assert isinstance(engine, RemoteEngine)
        print(f"  {routing}: served {[s.completed for s in engine.stats()]}", file=sys.stderr, flush=True)
    return rows


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    return (f"{statistics.median(values) * scale:.{digits}f} ({min(values) * scale:.{digits}f}-"
            f"{max(values) * scale:.{digits}f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--conversations", type=int, default=4)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--model", type=Path, default=None, help="a GGUF (default: SmolLM2-135M-Instruct Q4_1)")
    args = parser.parse_args()
    model = args.model or smollm2_gguf()
    started = time.perf_counter()
    overhead: dict[tuple[str, int], list[dict[str, float]]] = {}
    with LlamaServer(model, parallel=8, ctx=16384) as server:
        for warm in (ours, sdk):  # a server's first requests on each slot are slower: not measured
            for n in (1, 8):
                anyio.run(warm, server.url, [999_000 + 100 * (warm is sdk) + 10 * n + k for k in range(n)], 16)
        for r in range(args.rounds):
            systems = [("llmclient", ours), ("openai", sdk)]
            for name, run in systems if r % 2 == 0 else systems[::-1]:
                for n in (1, 8):
                    ids = [1000 * r + 100 * (name == "openai") + 10 * n + k for k in range(n)]
                    result = anyio.run(run, server.url, ids, args.tokens)
                    overhead.setdefault((name, n), []).append(result)
                    print(f"round {r + 1} {name} x{n}: {result['tokens'] / result['wall']:.1f} tok/s, "
                          f"ttft {result['ttft'] * 1000:.0f} ms", file=sys.stderr, flush=True)  # fmt: skip
    affinity: dict[str, list[dict[str, float]]] = {"affinity": [], "least_busy": []}
    with LlamaServer(model, parallel=4) as a, LlamaServer(model, parallel=4) as b:
        for r in range(args.rounds):
            for routing in ("affinity", "least_busy") if r % 2 == 0 else ("least_busy", "affinity"):
                seed = 100 * r + 50 * (routing == "affinity")
                rows = anyio.run(conversations, [a.url, b.url], routing, args.conversations, args.turns, seed)
                affinity[routing] += rows
                print(f"round {r + 1} {routing}: whole prefix cached "
                      f"{sum(x['whole'] for x in rows):.0f}/{len(rows)}", file=sys.stderr, flush=True)  # fmt: skip
    command = f"python bench/remote.py {' '.join(sys.argv[1:])}"
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; llama-server from "
          f"llama-cpp-python {llama_cpp_python_version()}'s sdist, `-t 1`; SmolLM2-135M-Instruct Q4_1; "
          f"{args.rounds} rounds; `{command}` ({(time.perf_counter() - started) / 60:.1f} min)\n")  # fmt: skip
    print(f"One llama-server, `-np 8`, {args.tokens} tokens an answer:\n")
    print("| client | at once | tokens/s, median (min-max) | to the SDK | first token, ms, median (min-max) | "
          "client CPU, ms per 100 tokens, median (min-max) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for (name, n), results in overhead.items():
        rates = [x["tokens"] / x["wall"] for x in results]
        base = statistics.median(x["tokens"] / x["wall"] for x in overhead[("openai", n)])
        print(f"| {name} | {n} | {spread(rates)} | {statistics.median(rates) / base:.3f} | "
              f"{spread([x['ttft'] for x in results], 1000, 0)} | "
              f"{spread([x['cpu'] / x['tokens'] * 100 for x in results], 1000, 1)} |")  # fmt: skip
    print(
        f"\nTwo llama-servers, `-np 4` each; {args.conversations} conversations at once, {args.turns} turns, "
        "12-36 tokens an answer, 0-1 s before each turn; turns after the first:\n"
    )
    print(
        "| routing | later turns | whole previous prompt cached | cached / prompt tokens | "
        "2nd-turn first token, ms, median (min-max) | later turns' first token, ms, median |"
    )
    print("|---|---|---|---|---|---|")
    for routing, rows in affinity.items():
        second = [x["ttft"] for x in rows if x["turn"] == 2]
        cached = sum(x["cached"] for x in rows) / max(1, sum(x["prompt"] for x in rows))
        print(f"| {routing} | {len(rows)} | {sum(x['whole'] for x in rows):.0f}/{len(rows)} | {cached:.2f} | "
              f"{spread(second, 1000, 0)} | {statistics.median(x['ttft'] for x in rows) * 1000:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
