"""The `Preset` record: one catalogued model and where its GGUF files are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Preset"]


@dataclass(frozen=True)
class Preset:
    """A known instruct model in GGUF: its repo, the file of each quant, and the facts the planner needs."""

    name: str
    """The builder method's name, e.g. `mistral7b_instruct_v0_3`."""
    display: str
    family: str
    repo: str
    """The GGUF repo on the Hugging Face Hub."""
    files: Mapping[str, str]
    """Quant name → file in the repo (a split model's first shard)."""
    license: str
    params_b: float
    """Parameters, in billions."""
    context_length: int
    """Trained context length in tokens."""
    base_repo: str
    """The original (non-GGUF) model's repo."""
    chat_format: str | None = None
    """A llama-cpp-python chat format to use instead of the GGUF's template, where that one is missing or wrong."""
    gated: bool = False
    """The original model is gated on the hub (the GGUF repo usually is not)."""
    aliases: tuple[str, ...] = ()
    """Short builder method names for it, e.g. `mistral7b`."""
    source: str = ""
    """Where the repo and file names were checked."""
    unconfirmed: tuple[str, ...] = ()
    """What could not be checked against a public source (file names inferred from the repo's pattern, ...)."""
    inferred_files: Mapping[str, str] = field(default_factory=dict)
    """Quant → file name that follows the repo's naming but was not seen in a public source."""
    notes: str = ""

    @property
    def quants(self) -> tuple[str, ...]:
        """The catalogued quants, best first."""
        from llmclient.quants import quality_rank, quant_named

        return tuple(sorted(self.files, key=lambda q: quality_rank(quant_named(q))))
