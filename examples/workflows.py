"""Typed answers: a bool, an int in range, one of the options, spans of a text, and a decision by votes.

    python examples/workflows.py

Each answer is held to its type while it is generated (llguidance), so what comes back is always a `bool`, an
`int` within its bounds, exactly one of the options, or text that occurs verbatim in the input; a model too small
to know the answer still answers in the right type. `reason=True` lets the model think a few sentences first, in
the same turn; `decide` asks several times at once and counts the votes.

The first run downloads SmolLM2-135M-Instruct (about 100 MB) into the cache (`$LLMCLIENT_CACHE_DIR`, else the
user cache directory); `HF_ENDPOINT` points it at a mirror or a LocalHub instead of huggingface.co.
"""

from __future__ import annotations

import asyncio

from llmclient import LlmClient

STORY = "Anna flew from Paris to Tokyo, then took a train to Kyoto."


async def main() -> None:
    builder = LlmClient.llama_cpp().smollm2_135m_instruct().parallel(5).temperature(0)
    async with await builder.init() as client:
        print("boolean:", await client.boolean("Is Paris the capital of France?"))
        print("integer:", await client.integer("How many legs does a dog have?", min=0, max=10))
        print("choice: ", await client.choice("Which is a fruit?", ["car", "apple", "rock"]))
        print("none:   ", await client.boolean("What did I eat for breakfast yesterday?", allow_none=True))
        print("extract:", await client.extract("List the cities mentioned in the text.", STORY))
        days = await client.integer("How many days are in a week?", min=1, max=9, reason=True)
        print(f"reason:  {days} (thought: {client.last_reasoning!r})")
        decision = await client.decide("Which is a fruit?", ["car", "apple", "rock"], votes=5)
        print(f"decide:  {decision.choice} with votes {decision.votes}, confidence {decision.confidence:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
