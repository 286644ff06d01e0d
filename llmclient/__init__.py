"""llmclient: a local LLM for your app in one line, sized to the machine, downloaded and verified once."""

from __future__ import annotations

from llmclient.cache import ModelCache
from llmclient.errors import (
    DownloadError,
    GatedModelError,
    InsufficientDiskError,
    InvalidModelReferenceError,
    LlmClientError,
    ModelNotFoundError,
    OfflineError,
    VerificationError,
)
from llmclient.types import CachedModel, VerifyReport

__version__ = "0.1.0"

__all__ = [
    "CachedModel",
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
