"""The step protocol inside the llama.cpp engine: a loaded model that advances its running requests together.

The decode thread (`_worker.py`) is its only caller: it prepares each request, starts it when the model has room,
and steps while anything runs. A request is a generation or a batch of texts to embed (`PreparedEmbed`); a model
may do either or both (`generates`, `embeds`). `LlamaCppModel` implements it; tests may drive the decode thread
with another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from llmclient.backends import Embedded, EmbedRequest, GenerateRequest, Piece

__all__ = ["Emit", "Prepared", "PreparedEmbed", "StepModel"]

Emit = Callable[[Piece | Embedded | BaseException], None]


@dataclass(frozen=True)
class Prepared:
    """A request turned into the model's tokens, ready to start."""

    tokens: list[int]
    stops: list[str]
    """Stop sequences: the caller's and the chat template's."""
    max_tokens: int
    sampling: dict[str, Any]
    """Sampler settings (temperature, top_k, top_p, min_p, repeat_penalty, seed) that have a value."""
    matcher: Any = None
    """The llguidance matcher holding the answer to the request's constraint (None: free text)."""
    special: bool = False
    """Show control tokens as their text (`<|python_tag|>`, `[TOOL_CALLS]`): a tool call starts with one."""


@dataclass(frozen=True)
class PreparedEmbed:
    """Texts to embed, as the model's tokens (each within the most one text may hold)."""

    texts: list[list[int]]


class StepModel(Protocol):
    """A loaded model that runs requests side by side. Its methods block: call them from the decode thread only."""

    def prepare(self, request: GenerateRequest | EmbedRequest) -> Prepared | PreparedEmbed:
        """Tokenize `request` (through the chat template for messages); raises for a prompt that cannot run, or
        for a kind of request the model does not do (`UnsupportedFeatureError`)."""
        ...

    def start(self, prepared: Prepared | PreparedEmbed, emit: Emit, cancelled: Callable[[], bool]) -> bool:
        """Begin `prepared` if there is room (a free sequence and its KV space); False leaves it to wait.

        From then on each `step` may call `emit` with text; the last call carries the finish reason (`stop`,
        `length`, or `cancelled` soon after `cancelled()` turns true) with the usage, or an exception. Texts to
        embed always start; their one call is the `Embedded` vectors, or an exception, or a `cancelled` piece."""
        ...

    def step(self) -> None:
        """Advance every started request by one decode (a token each, or a chunk of a prompt)."""
        ...

    @property
    def active(self) -> int:
        """Requests started and not finished."""
        ...

    @property
    def generates(self) -> bool:
        """Whether it takes generation requests."""
        ...

    @property
    def embeds(self) -> bool:
        """Whether it takes texts to embed."""
        ...

    @property
    def threads(self) -> int:
        """The most compute threads a step may use (the plan's)."""
        ...

    def set_threads(self, n: int) -> None:
        """Use `n` compute threads (1 to `threads`) from the next step on."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...
