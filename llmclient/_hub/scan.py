"""What the cache holds, read from its layout alone (see `llmclient.cache`): `ModelCache.scan`. Nothing is hashed."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from llmclient._hub.layout import RepoFolders

__all__ = ["CacheScan", "CachedFile", "FileState", "PartialDownload", "scan_cache"]

FileState = Literal["verified", "changed", "unverified", "missing"]


@dataclass(frozen=True)
class CachedFile:
    """One file of a repo at one commit, as the cache holds it (a snapshot entry and the blob it points at)."""

    repo_id: str
    filename: str
    """The file's path in its repo."""
    commit: str
    path: Path
    """The snapshot entry, `snapshots/<commit>/<filename>`: the path `fetch` hands out."""
    etag: str
    """The blob it points at, named by the hub's checksum of its bytes (sha256, or git blob sha1 for small files)."""
    size: int
    """Bytes on disk; 0 when the blob is missing."""
    state: FileState
    """`verified`: hashed, and unchanged since (size and mtime as recorded); `changed`: changed since it was
    verified, so it is hashed again before any use; `unverified`: never hashed here, so not used until it is;
    `missing`: the blob is gone (the next fetch downloads it again)."""
    sha256: str | None
    """The sha256 recorded when it was verified; None if it never was."""
    revisions: tuple[str, ...] = ()
    """The branches and tags that pointed at `commit` when last fetched (the cache's `refs/`)."""


@dataclass(frozen=True)
class PartialDownload:
    """An unfinished download, resumed by the next fetch of its file; never trusted as it is."""

    repo_id: str
    path: Path
    """`blobs/<etag>.partial`."""
    etag: str
    """The checksum the finished file must have."""
    size: int
    """Bytes received so far."""


@dataclass(frozen=True)
class CacheScan:
    """Everything in one cache: its repos, their files at each commit, and unfinished downloads."""

    root: Path
    repos: tuple[str, ...]
    """Every repo with a folder in the cache, whether it holds files or only metadata read while planning."""
    files: tuple[CachedFile, ...]
    """Every snapshot entry, by repo, newest commit first, then by file name; a blob shared by several commits
    appears once per commit."""
    partials: tuple[PartialDownload, ...]

    @property
    def size(self) -> int:
        """Bytes on disk: each blob once, partial downloads included."""
        blobs = {(f.repo_id, f.etag): f.size for f in self.files}
        return sum(blobs.values()) + sum(p.size for p in self.partials)


def _repo_id(folder: Path) -> str:
    return folder.name[len("models--") :].replace("--", "/", 1)


def _state(repo: RepoFolders, etag: str) -> tuple[FileState, int, str | None]:
    """(state, bytes on disk, recorded sha256) of the blob `etag`."""
    try:
        st = repo.blob(etag).stat()
    except OSError:
        return "missing", 0, _recorded(repo, etag).get("sha256")
    record = _recorded(repo, etag)
    if not record:
        return "unverified", st.st_size, None
    fits = record.get("size") == st.st_size and record.get("mtime_ns") == st.st_mtime_ns
    return ("verified" if fits else "changed"), st.st_size, record.get("sha256")


def _recorded(repo: RepoFolders, etag: str) -> dict[str, Any]:
    """The verification record of `etag`, or {} (none, unreadable, or without a sha256)."""
    try:
        record = json.loads(repo.record(etag).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) and isinstance(record.get("sha256"), str) else {}


def _revisions(repo: RepoFolders) -> dict[str, tuple[str, ...]]:
    """commit -> the refs recorded as pointing at it."""
    refs = repo.folder / "refs"
    found: dict[str, list[str]] = {}
    for ref in sorted(p for p in refs.rglob("*") if p.is_file()) if refs.is_dir() else []:
        try:
            found.setdefault(ref.read_text().strip(), []).append(ref.relative_to(refs).as_posix())
        except OSError:
            continue
    return {commit: tuple(names) for commit, names in found.items()}


def scan_cache(root: Path, repo_id: str | None = None) -> CacheScan:
    """What the cache at `root` holds (only `repo_id`'s, if given). Blocking; reads the layout, hashes nothing."""
    repos, files, partials = [], [], []
    for folder in sorted(root.glob("models--*--*")) if root.is_dir() else []:
        rid = _repo_id(folder)
        if repo_id is not None and rid != repo_id:
            continue
        repos.append(rid)
        repo = RepoFolders(root, rid)
        revisions = _revisions(repo)
        snapshots = folder / "snapshots"
        commits = (
            sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True) if snapshots.is_dir() else []
        )
        for commit_dir in commits:
            for link in sorted(p for p in commit_dir.rglob("*") if not p.is_dir() and not p.name.startswith(".")):
                etag = Path(os.path.realpath(link)).name
                state, size, sha256 = _state(repo, etag)
                name, commit = link.relative_to(commit_dir).as_posix(), commit_dir.name
                files.append(CachedFile(rid, name, commit, link, etag, size, state, sha256, revisions.get(commit, ())))
        for partial in sorted((folder / "blobs").glob("*.partial")):
            partials.append(
                PartialDownload(rid, partial, partial.name.removesuffix(".partial"), partial.stat().st_size)
            )
    return CacheScan(root, tuple(repos), tuple(files), tuple(partials))
