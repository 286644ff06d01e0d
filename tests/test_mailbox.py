"""Results reach the event loop through one mailbox per loop: one wake-up delivers every request's new items."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio
import pytest

from llmclient.backends._loop import loop_sender

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_senders_on_one_loop_share_one_wake_up_and_keep_order() -> None:
    loop = asyncio.get_running_loop()
    wake_ups = 0
    real = loop.call_soon_threadsafe

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal wake_ups
        wake_ups += 1
        return real(*args, **kwargs)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]
    try:
        got: list[tuple[str, int]] = []
        a = loop_sender(lambda i: got.append(("a", i)))
        b = loop_sender(lambda i: got.append(("b", i)))

        def worker() -> None:  # like a decode step: one token for each of two requests, five times
            for i in range(5):
                a(i)
                b(i)

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()  # the loop is held meanwhile, as a busy loop would be
        with anyio.fail_after(5):
            while len(got) < 10:
                await anyio.sleep(0.001)
    finally:
        del loop.call_soon_threadsafe
    assert got == [(name, i) for i in range(5) for name in ("a", "b")]
    assert wake_ups == 1, "ten items from two senders, one wake-up of the loop"


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_failing_receiver_does_not_cost_the_others_their_items() -> None:
    got: list[int] = []

    def broken(_: int) -> None:
        raise ValueError("receiver bug")

    bad, good = loop_sender(broken), loop_sender(got.append)

    def worker() -> None:
        for i in range(3):
            bad(i)
            good(i)

    await anyio.to_thread.run_sync(worker)
    with anyio.fail_after(5):
        while len(got) < 3:
            await anyio.sleep(0.01)
    assert got == [0, 1, 2]
