"""Two models in one process, used in turn. llama.cpp's OpenMP builds (the default on Linux) start a team of compute
threads for each OS thread that decodes, and on a small CPU two teams taking turns make each generation several
times slower (bench/omp_teams.py); llmclient decodes every model of a process on one thread, so both models share
one team and each should run as fast as one alone.

    python bench/two_models.py [--model PATH] [--tokens 128] [--rounds 2]

Prints greedy tokens/s of model A alone, then of A and B in turn (the same file loaded twice).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anyio

STORY = "Write a long story about a lighthouse keeper and a storm."


async def main(model: Path, tokens: int, rounds: int) -> None:
    from llmclient import LlmClient

    async def rate(client: LlmClient) -> str:
        started = time.perf_counter()
        result = await client.chat(STORY, max_tokens=tokens, temperature=0.0)
        return f"{result.usage.completion_tokens / (time.perf_counter() - started):6.1f}"

    async with await LlmClient.from_path(model, ctx=1024, parallel=1) as a:
        print("A alone:     " + ", ".join([await rate(a) for _ in range(rounds)]) + " tok/s")
        async with await LlmClient.from_path(model, ctx=1024, parallel=1) as b:
            for _ in range(rounds):
                print(f"A then B: {await rate(a)}, {await rate(b)} tok/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: the real SmolLM2 file)")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.model is None:
        from llmclient.testing import smollm2_gguf

        args.model = smollm2_gguf()
    anyio.run(main, args.model, args.tokens, args.rounds)
