"""Moving a file's bytes from the hub into a stable partial file, resuming where any earlier try stopped.

The event loop only receives; a worker thread appends each chunk to the partial file and feeds the sha256, so
hashing costs no extra pass and overlaps the network. A new process resumes from the partial file's end with a
`Range` request; a server that answers 200 instead is read past the bytes already held.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import shutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from llmclient._hub.resolve import RemoteFile
from llmclient._hub.retry import RETRY_STATUSES, Backoff, retry_after_of
from llmclient.errors import DownloadError, HubUnavailableError, InsufficientDiskError

if TYPE_CHECKING:  # at run time the hub's HTTP stack is imported where it is used, once the hub is asked
    import httpx2

ProgressFn = Callable[[int, "int | None"], object]

CHUNK = 1 << 20
_DISK_RESERVE = 16 << 20  # leave this much free beyond the file itself


_WRITEBACK_EVERY = 8 << 20


def _writeback_starter() -> Callable[[int, int, int], object] | None:
    """Linux's `sync_file_range(SYNC_FILE_RANGE_WRITE)`: start writing a range to disk without waiting for it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return lambda fd, offset, length: call(fd, offset, length, 2)  # 2: SYNC_FILE_RANGE_WRITE


_start_writeback = _writeback_starter()


class PartialFile:
    """The partial download on disk and the running sha256 of its bytes. Its methods block (worker thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._flushed = 0
        self._fd: int | None = None

    def open(self, expected_size: int | None) -> int:
        """Open for appending, hashing what an earlier try left (dropped if longer than the file); the size held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        size = os.fstat(self._fd).st_size
        if expected_size is not None and size > expected_size:
            size = 0
        self.restart_at(size)
        return size

    def restart_at(self, size: int) -> None:
        """Keep only the first `size` bytes and rebuild the hash of them."""
        assert self._fd is not None
        os.ftruncate(self._fd, size)
        self.sha256 = hashlib.sha256()
        os.lseek(self._fd, 0, os.SEEK_SET)
        left = size
        while left:
            chunk = os.read(self._fd, min(CHUNK * 8, left))
            if not chunk:
                break
            self.sha256.update(chunk)
            left -= len(chunk)
        self.size = self._flushed = size - left
        os.lseek(self._fd, self.size, os.SEEK_SET)

    def append(self, chunk: bytes) -> None:
        assert self._fd is not None
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise InsufficientDiskError(
                    f"the disk holding {self.path.parent} filled up during the download; "
                    "free space (or set LLMCLIENT_CACHE_DIR to a larger disk) and fetch "
                    "again: it resumes from the bytes already saved",
                    needed=len(chunk),
                    free=0,
                ) from error
            raise
        self.sha256.update(chunk)
        self.size += len(chunk)
        # Push written bytes towards the disk as they come, so the fsync before the file is trusted is short.
        if _start_writeback is not None and self.size - self._flushed >= _WRITEBACK_EVERY:
            _start_writeback(self._fd, self._flushed, self.size - self._flushed)
            self._flushed = self.size

    def close(self, *, sync: bool) -> None:
        if self._fd is not None:
            if sync:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None


def check_disk(folder: Path, needed: int) -> None:
    """Raise `InsufficientDiskError` if `folder`'s disk cannot take `needed` more bytes (with a small reserve)."""
    free = shutil.disk_usage(folder).free
    if needed + _DISK_RESERVE > free:
        raise InsufficientDiskError(
            f"the download needs {needed / 2**30:.2f} GiB more but only {free / 2**30:.2f} GiB is free on the disk "
            f"holding {folder}; free some space or set LLMCLIENT_CACHE_DIR to a disk with more room",
            needed=needed,
            free=free,
        )


class HttpClientBuilder:
    """Builds huggingface_hub's async HTTP client on a background thread, starting at once.

    Its TLS setup costs ~25 ms of CPU: off the event loop it blocks nobody, and started before the metadata
    request it is ready by the time the transfer begins.
    """

    def __init__(self) -> None:
        self._client: httpx2.AsyncClient | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._build, name="llmclient-http-client", daemon=True)
        self._thread.start()

    def _build(self) -> None:
        from huggingface_hub import get_async_session  # the hub's HTTP stack loads only once the hub is asked

        try:
            self._client = get_async_session()
        except BaseException as error:  # handed to whoever awaits the client
            self._error = error

    async def client(self) -> httpx2.AsyncClient:
        """The client, once built."""
        await anyio.to_thread.run_sync(self._thread.join)
        if self._error is not None:
            raise self._error
        assert self._client is not None
        return self._client


class _Restart(Exception):
    """The server's answer does not continue the partial file; start over from byte 0."""


async def download(
    remote: RemoteFile,
    partial: PartialFile,
    backoff: Backoff,
    builder: HttpClientBuilder,
    *,
    timeout: float,
    progress: ProgressFn | None,
) -> None:
    """Append the rest of `remote` to `partial`, retrying dropped connections, stalls and 5xx/429 answers.

    Raises `DownloadError` once `backoff` gives up on attempts that bring no byte. On cancellation the bytes
    written so far stay in the partial file, and the next try resumes from them.
    """
    held = await anyio.to_thread.run_sync(partial.open, remote.size)
    try:
        if remote.size is not None:
            await anyio.to_thread.run_sync(check_disk, partial.path.parent, remote.size - held)
        if progress is not None:
            progress(held, remote.size)
        async with await builder.client() as client:
            while True:
                before = partial.size
                try:
                    if await _attempt(client, remote, partial, timeout, progress):
                        return
                    raise HubUnavailableError("the connection closed before the end of the file")
                except HubUnavailableError as error:
                    if partial.size > before:
                        backoff.progressed()
                    try:
                        pause = backoff.next_wait(error)
                    except HubUnavailableError:
                        raise DownloadError(
                            f"downloading {remote.filename} from {remote.url} failed: {error}; gave up after "
                            f"{backoff.retries + 1} tries without progress. {partial.size} bytes are kept: fetch "
                            "again to resume from there."
                        ) from error
                    await anyio.sleep(pause)
                except _Restart:
                    await anyio.to_thread.run_sync(partial.restart_at, 0)
    finally:
        await anyio.to_thread.run_sync(lambda: partial.close(sync=True))


async def _attempt(
    client: httpx2.AsyncClient, remote: RemoteFile, partial: PartialFile, timeout: float, progress: ProgressFn | None
) -> bool:
    """One GET from the partial file's end; True once the file is complete."""
    import httpx2
    from huggingface_hub import hf_raise_for_status
    from huggingface_hub.errors import HfHubHTTPError

    offset = partial.size
    headers = {**remote.headers, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        async with client.stream("GET", remote.url, headers=headers, timeout=httpx2.Timeout(timeout)) as response:
            if response.status_code in RETRY_STATUSES:
                raise HubUnavailableError(
                    f"the hub answered HTTP {response.status_code}", retry_after=retry_after_of(response)
                )
            if response.status_code == 416:
                raise _Restart
            try:
                hf_raise_for_status(response)
            except HfHubHTTPError as error:
                raise DownloadError(f"downloading {remote.filename} failed: {error}") from error
            skip = 0
            if offset and response.status_code == 200:
                skip = offset  # the server ignored Range: read past what the partial file already holds
            elif response.status_code == 206:
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(f"bytes {offset}-"):
                    raise _Restart
            total = remote.size
            if total is None and response.status_code == 200 and "Content-Length" in response.headers:
                total = int(response.headers["Content-Length"])
            await _pump(response, partial, skip, progress, total)
    except httpx2.TransportError as error:
        raise HubUnavailableError(f"{type(error).__name__}: {error or 'connection lost'}") from error
    return total is None or partial.size >= total


async def _pump(
    response: httpx2.Response, partial: PartialFile, skip: int, progress: ProgressFn | None, total: int | None
) -> None:
    """Receive on the event loop while a worker thread writes and hashes the previous chunks."""
    import httpx2

    send, receive = anyio.create_memory_object_stream[bytes](8)
    failure: BaseException | None = None
    lost: httpx2.TransportError | None = None

    async def write() -> None:
        nonlocal failure
        try:
            async with receive:
                async for chunk in receive:
                    await anyio.to_thread.run_sync(partial.append, chunk)
                    if progress is not None:
                        progress(partial.size, total)
        except Exception as error:  # raised after the task group, unwrapped
            failure = error
            group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(write)
        async with send:
            batch: list[bytes] = []  # ~1 MiB per worker-thread hop; flushed even when the connection breaks
            batched = 0
            try:
                async for chunk in response.aiter_raw():
                    if skip:
                        dropped = min(skip, len(chunk))
                        skip -= dropped
                        chunk = chunk[dropped:]
                    batch.append(chunk)
                    batched += len(chunk)
                    if batched >= CHUNK:
                        await send.send(b"".join(batch))
                        batch, batched = [], 0
            except httpx2.TransportError as error:
                lost = error  # the writer still saves every byte that arrived before the break
            if batched:
                await send.send(b"".join(batch))
    if failure is not None:
        raise failure
    if lost is not None:
        raise lost
