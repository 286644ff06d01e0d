"""A repo's .gguf files and their sizes, as the hub lists them (one `model_info` call), stored in the cache so that
planning works offline afterwards."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import anyio

from llmclient._hub.errors import hub_error
from llmclient._hub.layout import RepoFolders, atomic_write
from llmclient.errors import DownloadError, GatedModelError, ModelNotFoundError

__all__ = ["repo_listing"]

logger = logging.getLogger("llmclient")


def _listing_path(root: Path, repo_id: str, revision: str) -> Path:
    return RepoFolders(root, repo_id).folder / "listing" / f"{revision.replace('/', '%2F')}.json"


def _listing_online(repo_id: str, revision: str, endpoint: str | None, token: str | bool | None) -> dict[str, int]:
    from huggingface_hub import HfApi  # the hub's HTTP stack loads only once the hub is asked (see retry.py)

    try:
        info = HfApi(endpoint=endpoint, token=token).model_info(repo_id, revision=revision, files_metadata=True)
    except Exception as error:
        mapped = hub_error(error, repo_id=repo_id, revision=revision, endpoint=endpoint)
        if mapped is None:
            raise
        raise mapped from error
    return {s.rfilename: int(s.size or 0) for s in info.siblings or [] if s.rfilename.endswith(".gguf")}


async def repo_listing(
    root: Path,
    repo_id: str,
    revision: str,
    endpoint: str | None,
    token: str | bool | None,
    offline: bool,
    allow_missing: bool,
) -> dict[str, int] | None:
    """The repo's .gguf files and sizes: asked once, then stored; None when offline and never asked."""
    path = _listing_path(root, repo_id, revision)
    failure: Exception | None = None
    if not offline:
        try:
            files = await anyio.to_thread.run_sync(lambda: _listing_online(repo_id, revision, endpoint, token))
        except (ModelNotFoundError, GatedModelError):
            raise
        except Exception as error:  # unreachable hub: a stored listing may still serve
            logger.warning("could not list %s (%s); using the stored listing if any", repo_id, error)
            failure = error
        else:
            await anyio.to_thread.run_sync(lambda: atomic_write(path, json.dumps(files, indent=1)))
            return files
    try:
        stored: dict[str, int] = json.loads(await anyio.Path(path).read_text())
        return stored
    except (OSError, ValueError):
        if failure is not None and not allow_missing:
            raise DownloadError(
                f"could not list the files of {repo_id} at {endpoint or 'the hub'} ({type(failure).__name__}: "
                f"{failure}), and no listing is stored from an earlier run; check the network and the endpoint"
            ) from failure
        return None
