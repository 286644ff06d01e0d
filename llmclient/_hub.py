"""Talking to the hub about a file: validate its name, resolve its metadata, map the hub's errors to ours.

huggingface_hub does the HTTP here (endpoint, token, headers, error mapping); this module decides what its
answers mean for llmclient, and owns the one retry policy that both metadata requests and transfers use.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import anyio
from huggingface_hub import constants as hf_constants

from llmclient.errors import (
    DownloadError,
    GatedModelError,
    HubUnavailableError,
    InvalidModelReferenceError,
    ModelNotFoundError,
)

# the hub's HTTP stack (httpx2, httpcore2, huggingface_hub's API: ~0.25 s) loads only once the hub is asked:
# a local file's cold start never pays it
if TYPE_CHECKING:
    import httpx2

logger = logging.getLogger("llmclient")

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_REPO_PART_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?$")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

T = TypeVar("T")


def validate_reference(repo_id: str, filename: str, revision: str) -> None:
    """Reject a repo id that is not `owner/name`, a file name that could leave the repo, or a bad revision."""
    if (
        not isinstance(repo_id, str)
        or repo_id.count("/") != 1
        or not all(_REPO_PART_RE.match(part) for part in repo_id.split("/"))
        or "--" in repo_id
        or ".." in repo_id
    ):
        raise InvalidModelReferenceError(
            f"repo id {repo_id!r} is not of the form 'owner/name' (letters, digits, '-', '_', '.'), "
            "e.g. 'bartowski/Mistral-7B-Instruct-v0.3-GGUF'"
        )
    parts = filename.split("/") if isinstance(filename, str) else []
    if (
        not parts
        or filename.startswith("/")
        or "\\" in filename
        or re.match(r"^[A-Za-z]:", filename)
        or any(p in ("", ".", "..") for p in parts)
        or any(ord(c) < 32 for c in filename)
    ):
        raise InvalidModelReferenceError(
            f"file name {filename!r} must be a relative path inside the repo, without '..', a leading '/' or "
            "backslashes, e.g. 'Mistral-7B-Instruct-v0.3-Q4_K_M.gguf'"
        )
    if (
        not isinstance(revision, str)
        or not revision
        or revision.startswith("/")
        or ".." in revision
        or "\\" in revision
        or any(ord(c) <= 32 for c in revision)
    ):
        raise InvalidModelReferenceError(
            f"revision {revision!r} is not a branch, tag or commit hash; use 'main' or a 40-character commit"
        )


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


def retry_after_of(response: httpx2.Response) -> float | None:
    """The seconds a `Retry-After` header asks to wait (only the delta-seconds form), or None."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


class Backoff:
    """The one retry policy: attempts in a row that brought nothing, and how long to wait before the next.

    The wait doubles from `wait` (capped at 30 s) unless the hub said how long with `Retry-After`; any progress
    starts the count afresh.
    """

    def __init__(self, retries: int, wait: float) -> None:
        self.retries = retries
        self.wait = wait
        self._failures = 0
        self._delay = wait

    def progressed(self) -> None:
        """Something was received: the next failure is the first of a new run."""
        self._failures, self._delay = 0, self.wait

    def next_wait(self, error: HubUnavailableError) -> float:
        """Seconds to wait before retrying after `error`; re-raises it once the retries are spent."""
        self._failures += 1
        if self._failures > self.retries:
            raise error
        pause = error.retry_after if error.retry_after is not None else self._delay
        self._delay = min(self._delay * 2, 30.0)
        return pause


async def with_retries(attempt: Callable[[], T], backoff: Backoff, *, what: str) -> T:
    """Run the blocking `attempt` in a worker thread, retrying `HubUnavailableError` as `backoff` allows."""
    while True:
        try:
            return await anyio.to_thread.run_sync(attempt)
        except HubUnavailableError as error:
            try:
                pause = backoff.next_wait(error)
            except HubUnavailableError:
                raise HubUnavailableError(
                    f"{error}; gave up on {what} after {backoff.retries + 1} tries", retry_after=error.retry_after
                ) from error
            logger.warning("%s failed (%s); retrying in %.1f s", what, error, pause)
            await anyio.sleep(pause)


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
