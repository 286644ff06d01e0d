"""One `Llama`, called from two OS threads in turn: llama.cpp's CPU backend (built with OpenMP, as llama-cpp-python's
wheels and source builds are on Linux) starts a team of compute threads for each OS thread that decodes, and once
there are two teams every generation runs several times slower on a small CPU (a build with -DGGML_OPENMP=OFF
does not).

This is what `asyncio.to_thread` around a `Llama` does as soon as the executor hands a call to another of its
threads, and why llmclient decodes on one worker thread only (tests/test_client.py::
test_each_model_decodes_on_its_worker_thread_only).

    python bench/omp_teams.py [--model PATH] [--tokens 128] [--rounds 3] [--threads N]

Prints greedy decode tokens/s for thread A alone, then A and B alternating, and the process's thread count.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: the real SmolLM2 file)")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if args.model is None:
        from llmclient.testing import smollm2_gguf

        args.model = smollm2_gguf()
    import llama_cpp

    llm = llama_cpp.Llama(str(args.model), n_ctx=1024, n_threads=args.threads, n_threads_batch=args.threads,
                          verbose=False)  # fmt: skip
    prompt = llm.tokenize(b"Write a long story about a lighthouse keeper.")

    def generate() -> str:
        started, produced = time.perf_counter(), 0
        for _ in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
            produced += 1
            if produced == args.tokens:
                break
        rate = produced / (time.perf_counter() - started)
        tasks = len(os.listdir("/proc/self/task")) if Path("/proc/self/task").exists() else -1
        return f"thread {threading.get_native_id()}: {rate:6.1f} tok/s ({tasks} threads in the process)"

    a, b = ThreadPoolExecutor(1), ThreadPoolExecutor(1)
    print(f"{args.model.name}, {args.threads} threads, {args.tokens} tokens per generation")
    print("A only:")
    for _ in range(args.rounds):
        print("  " + a.submit(generate).result())
    print("A and B in turn:")
    for _ in range(args.rounds):
        print("  A " + a.submit(generate).result())
        print("  B " + b.submit(generate).result())


if __name__ == "__main__":
    main()
