"""Asking the hub about a file: its commit, checksum, size and download location, and the hub's errors as ours.

huggingface_hub does the HTTP here (endpoint, token, headers); this module decides what its answers mean for
llmclient.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from huggingface_hub import constants as hf_constants

from llmclient._hub.reference import COMMIT_RE, SHA256_RE
from llmclient._hub.retry import RETRY_STATUSES, retry_after_of
from llmclient.errors import (
    DownloadError,
    GatedModelError,
    HubUnavailableError,
    ModelNotFoundError,
)

__all__ = ["RemoteFile", "list_files", "resolve"]

logger = logging.getLogger("llmclient")


@dataclass(frozen=True)
class RemoteFile:
    """What the hub says about one file at one revision, and where to get its bytes."""

    repo_id: str
    filename: str
    revision: str
    commit: str
    etag: str
    """The sha256 (LFS files) or git blob sha1 (small files) the bytes must hash to."""
    size: int | None
    url: str
    headers: dict[str, str]


def resolve(
    repo_id: str, filename: str, revision: str, *, endpoint: str | None, token: str | bool | None, timeout: float
) -> RemoteFile:
    """Ask the hub (one HEAD request) for the file's commit, checksum, size and download location. Blocking."""
    import httpx2
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    headers = build_hf_headers(token=token, library_name="llmclient")
    hub = endpoint or hf_constants.ENDPOINT
    try:
        meta = get_hf_file_metadata(url, token=token, timeout=timeout, headers=headers, endpoint=endpoint)
    except GatedRepoError as error:
        raise GatedModelError(
            f"{repo_id} is gated: accept its license at {hub}/{repo_id} while logged in, then give a token that "
            "can read it (set HF_TOKEN=hf_..., run `hf auth login`, or pass token=...).",
            repo_id=repo_id,
        ) from error
    except RepositoryNotFoundError as error:
        raise ModelNotFoundError(
            f"repo {repo_id} was not found on {hub}. Check the spelling (owner/name); if it is private, set "
            "HF_TOKEN or pass token=... with access to it.",
            repo_id=repo_id,
            filename=filename,
        ) from error
    except RevisionNotFoundError as error:
        raise ModelNotFoundError(
            f"revision {revision!r} does not exist in {repo_id}; use 'main', a tag, or a commit hash listed at "
            f"{hub}/{repo_id}/commits/main.",
            repo_id=repo_id,
            filename=filename,
        ) from error
    except RemoteEntryNotFoundError as error:
        available = list_files(repo_id, revision, endpoint=endpoint, token=token)
        raise ModelNotFoundError(
            _missing_file_message(repo_id, filename, revision, available),
            repo_id=repo_id,
            filename=filename,
            available=available,
        ) from error
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else 0
        reason = f"the hub answered HTTP {status} for {url}"
        if status in RETRY_STATUSES:
            wait = retry_after_of(error.response) if error.response is not None else None
            raise HubUnavailableError(reason, retry_after=wait) from error
        raise DownloadError(f"{reason}: {error}. Check the endpoint ({hub}) and your token.") from error
    except (httpx2.TransportError, OfflineModeIsEnabled) as error:
        raise HubUnavailableError(f"could not reach {hub} ({type(error).__name__}: {error})") from error

    if meta.commit_hash is None or meta.etag is None:
        raise DownloadError(
            f"{url} answered without X-Repo-Commit/ETag headers, so it is not a Hugging Face Hub "
            "endpoint; check HF_ENDPOINT or the endpoint= argument"
        )
    etag = meta.etag.lower()
    if not (SHA256_RE.match(etag) or COMMIT_RE.match(etag)):
        raise DownloadError(
            f"{url} sent ETag {meta.etag!r}, which is neither a sha256 nor a git sha1, so the file "
            "could not be verified; llmclient only caches files it can verify"
        )
    location = meta.location or url
    if urlsplit(location)[:2] != urlsplit(url)[:2]:
        headers.pop("authorization", None)  # never send the token to a CDN
    return RemoteFile(repo_id, filename, revision, meta.commit_hash, etag, meta.size, location, headers)


def list_files(repo_id: str, revision: str, *, endpoint: str | None, token: str | bool | None) -> list[str]:
    """The repo's file names at `revision`, or an empty list if the hub cannot say. Blocking."""
    try:
        from huggingface_hub import HfApi

        return sorted(HfApi(endpoint=endpoint, token=token).list_repo_files(repo_id, revision=revision))
    except Exception as error:  # only used to enrich an error message
        logger.debug("could not list files of %s: %s", repo_id, error)
        return []


def _missing_file_message(repo_id: str, filename: str, revision: str, available: list[str]) -> str:
    message = f"{filename!r} is not in {repo_id} at revision {revision!r}."
    close = difflib.get_close_matches(filename, available, n=3, cutoff=0.5)
    if close:
        message += " Did you mean " + " or ".join(repr(c) for c in close) + "?"
    if available:
        shown = [f for f in available if f.endswith(".gguf")] or available
        more = f" (and {len(shown) - 20} more)" if len(shown) > 20 else ""
        message += " The repo has: " + ", ".join(shown[:20]) + more + "."
    return message
