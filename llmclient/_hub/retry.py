"""The one retry policy that both metadata requests and transfers use: which answers to retry, and how long to wait."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

from llmclient.errors import HubUnavailableError

# the hub's HTTP stack (httpx2, httpcore2, huggingface_hub's API: ~0.25 s) loads only once the hub is asked:
# a local file's cold start never pays it
if TYPE_CHECKING:
    import httpx2

__all__ = ["RETRY_STATUSES", "Backoff", "retry_after_of", "with_retries"]

logger = logging.getLogger("llmclient")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

T = TypeVar("T")


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
