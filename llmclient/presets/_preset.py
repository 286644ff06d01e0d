"""The `Preset` record: one catalogued model and where its GGUF files are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Embedding", "Preset"]


@dataclass(frozen=True)
class Embedding:
    """What an embedding model's preset knows beyond its files: how it pools, its vectors, the prefixes it expects."""

    pooling: str
    """`mean`, `cls` or `last`, as the model card says (and the GGUF declares)."""
    dimension: int
    """The length of its vectors."""
    max_tokens: int
    """The longest text it was trained to embed, in tokens."""
    query_prefix: str = ""
    """Put before a search query (`embed(kind="query")`); empty where the model takes none."""
    document_prefix: str = ""
    """Put before a text searched in (`embed(kind="document")`)."""


@dataclass(frozen=True)
class Preset:
    """A known instruct or embedding model in GGUF: its repo, the file of each quant, and the facts the planner
    needs."""

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
    embedding: Embedding | None = None
    """For an embedding model (which does not chat): its pooling, dimension, length and prefixes."""

    @property
    def quants(self) -> tuple[str, ...]:
        """The catalogued quants, best first."""
        from llmclient.quants import quality_rank, quant_named

        return tuple(sorted(self.files, key=lambda q: quality_rank(quant_named(q))))
