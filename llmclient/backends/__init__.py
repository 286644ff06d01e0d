"""Inference engines behind one small protocol; `llama_cpp` is the first.

A backend owns a loaded model and advances the requests it runs together one step at a time, streaming text
pieces back and stopping when asked. The decode thread (`llmclient._worker`) is the only caller: it prepares
each request, starts it when the backend has room, and steps while anything runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Backend", "GenerateRequest", "Piece", "Prepared"]


@dataclass(frozen=True)
class GenerateRequest:
    """One generation: chat `messages` (OpenAI shape) or a raw `prompt`, and its sampling settings."""

    messages: list[dict[str, str]] | None
    prompt: str | None
    sampling: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Piece:
    """What a backend reports while generating: text, then a last piece with the finish reason and counts."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens whose KV cache was reused from the previous request (not evaluated again)."""


@dataclass(frozen=True)
class Prepared:
    """A request turned into the model's tokens, ready to start."""

    tokens: list[int]
    stops: list[str]
    """Stop sequences: the caller's and the chat template's."""
    max_tokens: int
    sampling: dict[str, Any]
    """Sampler settings (temperature, top_k, top_p, min_p, repeat_penalty, seed)."""


class Backend(Protocol):
    """A loaded model that runs requests side by side. Its methods block: call them from the decode thread only."""

    def prepare(self, request: GenerateRequest) -> Prepared:
        """Tokenize `request` (through the chat template for messages); raises for a prompt that cannot run."""
        ...

    def start(
        self, prepared: Prepared, emit: Callable[[Piece | BaseException], None], cancelled: Callable[[], bool]
    ) -> bool:
        """Begin `prepared` if there is room (a free sequence and its KV space); False leaves it to wait.

        From then on each `step` may call `emit` with text; the last call carries the finish reason (`stop`,
        `length`, or `cancelled` soon after `cancelled()` turns true) or an exception."""
        ...

    def step(self) -> None:
        """Advance every started request by one decode (a token each, or a chunk of a prompt)."""
        ...

    @property
    def active(self) -> int:
        """Requests started and not finished."""
        ...

    @property
    def threads(self) -> int:
        """The most compute threads a step may use (the plan's)."""
        ...

    def set_threads(self, n: int) -> None:
        """Use `n` compute threads (1 to `threads`) from the next step on."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's vocabulary."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...
