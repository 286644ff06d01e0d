"""The exception tree: every error llmclient raises on purpose derives from `LlmClientError`.

Each message says what went wrong and what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BusyError",
    "GenerationError",
    "ClientClosedError",
    "ContextOverflowError",
    "DownloadError",
    "GatedModelError",
    "InsufficientDiskError",
    "InsufficientMemoryError",
    "InvalidModelReferenceError",
    "LlmClientError",
    "ModelFormatError",
    "ModelNotFoundError",
    "UnknownPresetError",
    "OfflineError",
    "QuantNotAvailableError",
    "VerificationError",
]


class LlmClientError(Exception):
    """Base class of every error llmclient raises on purpose."""


# --- Naming a model -------------------------------------------------------------------------------


class InvalidModelReferenceError(LlmClientError, ValueError):
    """A repo id, file name or revision is malformed; rejected before any request is made."""


class ModelNotFoundError(LlmClientError, LookupError):
    """The repo, revision or file does not exist on the hub (or is private and no token was given)."""

    def __init__(
        self, message: str, *, repo_id: str, filename: str | None = None, available: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.repo_id = repo_id
        self.filename = filename
        self.available = tuple(available)


class GatedModelError(LlmClientError, PermissionError):
    """The repo is gated: its license must be accepted on the hub and a token given."""

    def __init__(self, message: str, *, repo_id: str) -> None:
        super().__init__(message)
        self.repo_id = repo_id


# --- Getting the bytes ----------------------------------------------------------------------------


class DownloadError(LlmClientError, OSError):
    """The transfer failed after its retries; the partial file is kept for the next try."""


class VerificationError(LlmClientError):
    """The downloaded bytes do not match the hub's checksum; they were removed, a new try starts afresh."""

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class OfflineError(LlmClientError, ConnectionError):
    """Offline mode is on (or the hub is unreachable) and the file is not in the cache."""


class InsufficientDiskError(LlmClientError, OSError):
    """Not enough free disk space for the download."""

    def __init__(self, message: str, *, needed: int, free: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.free = free


# --- Sizing a model -------------------------------------------------------------------------------


class ModelFormatError(LlmClientError, ValueError):
    """The file is not a GGUF model llama.cpp can load, or its header lacks what a model needs."""


class InsufficientMemoryError(LlmClientError, MemoryError):
    """No candidate file fits this machine's memory at any allowed context; the message says what would."""

    def __init__(self, message: str, *, needed: int, available: int) -> None:
        super().__init__(message)
        self.needed = needed
        """Bytes the smallest candidate needs at the smallest context."""
        self.available = available
        """Bytes the plan could use (GPU and RAM budgets together)."""


# --- Choosing a model -----------------------------------------------------------------------------


class UnknownPresetError(LlmClientError, LookupError):
    """No preset has that name; the message lists the closest ones."""


class QuantNotAvailableError(LlmClientError, LookupError):
    """The repo has no file of the asked quantization; the message lists those it has."""

    def __init__(self, message: str, *, available: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.available = tuple(available)


# --- Running a model ------------------------------------------------------------------------------


class ClientClosedError(LlmClientError, RuntimeError):
    """The client was closed: the request was not run (or not finished)."""


class GenerationError(LlmClientError, RuntimeError):
    """The model failed while answering (the cause is attached); the client stays usable."""


class BusyError(LlmClientError, RuntimeError):
    """The client's queue is full (`max_queue` requests already waiting); try again later."""


class ContextOverflowError(LlmClientError, ValueError):
    """The prompt does not fit the model's context."""

    def __init__(self, message: str, *, prompt_tokens: int, n_ctx: int) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx
