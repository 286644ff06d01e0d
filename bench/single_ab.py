"""One stream's decode rate, A/B/C interleaved: a fresh process per variant and round, each timing three greedy
streams of --tokens after a warm-up and reporting their median, so that the machine's drift between rounds shows
as drift, not as a difference between variants.

    python bench/single_ab.py [--rounds 7] [--tokens 256] [--threads 2] [--model PATH]
                              [--variants llmclient-p8,llmclient-p8-nice0,to_thread,one_thread]

Variants: `llmclient-pN` (bench/peers.py's llmclient with `parallel=N`), with `-nice0` for
`LLMCLIENT_WORKER_NICE=0`; `to_thread` (llama-cpp-python's `create_chat_completion(stream=True)` in
`asyncio.to_thread`) and `one_thread` (the same on one dedicated executor thread: `asyncio.to_thread` may decode
from several threads, each starting an OpenMP team, bench/omp_teams.py): bench/peers.py's systems of those names.
The order of the variants rotates each round. Ratios are to the last variant.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import prompt  # bench/ is on sys.path when run as a script
from _peer_systems import OPENERS, Settings, open_llmclient

TAG = "SINGLE-AB "


async def measure(variant: str, model: str, tokens: int, threads: int, opened: contextlib.AsyncExitStack) -> float:
    """The median decode rate of three streams of `tokens` in this process."""
    settings = Settings(model=model, tokens=tokens, threads=threads, gpu=False)
    if variant.startswith("llmclient-p"):  # bench/peers.py's llmclient system with another `parallel`
        if variant.endswith("-nice0"):
            os.environ["LLMCLIENT_WORKER_NICE"] = "0"
        parallel = int(variant.removeprefix("llmclient-p").removesuffix("-nice0"))
        peer = await opened.enter_async_context(open_llmclient(settings, parallel))
    elif variant in ("to_thread", "one_thread"):  # bench/peers.py's systems of these names
        peer = await opened.enter_async_context(OPENERS[variant](settings))
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    stream = peer.stream
    async for _ in stream([{"role": "user", "content": "Say hello."}], 8):
        pass
    rates = []
    for i in range(3):
        count, first = 0, 0.0
        async for _ in stream(prompt(i), tokens):
            count += 1
            first = first or time.perf_counter()
        rates.append((count - 1) / (time.perf_counter() - first))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: the real SmolLM2 file)")
    parser.add_argument("--variants", default="llmclient-p8,llmclient-p8-nice0,to_thread,one_thread")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model is None:
        from llmclient.testing import smollm2_gguf

        args.model = smollm2_gguf()
    if args.one:

        async def one() -> float:
            async with contextlib.AsyncExitStack() as opened:
                return await measure(args.one, str(args.model), args.tokens, args.threads, opened)

        rate = asyncio.run(one())
        print(TAG + str(rate), flush=True)
        os._exit(0)
    variants = args.variants.split(",")
    rates: dict[str, list[float]] = {v: [] for v in variants}
    for i in range(args.rounds):
        for variant in variants[i % len(variants) :] + variants[: i % len(variants)]:
            command = [sys.executable, __file__, "--one", variant, "--model", str(args.model),
                       "--tokens", str(args.tokens), "--threads", str(args.threads)]  # fmt: skip
            out = subprocess.run(command, capture_output=True, text=True, check=False).stdout
            found = [line for line in out.splitlines() if line.startswith(TAG)]
            rates[variant].append(float(found[0].removeprefix(TAG)) if found else float("nan"))
        print(f"round {i + 1}: " + ", ".join(f"{v} {r[-1]:.1f}" for v, r in rates.items()), flush=True)
    base = rates[variants[-1]]
    for variant, values in rates.items():
        ratios = ", ".join(f"{a / b:.2f}" for a, b in zip(values, base, strict=True))
        print(f"{variant}: median {statistics.median(values):.1f} tok/s; per round / {variants[-1]}: {ratios}")


if __name__ == "__main__":
    main()
