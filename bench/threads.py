"""CPU threads benchmark: decode speed at llama-cpp-python's default thread count against the plan's.

llama-cpp-python's `Llama` uses half the logical CPUs unless told (`n_threads=None`); the planner uses every
physical core (`llmclient.planner.threads_for`). Both load the same model (the real SmolLM2 file by default)
with the same context, generate the same greedy tokens, interleaved for `--rounds` rounds.

    python bench/threads.py [--model PATH] [--rounds N] [--tokens N]

Prints a Markdown table: tokens per second, median and range, per setting.
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import time
from pathlib import Path

import llama_cpp

from llmclient.hardware import detect
from llmclient.planner import threads_for


def tokens_per_second(llm: llama_cpp.Llama, n_tokens: int) -> float:
    llm.reset()  # type: ignore[no-untyped-call]
    start = time.perf_counter()
    out = llm.create_completion("The history of the city begins", max_tokens=n_tokens, temperature=0.0)
    elapsed = time.perf_counter() - start
    return int(out["usage"]["completion_tokens"]) / elapsed  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    if args.model is None:
        from llmclient.testing import smollm2_gguf

        args.model = smollm2_gguf()
    planned = threads_for(detect(), fully_offloaded=False)
    default = max(multiprocessing.cpu_count() // 2, 1)
    settings = {f"llama-cpp-python default ({default})": None, f"plan ({planned})": planned}
    models = {
        name: llama_cpp.Llama(str(args.model), n_ctx=2048, n_threads=n, verbose=False, seed=1)
        for name, n in settings.items()
    }
    results: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, llm in models.items():
            results[name].append(tokens_per_second(llm, args.tokens))
    print(f"Machine: {platform.processor() or platform.machine()}, {multiprocessing.cpu_count()} logical CPUs; "
          f"command: `python bench/threads.py --rounds {args.rounds} --tokens {args.tokens}`\n")  # fmt: skip
    print("| threads | tokens/s (median) | min | max |\n|---|---|---|---|")
    for name, values in results.items():
        print(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")


if __name__ == "__main__":
    main()
