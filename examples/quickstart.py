"""Quickstart: a local model in one line, then a chat and a streamed answer.

    python examples/quickstart.py

The first run downloads SmolLM2-135M-Instruct (about 100 MB) from the Hugging Face Hub, verified, into the
cache (`$LLMCLIENT_CACHE_DIR`, else the user cache directory); later runs load it from there. `HF_ENDPOINT`
points it at a mirror or a LocalHub instead of huggingface.co. Swap the preset method for a bigger model, e.g.
`.mistral7b_instruct_v0_3()`: the planner picks the quant, context and GPU offload that fit this machine.
"""

from __future__ import annotations

import asyncio

from llmclient import LlmClient


async def main() -> None:
    """Load the model, ask one question, then stream a longer answer."""
    client = await LlmClient.llama_cpp().smollm2_135m_instruct().init()  # plan → download once → load
    async with client:  # closing frees the model
        plan = client.plan
        if plan is not None:
            print(f"loaded {plan.file.filename} ({plan.quant}) on {plan.device}, {plan.n_ctx} tokens of context")

        answer = await client.chat("What is the capital of France? Answer in one word.", temperature=0)
        print(f"chat: {answer.text}")
        print(f"      {answer.usage.completion_tokens} tokens in {answer.timings.total:.2f} s")

        print("stream: ", end="", flush=True)
        async for chunk in client.stream("Write a short poem about the sea.", max_tokens=96):
            print(chunk.text, end="", flush=True)
            if chunk.finish_reason is not None and chunk.usage is not None:
                print(f"\n        finished ({chunk.finish_reason}) after {chunk.usage.completion_tokens} tokens")


if __name__ == "__main__":
    asyncio.run(main())
