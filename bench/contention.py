"""A busy machine: one stream's speed, time to first token and event-loop lag beside K busy programs, for llmclient
and llama-cpp-python at its defaults, each in a fresh process, interleaved, N rounds.

    python bench/contention.py [--busy 2,1,0] [--rounds 3] [--tokens 100] [--model PATH]
                               [--systems llmclient,llama_cpp] [--timeout 120]

Busy programs are plain Python loops at nice 0 (`while time.time() < end: pass`), started before a load level's
rounds and stopped by their pid after them (each also ends by itself after `--timeout` x rounds x systems seconds).
Systems:
- `llmclient`: this checkout, `LlmClient.from_path(model, ctx=1024, cpu_only=True)`, everything else planned.
- `llmclient-pN`: the same with `parallel=N` (the plan's otherwise).
- `llmclient@REV`: the same from git revision REV (exported to a temporary folder and put first on `sys.path`),
  to compare with an earlier llmclient side by side.
- `llama_cpp`: llama-cpp-python's `Llama(model, n_ctx=1024)` at its defaults (half the logical CPUs as threads),
  `create_chat_completion(stream=True)` on one dedicated thread, each piece handed to the event loop.
In each process: load, a warm-up request of 8 tokens (its time to first token is reported as `cold ttft`), then one
greedy stream of `--tokens` with a 1 ms ticker on the event loop. Reported: decode tokens/s (after the first
token), time to first token, and the ticker's p99 and max lateness, as medians over rounds with the range; ratios
are llmclient's to llama_cpp's per round, then their median.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import export, pct, prompt, tick_until  # bench/ is on sys.path when run as a script
from _peer_systems import thread_stream

TAG = "CONTENTION "
CTX = 1024


# --- in the child process -----------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_system(system: str, model: str) -> AsyncIterator[Any]:
    """A function streaming (messages, tokens) -> text pieces, for `system`, loaded and ready."""
    if system.startswith("llmclient"):
        from llmclient import LlmClient

        name = system.split("@", 1)[0]
        extra = {"parallel": int(name.removeprefix("llmclient-p"))} if name.startswith("llmclient-p") else {}
        client = await LlmClient.from_path(model, ctx=CTX, cpu_only=True, **extra)

        async def stream(messages: list[dict[str, str]], tokens: int) -> AsyncIterator[str]:
            async for chunk in client.stream(messages, max_tokens=tokens, temperature=0.0):
                if chunk.text:
                    yield chunk.text

        try:
            yield stream
        finally:
            await client.close()
        return
    import llama_cpp

    llm: Any = llama_cpp.Llama(model, n_ctx=CTX, verbose=False)
    executor = ThreadPoolExecutor(1)  # one thread: one compute team

    async def stream_llama(messages: list[dict[str, str]], tokens: int) -> AsyncIterator[str]:
        def pieces() -> Iterator[str]:
            for chunk in llm.create_chat_completion(messages, stream=True, max_tokens=tokens, temperature=0.0):
                yield chunk["choices"][0]["delta"].get("content") or ""

        async for piece in thread_stream(pieces, executor=executor):  # bench/peers.py's pump
            yield piece

    try:
        yield stream_llama
    finally:
        executor.shutdown()
        llm.close()


async def measure(system: str, model: str, tokens: int) -> dict[str, float]:
    async with open_system(system, model) as stream:
        asked = time.perf_counter()
        cold_first = 0.0
        async for _ in stream([{"role": "user", "content": "Say hello."}], 8):
            cold_first = cold_first or time.perf_counter()
        lags: list[float] = []
        count, first, done = 0, 0.0, False

        async def consume() -> None:
            nonlocal count, first, done
            async for _ in stream(prompt(0), tokens):
                count += 1
                first = first or time.perf_counter()
            done = True

        ticker = asyncio.ensure_future(tick_until(lambda: done, lags))
        cpu, began = time.process_time(), time.perf_counter()
        await consume()
        end = time.perf_counter()
        cpu = time.process_time() - cpu
        await ticker
    return {
        "tok_s": (count - 1) / (end - first) if count > 1 and end > first else 0.0,
        "ttft": first - began,
        "cold_ttft": cold_first - asked,
        "lag_p99": pct(lags, 0.99),
        "lag_max": max(lags),
        "pieces": count,
        "cpu_ms_per_piece": cpu * 1000 / max(count, 1),
    }


# --- in the parent ------------------------------------------------------------------------------------------------


def busy_loops(k: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    code = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(k)]


def run_child(system: str, args: argparse.Namespace, paths: dict[str, Path]) -> dict[str, float] | None:
    env = dict(os.environ)
    if "@" in system:
        env["PYTHONPATH"] = os.pathsep.join([str(paths[system]), env.get("PYTHONPATH", "")])
    command = [sys.executable, __file__, "--one", system, "--model", str(args.model), "--tokens", str(args.tokens)]
    try:
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout).stdout
    except subprocess.TimeoutExpired:
        return None
    for line in out.splitlines():
        if line.startswith(TAG):
            result: dict[str, float] = json.loads(line[len(TAG) :])
            return result
    print(f"  {system}: no result", file=sys.stderr)
    return None


def summary(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", default="2,1,0", help="busy programs per load level, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--systems", default="llmclient,llama_cpp")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one process may take")
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: the real SmolLM2 file)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model is None:
        from llmclient.testing import smollm2_gguf

        args.model = smollm2_gguf()
    if args.one:
        result = asyncio.run(measure(args.one, str(args.model), args.tokens))
        print(TAG + json.dumps(result), flush=True)
        os._exit(0)  # llama.cpp's teardown at exit is not what is measured

    systems = args.systems.split(",")
    levels = [int(k) for k in args.busy.split(",")]
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"Python {platform.python_version()}; model {args.model.name}; {args.tokens} tokens; command: "
          f"`python bench/contention.py --busy {args.busy} --rounds {args.rounds} --tokens {args.tokens} "
          f"--systems {args.systems}`\n", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        paths = {s: export(s.split("@", 1)[1], Path(tmp)) for s in systems if "@" in s}
        all_results: dict[int, dict[str, list[dict[str, float] | None]]] = {}
        for k in levels:
            loops = busy_loops(k, args.timeout * args.rounds * len(systems) + 60)
            time.sleep(1.0 if k else 0.0)
            results: dict[str, list[dict[str, float] | None]] = {s: [] for s in systems}
            try:
                for r in range(args.rounds):
                    order = systems[r % len(systems) :] + systems[: r % len(systems)]
                    for system in order:
                        got = run_child(system, args, paths)
                        results[system].append(got)
                        shown = "timed out" if got is None else (
                            f"{got['tok_s']:.1f} tok/s, ttft {got['ttft'] * 1000:.0f} ms, "
                            f"lag p99 {got['lag_p99']:.2f} max {got['lag_max']:.1f} ms")  # fmt: skip
                        print(f"  busy {k}, round {r + 1}, {system}: {shown}", flush=True)
            finally:
                for loop in loops:
                    loop.kill()
                    loop.wait()
            all_results[k] = results
            report(k, results, systems)
    if os.environ.get("CONTENTION_JSON"):
        Path(os.environ["CONTENTION_JSON"]).write_text(json.dumps(all_results, indent=1))


def report(k: int, results: dict[str, list[dict[str, float] | None]], systems: list[str]) -> None:
    print(f"\n{k} busy program(s):\n")
    print("| system | decode tok/s | ttft ms | cold ttft ms | lag p99 ms | lag max ms | timed out |")
    print("|---|---|---|---|---|---|---|")
    for system in systems:
        done = [r for r in results[system] if r is not None]
        print(f"| {system} | {summary([r['tok_s'] for r in done])} | {summary([r['ttft'] * 1000 for r in done], 0)} "
              f"| {summary([r['cold_ttft'] * 1000 for r in done], 0)} | {summary([r['lag_p99'] for r in done], 2)} "
              f"| {summary([r['lag_max'] for r in done])} | {len(results[system]) - len(done)} |")  # fmt: skip
    base = "llama_cpp" if "llama_cpp" in systems else systems[-1]
    for system in systems:
        if system == base:
            continue
        pairs = [(a, b) for a, b in zip(results[system], results[base], strict=True) if a and b]
        if pairs:
            speed = statistics.median(a["tok_s"] / b["tok_s"] for a, b in pairs if b["tok_s"] > 0)
            ttft = statistics.median(a["ttft"] / b["ttft"] for a, b in pairs if b["ttft"] > 0)
            print(f"\n{system} / {base}, median of per-round ratios: decode tok/s {speed:.2f}x, ttft {ttft:.2f}x, "
                  f"lag p99 {statistics.median(a['lag_p99'] - b['lag_p99'] for a, b in pairs):+.2f} ms")  # fmt: skip
    print(flush=True)


if __name__ == "__main__":
    main()
