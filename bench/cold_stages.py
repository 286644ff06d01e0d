"""Cold start, stage by stage, in this process: `import llama_cpp`, `import llmclient`, `from_path`, the first
streamed token; or, with `--llama`, llama-cpp-python's `Llama()` and its first streamed token. Run it in a fresh
process each time (it measures imports):

    python bench/cold_stages.py [--model PATH] [--parallel 8] [--threads 2]
    python bench/cold_stages.py --llama [--model PATH] [--threads 2]
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

MESSAGES = [{"role": "user", "content": "Say hello."}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: the real SmolLM2 file)")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--llama", action="store_true", help="llama-cpp-python's Llama instead of llmclient")
    args = parser.parse_args()
    import llama_cpp

    imported = time.perf_counter()
    if args.llama:
        from llmclient.testing import smollm2_gguf  # only where the file lies: outside the stages timed

        model = str(args.model or smollm2_gguf())
        imported, began = imported - STARTED, time.perf_counter()
        llm = llama_cpp.Llama(model, n_ctx=1024, n_threads=args.threads, flash_attn=True, verbose=False)
        loaded = time.perf_counter()
        for chunk in llm.create_chat_completion(MESSAGES, stream=True, max_tokens=8, temperature=0.0):  # type: ignore[arg-type]
            if chunk["choices"][0]["delta"].get("content"):  # type: ignore[index,union-attr]
                break
        first = time.perf_counter()
        print(f"import llama_cpp {imported:.3f} s, Llama() {loaded - began:.3f} s, first token {first - loaded:.3f} s, "
              f"total {imported + first - began:.3f} s")  # fmt: skip
        return
    import llmclient

    ours = time.perf_counter()
    from llmclient.testing import smollm2_gguf  # only where the file lies: outside the stages timed

    model_path = args.model or smollm2_gguf()

    async def run() -> tuple[float, float]:
        began = time.perf_counter()
        client = await llmclient.LlmClient.from_path(
            model_path, ctx=1024, threads=args.threads, parallel=args.parallel, cpu_only=True
        )
        loaded = time.perf_counter()
        async for chunk in client.stream(MESSAGES, max_tokens=8, temperature=0.0):
            if chunk.text:
                break
        first = time.perf_counter()
        await client.close()
        return loaded - began, first - loaded

    load, first = asyncio.run(run())
    total = ours - STARTED + load + first
    print(f"import llama_cpp {imported - STARTED:.3f} s, import llmclient {ours - imported:.3f} s, from_path "
          f"(parallel={args.parallel}) {load:.3f} s, first token {first:.3f} s, total {total:.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
