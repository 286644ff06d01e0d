"""What a GGUF file says about its model, in the terms the memory planner needs: `GgufInfo`.

Read from a local file's header with `read_gguf_info(path)`, or from a hub file's first bytes through
`ModelCache.gguf_info` (ranged reads, stored beside the cache so planning works offline afterwards). The reading
itself lives in `llmclient._gguf`; this module is its public face.
"""

from __future__ import annotations

from llmclient._gguf.info import SHARD_RE, GgufInfo, info_from_header, shard_names
from llmclient._gguf.local import read_gguf_info

__all__ = ["GgufInfo", "SHARD_RE", "info_from_header", "read_gguf_info", "shard_names"]
