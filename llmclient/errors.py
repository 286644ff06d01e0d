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
    │   ├── UnknownModelError (LookupError)     a server that does not serve the model asked for
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
    ├── ToolError                              calling tools through the model
    │   ├── ToolCallError (ValueError)         a call that cannot be parsed or does not fit its tool
    │   ├── ToolExecutionError (RuntimeError)  a tool raised (run_tools with on_error="raise")
    │   └── ToolLoopError (RuntimeError)       run_tools reached max_rounds without an answer in text
    ├── running a model
    │   ├── ClientClosedError (RuntimeError)
    │   ├── GenerationError (RuntimeError)
    │   │   └── StreamInterruptedError         a server's answer broke off after text reached the caller
    │   └── BusyError (RuntimeError)
    └── RemoteError                            an OpenAI-compatible server (`LlmClient.remote`)
        ├── ServerUnavailableError (ConnectionError)   not reachable, or busy through every retry
        ├── AuthenticationError (PermissionError)      401/403
        ├── ServerError                        the server answered an error
        ├── MalformedResponseError (ValueError)
        └── RemoteTimeoutError (TimeoutError)  connect, first token or idle
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AuthenticationError",
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
    "MalformedResponseError",
    "MissingDependencyError",
    "ModelFormatError",
    "ModelNotFoundError",
    "ModelSourceError",
    "OfflineError",
    "QuantNotAvailableError",
    "RemoteError",
    "RemoteTimeoutError",
    "RequestError",
    "SchemaError",
    "ToolCallError",
    "ToolError",
    "ToolExecutionError",
    "ToolLoopError",
    "ServerError",
    "ServerUnavailableError",
    "StreamInterruptedError",
    "UnknownModelError",
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


class UnknownModelError(ModelSourceError, LookupError):
    """The server does not serve a model of that name; `.available` lists those it does."""

    def __init__(self, message: str, *, model: str, available: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.model = model
        self.available = tuple(available)


class UnsupportedModelError(ModelSourceError):
    """The chosen engine is known to answer wrongly with this model; the message says why and which engine does
    not."""

    def __init__(self, message: str, *, architecture: str) -> None:
        super().__init__(message)
        self.architecture = architecture  # the model's `general.architecture`, e.g. `gemma3`.


# --- Getting the bytes ----------------------------------------------------------------------------


class FetchError(LlmClientError):
    """A model file could not be brought into the cache intact."""


class DownloadError(FetchError, OSError):
    """The transfer failed after its retries; the partial file is kept for the next try."""


class HubUnavailableError(DownloadError):
    """The hub could not be reached or kept failing; a cached copy may still serve."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # the seconds the hub asked to wait (`Retry-After`), if it said.


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
        self.needed = needed  # bytes the smallest candidate needs at the smallest context.
        self.available = available  # bytes the plan could use (GPU and RAM budgets together).


class MissingDependencyError(LlmClientError, ImportError):
    """An optional engine's package is not installed; the message gives the `pip install` that adds it."""

    def __init__(self, message: str, *, package: str, extra: str) -> None:
        super().__init__(message, name=package)
        self.package = package  # the missing distribution, e.g. `mistralrs`.
        self.extra = extra  # llmclient's extra that installs it: `pip install "llmclient[<extra>]"`.


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
        self.feature = feature  # the capability's name, e.g. `tools`.


# --- Answers -------------------------------------------------------------------------------------


class IncompleteOutputError(LlmClientError, ValueError):
    """A constrained answer ended before its value was complete (`max_tokens`, a stop sequence or a cancel), so
    there is no value to parse; `.text` still holds what was generated."""

    def __init__(self, message: str, *, text: str, finish_reason: str) -> None:
        super().__init__(message)
        self.text = text
        self.finish_reason = finish_reason


# --- Tools --------------------------------------------------------------------------------------


class ToolError(LlmClientError):
    """Calling tools through the model went wrong; the subclass says where."""


class ToolCallError(ToolError, ValueError):
    """The model's tool call cannot be used: its markup does not parse, it names no given tool, or its arguments do
    not match the tool's schema. Nothing is dropped: `.raw` holds the model's text. Constrained engines (llama.cpp)
    never produce one except when cut short: raise `max_tokens`, or check the template's tool-call format."""

    def __init__(self, message: str, *, raw: str, name: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw  # the model's text of the call (or of the whole answer where the call could not be found in it).
        self.name = name  # the tool it named, when that much was readable.


class ToolExecutionError(ToolError, RuntimeError):
    """A tool raised while `run_tools(..., on_error="raise")` ran it; the tool's exception is the `__cause__`.
    With the default `on_error="return"`, the model gets the error's text as the tool's result instead."""

    def __init__(self, message: str, *, call: Any, messages: Sequence[Any]) -> None:
        super().__init__(message)
        self.call = call  # the `ToolCall` whose tool raised.
        self.messages = list(messages)  # the conversation up to and including the assistant's message with that call.


class ToolLoopError(ToolError, RuntimeError):
    """`run_tools` asked the model `max_rounds` times and it still called tools instead of answering in text: raise
    `max_rounds`, or look at `.messages` (the whole transcript) for a model calling the same tool again and again."""

    def __init__(self, message: str, *, messages: Sequence[Any]) -> None:
        super().__init__(message)
        self.messages = list(messages)
        """Every message so far: the caller's, each assistant turn with its calls, each tool's result."""


# --- Running a model ------------------------------------------------------------------------------


class ClientClosedError(LlmClientError, RuntimeError):
    """The client was closed: the request was not run (or not finished)."""


class GenerationError(LlmClientError, RuntimeError):
    """The model failed while answering (the cause is attached); the client stays usable."""


class BusyError(LlmClientError, RuntimeError):
    """The client's queue is full (`max_queue` requests already waiting); try again later."""


class StreamInterruptedError(GenerationError):
    """A server's answer broke off (the connection dropped, an error or a malformed event arrived, it went idle, or
    it ended without a finish reason) after some of its text had reached the caller, so it was not retried; `.text`
    holds that text and `__cause__` the reason."""

    def __init__(self, message: str, *, text: str, url: str) -> None:
        super().__init__(message)
        self.text = text  # the answer's text as far as it came.
        self.url = url  # the replica that was answering.


# --- OpenAI-compatible servers ----------------------------------------------------------------------


class RemoteError(LlmClientError):
    """An OpenAI-compatible server could not be reached, refused the request or answered something unusable;
    `.url` names the replica."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class ServerUnavailableError(RemoteError, ConnectionError):
    """No replica could take the request: connections refused or dropped, or busy (429/503) and unavailable
    (502/504) answers through every retry."""

    def __init__(self, message: str, *, url: str, retry_after: float | None = None) -> None:
        super().__init__(message, url=url)
        self.retry_after = retry_after  # the seconds the server last asked to wait (`Retry-After`), if it said.


class AuthenticationError(RemoteError, PermissionError):
    """The server refused the API key (401) or its permissions (403); never retried."""

    def __init__(self, message: str, *, url: str, status: int) -> None:
        super().__init__(message, url=url)
        self.status = status


class ServerError(RemoteError):
    """The server answered with an error: an HTTP status it is not worth retrying (or a 5xx through every retry),
    or an error event in the stream; the message carries the server's own."""

    def __init__(self, message: str, *, url: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message, url=url)
        self.status = status  # the HTTP status (None for an error event inside a stream).
        self.body = body  # what the server said, as it said it (cut to a few kB).


class MalformedResponseError(RemoteError, ValueError):
    """The server's answer is not the OpenAI shape: not an event stream, an event that is not JSON, a chunk
    without choices; is the URL an OpenAI-compatible API (ending before `/v1`)?"""


class RemoteTimeoutError(RemoteError, TimeoutError):
    """The server took too long: to accept the connection, to send the first token, or between two events."""
