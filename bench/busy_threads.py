"""Why fewer threads on a busy machine: llama-cpp-python's `Llama.generate` at 1 and at all threads beside K busy
programs, with the decoding thread's share of time spent waiting for a CPU (Linux schedstat's run_delay).

    python bench/busy_threads.py [--model PATH] [--tokens 60] [--rounds 2] [--busy 0,1,2]

llama.cpp's compute threads meet at a barrier after every graph node, so with more threads than free cores a step
waits for the preempted one. The waiting share is the signal llmclient's thread policy reads
(`llmclient/backends/_threads.py`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

from contention import busy_loops  # bench/ is on sys.path when run as a script


def waited() -> float:
    with open("/proc/thread-self/schedstat") as fh:
        return int(fh.read().split()[1]) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: the real SmolLM2 file)")
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--busy", default="0,1,2")
    args = parser.parse_args()
    if args.model is None:
        from llmclient.testing import smollm2_gguf

        args.model = smollm2_gguf()
    import llama_cpp

    most = os.cpu_count() or 1
    models = {n: llama_cpp.Llama(str(args.model), n_ctx=1024, n_threads=n, n_threads_batch=n, verbose=False)
              for n in sorted({1, most})}  # fmt: skip
    prompt = models[1].tokenize(b"Write a long story about a lighthouse keeper.")
    busy: list[subprocess.Popen[bytes]] = []
    print(f"{args.model.name}, {most} logical CPUs, {args.tokens} tokens, greedy\n")
    print("| busy programs | threads | tok/s | waited for a CPU | slowest token ms |\n|---|---|---|---|---|")
    try:
        for k in (int(k) for k in args.busy.split(",")):
            while len(busy) < k:
                busy += busy_loops(1, 600)
            while len(busy) > k:
                busy.pop().kill()
            time.sleep(0.5)
            for _ in range(args.rounds):
                for n, llm in models.items():
                    w0, t0, last, slowest, count = waited(), time.perf_counter(), time.perf_counter(), 0.0, 0
                    for _token in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
                        now = time.perf_counter()
                        slowest, last, count = max(slowest, now - last), now, count + 1
                        if count == args.tokens:
                            break
                    wall = time.perf_counter() - t0
                    print(f"| {k} | {n} | {count / wall:.1f} | {(waited() - w0) / wall:.0%} | {slowest * 1000:.0f} |",
                          flush=True)  # fmt: skip
    finally:
        for process in busy:
            process.kill()


if __name__ == "__main__":
    main()
