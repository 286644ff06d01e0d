"""Values passed between llmclient's layers and returned to callers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["CachedModel", "VerifyReport"]


@dataclass(frozen=True)
class CachedModel:
    """A verified model file in the cache, ready to load from `path`."""

    path: Path
    """Where to open the file (inside the cache's `snapshots/<commit>/` folder)."""
    repo_id: str
    filename: str
    commit: str
    """The hub commit the file was resolved at (40 hex characters)."""
    size: int
    """Size in bytes."""
    sha256: str
    """The file's sha256, checked against the hub's when it was downloaded."""


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of re-hashing one cached file with `ModelCache.verify`."""

    model: CachedModel
    ok: bool
    """True when the bytes on disk still hash to the recorded sha256."""
    actual_sha256: str
    """What the bytes on disk hash to now; a mismatching file has been removed from the cache."""
