"""Concurrency benchmark: N streamed chats at once against one model, for N in 1, 2, 4, 8, 16, 32.

Systems, each in its own process (a llama.cpp context's idle threads would steal the CPU from the next):

- `llmclient`: `client.stream(...)` with `.parallel(N)`: all N decode together in one batch per step;
- `to_thread + lock`: llama-cpp-python's `create_chat_completion(stream=True)` in `anyio.to_thread`, behind
  an `anyio.Lock` (a `Llama` is not thread-safe), so requests run one after another;
- `llama_cpp.server`: llama-cpp-python's OpenAI-compatible server under uvicorn on 127.0.0.1, streamed over
  HTTP with httpx (needs `pip install 'llama-cpp-python[server]' httpx`).
- `llama-server`: llama.cpp's own C++ server (`scripts/build_llama_server.py`'s, or `--llama-server PATH`, e.g.
  one built with CUDA), started per level with N slots sharing one KV cache of N x 1024 tokens (`-np N -c
  N*1024 -kvu`, flash attention on, as our engine's plan), streamed over HTTP with httpx;
  `llmclient.remote`: the same server driven by `LlmClient.remote(url).stream(...)`.

Same model (the real SmolLM2 file by default), prompts, greedy decoding, `--tokens` per request and threads.
Per level: aggregate tokens/s (tokens received / wall time), p50/p99 time to first token and request latency,
and how many requests came back with a full answer. `--plot FILE` draws aggregate tokens/s against N.

    python bench/concurrency.py [--model PATH] [--levels 1,2,4,8,16,32] [--tokens 64] [--gpu] [--plot FILE]
        [--systems llmclient,llama-server,llmclient.remote] [--llama-server PATH]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from _common import free_port, llama_server_command, pct, prompt

SYSTEMS = ("llmclient", "to_thread + lock", "llama_cpp.server")
MORE = ("llama-server", "llmclient.remote")  # need a built llama-server


Request = Callable[[int], Awaitable[tuple[float, float, int]]]
"""Runs request i; returns (time to first token, latency, tokens received)."""


async def run_level(request: Request, n: int) -> dict[str, Any]:
    results: list[tuple[float, float, int]] = []

    async def one(i: int) -> None:
        results.append(await request(i))

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    wall = time.perf_counter() - start
    return {"n": n, "wall": wall, "results": results}


async def streamed(client: Any, tokens: int, i: int) -> tuple[float, float, int]:
    """Request i through an `LlmClient` (any engine), streamed: (time to first token, latency, tokens)."""
    start, first, count = time.perf_counter(), 0.0, 0
    async for chunk in client.stream(prompt(i), max_tokens=tokens):
        if chunk.text:
            count += 1
            first = first or time.perf_counter()
    return first - start, time.perf_counter() - start, count


async def system_llmclient(model: Path, levels: list[int], tokens: int, threads: int, gpu: bool) -> list[Any]:
    from llmclient import LlmClient

    out = []
    for n in levels:
        settings: dict[str, Any] = {"ctx": 1024, "parallel": n, "threads": threads, "temperature": 0.0}
        async with await LlmClient.from_path(model, **settings) as client:
            await client.chat("Hi", max_tokens=4)

            out.append(await run_level(functools.partial(streamed, client, tokens), n))
    return out


async def system_to_thread(model: Path, levels: list[int], tokens: int, threads: int, gpu: bool) -> list[Any]:
    import llama_cpp

    llm = llama_cpp.Llama(str(model), n_ctx=1024, n_threads=threads, n_threads_batch=threads, flash_attn=True,
                          n_gpu_layers=-1 if gpu else 0, verbose=False)  # fmt: skip
    lock = anyio.Lock()

    def consume(i: int, start: float) -> tuple[float, int]:
        first, count = 0.0, 0
        for chunk in llm.create_chat_completion(prompt(i), stream=True, max_tokens=tokens, temperature=0.0):  # type: ignore[arg-type]
            if chunk["choices"][0]["delta"].get("content"):  # type: ignore[index,union-attr]
                count += 1
                first = first or time.perf_counter()
        return first - start, count

    async def request(i: int) -> tuple[float, float, int]:
        start = time.perf_counter()
        async with lock:
            ttft, count = await anyio.to_thread.run_sync(consume, i, start)
        return ttft, time.perf_counter() - start, count

    await request(0)
    return [await run_level(request, n) for n in levels]


async def system_server(model: Path, levels: list[int], tokens: int, threads: int, gpu: bool) -> list[Any]:
    import httpx

    port = free_port()
    command = llama_server_command(model, port, 1024, threads, gpu)
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
            for _ in range(600):
                try:
                    if (await http.get("/v1/models")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.1)

            async def request(i: int) -> tuple[float, float, int]:
                start, first, count = time.perf_counter(), 0.0, 0
                body = {"messages": prompt(i), "stream": True, "max_tokens": tokens, "temperature": 0.0}
                try:
                    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                        async for line in response.aiter_lines():
                            if not line.startswith("data: ") or line == "data: [DONE]":
                                continue
                            if json.loads(line[6:])["choices"][0]["delta"].get("content"):
                                count += 1
                                first = first or time.perf_counter()
                except httpx.HTTPError:
                    pass  # the server cut this stream off (it ends one stream when another arrives): counted short
                return (first or time.perf_counter()) - start, time.perf_counter() - start, count

            await request(0)
            return [await run_level(request, n) for n in levels]
    finally:
        server.terminate()
        server.wait()


async def system_cpp_server(
    model: Path, levels: list[int], tokens: int, threads: int, gpu: bool, *, ours: bool = False
) -> list[Any]:
    """llama.cpp's C++ llama-server, one process per level with `n` slots; raw httpx, or `ours`: llmclient.remote."""
    import httpx

    from llmclient import LlmClient
    from llmclient.testing.llama_server import LlamaServer

    binary = Path(os.environ["BENCH_LLAMA_SERVER"]) if os.environ.get("BENCH_LLAMA_SERVER") else None
    out = []
    for n in levels:
        flags = ["-kvu", "-fa", "on", "-ngl", "99" if gpu else "0", "-b", str(max(512, n))]
        with LlamaServer(model, parallel=n, ctx=1024 * n, threads=threads, args=flags, binary=binary) as server:
            if ours:
                async with await LlmClient.remote(server.url).temperature(0.0).init() as client:
                    await client.chat("Hi", max_tokens=4)
                    out.append(await run_level(functools.partial(streamed, client, tokens), n))
                continue
            async with httpx.AsyncClient(base_url=server.url, timeout=600) as http:

                async def request(i: int, http: httpx.AsyncClient = http) -> tuple[float, float, int]:
                    start, first, count = time.perf_counter(), 0.0, 0
                    body = {"messages": prompt(i), "stream": True, "max_tokens": tokens, "temperature": 0.0}
                    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                        async for line in response.aiter_lines():
                            if not line.startswith("data: ") or line == "data: [DONE]":
                                continue
                            choices = json.loads(line[6:]).get("choices") or [{}]
                            if choices[0].get("delta", {}).get("content"):
                                count += 1
                                first = first or time.perf_counter()
                    return (first or time.perf_counter()) - start, time.perf_counter() - start, count

                await request(0)
                out.append(await run_level(request, n))
    return out


async def system_remote(model: Path, levels: list[int], tokens: int, threads: int, gpu: bool) -> list[Any]:
    return await system_cpp_server(model, levels, tokens, threads, gpu, ours=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--levels", default="1,2,4,8,16,32")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--gpu", action="store_true", help="everything on the GPU (llmclient's plan does it itself)")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument(
        "--llama-server",
        type=Path,
        default=None,
        help="the llama-server binary for the llama-server systems (default: the built one)",
    )
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    parser.add_argument("--from-json", type=Path, default=None, help="table and plot from a --json file; runs nothing")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.from_json:
        report(args, json.loads(args.from_json.read_text()), f"results from {args.from_json}")
        return
    if args.model is None:
        from llmclient.testing import smollm2_gguf

        args.model = smollm2_gguf()
    levels = [int(x) for x in args.levels.split(",")]
    if args.threads is None:
        from llmclient.hardware import detect
        from llmclient.planner import threads_for

        args.threads = threads_for(detect(), fully_offloaded=args.gpu)
    if args.one:
        runner = {"llmclient": system_llmclient, "to_thread + lock": system_to_thread,
                  "llama_cpp.server": system_server, "llama-server": system_cpp_server,
                  "llmclient.remote": system_remote}[args.one]  # fmt: skip
        print(json.dumps(anyio.run(runner, args.model, levels, args.tokens, args.threads, args.gpu)), flush=True)
        os._exit(0)  # a CUDA context's teardown can crash at exit; the results are out
    results: dict[str, list[Any]] = {}
    if args.llama_server:
        os.environ["BENCH_LLAMA_SERVER"] = str(args.llama_server.resolve())
    for system in args.systems.split(","):
        gpu_flag = ["--gpu"] if args.gpu else []
        command = [sys.executable, __file__, "--one", system, "--model", str(args.model), "--levels", args.levels,
                   "--tokens", str(args.tokens), "--threads", str(args.threads), *gpu_flag]  # fmt: skip
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{system}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        results[system] = json.loads(out.stdout.strip().splitlines()[-1])
        print(system, "done", file=sys.stderr)
    import llama_cpp

    gpu_arg = " --gpu" if args.gpu else ""
    if args.systems != ",".join(SYSTEMS):
        gpu_arg += f" --systems {args.systems}"
    report(args, results, f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {args.threads} threads; "
           f"llama-cpp-python {llama_cpp.__version__}; {'GPU' if args.gpu else 'CPU'}; command: `python "
           f"bench/concurrency.py --levels {args.levels} --tokens {args.tokens}{gpu_arg}`")  # fmt: skip


def report(args: argparse.Namespace, results: dict[str, list[Any]], header: str) -> None:
    """Print the table (and write the JSON and the plot) for `results`."""
    print(header + "\n")
    print("| system | N | aggregate tok/s | TTFT p50 / p99, s | latency p50 / p99, s | full answers |")
    print("|---|---|---|---|---|---|")
    for system, levels_out in results.items():
        for level in levels_out:
            r = level["results"]
            ttft, lat, count = [x[0] for x in r], [x[1] for x in r], [x[2] for x in r]
            full = sum(1 for c in count if c >= args.tokens - 1)
            print(f"| {system} | {level['n']} | {sum(count) / level['wall']:.1f} | "
                  f"{statistics.median(ttft):.2f} / {pct(ttft, 0.99):.2f} | "
                  f"{statistics.median(lat):.2f} / {pct(lat, 0.99):.2f} | {full}/{level['n']} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for system, levels_out in results.items():
            xs = [lv["n"] for lv in levels_out]
            ys = [sum(x[2] for x in lv["results"]) / lv["wall"] for lv in levels_out]
            ax.plot(xs, ys, marker="o", label=system)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent streams")
        ax.set_ylabel("aggregate tokens/s")
        ax.set_title(f"SmolLM2-135M Q4_1, {'GPU' if args.gpu else f'CPU, {args.threads} threads'}")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)


if __name__ == "__main__":
    main()
