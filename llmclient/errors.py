"""The exception tree: every error llmclient raises on purpose derives from `LlmClientError`.

Each message says what went wrong and what to do about it. Where a built-in exception fits, an error is one of
those too (`except ValueError` keeps catching a bad request):

    LlmClientError
    ├── InvalidSettingError (ValueError)       a builder setting or environment variable out of range
    ├── ModelSourceError                       naming and choosing a model
    │   ├── InvalidModelReferenceError (ValueError)
    │   ├── ModelNotFoundError (LookupError)
    │   ├── GatedModelError (PermissionError)
    │   ├── UnknownPresetError (LookupError)
    │   ├── QuantNotAvailableError (LookupError)
    │   └── UnsupportedModelError                a model the chosen engine is known to get wrong
    ├── FetchError                             getting the bytes
    │   ├── DownloadError (OSError)
    │   │   └── HubUnavailableError
    │   ├── VerificationError
    │   ├── OfflineError (ConnectionError)
    │   └── InsufficientDiskError (OSError)
    ├── ModelFormatError (ValueError)          reading a model file
    ├── InsufficientMemoryError                sizing a model to the machine
    ├── MissingDependencyError (ImportError)   an optional engine whose package is not installed
    ├── RequestError                           a request the client or its engine cannot run
    │   ├── InvalidRequestError (ValueError)
    │   │   └── SchemaError                    a schema or grammar that cannot be enforced
    │   ├── InvalidRequestTypeError (TypeError)
    │   ├── ContextOverflowError (ValueError)
    │   └── UnsupportedFeatureError
    ├── IncompleteOutputError (ValueError)     a constrained answer cut before its value was complete
    └── running a model
        ├── ClientClosedError (RuntimeError)
        ├── GenerationError (RuntimeError)
        └── BusyError (RuntimeError)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BusyError",
    "ClientClosedError",
    "ContextOverflowError",
    "DownloadError",
    "FetchError",
    "GatedModelError",
    "GenerationError",
    "HubUnavailableError",
    "IncompleteOutputError",
    "InsufficientDiskError",
    "InsufficientMemoryError",
    "InvalidModelReferenceError",
    "InvalidRequestError",
    "InvalidRequestTypeError",
    "InvalidSettingError",
    "LlmClientError",
    "MissingDependencyError",
    "ModelFormatError",
    "ModelNotFoundError",
    "ModelSourceError",
    "OfflineError",
    "QuantNotAvailableError",
    "RequestError",
    "SchemaError",
    "UnknownPresetError",
    "UnsupportedFeatureError",
    "UnsupportedModelError",
    "VerificationError",
]


class LlmClientError(Exception):
    """Base class of every error llmclient raises on purpose."""


class InvalidSettingError(LlmClientError, ValueError):
    """A builder setting or an `LLMCLIENT_*` environment variable has a value outside what it accepts."""


# --- Naming and choosing a model ------------------------------------------------------------------


class ModelSourceError(LlmClientError):
    """The model asked for cannot be found or used as named."""


class InvalidModelReferenceError(ModelSourceError, ValueError):
    """A repo id, file name or revision is malformed; rejected before any request is made."""


class ModelNotFoundError(ModelSourceError, LookupError):
    """The repo, revision or file does not exist on the hub (or is private and no token was given)."""

    def __init__(
        self, message: str, *, repo_id: str, filename: str | None = None, available: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.repo_id = repo_id
        self.filename = filename
        self.available = tuple(available)


class GatedModelError(ModelSourceError, PermissionError):
    """The repo is gated: its license must be accepted on the hub and a token given."""

    def __init__(self, message: str, *, repo_id: str) -> None:
        super().__init__(message)
        self.repo_id = repo_id


class UnknownPresetError(ModelSourceError, LookupError):
    """No preset has that name; the message lists the closest ones."""


class QuantNotAvailableError(ModelSourceError, LookupError):
    """The repo has no file of the asked quantization; the message lists those it has."""

    def __init__(self, message: str, *, available: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.available = tuple(available)


class UnsupportedModelError(ModelSourceError):
    """The chosen engine is known to answer wrongly with this model; the message says why and which engine does
    not."""

    def __init__(self, message: str, *, architecture: str) -> None:
        super().__init__(message)
        self.architecture = architecture
        """The model's `general.architecture`, e.g. `gemma3`."""


# --- Getting the bytes ----------------------------------------------------------------------------


class FetchError(LlmClientError):
    """A model file could not be brought into the cache intact."""


class DownloadError(FetchError, OSError):
    """The transfer failed after its retries; the partial file is kept for the next try."""


class HubUnavailableError(DownloadError):
    """The hub could not be reached or kept failing; a cached copy may still serve."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """The seconds the hub asked to wait (`Retry-After`), if it said."""


class VerificationError(FetchError):
    """The downloaded bytes do not match the hub's checksum; they were removed, a new try starts afresh."""

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class OfflineError(FetchError, ConnectionError):
    """Offline mode is on (or the hub is unreachable) and the file is not in the cache."""


class InsufficientDiskError(FetchError, OSError):
    """Not enough free disk space for the download."""

    def __init__(self, message: str, *, needed: int, free: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.free = free


# --- Reading and sizing a model -------------------------------------------------------------------


class ModelFormatError(LlmClientError, ValueError):
    """The file is not a GGUF model llama.cpp can load, or its header lacks what a model needs."""


class InsufficientMemoryError(LlmClientError):
    """No candidate file fits this machine's memory at any allowed context; the message says what would.

    Not a `MemoryError`: that one is the interpreter's, for an allocation that failed."""

    def __init__(self, message: str, *, needed: int, available: int) -> None:
        super().__init__(message)
        self.needed = needed
        """Bytes the smallest candidate needs at the smallest context."""
        self.available = available
        """Bytes the plan could use (GPU and RAM budgets together)."""


class MissingDependencyError(LlmClientError, ImportError):
    """An optional engine's package is not installed; the message gives the `pip install` that adds it."""

    def __init__(self, message: str, *, package: str, extra: str) -> None:
        super().__init__(message, name=package)
        self.package = package
        """The missing distribution, e.g. `mistralrs`."""
        self.extra = extra
        """llmclient's extra that installs it: `pip install "llmclient[<extra>]"`."""


# --- Requests -------------------------------------------------------------------------------------


class RequestError(LlmClientError):
    """A request that cannot run as given; nothing was started."""


class InvalidRequestError(RequestError, ValueError):
    """A request's value is out of range or missing (a sampling setting, an empty prompt, a message's role)."""


class SchemaError(InvalidRequestError):
    """A schema, regex, choice list or grammar the engine cannot enforce exactly (an unsupported keyword, a bad
    pattern); rejected before any token is generated, never relaxed silently."""


class InvalidRequestTypeError(RequestError, TypeError):
    """A request's value has the wrong type (e.g. a message's content is not a string)."""


class ContextOverflowError(RequestError, ValueError):
    """The prompt does not fit the model's context."""

    def __init__(self, message: str, *, prompt_tokens: int, n_ctx: int) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx


class UnsupportedFeatureError(RequestError):
    """The request asks for something the client's engine does not do (see `engine.capabilities`)."""

    def __init__(self, message: str, *, feature: str) -> None:
        super().__init__(message)
        self.feature = feature
        """The capability's name, e.g. `tools`."""


# --- Answers -------------------------------------------------------------------------------------


class IncompleteOutputError(LlmClientError, ValueError):
    """A constrained answer ended before its value was complete (`max_tokens`, a stop sequence or a cancel), so
    there is no value to parse; `.text` still holds what was generated."""

    def __init__(self, message: str, *, text: str, finish_reason: str) -> None:
        super().__init__(message)
        self.text = text
        self.finish_reason = finish_reason


# --- Running a model ------------------------------------------------------------------------------


class ClientClosedError(LlmClientError, RuntimeError):
    """The client was closed: the request was not run (or not finished)."""


class GenerationError(LlmClientError, RuntimeError):
    """The model failed while answering (the cause is attached); the client stays usable."""


class BusyError(LlmClientError, RuntimeError):
    """The client's queue is full (`max_queue` requests already waiting); try again later."""
