"""Read a hub file's GGUF header with HTTP Range requests: the first bytes only, never the weights.

The first request asks for 512 KiB; while the parser reports the header continuing past what arrived, the next
request asks for the bytes after it, at least half again as many as held, so the total read stays within about
1.5x the header (1.8 MB of SmolLM2's 98 MB, some 8 MB of a 150k-vocabulary model's gigabytes).
"""

from __future__ import annotations

from llmclient._gguf_header import ParsedHeader, TruncatedHeader, parse_header
from llmclient._hub import RETRY_STATUSES, RemoteFile, retry_after_of
from llmclient.errors import DownloadError, HubUnavailableError, ModelFormatError

__all__ = ["FIRST_READ", "MAX_HEADER", "read_remote_header"]

FIRST_READ = 512 << 10
#: A header larger than this is taken for a corrupt file rather than read on.
MAX_HEADER = 256 << 20


def _get_range(remote: RemoteFile, start: int, end: int, timeout: float) -> bytes:
    """Bytes [start, end) of the file; never more than that is read, even from a server that ignores Range."""
    import httpx2  # the hub's HTTP stack loads only once the hub is asked (see _hub)
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
    """The parsed header of `remote` and the bytes read to get it. Blocking.

    Raises `ModelFormatError` if the file is not GGUF, `HubUnavailableError` for a retryable failure.
    """
    data = bytearray()
    want = FIRST_READ
    while True:
        if remote.size is not None:
            want = min(want, remote.size)
        if want > len(data):
            chunk = _get_range(remote, len(data), want, timeout)
            if not chunk:
                raise ModelFormatError(
                    f"{remote.repo_id}/{remote.filename} ends inside its GGUF header: it is truncated"
                )
            data += chunk
        try:
            return parse_header(bytes(data)), len(data)
        except TruncatedHeader as short:
            if len(data) >= MAX_HEADER or (remote.size is not None and len(data) >= remote.size):
                raise ModelFormatError(
                    f"{remote.repo_id}/{remote.filename}: no complete GGUF header in its first {len(data)} bytes; "
                    "the file is corrupt"
                ) from None
            want = min(max(short.need, len(data) + len(data) // 2), MAX_HEADER)
        except ValueError as error:
            raise ModelFormatError(f"{remote.repo_id}/{remote.filename}: {error}") from None
