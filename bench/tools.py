"""Tool calling: a constrained call's tokens/s against plain text on the same prompt.

SmolLM2 with `HERMES_TEMPLATE`, greedy, the same prompts asking about the weather in 8 cities with four tools
(OpenAI tool dicts, their strings bounded).
`call`: `client.chat(prompt, tools=TOOLS, tool_choice="required", parallel_tool_calls=False)`, the call held to
the Hermes format and the tool's schema by llguidance (jump-forward decodes the forced `<tool_call>\\n{"name": "`
and the like in one step). `text`: the very same prompt (the chat template rendered with the tools, as the call
request renders it) continued as free text with `complete`, each given as max_tokens the length of the call made
for that prompt, so both read the same tokens and write as many. tokens/s = completion tokens / decode time (the
union of each request's first to last piece); `at once` requests side by side (`.parallel(n)`); rounds
alternate which goes first. "valid": calls that name a tool and whose arguments validate against its schema.

    python bench/tools.py [--levels 1,4] [--rounds 3] [--model PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from typing import Any

CITIES = ("Paris", "Tokyo", "Cairo", "Lima", "Oslo", "Delhi", "Sydney", "Toronto")


def tool(name: str, description: str, **properties: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI tool dict whose arguments are all required (strings bounded: a small model runs on in an unbounded
    one, as in structured output)."""
    parameters = {"type": "object", "properties": properties, "required": list(properties),
                  "additionalProperties": False}  # fmt: skip
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


CITY = {"type": "string", "maxLength": 24}
TOOLS = [
    tool("get_weather", "Get the current weather in a city.", city=CITY, unit={"enum": ["celsius", "fahrenheit"]}),
    tool("add", "Add two whole numbers.", a={"type": "integer"}, b={"type": "integer"}),
    tool("find_flights", "Find flights between two cities on a date.", origin=CITY, destination=CITY,
         date={"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}),
    tool("book_hotel", "Book a hotel room in a city.", city=CITY, nights={"type": "integer", "minimum": 1,
         "maximum": 14}),
]  # fmt: skip


def union(intervals: list[tuple[float, float]]) -> float:
    """The length of time covered by at least one of `intervals`."""
    covered, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            covered += b - max(a, end)
            end = b
    return covered


async def timed(request: Any) -> tuple[int, tuple[float, float], Any]:
    """Completion tokens, (first piece, last piece) as the engine timed them, and the result of `request`."""
    began = time.perf_counter()
    result = await request
    timings = result.timings
    return result.usage.completion_tokens, (began + timings.queued + timings.first_token, began + timings.total), result


async def run(model: str, level: int, rounds: int) -> dict[str, list[dict[str, float]]]:
    import jsonschema

    from llmclient import HERMES_TEMPLATE, LlmClient
    from llmclient.backends import GenerateRequest
    from llmclient.chat import tools_from
    from llmclient.chat.messages import normalize_messages

    builder = LlmClient.llama_cpp().local(model).ctx(2048).parallel(level).temperature(0.0)
    async with await builder.chat_template(HERMES_TEMPLATE).init() as client:
        engine: Any = client.engine
        schemas = {t.name: t.parameters for t in tools_from(TOOLS)}
        defs = tuple(t.definition() for t in tools_from(TOOLS))
        questions = [f"What is the weather in {c} right now?" for c in CITIES]
        options: dict[str, Any] = {"tools": TOOLS, "tool_choice": "required", "parallel_tool_calls": False}
        await client.chat(questions[0], max_tokens=200, **options)  # warm-up (and llguidance's tokenizer)
        # the call request's own prompt, as the template renders it with the tools
        prompts = [
            engine._worker.model._render(GenerateRequest(normalize_messages(q), None, tools=defs))[0] for q in questions
        ]
        # each call's length, for the free text of the same prompt
        lengths = [(await client.chat(q, max_tokens=200, **options)).usage.completion_tokens for q in questions]

        async def calls() -> dict[str, float]:
            done = await asyncio.gather(*(timed(client.chat(q, max_tokens=200, **options)) for q in questions))
            valid = 0
            for _, _, result in done:
                for call in result.tool_calls:
                    valid += call.name in schemas and jsonschema.Draft202012Validator(schemas[call.name]).is_valid(
                        call.arguments
                    )
            return {"tokens": sum(d[0] for d in done), "decode_s": union([d[1] for d in done]), "valid": valid}

        async def text() -> dict[str, float]:
            done = await asyncio.gather(
                *(timed(client.complete(p, max_tokens=n)) for p, n in zip(prompts, lengths, strict=True))
            )
            return {"tokens": sum(d[0] for d in done), "decode_s": union([d[1] for d in done]), "valid": 0}

        results: dict[str, list[dict[str, float]]] = {"call": [], "text": []}
        for i in range(rounds):
            order = [("call", calls), ("text", text)]
            for name, fn in order if i % 2 == 0 else order[::-1]:
                result = await fn()
                results[name].append(result)
                rate = result["tokens"] / result["decode_s"]
                print(f"round {i + 1} x{level} {name}: {rate:.1f} tok/s, {int(result['tokens'])} tokens",
                      file=sys.stderr, flush=True)  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--levels", default="1,4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=None, help="a GGUF (default: SmolLM2-135M-Instruct from PyPI)")
    args = parser.parse_args()
    from llmclient.testing import smollm2_gguf

    model = args.model or str(smollm2_gguf())
    started = time.perf_counter()
    table = []
    for level in (int(x) for x in args.levels.split(",")):
        results = asyncio.run(run(model, level, args.rounds))
        rates = {k: [r["tokens"] / r["decode_s"] for r in v] for k, v in results.items()}
        valid = sum(int(r["valid"]) for r in results["call"])
        table.append((level, rates, valid, len(results["call"]) * len(CITIES), results["call"][0]["tokens"]))
    command = f"python bench/tools.py {' '.join(sys.argv[1:])}"
    print(f"Machine: {os.cpu_count()} logical CPUs; {args.rounds} rounds; `{command}` "
          f"({(time.perf_counter() - started) / 60:.1f} min)\n")  # fmt: skip
    print("| at once | call tokens/s, median (min-max) | text tokens/s, median (min-max) | call / text | valid calls |")
    print("|---|---|---|---|---|")
    for level, rates, valid, n, _ in table:
        call, text = rates["call"], rates["text"]
        print(f"| {level} | {statistics.median(call):.1f} ({min(call):.1f}-{max(call):.1f}) | "
              f"{statistics.median(text):.1f} ({min(text):.1f}-{max(text):.1f}) | "
              f"{statistics.median(call) / statistics.median(text):.2f}x | {valid}/{n} |")  # fmt: skip


if __name__ == "__main__":
    main()
