"""Facade overhead benchmark: llmclient's streamed chat against llama-cpp-python called directly.

Same model (the real SmolLM2 file by default), same prompt, greedy, the same number of tokens (`--tokens`,
ignoring end-of-text so every run generates them all), runs interleaved for `--rounds` rounds:

- `llmclient`: `client.stream(...)` through the worker thread and our decode loop (threads from the plan);
- `raw stream (defaults)`: `Llama.create_chat_completion(stream=True)` as users get it (llama-cpp-python's
  default threads: half the logical CPUs);
- `raw stream (same threads)` and `generate (same threads)`: the same, and a bare `Llama.generate` loop over
  the formatted prompt, with the plan's threads;
- `bare lean loop (same threads)`: the floor: `llama_decode` + a native greedy sampler + detokenization and
  nothing else (no worker, no event loop, no stop sequences), to show what a decode loop of our own can gain.

Each system runs in a fresh process per measurement. Also: the event loop's lag while llmclient generates (a
1 ms ticker, in a separate run so that its own CPU use does not count against the speed), the second turn's
time to first token in a multi-turn chat, and cancellation latency (cancel → the next request's first token).

    python bench/overhead.py [--model PATH] [--rounds N] [--tokens N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import llama_cpp
from _common import pct, tick_until  # bench/ is on sys.path when run as a script

from llmclient import LlmClient
from llmclient.hardware import detect
from llmclient.planner import threads_for

PROMPT: Any = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]


def raw_stream(llm: Any, n: int) -> tuple[float, float]:
    """(time to first token, tokens per second after it) for llama-cpp-python's streamed chat."""
    llm.reset()
    start, first, count = time.perf_counter(), 0.0, 0
    for chunk in llm.create_chat_completion(PROMPT, stream=True, max_tokens=n, temperature=0.0, logit_bias=None):
        if chunk["choices"][0]["delta"].get("content"):
            count += 1
            first = first or time.perf_counter()
    end = time.perf_counter()
    return first - start, (count - 1) / (end - first)


def raw_generate(llm: Any, tokens: list[int], n: int) -> tuple[float, float]:
    """The same with a bare `Llama.generate` loop (sampling in Python, no chat dicts)."""
    llm.reset()
    start, first, count = time.perf_counter(), 0.0, 0
    for _ in llm.generate(tokens, temp=0.0, reset=True):
        count += 1
        first = first or time.perf_counter()
        if count >= n:
            break
    end = time.perf_counter()
    return first - start, (count - 1) / (end - first)


def bare_lean(llm: Any, tokens: list[int], n: int) -> tuple[float, float]:
    """The same over llama.cpp's low-level API with nothing around it."""
    ctx, vocab = llm._ctx.ctx, llama_cpp.llama_model_get_vocab(llm._model.model)
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
    prompt, one, piece = (llama_cpp.llama_token * len(tokens))(*tokens), (llama_cpp.llama_token * 1)(), bytes(64)
    start, first, count = time.perf_counter(), 0.0, 0
    llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(prompt, len(tokens)))
    while count < n:
        one[0] = llama_cpp.llama_sampler_sample(chain, ctx, -1)
        llama_cpp.llama_token_to_piece(vocab, one[0], piece, len(piece), 0, False)
        count += 1
        first = first or time.perf_counter()
        llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(one, 1))
    end = time.perf_counter()
    llama_cpp.llama_sampler_free(chain)
    return first - start, (count - 1) / (end - first)


async def ours(client: LlmClient, n: int, tick: bool) -> tuple[float, float, float, float]:
    """(time to first token, tokens/s, p99 and max event-loop lag in ms) through the facade; the lag only with `tick`
    (the 1 ms ticker itself costs CPU on a small machine, so the speed is taken from a run without it)."""
    lags: list[float] = []
    done = anyio.Event()
    async with anyio.create_task_group() as tg:
        if tick:
            tg.start_soon(tick_until, done.is_set, lags)
        start, first, count = time.perf_counter(), 0.0, 0
        async for chunk in client.stream(PROMPT, max_tokens=n, temperature=0.0):
            if chunk.text:
                count += 1
                first = first or time.perf_counter()
        end = time.perf_counter()
        done.set()
    p99 = pct(lags, 0.99) if lags else 0.0
    return first - start, (count - 1) / (end - first), p99, max(lags, default=0.0)


async def second_turn_and_cancel(client: LlmClient) -> tuple[float, float]:
    history = [*PROMPT, {"role": "assistant", "content": (await client.chat(PROMPT, max_tokens=200)).text}]
    started = time.perf_counter()
    async for _ in client.stream([*history, {"role": "user", "content": "And then?"}], max_tokens=2):
        break
    second_ttft = time.perf_counter() - started
    async for _ in client.stream(PROMPT, max_tokens=500):
        break  # leaving cancels
    started = time.perf_counter()
    async for _ in client.stream([{"role": "user", "content": "Hi"}], max_tokens=1):
        break
    return second_ttft, time.perf_counter() - started


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


async def one(system: str, model: Path, n: int, threads: int, gpu: bool) -> dict[str, float]:
    """One measurement of one system, in this (fresh) process: OpenMP threads left spinning by another llama.cpp
    context in the same process would steal the CPU from the one measured."""
    path, n_ctx = str(model), 2048
    if system == "ours":
        client = await LlmClient.from_path(model, ctx=n_ctx, threads=threads)
        await client.chat("Hi", max_tokens=8)  # warm up, without caching the measured prompt
        ttft, rate, _, _ = await ours(client, n, tick=False)
        await client.chat("Hi", max_tokens=8)
        _, _, p99, lag = await ours(client, n, tick=True)
        result = {"ttft": ttft, "rate": rate, "lag": lag, "lag_p99": p99}
        if n > 16:
            result["second"], result["cancel"] = await second_turn_and_cancel(client)
        await client.close()
        return result
    extra: dict[str, Any] = {} if system == "defaults" else {"n_threads": threads}
    if gpu:
        extra["n_gpu_layers"] = -1  # everything on the GPU, as the plan does there
    llm = llama_cpp.Llama(path, n_ctx=n_ctx, flash_attn=True, verbose=False, **extra)
    raw_stream(llm, 8)  # warm up
    if system in ("generate", "lean"):
        template = llm.metadata["tokenizer.chat_template"]
        formatted = llama_cpp.llama_chat_format.Jinja2ChatFormatter(template, "<|im_end|>", "<|im_start|>")
        tokens = llm.tokenize(formatted(messages=PROMPT).prompt.encode(), add_bos=False, special=True)
        ttft, rate = (raw_generate if system == "generate" else bare_lean)(llm, tokens, n)
    else:
        ttft, rate = raw_stream(llm, n)
    return {"ttft": ttft, "rate": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--gpu", action="store_true", help="offload the raw systems fully, as the plan does")
    args = parser.parse_args()
    if args.model is None:
        from llmclient.testing import smollm2_gguf

        args.model = smollm2_gguf()
    if args.one:
        print(json.dumps(anyio.run(one, args.one, args.model, args.tokens, args.threads, args.gpu)))
        return
    threads = threads_for(detect(), fully_offloaded=args.gpu)
    systems = ("ours", "defaults", "same", "generate", "lean")
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in systems}
    for _ in range(args.rounds):
        for system in systems:
            gpu_flag = ["--gpu"] if args.gpu else []
            command = [sys.executable, __file__, "--one", system, "--model", str(args.model),
                       "--tokens", str(args.tokens), "--threads", str(threads), *gpu_flag]  # fmt: skip
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            runs[system].append(json.loads(out.strip().splitlines()[-1]))
            print(system, runs[system][-1], file=sys.stderr)

    def med(system: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[system])

    flag = " --gpu" if args.gpu else ""
    print(f"Machine: {platform.machine()}, {threads} threads planned; llama-cpp-python {llama_cpp.__version__}; "
          f"command: `python bench/overhead.py --rounds {args.rounds} --tokens {args.tokens}{flag}`\n")  # fmt: skip
    print("| system | tokens/s median (min-max) | time to first token, ms |\n|---|---|---|")
    labels = {"ours": "llmclient stream", "defaults": "raw create_chat_completion stream, defaults",
              "same": f"raw create_chat_completion stream, {threads} threads",
              "generate": f"raw Llama.generate loop, {threads} threads",
              "lean": f"bare lean loop (no facade), {threads} threads"}  # fmt: skip
    for name, label in labels.items():
        rates, ttfts = [r["rate"] for r in runs[name]], [r["ttft"] * 1000 for r in runs[name]]
        print(f"| {label} | {summary(rates)} | {summary(ttfts)} |")
    ours_rate = med("ours", "rate")
    print(f"\nMedian tokens/s ratios: llmclient / raw stream at defaults = {ours_rate / med('defaults', 'rate'):.2f}; "
          f"llmclient / raw stream at equal threads = {ours_rate / med('same', 'rate'):.2f}; "
          f"llmclient / generate at equal threads = {ours_rate / med('generate', 'rate'):.2f}; "
          f"bare lean loop / generate = {med('lean', 'rate') / med('generate', 'rate'):.2f}.")  # fmt: skip
    print(
        f"Event-loop lag while llmclient generates, ms: p99 {summary([r['lag_p99'] for r in runs['ours']])}, "
        f"max {summary([r['lag'] for r in runs['ours']])}. "
        f"Second turn of a multi-turn chat, time to first token: {med('ours', 'second') * 1000:.1f} ms. "
        f"Cancel -> next request's first token: {med('ours', 'cancel') * 1000:.1f} ms."
    )


if __name__ == "__main__":
    main()
