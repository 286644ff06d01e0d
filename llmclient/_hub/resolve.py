"""Asking the hub about a file: its commit, checksum, size and download location (its errors: `errors.py`).

huggingface_hub does the HTTP here (endpoint, token, headers); this module decides what its answers mean for
llmclient.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from llmclient._hub.errors import hub_error
from llmclient._hub.reference import COMMIT_RE, SHA256_RE
from llmclient.errors import DownloadError

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
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    headers = build_hf_headers(token=token, library_name="llmclient")
    try:
        meta = get_hf_file_metadata(url, token=token, timeout=timeout, headers=headers, endpoint=endpoint)
    except Exception as error:
        mapped = hub_error(
            error,
            repo_id=repo_id,
            revision=revision,
            endpoint=endpoint,
            filename=filename,
            url=url,
            available=lambda: list_files(repo_id, revision, endpoint=endpoint, token=token),
        )
        if mapped is None:
            raise
        raise mapped from error

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
