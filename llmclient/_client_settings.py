"""`ClientSettings`: what every builder configures about the client over its engine, whatever the engine.

The sampling defaults (`temperature`, `max_tokens`, ...), the system prompt, `max_queue` and the embedding
prefixes mean the same for a llama.cpp model and for a remote server, so both builders inherit them from here
(one table of ranges: `llmclient.sampling`). Each method returns a changed copy; the builder stays immutable.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from typing_extensions import Self

from llmclient.errors import InvalidSettingError
from llmclient.sampling import Sampling

__all__ = ["ClientSettings"]


@dataclass(frozen=True)
class ClientSettings:
    """Sampling defaults, a system prompt and a queue bound, shared by every builder."""

    _system_prompt: str | None = None
    _max_queue: int | None = None
    _sampling: Sampling = field(default_factory=Sampling)
    _embed_prefixes: tuple[tuple[str, str], ...] | None = None

    def system_prompt(self, text: str) -> Self:
        """A system message put first in every chat that has none."""
        return replace(self, _system_prompt=text)

    def max_queue(self, n: int) -> Self:
        """At most `n` requests wait for a place among those running; one more gets `BusyError` at once
        (default: no limit)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidSettingError(f"max_queue must be a whole number >= 0, got {n!r}")
        return replace(self, _max_queue=n)

    def embed_prefixes(self, *, query: str = "", document: str = "") -> Self:
        """What `embed(kind="query")` and `embed(kind="document")` put before each text, replacing the preset's
        (e.g. `query="search_query: ", document="search_document: "` for nomic-embed-text, local or served)."""
        return replace(self, _embed_prefixes=(("query", query), ("document", document)))

    def _with(self, **sampling: Any) -> Self:
        # a request checks the same fields with the same table (`Sampling`): a default it would refuse is refused
        return replace(self, _sampling=self._sampling.merged(Sampling(**sampling)))

    def temperature(self, value: float) -> Self:
        """Default sampling temperature (0 = greedy)."""
        return self._with(temperature=value)

    def top_p(self, value: float) -> Self:
        """Default nucleus sampling threshold."""
        return self._with(top_p=value)

    def top_k(self, value: int) -> Self:
        """Default top-k (0 disables it)."""
        return self._with(top_k=value)

    def min_p(self, value: float) -> Self:
        """Default min-p threshold."""
        return self._with(min_p=value)

    def repeat_penalty(self, value: float) -> Self:
        """Default repetition penalty (1 = none; 0.01 to 10)."""
        return self._with(repeat_penalty=value)

    def max_tokens(self, n: int) -> Self:
        """Default answer length limit in tokens."""
        return self._with(max_tokens=n)

    def seed(self, seed: int) -> Self:
        """Default sampling seed."""
        return self._with(seed=seed)

    def stop(self, *stop: str) -> Self:
        """Default stop sequences: the answer ends where one first appears."""
        return self._with(stop=stop)
