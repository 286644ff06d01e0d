"""Naming a file on the hub: a repo id, a path inside the repo and a revision, checked before any request."""

from __future__ import annotations

import re

from llmclient.errors import InvalidModelReferenceError

__all__ = ["COMMIT_RE", "SHA256_RE", "validate_reference"]

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_REPO_PART_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?$")


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
