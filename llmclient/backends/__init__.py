"""Inference engines behind one small protocol; `llama_cpp` is the first.

A backend owns a loaded model and runs requests on it one at a time, streaming text pieces back and stopping
when asked. The async facade (`llmclient.client.LlmClient`) is the only caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Backend", "GenerateRequest", "Piece"]


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


class Backend(Protocol):
    """A loaded model that generates under a cancel signal. Its methods block: call them from a worker."""

    def generate(self, request: GenerateRequest, emit: Callable[[Piece], None], cancelled: Callable[[], bool]) -> None:
        """Run `request`, calling `emit` for each piece of text and once more at the end; stop soon after
        `cancelled()` turns true, ending with finish reason `cancelled`."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's vocabulary."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...
