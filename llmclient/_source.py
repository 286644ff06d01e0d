"""Where a model comes from, as the caller named it: a preset, a hub repo (maybe one file of it), or a local file.

The builder (`.preset()`, `.hf()`, `.local()`) and the command line (`llmclient run NAME`) name models alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llmclient.presets import get as get_preset

__all__ = ["Source", "SourceKind"]

SourceKind = Literal["preset", "hf", "local"]


@dataclass(frozen=True)
class Source:
    """A model to run: a preset (`name`), a hub repo (`name`, maybe `file`), or a local GGUF file (`name`: its path)."""

    kind: SourceKind
    """`preset`, `hf` or `local`."""
    name: str
    """The preset's canonical name, the repo id (`owner/name`), or the file's path."""
    file: str | None = None
    """For a hub repo: the file in it, when named (`owner/name/file.gguf`)."""
    revision: str = "main"
    """For a hub repo or preset: the branch, tag or commit to fetch."""

    @property
    def repo_id(self) -> str:
        """The hub repo holding the model (a preset's GGUF repo)."""
        return get_preset(self.name).repo if self.kind == "preset" else self.name

    def __str__(self) -> str:
        return f"{self.name}/{self.file}" if self.file else self.name
