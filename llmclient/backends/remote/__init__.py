"""The remote engine: OpenAI-compatible servers (vLLM, SGLang, llama-server, Ollama), one or many replicas.

`LlmClient.remote(url)` or `LlmClient.remote([url1, url2])` builds it. Inside: `_engine.py` (streaming,
retries, cancellation), `_routing.py` (least-busy, prefix affinity, the local queue), `_replicas.py` (health and
counters), `_probe.py` (models, slots and health at start), `_status.py` (what a non-200 answer means),
`_sse.py` (strict server-sent events), `_wire.py` (request bodies and stream chunks).
"""

from __future__ import annotations

from llmclient.backends.remote._engine import RemoteEngine
from llmclient.backends.remote._replicas import ReplicaStats
from llmclient.backends.remote._routing import Routing, session_key
from llmclient.backends.remote._settings import RemoteSettings

__all__ = ["RemoteEngine", "RemoteSettings", "ReplicaStats", "Routing", "session_key"]
