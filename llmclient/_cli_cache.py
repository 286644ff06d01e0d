"""`llmclient list`, `verify` and `rm`: the model cache, read through its documented layout (see `cache.py`)."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

import anyio

from llmclient._cli_common import CommandError, cache_for, human_size, library_warnings_reported, parse_model, table
from llmclient._hub.layout import RepoFolders
from llmclient.quants import quant_from_filename

__all__ = ["CacheEntry", "cache_entries", "list_cache", "rm", "verify"]


@dataclass(frozen=True)
class CacheEntry:
    """One file in the cache (or an unfinished download) and whether its bytes are known good."""

    repo_id: str
    filename: str
    """The file's name in its repo; for an unfinished download, `(partial download)`."""
    size: int
    status: str
    """`verified` (hashed and unchanged since), `changed since verified` (hashed again before use), `not
    verified`, `missing` (the link's blob is gone) or `partial` (resumed by the next pull)."""


def _status(repo: RepoFolders, etag: str) -> tuple[str, int]:
    blob = repo.blob(etag)
    try:
        st = blob.stat()
    except OSError:
        return "missing", 0
    try:
        record = json.loads(repo.record(etag).read_text())
    except (OSError, ValueError):
        return "not verified", st.st_size
    fits = isinstance(record, dict) and record.get("size") == st.st_size and record.get("mtime_ns") == st.st_mtime_ns
    return ("verified" if fits else "changed since verified"), st.st_size


def cache_entries(root: Path) -> list[CacheEntry]:
    """Every model file and partial download under `root`, by repo, each blob once; nothing is hashed."""
    entries = []
    for folder in sorted(root.glob("models--*--*")) if root.is_dir() else []:
        repo = RepoFolders(root, folder.name[len("models--") :].replace("--", "/", 1))
        seen = set()
        snapshots = folder / "snapshots"
        commits = (
            sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True) if snapshots.is_dir() else []
        )
        for commit in commits:
            for link in sorted(p for p in commit.rglob("*") if not p.is_dir() and not p.name.startswith(".")):
                name, etag = link.relative_to(commit).as_posix(), Path(os.path.realpath(link)).name
                if (name, etag) not in seen:
                    seen.add((name, etag))
                    status, size = _status(repo, etag)
                    entries.append(CacheEntry(repo.repo_id, name, size, status))
        for partial in sorted((folder / "blobs").glob("*.partial")):
            entries.append(CacheEntry(repo.repo_id, "(partial download)", partial.stat().st_size, "partial"))
    return entries


def list_cache(args: argparse.Namespace) -> int:
    """Print the cached model files with their quant, size and whether they are verified."""
    root = cache_for(args).root
    entries = cache_entries(root)
    if not entries:
        print(f"no models in the cache at {root}")
        return 0
    rows = [
        (f"{e.repo_id}/{e.filename}", _quant(e.filename), human_size(e.size), e.status)
        for e in entries
    ]  # fmt: skip
    print(table(("model", "quant", "size", "status"), rows, right=(2,)))
    total = sum(e.size for e in entries)
    print(f"\n{len(entries)} file(s), {human_size(total)}, in {root}")
    return 0


def _quant(filename: str) -> str:
    quant = quant_from_filename(filename)
    return quant.name if quant is not None else "-"


def _target(name: str, entries: list[CacheEntry]) -> tuple[str, str | None]:
    """(repo id, file or None) for NAME: `owner/name[/file]`, a file name in the cache, or a preset."""
    if "/" not in name:
        matches = sorted({(e.repo_id, e.filename) for e in entries if e.filename.rsplit("/", 1)[-1] == name})
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            where = ", ".join(f"{repo}/{file}" for repo, file in matches)
            raise CommandError(f"{name} is in the cache more than once ({where}); name one as owner/name/file")
    model = parse_model(name)
    if model.kind == "local":
        raise CommandError(f"{name} is a local file, not a cached model; name a preset or a hub repo (owner/name)")
    return model.repo_id, model.file


def verify(args: argparse.Namespace) -> int:
    """Re-hash cached files (all, or NAME's) against their sha256; corrupted ones are removed (exit 1)."""
    cache = cache_for(args)
    repo_id, filename = (None, None) if args.name is None else _target(args.name, cache_entries(cache.root))
    with library_warnings_reported(args):  # each damaged file is reported below
        reports = anyio.run(cache.verify, repo_id, filename)
    if not reports:
        if args.name is None:
            print(f"no models in the cache at {cache.root}")
            return 0
        raise CommandError(f"{args.name} is not in the cache at {cache.root}")
    for report in reports:
        model = report.model
        status = "ok" if report.ok else "CORRUPTED (removed)"
        print(f"{status:<20} {model.repo_id}/{model.filename}  {human_size(model.size)}")
    bad = [r for r in reports if not r.ok]
    if bad:
        raise CommandError(f"{len(bad)} file(s) did not match their sha256 and were removed; pull them again")
    return 0


def rm(args: argparse.Namespace) -> int:
    """Remove a cached repo (a preset's, or owner/name) or one file of it, with its partial downloads."""
    cache = cache_for(args)
    entries = cache_entries(cache.root)
    repo_id, filename = _target(args.name, entries)
    present = RepoFolders(cache.root, repo_id).folder.is_dir() and (
        filename is None or any(e.repo_id == repo_id and e.filename == filename for e in entries)
    )
    if not present:
        raise CommandError(f"{args.name} is not in the cache at {cache.root}")
    freed = anyio.run(cache.remove, repo_id, filename)
    print(f"removed {repo_id}{'/' + filename if filename else ''} (freed {human_size(freed)})")
    return 0
