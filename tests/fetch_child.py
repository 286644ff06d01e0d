"""Run one `ModelCache.fetch` in its own process (for crash, lock and terminal tests); prints the result as JSON.

Usage: python tests/fetch_child.py CACHE_DIR ENDPOINT REPO FILE [--progress]
"""

from __future__ import annotations

import json
import sys

import anyio

from llmclient import ModelCache


async def main(argv: list[str]) -> None:
    root, endpoint, repo, filename = argv[:4]
    model = await ModelCache(root, timeout=5.0).fetch(repo, filename, endpoint=endpoint, progress="--progress" in argv)
    print(json.dumps({"path": str(model.path), "sha256": model.sha256, "size": model.size}), flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
