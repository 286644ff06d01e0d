"""One transfer or cache change per file across processes: a file lock, awaited without blocking the event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

__all__ = ["file_lock"]


@asynccontextmanager
async def file_lock(path: Path) -> AsyncIterator[None]:
    """Hold the cross-process file lock at `path`, polling so the event loop and cancellation stay free."""
    from filelock import FileLock, Timeout  # here: only a download or a cache change takes the lock

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), thread_local=False)
    while True:
        try:
            lock.acquire(timeout=0)
            break
        except Timeout:
            await anyio.sleep(0.1)
    try:
        yield
    finally:
        lock.release()
