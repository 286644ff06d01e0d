"""llmclient: a local LLM for your app in one line, sized to the machine, downloaded and verified once."""

from __future__ import annotations

# llama.cpp's native libraries must load before anything imports numpy (gguf does, and apps often do): on an H100
# machine with numpy 2.5.2, a numpy loaded first made every CUDA model load crash in llama.cpp's tokenizer setup
# (SIGSEGV in llama_model_load_from_file). Loading llama_cpp first costs nothing extra: it imports numpy itself.
import llama_cpp  # noqa: F401

# isort: split
from llmclient import presets
from llmclient.builder import LlamaCppBuilder
from llmclient.cache import ModelCache
from llmclient.client import LlmClient, SyncLlmClient
from llmclient.errors import (
    BusyError,
    ClientClosedError,
    ContextOverflowError,
    DownloadError,
    GatedModelError,
    GenerationError,
    InsufficientDiskError,
    InsufficientMemoryError,
    InvalidModelReferenceError,
    LlmClientError,
    ModelFormatError,
    ModelNotFoundError,
    OfflineError,
    QuantNotAvailableError,
    UnknownPresetError,
    VerificationError,
)
from llmclient.hardware import Device, Hardware, detect
from llmclient.metadata import GgufInfo, read_gguf_info
from llmclient.planner import plan
from llmclient.types import (
    CachedModel,
    ChatResult,
    Chunk,
    MemoryEstimate,
    ModelFile,
    Plan,
    Rejected,
    Timings,
    Usage,
    VerifyReport,
)

__version__ = "0.1.0"

__all__ = [
    "BusyError",
    "CachedModel",
    "ChatResult",
    "Chunk",
    "ClientClosedError",
    "ContextOverflowError",
    "LlamaCppBuilder",
    "LlmClient",
    "QuantNotAvailableError",
    "SyncLlmClient",
    "Timings",
    "UnknownPresetError",
    "Usage",
    "presets",
    "Device",
    "GgufInfo",
    "Hardware",
    "InsufficientMemoryError",
    "MemoryEstimate",
    "GenerationError",
    "ModelFile",
    "ModelFormatError",
    "Plan",
    "Rejected",
    "detect",
    "plan",
    "read_gguf_info",
    "DownloadError",
    "GatedModelError",
    "InsufficientDiskError",
    "InvalidModelReferenceError",
    "LlmClientError",
    "ModelCache",
    "ModelNotFoundError",
    "OfflineError",
    "VerificationError",
    "VerifyReport",
    "__version__",
]
