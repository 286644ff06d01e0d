"""`decide(votes=n)` against one vote: the votes are decoded together through the batch, not one after another.

Each round starts a fresh process per variant (rotating the order): it loads the model with `.parallel(votes)`,
warms up, then times `client.choice(question, options, reason=True)` once ("one vote") and
`client.decide(question, options, votes=n)` once, over the same questions; the ratio is their wall times
(llm_client's vote loop, one vote after another, would be about n). Sampling as `decide` does it: each vote its
own seed and a temperature rising from 0.3.

    python bench/workflows.py [--votes 5] [--rounds 3] [--model PATH] [--gpu]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

TAG = "WORKFLOWS "
QUESTIONS = [
    ("Which is a fruit?", ["car", "apple", "rock"]),
    ("Which animal can fly?", ["dog", "eagle", "fish"]),
    ("Which is a colour?", ["blue", "table", "seven"]),
]


async def measure(model: str, votes: int, gpu: bool) -> dict[str, Any]:
    from llmclient import LlmClient

    builder = LlmClient.llama_cpp().local(model).ctx(2048).parallel(votes)
    builder = builder if gpu else builder.cpu_only()
    async with await builder.init() as client:
        await client.choice("Warm-up: which is a number?", ["one", "cat"], reason=True, temperature=0.3, seed=99)
        one, many = [], []
        for question, options in QUESTIONS:
            started = time.perf_counter()
            await client.choice(question, options, reason=True, temperature=0.3, seed=1)
            one.append(time.perf_counter() - started)
            started = time.perf_counter()
            decision = await client.decide(question, options, votes=votes)
            many.append(time.perf_counter() - started)
            assert sum(decision.votes.values()) == votes
    return {"one_s": sum(one), "decide_s": sum(many)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--votes", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=None, help="a GGUF file (default: the real SmolLM2 file)")
    parser.add_argument("--gpu", action="store_true", help="offload the model (default: CPU only)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model is None:
        from llmclient.testing import smollm2_gguf

        args.model = str(smollm2_gguf())
    if args.one:
        print(TAG + json.dumps(asyncio.run(measure(args.model, args.votes, args.gpu))), flush=True)
        return
    started = time.perf_counter()
    ratios, ones, decides = [], [], []
    for i in range(args.rounds):
        command = [sys.executable, __file__, "--one", "--model", args.model, "--votes", str(args.votes)]
        out = subprocess.run(command + (["--gpu"] if args.gpu else []), capture_output=True, text=True, timeout=900)
        line = next((x for x in out.stdout.splitlines() if x.startswith(TAG)), None)
        if line is None:
            print(f"round {i + 1}: no result: {out.stderr[-500:]}", file=sys.stderr)
            continue
        result = json.loads(line[len(TAG) :])
        ones.append(result["one_s"])
        decides.append(result["decide_s"])
        ratios.append(result["decide_s"] / result["one_s"])
        print(f"round {i + 1}: one vote {result['one_s']:.2f} s, decide {result['decide_s']:.2f} s", file=sys.stderr)
    print(f"Machine: {os.cpu_count()} logical CPUs, {'GPU' if args.gpu else 'CPU only'}; {args.rounds} rounds of "
          f"{len(QUESTIONS)} questions; `python bench/workflows.py {' '.join(sys.argv[1:])}` "
          f"({(time.perf_counter() - started) / 60:.1f} min)\n")  # fmt: skip
    print(f"| votes | one vote, s | decide, s | decide / one vote, median (min-max) |\n|---|---|---|---|\n"
          f"| {args.votes} | {statistics.median(ones):.2f} | {statistics.median(decides):.2f} | "
          f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |")  # fmt: skip


if __name__ == "__main__":
    main()
