"""What huggingface_hub's errors mean for llmclient: the one place they become ours, with one wording of the advice.

Both a file's resolution (`resolve`) and a repo's listing (`listing`) ask the hub about the same repos; a gated,
missing or misspelt repo reads the same whichever asked.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from huggingface_hub import constants as hf_constants

from llmclient._hub.retry import RETRY_STATUSES, retry_after_of
from llmclient.errors import (
    DownloadError,
    GatedModelError,
    HubUnavailableError,
    LlmClientError,
    ModelNotFoundError,
)

__all__ = ["hub_error", "missing_file_message"]


def hub_error(
    error: BaseException,
    *,
    repo_id: str,
    revision: str,
    endpoint: str | None,
    filename: str | None = None,
    url: str | None = None,
    available: Callable[[], list[str]] | None = None,
) -> LlmClientError | None:
    """The llmclient error for `error`, raised by huggingface_hub while asking about `repo_id` (or `filename` in it)
    at `revision`; None when `error` is not one of the hub's.

    `available`, called only for a file the repo lacks, lists the repo's files for the message (one more request).
    Gated and missing repos, revisions and files say what to do; answers worth retrying (5xx, 429, an unreachable
    hub) are `HubUnavailableError`, other HTTP errors `DownloadError`.
    """
    # the hub's HTTP stack loads only once the hub is asked (see retry.py): an error from it means it is loaded
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    hub = endpoint or hf_constants.ENDPOINT
    if isinstance(error, GatedRepoError):  # a subclass of RepositoryNotFoundError: first
        return GatedModelError(
            f"{repo_id} is gated: accept its license at {hub}/{repo_id} while logged in, then give a token that "
            "can read it (set HF_TOKEN=hf_..., run `hf auth login`, or pass token=... / .token(...)).",
            repo_id=repo_id,
        )
    if isinstance(error, RepositoryNotFoundError):
        return ModelNotFoundError(
            f"repo {repo_id} was not found on {hub}. Check the spelling (owner/name); if it is private, set "
            "HF_TOKEN or pass token=... / .token(...) with access to it.",
            repo_id=repo_id,
            filename=filename,
        )
    if isinstance(error, RevisionNotFoundError):
        return ModelNotFoundError(
            f"revision {revision!r} does not exist in {repo_id}; use 'main', a tag, or a commit hash listed at "
            f"{hub}/{repo_id}/commits/main.",
            repo_id=repo_id,
            filename=filename,
        )
    if isinstance(error, RemoteEntryNotFoundError) and filename is not None:
        files = available() if available is not None else []
        return ModelNotFoundError(
            missing_file_message(repo_id, filename, revision, files),
            repo_id=repo_id,
            filename=filename,
            available=files,
        )
    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if error.response is not None else 0
        where = url or (str(error.response.url) if error.response is not None else hub)
        reason = f"the hub answered HTTP {status} for {where}"
        if status in RETRY_STATUSES:
            wait = retry_after_of(error.response) if error.response is not None else None
            return HubUnavailableError(reason, retry_after=wait)
        return DownloadError(f"{reason}: {error}. Check the endpoint ({hub}) and your token.")
    if isinstance(error, httpx2.TransportError | OfflineModeIsEnabled):
        return HubUnavailableError(f"could not reach {hub} ({type(error).__name__}: {error})")
    return None


def missing_file_message(repo_id: str, filename: str, revision: str, available: list[str]) -> str:
    """`filename` is not in the repo: the closest names it has, and (some of) its files."""
    message = f"{filename!r} is not in {repo_id} at revision {revision!r}."
    close = difflib.get_close_matches(filename, available, n=3, cutoff=0.5)
    if close:
        message += " Did you mean " + " or ".join(repr(c) for c in close) + "?"
    if available:
        shown = [f for f in available if f.endswith(".gguf")] or available
        more = f" (and {len(shown) - 20} more)" if len(shown) > 20 else ""
        message += " The repo has: " + ", ".join(shown[:20]) + more + "."
    return message
