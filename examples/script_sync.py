"""The blocking twin of the quickstart, for plain scripts and notebooks: no `async`, no event loop to manage.

    python examples/script_sync.py

`init_sync()` runs the same plan → download → load as `init()` and returns a `SyncLlmClient` whose `chat`,
`complete` and `stream` block; it runs the async client on a private event loop thread. The first run downloads
SmolLM2-135M-Instruct (about 100 MB) into the cache (`$LLMCLIENT_CACHE_DIR`, else the user cache directory);
`HF_ENDPOINT` points it at a mirror or a LocalHub instead of huggingface.co.
"""

from __future__ import annotations

from llmclient import LlmClient


def main() -> None:
    """Load the model, ask one question, then stream a longer answer, all blocking."""
    with LlmClient.llama_cpp().smollm2_135m_instruct().init_sync() as client:  # leaving the block frees the model
        answer = client.chat("What is the capital of France? Answer in one word.", temperature=0)
        print(f"chat: {answer.text}")
        print(f"      {answer.usage.completion_tokens} tokens in {answer.timings.total:.2f} s")

        print("stream: ", end="", flush=True)
        for chunk in client.stream("Write a short poem about the sea.", max_tokens=96):
            print(chunk.text, end="", flush=True)
            if chunk.finish_reason is not None and chunk.usage is not None:
                print(f"\n        finished ({chunk.finish_reason}) after {chunk.usage.completion_tokens} tokens")


if __name__ == "__main__":
    main()
