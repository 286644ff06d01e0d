"""`ModelCache.gguf_info`: a hub file's GGUF metadata from its header, read once and kept beside the cache."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import anyio

from llmclient._gguf.info import GgufInfo, info_from_header, shard_names
from llmclient._gguf.local import read_gguf_info
from llmclient._hub.header import read_remote_header
from llmclient._hub.layout import RepoFolders, atomic_write
from llmclient._hub.reference import validate_reference
from llmclient._hub.resolve import RemoteFile, resolve
from llmclient._hub.retry import Backoff, with_retries
from llmclient.constants import hub_offline
from llmclient.errors import HubUnavailableError, ModelFormatError, OfflineError

__all__ = ["gguf_info"]

logger = logging.getLogger("llmclient")


def _stored(repo: RepoFolders, revision: str, filename: str) -> GgufInfo | None:
    """The metadata recorded for `filename` at `revision` (a ref or commit named when it was read), if any."""
    try:
        pointer = json.loads(repo.gguf_pointer(revision, filename).read_text())
        return GgufInfo.from_json(repo.gguf_info(str(pointer["etag"])).read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load(repo: RepoFolders, etag: str) -> GgufInfo | None:
    try:
        return GgufInfo.from_json(repo.gguf_info(etag).read_text())
    except (OSError, ValueError):
        return None


def _store(repo: RepoFolders, remote: RemoteFile, info: GgufInfo) -> None:
    atomic_write(repo.gguf_info(remote.etag), info.to_json())
    pointer = json.dumps({"etag": remote.etag, "commit": remote.commit})
    atomic_write(repo.gguf_pointer(remote.revision, remote.filename), pointer)
    if remote.commit != remote.revision:
        atomic_write(repo.gguf_pointer(remote.commit, remote.filename), pointer)


def _local_copy(repo: RepoFolders, remote: RemoteFile) -> Path | None:
    blob = repo.blob(remote.etag)
    return blob if blob.exists() and repo.record(remote.etag).exists() else None


async def gguf_info(
    root: Path,
    repo_id: str,
    filename: str,
    revision: str,
    *,
    endpoint: str | None,
    token: str | bool | None,
    offline: bool | None,
    timeout: float,
    backoff: Backoff,
) -> GgufInfo:
    """The metadata of `filename`'s header (every shard's), from the cache at `root` or read from the hub once."""
    validate_reference(repo_id, filename, revision)
    repo = RepoFolders(root, repo_id)
    names = shard_names(filename)
    offline = hub_offline() if offline is None else offline
    if offline:
        stored = await anyio.to_thread.run_sync(_stored, repo, revision, names[0])
        if stored is None:
            raise OfflineError(
                f"the metadata of {repo_id}/{filename} (revision {revision!r}) was never read into the cache at "
                f"{root}, and offline mode is on. Plan it once while online, or use a local file."
            )
        return stored

    async def resolved(name: str) -> RemoteFile:
        return await with_retries(
            lambda: resolve(repo_id, name, revision, endpoint=endpoint, token=token, timeout=timeout),
            backoff,
            what=f"resolving {repo_id}/{name}",
        )

    try:
        first = await resolved(names[0])
    except HubUnavailableError as error:
        stored = await anyio.to_thread.run_sync(_stored, repo, revision, names[0])
        if stored is None:
            raise
        logger.warning("%s; using the stored metadata of %s/%s", error, repo_id, names[0])
        return stored
    known = await anyio.to_thread.run_sync(_load, repo, first.etag)
    if known is not None:
        await anyio.to_thread.run_sync(_store, repo, first, known)
        return known

    remotes = [first] + [await resolved(name) for name in names[1:]]
    headers, total = [], 0
    for remote in remotes:
        local = await anyio.to_thread.run_sync(_local_copy, repo, remote)
        if local is not None and len(remotes) == 1:
            info = await anyio.to_thread.run_sync(_read_local, local, remote)
            await anyio.to_thread.run_sync(_store, repo, first, info)
            return info
        header, _ = await with_retries(
            lambda remote=remote: read_remote_header(remote, timeout),  # type: ignore[misc]
            backoff,
            what=f"reading the header of {repo_id}/{remote.filename}",
        )
        headers.append(header)
        total += remote.size or 0
    try:
        info = info_from_header(headers, total)
    except ValueError as error:
        raise ModelFormatError(f"{repo_id}/{filename}: {error}") from None
    await anyio.to_thread.run_sync(_store, repo, first, info)
    return info


def _read_local(path: Path, remote: RemoteFile) -> GgufInfo:
    try:
        return read_gguf_info(path)
    except ValueError as error:
        raise ModelFormatError(f"{remote.repo_id}/{remote.filename}: {error}") from None
