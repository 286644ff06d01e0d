"""The hub download stack behind `ModelCache`: everything that talks to the hub or lays files out in the cache.

    reference.py   a repo id, file name and revision, checked before any request
    retry.py       the one retry policy (which answers to retry, how long to wait)
    resolve.py     one HEAD request: a file's commit, checksum, size and location
    listing.py     a repo's .gguf files, listed once and stored
    transfer.py    the bytes into a resumable, hashed partial file
    progress.py    a progress callback or a tqdm bar
    header.py      a GGUF header through HTTP ranges (parsed by `llmclient._gguf`)
    gguf_info.py   `ModelCache.gguf_info`: that header's metadata, stored beside the cache
    layout.py      where each thing lives in the cache (huggingface_hub's layout), written safely

huggingface_hub's HTTP stack (httpx2, its API module) is imported inside the functions that make requests, never
at import time: a local model's cold start does not pay for it.
"""

from __future__ import annotations

from llmclient._hub.reference import validate_reference

__all__ = ["validate_reference"]
