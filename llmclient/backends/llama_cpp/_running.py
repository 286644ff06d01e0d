"""The state of the decoder's sequences and of the requests running in them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmclient.backends.llama_cpp._sampling import SamplerChain
from llmclient.backends.llama_cpp._step import Emit
from llmclient.backends.llama_cpp._text import TextAssembler

__all__ = ["Running", "Slot", "shared_prefix"]


@dataclass(eq=False)
class Slot:
    """One sequence of the shared KV cache (llama.cpp's seq_id) and the tokens it holds."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)
    """The tokens whose keys and values this sequence holds in the cache, in order (positions 0..n-1)."""
    busy: bool = False
    last_used: int = 0


@dataclass(eq=False)
class Running:
    """A request decoding in a slot: its prompt, sampler, text and progress."""

    slot: Slot
    prompt: list[int]
    max_tokens: int
    reserved: int
    chain: SamplerChain
    text: TextAssembler
    emit: Emit
    cancelled: Callable[[], bool]
    reused: int
    fed: int
    """Prompt tokens already in the cache."""
    pending: int = -1
    """The last sampled token, to be decoded next step (-1 while the prompt is still being read)."""
    forced: list[int] = field(default_factory=list)
    """Tokens the constraint allows no alternative to after `pending` (jump-forward): decoded with it in one batch,
    their text already delivered."""
    produced: int = 0
    row: int = -1
    """The batch row holding this request's logits in the current step (-1: none)."""
    first_pos: int = 0
    """Its first position in the current step's batch (where to cut the cache back to if the step fails)."""
    done: bool = False
    matcher: Any = None
    """The request's llguidance matcher, if its answer is constrained."""
    special: bool = False
    """Its control tokens shown as their text (a tool call's marker may be one)."""


def shared_prefix(a: list[int], b: list[int]) -> int:
    """How many tokens `a` and `b` share from the start."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
