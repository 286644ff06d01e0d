"""The `Engine` protocol every inference engine implements, and the values that cross it.

In the spirit of httpx's transports: `LlmClient` validates a request, applies its defaults and hands the engine
a `GenerateRequest`; the engine streams `Piece`s back, the last with the finish reason, usage and timings. An engine
whose capabilities include `embeddings` is also an `EmbeddingEngine`: it turns an `EmbedRequest` into `Embedded`
vectors. The client knows an engine only through these protocols and its `capabilities`. Engines:
`backends.llama_cpp` (in-process, continuous batching), `backends.mistralrs` (mistral.rs in-process, the optional
extra); `llmclient.testing.FakeEngine` for tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from llmclient.chat.messages import Message
from llmclient.chat.tools import ToolCall, ToolChoice
from llmclient.sampling import Sampling
from llmclient.structured import Constraint
from llmclient.types import Timings, Usage

# numpy only for the annotations: llmclient never imports it before llama.cpp's native libraries (see _model.py)
if TYPE_CHECKING:
    import numpy
    from numpy.typing import NDArray

__all__ = ["Capabilities", "EmbedRequest", "Embedded", "EmbeddingEngine", "Engine", "GenerateRequest", "Piece"]


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do; the client refuses a request needing more (`UnsupportedFeatureError`) before any
    work."""

    structured_output: bool = False
    """Enforces a JSON Schema, regex or grammar on the answer."""
    tools: bool = False
    """Takes tool definitions and answers with tool calls."""
    embeddings: bool = False
    """Turns texts into vectors (the engine is an `EmbeddingEngine`)."""
    generation: bool = True
    """Generates text (chat, complete, stream); False for an embedding-only model."""
    logprobs: bool = False
    """Reports each token's log-probability."""
    cancel_in_prompt: bool = False
    """Stops at once when cancelled while reading a long prompt (not only between tokens)."""
    parallel: int | None = None
    """Requests it runs at once; more wait in its queue, first come first served (None: it does not say)."""
    seed: bool = True
    """Honours a per-request `seed` (the same seed, prompt and settings give the same answer)."""


@dataclass(frozen=True)
class GenerateRequest:
    """One generation, validated and with the client's defaults applied: chat `messages` or a raw `prompt`."""

    messages: tuple[Message, ...] | None
    """The conversation (OpenAI shape, every field the caller gave); None for a raw prompt."""
    prompt: str | None
    """Text to continue without a chat template; None for a chat."""
    sampling: Sampling = field(default_factory=Sampling)
    """No field is `UNSET` here: a value, or None for the engine's default (`sampling.settings()`)."""
    tools: tuple[dict[str, Any], ...] = ()
    """Tool definitions (OpenAI shape), only for an engine whose capabilities include `tools`."""
    constraint: Constraint | None = None
    """What the answer must match, only for an engine whose capabilities include `structured_output`."""
    tool_choice: ToolChoice | None = None
    """`auto` (None means it too), `none`, `required` or `{"type": "function", "function": {"name": ...}}`,
    checked against `tools`."""
    parallel_tool_calls: bool = True
    """Whether one turn may hold several calls."""


@dataclass(frozen=True)
class Piece:
    """What an engine streams: text, then a last piece with `finish_reason` set (and usage and timings)."""

    text: str
    """Text to show: never a tool call's markup."""
    finish_reason: str | None = None
    """On the last piece: `stop`, `length`, `cancelled` (or `tool_calls`; the client says so where calls came)."""
    usage: Usage | None = None
    timings: Timings | None = None
    """On the last piece, where the engine measures them (the client measures what it can otherwise)."""
    tool_calls: tuple[ToolCall, ...] = ()
    """Calls the model completed with this piece, each whole (a server's streamed deltas gathered into one); the
    client checks their arguments against the tools' schemas."""


@dataclass(frozen=True)
class EmbedRequest:
    """Texts to turn into vectors, checked by the client: each a non-empty string, any query or document prefix
    already applied."""

    texts: tuple[str, ...]
    truncate: bool = True
    """A text longer than the model takes is cut to its first tokens; False: `ContextOverflowError` naming it."""


@dataclass(frozen=True)
class Embedded:
    """An `EmbedRequest`'s vectors, as the model pools them (the client normalizes them where asked)."""

    vectors: NDArray[numpy.float32]
    """One row per text, in the request's order: shape (texts, dimension), float32."""
    prompt_tokens: int
    """Tokens read, all texts together (after truncation)."""


@runtime_checkable
class Engine(Protocol):
    """An inference engine: runs `GenerateRequest`s, side by side where it can."""

    @property
    def capabilities(self) -> Capabilities:
        """What this engine supports."""
        ...

    def generate(self, request: GenerateRequest) -> AsyncIterator[Piece]:
        """The answer to `request`, piece by piece; the last piece has `finish_reason` set.

        Closing the iterator early (or cancelling the task iterating it) stops the generation. Raises
        `llmclient.errors` exceptions: `ContextOverflowError`, `ClientClosedError` once closed, `GenerationError`.
        """
        ...

    async def aclose(self) -> None:
        """Stop: running requests end, queued ones fail with `ClientClosedError`, resources are freed."""
        ...


@runtime_checkable
class EmbeddingEngine(Engine, Protocol):
    """An engine that also embeds; its capabilities say `embeddings=True` (llama.cpp: an embedding model, or a chat
    model given a pooling; a remote engine: a server's `/v1/embeddings`)."""

    async def embed(self, request: EmbedRequest) -> Embedded:
        """The vectors of `request.texts`, in order, computed side by side where the engine can.

        Cancelling the awaiting task stops the work at the next step. Raises `llmclient.errors` exceptions:
        `ContextOverflowError` (a text too long with `truncate=False`, naming it), `UnsupportedFeatureError`,
        `ClientClosedError` once closed, `GenerationError`.
        """
        ...
