"""`llmclient list`, `verify` and `rm`: the model cache, as `ModelCache.scan` reads it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import anyio

from llmclient.cache import CacheScan
from llmclient.cli._common import CommandError, cache_for, human_size, library_warnings_reported, parse_model, table
from llmclient.quants import quant_from_filename

__all__ = ["CacheEntry", "cache_entries", "list_cache", "rm", "verify"]


#: `CachedFile.state` in the words of `llmclient list`.
_STATUS = {
    "verified": "verified",
    "changed": "changed since verified",
    "unverified": "not verified",
    "missing": "missing",
}


@dataclass(frozen=True)
class CacheEntry:
    """One line of `llmclient list`: a file in the cache (or an unfinished download) and whether its bytes are known
    good."""

    repo_id: str
    filename: str
    """The file's name in its repo; for an unfinished download, `(partial download)`."""
    size: int
    status: str
    """`verified` (hashed and unchanged since), `changed since verified` (hashed again before use), `not
    verified`, `missing` (the link's blob is gone) or `partial` (resumed by the next pull)."""


def cache_entries(scan: CacheScan) -> list[CacheEntry]:
    """Every model file and partial download of `scan`, by repo, each blob once (at its newest commit)."""
    entries, seen = [], set()
    for repo_id in scan.repos:
        for file in (f for f in scan.files if f.repo_id == repo_id):
            if (repo_id, file.filename, file.etag) not in seen:
                seen.add((repo_id, file.filename, file.etag))
                entries.append(CacheEntry(repo_id, file.filename, file.size, _STATUS[file.state]))
        for partial in (p for p in scan.partials if p.repo_id == repo_id):
            entries.append(CacheEntry(repo_id, "(partial download)", partial.size, "partial"))
    return entries


def list_cache(args: argparse.Namespace) -> int:
    """Print the cached model files with their quant, size and whether they are verified."""
    cache = cache_for(args)
    root = cache.root
    entries = cache_entries(anyio.run(cache.scan))
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


def _target(name: str, scan: CacheScan) -> tuple[str, str | None]:
    """(repo id, file or None) for NAME: `owner/name[/file]`, a file name in the cache, or a preset."""
    if "/" not in name:
        matches = sorted({(f.repo_id, f.filename) for f in scan.files if f.filename.rsplit("/", 1)[-1] == name})
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
    repo_id, filename = (None, None) if args.name is None else _target(args.name, anyio.run(cache.scan))
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
    scan = anyio.run(cache.scan)
    repo_id, filename = _target(args.name, scan)
    present = repo_id in scan.repos and (
        filename is None or any(f.repo_id == repo_id and f.filename == filename for f in scan.files)
    )
    if not present:
        raise CommandError(f"{args.name} is not in the cache at {cache.root}")
    freed = anyio.run(cache.remove, repo_id, filename)
    print(f"removed {repo_id}{'/' + filename if filename else ''} (freed {human_size(freed)})")
    return 0
