"""`Sampling`: how a request draws its tokens, as one frozen value that checks itself once.

A field left `UNSET` takes the value from the layer below (a request's from the builder's defaults, the builder's
from the engine's own default); `None` asks for the engine's default even where the builder set one:

    base = Sampling(temperature=0.2, max_tokens=200)
    base.merged(Sampling(temperature=None))  # temperature: the engine's default; max_tokens still 200
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Final, TypedDict

from llmclient.errors import InvalidRequestError, InvalidRequestTypeError

__all__ = ["NUMBER_RANGES", "UNSET", "Sampling", "SamplingOptions", "Unset"]


class Unset(enum.Enum):
    """The type of `UNSET`."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET
"""A field not given: the layer below decides."""

#: The allowed range of each real-valued setting, shared by the builder's methods and every request (one table).
#: repeat_penalty divides positive logits, so it must stay above 0.
NUMBER_RANGES: Final[dict[str, tuple[float, float]]] = {
    "temperature": (0.0, 5.0),
    "top_p": (0.0, 1.0),
    "min_p": (0.0, 1.0),
    "repeat_penalty": (0.01, 10.0),
}
#: The smallest value of each whole-number setting.
INT_MINIMUMS: Final[dict[str, int]] = {"max_tokens": 1, "top_k": 0}


class SamplingOptions(TypedDict, total=False):
    """The keyword options `chat`, `complete` and `stream` take (see `Sampling` for each)."""

    temperature: float | None
    top_p: float | None
    top_k: int | None
    min_p: float | None
    repeat_penalty: float | None
    seed: int | None
    max_tokens: int | None
    stop: str | Sequence[str] | None


@dataclass(frozen=True)
class Sampling:
    """Sampling settings; each is `UNSET` (the layer below decides), `None` (the engine's default) or a value."""

    temperature: float | Unset | None = UNSET
    """0 picks the likeliest token every time (greedy); higher is more varied. 0 to 5."""
    top_p: float | Unset | None = UNSET
    """Nucleus sampling: draw from the likeliest tokens that together hold this much probability. 0 to 1."""
    top_k: int | Unset | None = UNSET
    """Draw from the k likeliest tokens only (0: no limit)."""
    min_p: float | Unset | None = UNSET
    """Drop tokens less likely than this fraction of the likeliest one. 0 to 1."""
    repeat_penalty: float | Unset | None = UNSET
    """Make recently seen tokens less likely (1: no penalty). 0.01 to 10."""
    seed: int | Unset | None = UNSET
    """Seed of the random draw: the same seed, prompt and settings give the same answer."""
    max_tokens: int | Unset | None = UNSET
    """The most tokens the answer may have (None: up to the context)."""
    stop: Sequence[str] | Unset | None = UNSET
    """Text that ends the answer where it first appears (not included in it); kept as a tuple of strings."""

    def __post_init__(self) -> None:
        for name, (low, high) in NUMBER_RANGES.items():
            value = getattr(self, name)
            if _given(value) and (
                isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high
            ):
                raise InvalidRequestError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
        for name, low in INT_MINIMUMS.items():
            value = getattr(self, name)
            if _given(value) and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise InvalidRequestError(f"{name} must be a whole number >= {low}, got {value!r}")
        if _given(self.seed) and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise InvalidRequestError(f"seed must be a whole number, got {self.seed!r}")
        stop: Any = self.stop
        if isinstance(stop, str):
            object.__setattr__(self, "stop", (stop,))
        elif _given(stop):
            if not isinstance(stop, Sequence) or not all(isinstance(s, str) for s in stop):
                raise InvalidRequestError(f"stop must be a string or a list of strings, got {stop!r}")
            object.__setattr__(self, "stop", tuple(stop))

    @classmethod
    def of(cls, options: SamplingOptions | dict[str, Any]) -> Sampling:
        """A `Sampling` from keyword options; an unknown name is refused with the known ones."""
        unknown = set(options) - _NAMES
        if unknown:
            raise InvalidRequestTypeError(
                f"unknown sampling option(s) {sorted(unknown)}; known: {', '.join(sorted(_NAMES))}"
            )
        return cls(**options)

    def merged(self, over: Sampling) -> Sampling:
        """These settings with every field `over` gives (a value or None) taking precedence."""
        given = {f.name: getattr(over, f.name) for f in fields(over) if getattr(over, f.name) is not UNSET}
        return Sampling(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **given})

    def settings(self) -> dict[str, Any]:
        """The fields that have a value (neither `UNSET` nor None): what an engine passes to its sampler."""
        return {f.name: v for f in fields(self) if _given(v := getattr(self, f.name))}


_NAMES = frozenset(f.name for f in fields(Sampling))


def _given(value: object) -> bool:
    return value is not UNSET and value is not None
