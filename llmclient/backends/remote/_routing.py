"""Which replica answers a request, and the one local queue in front of them all.

- `least_busy` (the default): the replica with the fewest requests in flight.
- `affinity`: rendezvous hashing of the conversation's head (its messages up to the first user message, which
  every later turn repeats), or of a key given with `session_key(...)`, so every turn of a chat reaches the
  replica that holds its prefix in its KV cache; least-busy instead when that replica is full or more than
  `AFFINITY_SLACK` requests busier than the least busy one.
- `none`: one URL, a gateway (vLLM's router, SGLang's, llm-d) that routes by itself.

Requests that find every replica at its capacity wait here, first come first served; slot choice within a replica
is the server's.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import anyio

from llmclient.backends import GenerateRequest
from llmclient.backends.remote._replicas import Replica
from llmclient.errors import ClientClosedError

__all__ = ["AFFINITY_SLACK", "Dispatcher", "Routing", "affinity_key", "rendezvous", "session_key"]

Routing = Literal["least_busy", "affinity", "none"]
ROUTINGS: tuple[Routing, ...] = ("least_busy", "affinity", "none")
AFFINITY_SLACK = 4
"""How many more requests in flight than the least busy replica the affine one may have and still be chosen."""
_PROMPT_HEAD = 512

_session: contextvars.ContextVar[str | None] = contextvars.ContextVar("llmclient_session_key", default=None)


@contextlib.contextmanager
def session_key(key: str) -> Iterator[None]:
    """Within this block (and the tasks started in it), requests with `routing="affinity"` are routed by `key`
    instead of by their conversation: `with session_key(user_id): await client.chat(...)`."""
    token = _session.set(str(key))
    try:
        yield
    finally:
        _session.reset(token)


def affinity_key(request: GenerateRequest) -> str:
    """What a request is routed by under affinity: the current `session_key`, else the conversation's head."""
    given = _session.get()
    if given is not None:
        return "session:" + given
    if request.messages is None:
        return "prompt:" + (request.prompt or "")[:_PROMPT_HEAD]
    head = []
    for message in request.messages:
        head.append(message)
        if message.get("role") == "user":
            break
    return "chat:" + json.dumps(head, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rendezvous(key: str, replicas: Sequence[Replica]) -> list[Replica]:
    """`replicas` ordered by their highest-random-weight score for `key`: the first is the key's home, and when a
    replica leaves only the keys it was home to move."""

    def score(replica: Replica) -> bytes:
        return hashlib.blake2b(f"{replica.url}\0{key}".encode(), digest_size=8).digest()

    return sorted(replicas, key=score, reverse=True)


class Dispatcher:
    """Gives each request a replica with room, in arrival order; a request finding none waits for a release."""

    def __init__(
        self, replicas: Sequence[Replica], routing: Routing, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.replicas = list(replicas)
        self.routing = routing
        self._clock = clock
        self._waiting: collections.deque[object] = collections.deque()
        self._changed = anyio.Event()
        self.closed = False

    @property
    def waiting(self) -> int:
        """Requests waiting for room."""
        return len(self._waiting)

    def notify(self) -> None:
        """Something changed (a release, a replica back, the engine closing): the head of the queue looks again."""
        self._changed.set()
        self._changed = anyio.Event()

    async def acquire(self, key: str | None, avoid: Sequence[Replica] = ()) -> Replica:
        """A replica for the request, counted in flight on it (`release` it when done); `avoid`: replicas already
        tried for this request, used again only when no other can take it."""
        if self.closed:
            raise ClientClosedError("the remote engine is closed")
        if not self._waiting and (chosen := self._choose(key, avoid)) is not None:
            chosen.take()
            return chosen
        me = object()
        self._waiting.append(me)
        try:
            while True:
                if self.closed:
                    raise ClientClosedError("the remote engine was closed before this request was sent")
                if self._waiting[0] is me and (chosen := self._choose(key, avoid)) is not None:
                    self._waiting.popleft()
                    chosen.take()
                    self.notify()  # the next in line may fit too
                    return chosen
                changed = self._changed
                with anyio.move_on_after(self._until_a_rest_ends()):
                    await changed.wait()
        except BaseException:
            if me in self._waiting:
                self._waiting.remove(me)
                self.notify()
            raise

    def release(self, replica: Replica) -> None:
        """The request on `replica` ended; the queue's head may go."""
        replica.release()
        self.notify()

    def _until_a_rest_ends(self) -> float:
        now = self._clock()
        ends = [r.resting_until - now for r in self.replicas if not r.usable(now)]
        return max(0.01, min(ends)) if ends else 3600.0

    def _choose(self, key: str | None, avoid: Sequence[Replica]) -> Replica | None:
        now = self._clock()
        usable = [r for r in self.replicas if r.usable(now)]
        if not usable:  # all resting: the one back soonest is tried anyway (a request must not wait on a clock)
            usable = [min(self.replicas, key=lambda r: r.resting_until)]
        fresh = [r for r in usable if r not in avoid]
        candidates = fresh if any(r.has_room() for r in fresh) else usable
        roomy = [r for r in candidates if r.has_room()]
        if not roomy:
            return None
        least = min(roomy, key=lambda r: (r.in_flight, r.started))
        if self.routing == "affinity" and key is not None:
            home = rendezvous(key, candidates)[0]
            if home.has_room() and home.in_flight - least.in_flight <= AFFINITY_SLACK:
                return home
        return least
