"""llmclient: a local LLM for your app in one line, sized to the machine, downloaded and verified once."""

from __future__ import annotations

# Importing llmclient loads no native library and no numpy: llama-cpp-python loads when a llama.cpp model does
# (backends/llama_cpp/_model.py), and before numpy wherever llmclient itself would import numpy first: on an H100
# machine with numpy 2.5.2, a numpy loaded first made every CUDA model load crash in llama.cpp's tokenizer setup
# (SIGSEGV in llama_model_load_from_file). So an app without llama-cpp-python can still use a remote engine,
# `llmclient.testing` and the cache.
from llmclient import presets
from llmclient.backends import Capabilities, Embedded, EmbeddingEngine, EmbedRequest, Engine, GenerateRequest, Piece
from llmclient.cache import CachedFile, CacheScan, ModelCache, PartialDownload
from llmclient.chat import Message, ToolCall
from llmclient.client import LlamaCppBuilder, LlmClient, SyncLlmClient
from llmclient.embeddings import EmbedKind
from llmclient.errors import (
    BusyError,
    ClientClosedError,
    ContextOverflowError,
    DownloadError,
    FetchError,
    GatedModelError,
    GenerationError,
    HubUnavailableError,
    IncompleteOutputError,
    InsufficientDiskError,
    InsufficientMemoryError,
    InvalidModelReferenceError,
    InvalidRequestError,
    InvalidRequestTypeError,
    InvalidSettingError,
    LlmClientError,
    ModelFormatError,
    ModelNotFoundError,
    ModelSourceError,
    OfflineError,
    QuantNotAvailableError,
    RequestError,
    SchemaError,
    UnknownPresetError,
    UnsupportedFeatureError,
    VerificationError,
)
from llmclient.hardware import Device, Hardware, detect
from llmclient.metadata import GgufInfo, read_gguf_info
from llmclient.planner import plan
from llmclient.sampling import UNSET, Sampling
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
from llmclient.workflows import Decision

__version__ = "0.1.0"

__all__ = [
    "BusyError",
    "CachedFile",
    "CachedModel",
    "CacheScan",
    "Capabilities",
    "ChatResult",
    "Chunk",
    "ClientClosedError",
    "ContextOverflowError",
    "detect",
    "Decision",
    "Device",
    "DownloadError",
    "EmbedKind",
    "EmbedRequest",
    "Embedded",
    "EmbeddingEngine",
    "Engine",
    "FetchError",
    "GatedModelError",
    "GenerateRequest",
    "GenerationError",
    "GgufInfo",
    "Hardware",
    "HubUnavailableError",
    "IncompleteOutputError",
    "InsufficientDiskError",
    "InsufficientMemoryError",
    "InvalidModelReferenceError",
    "InvalidRequestError",
    "InvalidRequestTypeError",
    "InvalidSettingError",
    "LlamaCppBuilder",
    "LlmClient",
    "LlmClientError",
    "MemoryEstimate",
    "Message",
    "ModelCache",
    "ModelFile",
    "ModelFormatError",
    "ModelNotFoundError",
    "PartialDownload",
    "ModelSourceError",
    "OfflineError",
    "Piece",
    "plan",
    "Plan",
    "presets",
    "QuantNotAvailableError",
    "read_gguf_info",
    "Rejected",
    "RequestError",
    "SchemaError",
    "Sampling",
    "SyncLlmClient",
    "Timings",
    "ToolCall",
    "UnknownPresetError",
    "UNSET",
    "UnsupportedFeatureError",
    "Usage",
    "VerificationError",
    "VerifyReport",
    "__version__",
]
