"""The llama.cpp engine: GGUF models in this process, all decoded on one thread with continuous batching.

Importing this package loads nothing native; `LlamaCppEngine.load` does (llama-cpp-python's library, before
numpy: see `_model.py`). Inside: `_worker.py` (the process's decode thread and each model's queue), `_model.py`
(one model and its contexts), `_batch.py` (the step that advances every running request), `_embed.py` (the step
that embeds a batch of texts), `_sampling.py`, `_text.py`, `_threads.py` (how many compute threads each step uses).
"""

from __future__ import annotations

from llmclient.backends.llama_cpp._engine import LlamaCppEngine
from llmclient.backends.llama_cpp._settings import LlamaCppSettings

__all__ = ["LlamaCppEngine", "LlamaCppSettings"]
