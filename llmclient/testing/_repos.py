"""What LocalHub knows about the repos in its folder: files, sizes, checksums, commits, and their JSON shapes."""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# Files the real hub keeps in Git LFS by default (its .gitattributes); anything this large is LFS too.
LFS_SUFFIXES = (".gguf", ".bin", ".safetensors", ".pt", ".pth", ".onnx", ".h5", ".msgpack", ".zip", ".tar", ".gz")
LFS_MIN_SIZE = 10 * 1024 * 1024


@dataclass(frozen=True)
class RepoFile:
    """One file of a repo as the hub describes it."""

    path: str
    local: Path
    size: int
    git_oid: str  # sha1 of the git blob (for LFS files: of the pointer file)
    sha256: str | None  # set for LFS files only

    @property
    def etag(self) -> str:
        """What the hub sends as the file's ETag: the sha256 for LFS files, the git blob sha1 otherwise."""
        return self.sha256 or self.git_oid

    def to_json(self, *, expand: bool, commit: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": self.git_oid, "size": self.size, "path": self.path}
        if self.sha256 is not None:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(_lfs_pointer(self))}
        if expand:
            entry["lastCommit"] = {"id": commit, "title": "LocalHub snapshot", "date": _EPOCH}
            entry["securityFileStatus"] = {"status": "safe"}
        return entry


_EPOCH = "2024-01-01T00:00:00.000Z"


def _lfs_pointer(file: RepoFile) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{file.sha256}\nsize {file.size}\n".encode()


def _git_blob_sha1(data_len: int, chunks: list[bytes]) -> str:
    digest = hashlib.sha1(f"blob {data_len}\0".encode(), usedforsecurity=False)
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


class RepoIndex:
    """Reads `<root>/<owner>/<name>/<file>` and answers in the hub's terms; checksums are cached per file state."""

    def __init__(self, root: Path, *, hash_listings: bool = True) -> None:
        self.root = root
        self.hash_listings = hash_listings
        self._lock = threading.Lock()
        self._files: dict[tuple[str, int, int], RepoFile] = {}

    def exists(self, repo_id: str) -> bool:
        owner, _, name = repo_id.partition("/")
        return bool(owner and name) and "." not in (owner[:1], name[:1]) and (self.root / owner / name).is_dir()

    def files(self, repo_id: str, *, listing: bool = False) -> list[RepoFile]:
        """Every file of the repo, sorted by path; hidden files and folders are left out.

        For a `listing` with `hash_listings` off, files not hashed yet come without checksums."""
        base = self.root / repo_id
        found = []
        for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if not name.startswith("."):
                    local = Path(dirpath) / name
                    path = local.relative_to(base).as_posix()
                    lazy = listing and not self.hash_listings
                    found.append(self.peek(path, local) if lazy else self.describe(path, local))
        return sorted(found, key=lambda f: f.path)

    def file(self, repo_id: str, path: str) -> RepoFile | None:
        """The file at `path` in the repo, or None; paths that leave the repo or name hidden files are None too.

        Files may be symlinks (a mirror can link to files kept elsewhere)."""
        parts = Path(path).parts
        if not parts or Path(path).is_absolute() or any(p in ("..", "") or p.startswith(".") for p in parts):
            return None
        local = self.root / repo_id / path
        return self.describe(path, local) if local.is_file() else None

    def peek(self, path: str, local: Path) -> RepoFile:
        """The file as far as known without hashing it: its description if hashed already, else size only."""
        st = local.stat()
        with self._lock:
            cached = self._files.get((str(local), st.st_size, st.st_mtime_ns))
        return cached or RepoFile(path, local, st.st_size, "", None)

    def describe(self, path: str, local: Path) -> RepoFile:
        st = local.stat()
        key = (str(local), st.st_size, st.st_mtime_ns)
        with self._lock:
            cached = self._files.get(key)
        if cached is not None:
            return cached
        lfs = local.suffix.lower() in LFS_SUFFIXES or st.st_size >= LFS_MIN_SIZE
        if lfs:
            sha = hashlib.sha256()
            with local.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    sha.update(chunk)
            stub = RepoFile(path, local, st.st_size, "", sha.hexdigest())
            pointer = _lfs_pointer(stub)
            info = RepoFile(path, local, st.st_size, _git_blob_sha1(len(pointer), [pointer]), stub.sha256)
        else:
            data = local.read_bytes()
            info = RepoFile(path, local, st.st_size, _git_blob_sha1(len(data), [data]), None)
        with self._lock:
            self._files[key] = info
        return info

    def commit(self, repo_id: str) -> str:
        """A commit id that changes whenever a file of the repo is added, removed or changed."""
        digest = hashlib.sha1(repo_id.encode(), usedforsecurity=False)
        base = self.root / repo_id
        for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(n for n in filenames if not n.startswith(".")):
                st = (Path(dirpath) / name).stat()
                rel = (Path(dirpath) / name).relative_to(base).as_posix()
                digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def model_info(self, repo_id: str, commit: str, *, blobs: bool, gated: bool) -> dict[str, Any]:
        """The JSON of `/api/models/{repo_id}`."""
        files = self.files(repo_id, listing=True)
        siblings: list[dict[str, Any]] = []
        for f in files:
            sibling: dict[str, Any] = {"rfilename": f.path}
            if blobs:
                sibling.update(size=f.size, **({"blobId": f.git_oid} if f.git_oid else {}))
                if f.sha256 is not None:
                    sibling["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": len(_lfs_pointer(f))}
            siblings.append(sibling)
        modified = max((f.local.stat().st_mtime for f in files), default=0.0)
        return {
            "_id": hashlib.sha1(repo_id.encode(), usedforsecurity=False).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit,
            "lastModified": datetime.fromtimestamp(modified, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "private": False,
            "gated": "manual" if gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": ["gguf"] if any(f.path.endswith(".gguf") for f in files) else [],
            "library_name": "gguf" if any(f.path.endswith(".gguf") for f in files) else None,
            "siblings": siblings,
            "usedStorage": sum(f.size for f in files),
            "createdAt": _EPOCH,
        }

    def tree(self, repo_id: str, commit: str, prefix: str, *, recursive: bool, expand: bool) -> list[dict[str, Any]]:
        """The JSON of `/api/models/{repo_id}/tree/{revision}/{prefix}`: files and folders under `prefix`."""
        prefix = prefix.strip("/")
        entries: dict[str, dict[str, Any]] = {}
        for f in self.files(repo_id):
            if prefix and not f.path.startswith(prefix + "/"):
                continue
            rest = f.path[len(prefix) + 1 :] if prefix else f.path
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                if depth > 1 and not recursive:
                    break
                folder = "/".join(filter(None, [prefix, *parts[:depth]]))
                entries.setdefault(
                    folder,
                    {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0, "path": folder},
                )
            if recursive or len(parts) == 1:
                entries[f.path] = f.to_json(expand=expand, commit=commit)
        return [entries[k] for k in sorted(entries)]
