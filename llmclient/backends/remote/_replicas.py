"""One server of a remote engine: how busy it is, whether it answers, and what it has served.

Health is passive (from the requests themselves) with an active check on return: a refused connection, or 3
failures in a row, takes a replica out for a cool-down (5 s, doubling to 60 s while it keeps failing); a busy
answer (429/503) rests it for its `Retry-After`. When a cool-down ends, the next request asks `GET /health` first
and the replica is back on a 200 (LiteLLM's router works alike: 3 allowed fails, 5 s cool-down).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Replica", "ReplicaStats"]

FAILS_BEFORE_COOLDOWN = 3
COOLDOWN_FIRST = 5.0
COOLDOWN_MAX = 60.0
BUSY_REST = 1.0
"""Seconds a replica that answered 429/503 without `Retry-After` rests."""
_EWMA = 0.2


@dataclass(frozen=True)
class ReplicaStats:
    """A replica as the engine sees it now (`RemoteEngine.stats()`)."""

    url: str
    state: str
    """`up`, `resting` (answered busy), `down` (cooling down after failures) or `checking` (cool-down over, its
    `/health` is asked before the next request)."""
    in_flight: int
    """Requests it is answering now."""
    capacity: int | None
    """The most it is given at once: its `/props` `total_slots`, the configured cap, or None (no limit)."""
    peak_in_flight: int
    started: int
    """Requests sent to it (each retry counts)."""
    completed: int
    failed: int
    consecutive_failures: int
    first_token_ewma: float | None
    """Seconds from sending to the first token, smoothed (None before any)."""


class Replica:
    """The engine's bookkeeping for one base URL; all of it on the event loop, no locks."""

    def __init__(self, url: str, capacity: int | None) -> None:
        self.url = url
        self.capacity = capacity
        self.in_flight = 0
        self.peak_in_flight = 0
        self.started = self.completed = self.failed = 0
        self.consecutive_failures = 0
        self.first_token_ewma: float | None = None
        self.resting_until = 0.0
        """Monotonic time before which it gets no request (a cool-down or a busy answer's rest)."""
        self.check_health = False
        """Its cool-down ended: ask `/health` before the next request."""
        self._cooldown = 0.0

    def has_room(self) -> bool:
        """Whether one more request stays within its capacity."""
        return self.capacity is None or self.in_flight < self.capacity

    def usable(self, now: float) -> bool:
        """Not resting or cooling down at `now`."""
        return now >= self.resting_until

    def take(self) -> None:
        """A request was given to it (it may yet be found unhealthy before anything is sent)."""
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def sent(self) -> None:
        """A request was sent to it."""
        self.started += 1

    def release(self) -> None:
        """A request given to it ended (however)."""
        self.in_flight -= 1

    def answered(self, first_token: float | None) -> None:
        """It streamed an answer: healthy again, its failure count reset."""
        self.completed += 1
        self.consecutive_failures = 0
        self._cooldown = 0.0
        if first_token is not None:
            ewma = self.first_token_ewma
            self.first_token_ewma = first_token if ewma is None else ewma + _EWMA * (first_token - ewma)

    def failed_request(self, now: float, *, refused: bool = False) -> None:
        """A request failed on its side (a dropped connection, a 5xx, a broken stream); a refused connection, or
        the third failure in a row, starts a cool-down."""
        self.failed += 1
        self.consecutive_failures += 1
        if refused or self.consecutive_failures >= FAILS_BEFORE_COOLDOWN:
            self.cool_down(now)

    def suspect(self) -> None:
        """It dropped a connection in the middle of an answer: ask its `/health` before the next request (a
        crashed server then costs no request, a flaky link one check)."""
        self.check_health = True

    def cool_down(self, now: float) -> None:
        """Out for a while: 5 s, doubling while it keeps failing, at most 60 s; then `/health` decides."""
        self._cooldown = min(COOLDOWN_MAX, self._cooldown * 2 or COOLDOWN_FIRST)
        self.resting_until = now + self._cooldown
        self.check_health = True

    def busy(self, now: float, retry_after: float | None) -> None:
        """It answered 429 or 503: no request until its `Retry-After` (or a second) has passed."""
        self.resting_until = max(self.resting_until, now + (retry_after if retry_after is not None else BUSY_REST))

    def healthy(self) -> None:
        """Its `/health` answered 200 after a cool-down."""
        self.check_health = False

    def stats(self, now: float) -> ReplicaStats:
        """Its state now."""
        if not self.usable(now):
            state = "down" if self.check_health else "resting"
        else:
            state = "checking" if self.check_health else "up"
        return ReplicaStats(
            self.url,
            state,
            self.in_flight,
            self.capacity,
            self.peak_in_flight,
            self.started,
            self.completed,
            self.failed,
            self.consecutive_failures,
            self.first_token_ewma,
        )
