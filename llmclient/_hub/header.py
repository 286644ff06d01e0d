"""Read a hub file's GGUF header with HTTP Range requests (how much to ask for: `llmclient._gguf.ranged`)."""

from __future__ import annotations

from llmclient._gguf.parse import ParsedHeader
from llmclient._gguf.ranged import read_header
from llmclient._hub.resolve import RemoteFile
from llmclient._hub.retry import RETRY_STATUSES, retry_after_of
from llmclient.errors import DownloadError, HubUnavailableError

__all__ = ["read_remote_header"]


def _get_range(remote: RemoteFile, start: int, end: int, timeout: float) -> bytes:
    """Bytes [start, end) of the file; never more than that is read, even from a server that ignores Range."""
    import httpx2  # the hub's HTTP stack loads only once the hub is asked (see retry.py)
    from huggingface_hub import get_session, hf_raise_for_status
    from huggingface_hub.errors import HfHubHTTPError

    headers = {**remote.headers, "Range": f"bytes={start}-{end - 1}"}
    try:
        with get_session().stream(
            "GET", remote.url, headers=headers, follow_redirects=True, timeout=timeout
        ) as response:
            if response.status_code >= 400:
                response.read()
            hf_raise_for_status(response)
            skip = start if response.status_code == 200 else 0  # Range ignored: the body starts at byte 0
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) >= skip + (end - start):
                    break
        return bytes(body[skip : skip + (end - start)])
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else 0
        if status in RETRY_STATUSES:
            wait = retry_after_of(error.response) if error.response is not None else None
            raise HubUnavailableError(f"the hub answered HTTP {status} for {remote.url}", retry_after=wait) from error
        if status == 416:  # asked past the end: the file is shorter than its header claims
            return b""
        raise DownloadError(
            f"reading the header of {remote.filename} failed: HTTP {status} for {remote.url}"
        ) from error
    except httpx2.TransportError as error:
        raise HubUnavailableError(f"could not read {remote.url} ({type(error).__name__}: {error})") from error


def read_remote_header(remote: RemoteFile, timeout: float) -> tuple[ParsedHeader, int]:
    """The parsed header of `remote` and the bytes read to get it, in growing ranges. Blocking.

    Raises `ModelFormatError` if the file is not GGUF, `HubUnavailableError` for a retryable failure.
    """
    return read_header(
        lambda start, end: _get_range(remote, start, end, timeout), remote.size, f"{remote.repo_id}/{remote.filename}"
    )
