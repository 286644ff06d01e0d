"""Structured output: tokens/s with a JSON Schema enforced against the same requests free, and schema validity.

Each (model, system, concurrency) runs in a fresh process per round, rounds interleaved; greedy, the same 8
prompts asking for a JSON description of a city, and the same bounded schema for every constrained system:

- `llmclient`: free text, `client.chat(prompt)`; `llmclient+schema`: `client.chat(prompt, schema=CITY)`
  (llguidance masks in the batched step), at each `--levels` concurrency (`.parallel(n)`).
- `llama_cpp`: llama-cpp-python's `create_chat_completion(...)` free; `llama_cpp+schema`: the same with
  `response_format={"type": "json_object", "schema": CITY}` (llama.cpp's grammar sampler), one request at a
  time (a `Llama` is not thread-safe), the same threads.

The same output length for both: a constrained answer stops at its closing brace and a free one would run on to
max_tokens, so each free request gets as its max_tokens the length of the constrained answer to the same prompt
(measured once per model and concurrency, before the rounds). Then tokens/s = completion tokens of all requests /
their wall time (first call to last answer), the same prompts read and the same number of tokens written, after
one warm-up request (which also builds llguidance's tokenizer: ~0.3 s at 49k tokens, ~1 s at 262k). "valid":
answers that parse as JSON and validate against the schema. max(8, concurrency) requests per run, or
`--requests N` (e.g. 64 at 16 at once: queued requests take the rows others free, so the aggregate is the steady
state, not one batch's longest answer).
`llmclient+schema-noff`: the same as `llmclient+schema` with `LLMCLIENT_JUMP_FORWARD=0`, each forced token
decoded in a step of its own (the schema's keys, quotes and separators are 27 of a 46-token answer).

    python bench/structured.py [--models smollm2,262k,PATH] [--levels 1,8] [--rounds 3] [--tokens 160] [--requests N]

`262k`: a synthetic model with Gemma 3's vocabulary size (SmolLM2's tokenizer grown to 262,144 tokens, random
weights, `llmclient.testing.synthetic`), written once into the temp folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TAG = "STRUCTURED "
CITIES = ("Paris", "Tokyo", "Cairo", "Lima", "Oslo", "Delhi", "Sydney", "Toronto")
CITY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "country": {"type": "string", "maxLength": 20},
        "continent": {"enum": ["Europe", "Asia", "Africa", "North America", "South America", "Oceania"]},
        "population_millions": {"type": "integer", "minimum": 0, "maximum": 40},
        "landmarks": {"type": "array", "items": {"type": "string", "maxLength": 24}, "minItems": 1, "maxItems": 3},
        "coastal": {"type": "boolean"},
    },
    "required": ["name", "country", "continent", "population_millions", "landmarks", "coastal"],
    "additionalProperties": False,
}
SYSTEMS = ("llmclient", "llmclient+schema", "llmclient+schema-noff", "llama_cpp", "llama_cpp+schema")


def prompt(i: int) -> str:
    return f"Describe {CITIES[i % len(CITIES)]} as a JSON object with its country, continent and landmarks."


def valid(text: str) -> bool:
    import jsonschema

    try:
        jsonschema.validate(json.loads(text), CITY)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


def union(intervals: list[tuple[float, float]]) -> float:
    """The length of time covered by at least one of `intervals`."""
    covered, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            covered += b - max(a, end)
            end = b
    return covered


async def run_llmclient(model: str, level: int, constrained: bool, budgets: list[int], threads: int) -> dict[str, Any]:
    from llmclient import LlmClient

    builder = LlmClient.llama_cpp().local(model).ctx(1024).parallel(level).temperature(0.0).threads(threads)
    async with await builder.init() as client:
        options: dict[str, Any] = {"schema": CITY} if constrained else {}
        await client.chat(prompt(99), max_tokens=8, **options)  # warm-up (and llguidance's tokenizer)

        async def ask(i: int) -> dict[str, Any]:
            parts: list[str] = []
            first = None
            async for chunk in client.stream(prompt(i), max_tokens=budgets[i], **options):
                if chunk.text and first is None:
                    first = time.perf_counter()
                parts.append(chunk.text)
                last = chunk
            end = time.perf_counter()
            assert last.usage is not None
            return {"text": "".join(parts), "tokens": last.usage.completion_tokens, "reason": last.finish_reason,
                    "span": (first or end, end)}  # fmt: skip

        began = time.perf_counter()
        answers = await asyncio.gather(*(ask(i) for i in range(len(budgets))))
        wall = time.perf_counter() - began
    return summary(answers, wall)


def summary(answers: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    return {"tokens": sum(a["tokens"] for a in answers), "decode_s": union([a["span"] for a in answers]),
            "lengths": [a["tokens"] for a in answers],
            "wall_s": wall, "valid": sum(valid(a["text"]) for a in answers), "n": len(answers),
            "finished": sum(a["reason"] == "stop" for a in answers)}  # fmt: skip


def run_llama_cpp(model: str, constrained: bool, budgets: list[int], threads: int) -> dict[str, Any]:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=model, n_ctx=1024, n_threads=threads, verbose=False)
    extra: dict[str, Any] = {"response_format": {"type": "json_object", "schema": CITY}} if constrained else {}

    def ask(i: int, n: int) -> dict[str, Any]:
        parts: list[str] = []
        first, reason, count = None, None, 0
        chunk: Any
        for chunk in llm.create_chat_completion([{"role": "user", "content": prompt(i)}], max_tokens=n,
                                                temperature=0.0, stream=True, **extra):  # fmt: skip
            choice = chunk["choices"][0]
            text = choice["delta"].get("content") or ""
            if text:
                first = first if first is not None else time.perf_counter()
                parts.append(text)
                count += 1  # a streamed chunk is one token
            reason = choice.get("finish_reason") or reason
        end = time.perf_counter()
        return {"text": "".join(parts), "tokens": count, "reason": reason, "span": (first or end, end)}

    ask(99, 8)
    began = time.perf_counter()
    answers = [ask(i, n) for i, n in enumerate(budgets)]
    return summary(answers, time.perf_counter() - began)


def child(system: str, model: str, level: int, budgets: list[int], threads: int) -> None:
    if system.endswith("-noff"):  # jump-forward off: forced tokens decoded one a step
        os.environ["LLMCLIENT_JUMP_FORWARD"] = "0"
        system = system.removesuffix("-noff")
    constrained = system.endswith("+schema")
    if system.startswith("llmclient"):
        result = asyncio.run(run_llmclient(model, level, constrained, budgets, threads))
    else:
        result = run_llama_cpp(model, constrained, budgets, threads)
    print(TAG + json.dumps(result), flush=True)


def model_path(name: str, folder: Path) -> Path:
    from llmclient.testing import smollm2_gguf

    if Path(name).is_file():  # a GGUF of your own (e.g. where PyPI cannot be reached)
        return Path(name)
    if name == "smollm2":
        return smollm2_gguf()
    if name == "262k":
        from llmclient.testing.synthetic import TINY_LLAMA, write_synthetic_gguf

        path = folder / "tiny-262k-Q4_0.gguf"
        if not path.exists():
            write_synthetic_gguf(path, TINY_LLAMA, "Q4_0", fill="finite", tokenizer_from=smollm2_gguf(),
                                 vocab_size=262_144)  # fmt: skip
        return path
    raise SystemExit(f"unknown model {name!r}: smollm2 or 262k")


def run_one(
    system: str, model: Path, level: int, budgets: list[int], args: argparse.Namespace
) -> dict[str, Any] | None:
    command = [sys.executable, __file__, "--one", system, "--model", str(model), "--level", str(level),
               "--budgets", json.dumps(budgets), "--threads", str(args.threads)]  # fmt: skip
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return None
    for line in out.stdout.splitlines():
        if line.startswith(TAG):
            result: dict[str, Any] = json.loads(line[len(TAG) :])
            return result
    print(f"  {system}: no result: {out.stderr[-500:]}", file=sys.stderr)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", default="smollm2,262k")
    parser.add_argument("--levels", default="1,8", help="concurrent requests for llmclient (llama_cpp: always 1)")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for all (default: the plan's)")
    parser.add_argument("--requests", type=int, default=None, help="requests per run (default: max(8, at once))")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--level", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--budgets", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads is None:
        from llmclient.hardware import detect
        from llmclient.planner import threads_for

        args.threads = threads_for(detect(), fully_offloaded=False)
    if args.one:
        child(args.one, args.model, args.level, json.loads(args.budgets), args.threads)
        return
    systems = args.systems.split(",")

    def count(level: int) -> int:
        return args.requests or max(8, level)

    folder = Path(tempfile.gettempdir()) / "llmclient-bench-structured"
    folder.mkdir(exist_ok=True)
    cases = []
    for name in args.models.split(","):
        path = model_path(name, folder)
        for system in systems:
            levels = [int(x) for x in args.levels.split(",")] if system.startswith("llmclient") else [1]
            cases += [(name, path, system, level) for level in levels]
    runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {(n, s, lv): [] for n, _, s, lv in cases}
    started = time.perf_counter()
    lengths: dict[tuple[str, int], list[int]] = {}  # the constrained answers' lengths, for the free requests
    for name, path, _, level in cases:
        if (name, level) not in lengths:
            calibrated = run_one("llmclient+schema", path, level, [args.tokens] * count(level), args)
            assert calibrated is not None, f"the constrained calibration run failed on {name}"
            lengths[(name, level)] = calibrated["lengths"]
    for i in range(args.rounds):
        for name, path, system, level in cases[i % len(cases) :] + cases[: i % len(cases)]:  # rotate the order
            free = "+schema" not in system
            budgets = lengths.get((name, level), lengths.get((name, 1), [])) if free else [args.tokens] * count(level)
            if free and system.startswith("llama_cpp"):  # one at a time: the lengths of the one-at-a-time answers
                budgets = lengths.get((name, 1), budgets)
            result = run_one(system, path, level, budgets, args)
            if result is not None:
                runs[(name, system, level)].append(result)
                rate = result["tokens"] / result["wall_s"]
                ok = f"{result['valid']}/{result['n']}"
                print(f"round {i + 1} {name} {system} x{level}: {rate:.1f} tok/s, valid {ok}",
                      file=sys.stderr, flush=True)  # fmt: skip
    command = f"python bench/structured.py {' '.join(sys.argv[1:])}"
    print(f"Machine: {os.cpu_count()} logical CPUs, {args.threads} threads for all; {args.rounds} rounds; constrained "
          f"answers up to {args.tokens} tokens, free ones as long as those; {args.requests or 'max(8, concurrency)'} "
          "requests; "
          f"`{command}` ({(time.perf_counter() - started) / 60:.1f} min)\n")  # fmt: skip
    print("| model | system | at once | tokens/s, median (min-max) | to free | tokens | wall, s | valid | finished |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, system, level), results in runs.items():
        if not results:
            print(f"| {name} | {system} | {level} | n/a | | | | | |")
            continue
        rates = [r["tokens"] / r["wall_s"] for r in results]
        baseline: list[dict[str, Any]] = runs.get((name, system.split("+")[0], level)) or []
        ratio = ""
        if "+schema" in system and baseline:
            ratio = f"{statistics.median(rates) / statistics.median([b['tokens'] / b['wall_s'] for b in baseline]):.2f}"
        valid_n = sum(r["valid"] for r in results)
        done = sum(r["finished"] for r in results)
        total = sum(r["n"] for r in results)
        walls = statistics.median([r["wall_s"] for r in results])
        print(f"| {name} | {system} | {level} | {statistics.median(rates):.1f} ({min(rates):.1f}-{max(rates):.1f}) "
              f"| {ratio} | {results[0]['tokens']} | {walls:.2f} | {valid_n}/{total} | {done}/{total} |")  # fmt: skip


if __name__ == "__main__":
    main()
