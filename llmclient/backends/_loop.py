"""Handing results from an engine's thread to the caller's event loop without blocking the thread.

Local engines compute on threads of their own; what they produce travels back by the loop's own thread-safe
scheduling call (asyncio's `call_soon_threadsafe`, trio's `TrioToken.run_sync_soon`), batched so that one
wake-up of the loop delivers everything that arrived since the last.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["loop_sender"]

logger = logging.getLogger("llmclient")


class _Mailbox:
    """Items bound for one event loop, from any thread, delivered in order by one wake-up of the loop for all
    that arrived since the last: with many requests, a decode step's tokens cost the loop one wake-up, not one per
    request (each wake-up is a write to the loop's self-pipe, and a GIL hand-off between the two threads)."""

    def __init__(self, native: Any, call_soon: str) -> None:
        self._loop = weakref.ref(native)  # not the loop itself: the registry's entry must not keep it alive
        self._call_soon = call_soon
        self._pending: collections.deque[tuple[Callable[[Any], None], Any]] = collections.deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def send(self, deliver: Callable[[Any], None], item: Any) -> None:
        with self._lock:
            self._pending.append((deliver, item))
            if self._scheduled:
                return
            self._scheduled = True
        loop = self._loop()
        try:
            if loop is None:
                raise RuntimeError("the event loop is gone")
            getattr(loop, self._call_soon)(self._flush)
        except RuntimeError:  # the loop is closed (trio: RunFinishedError): nobody listens
            with self._lock:
                self._pending.clear()
                self._scheduled = False

    def _flush(self) -> None:
        with self._lock:
            items = list(self._pending)
            self._pending.clear()
            self._scheduled = False
        for deliver, item in items:
            try:
                deliver(item)
            except Exception:  # one receiver's failure must not cost the others their items
                logger.exception("delivering a result to the event loop failed")


_mailboxes: weakref.WeakKeyDictionary[Any, _Mailbox] = weakref.WeakKeyDictionary()
_mailboxes_lock = threading.Lock()


def loop_sender(deliver: Callable[[Any], None]) -> Callable[[Any], None]:
    """A thread-safe function that hands items to `deliver` on the current event loop, in order, without waiting.

    Items queue up in the loop's mailbox, shared by every sender made on that loop, and one wake-up of the loop
    delivers all that arrived since the last: when the loop is busy, the worker does not pay a wake-up per token
    or per request, and it never waits for the loop. The wake-up is the loop's own thread-safe scheduling call:
    asyncio's `call_soon_threadsafe`, trio's `TrioToken.run_sync_soon`.
    """
    token = anyio.lowlevel.current_token()
    native = token.native_token
    call_soon = next((name for name in ("call_soon_threadsafe", "run_sync_soon") if hasattr(native, name)), None)

    def send_via_portal(item: Any) -> None:
        with contextlib.suppress(RuntimeError):
            anyio.from_thread.run_sync(deliver, item, token=token)

    if call_soon is None:  # another anyio backend: the portal, which waits for the loop at each item
        return send_via_portal
    try:
        with _mailboxes_lock:
            mailbox = _mailboxes.get(native)
            if mailbox is None:
                mailbox = _mailboxes[native] = _Mailbox(native, call_soon)
    except TypeError:  # a loop that cannot be weakly referenced (none of asyncio's or trio's): the portal
        return send_via_portal

    def send(item: Any) -> None:
        mailbox.send(deliver, item)

    return send
