"""The cache's folders and files on disk: where each thing lives, and writing them safely."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RepoFolders", "atomic_write", "fsync_dir"]


@dataclass(frozen=True)
class RepoFolders:
    """The folders of one repo inside the cache."""

    root: Path
    repo_id: str

    @property
    def folder(self) -> Path:
        return self.root / ("models--" + self.repo_id.replace("/", "--"))

    def blob(self, etag: str) -> Path:
        return self.folder / "blobs" / etag

    def record(self, etag: str) -> Path:
        return self.folder / "verified" / f"{etag}.json"

    def snapshot(self, commit: str, filename: str) -> Path:
        return self.folder / "snapshots" / commit / filename

    def ref(self, revision: str) -> Path:
        return self.folder / "refs" / revision

    def gguf_info(self, etag: str) -> Path:
        return self.folder / "gguf" / f"{etag}.json"

    def gguf_pointer(self, revision: str, filename: str) -> Path:
        return self.folder / "gguf" / "refs" / revision / f"{filename}.json"

    def lock(self, etag: str) -> Path:
        return self.root / ".locks" / self.folder.name / f"{etag}.lock"


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def fsync_dir(folder: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
