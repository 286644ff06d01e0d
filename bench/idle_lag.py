"""The floor under every loop-lag figure: a 1 ms ticker's lateness on an idle event loop, on this machine.

`bench/peers.py`, `bench/overhead.py` and `bench/concurrency.py` report how late a 1 ms ticker wakes while
requests run; part of that lateness is the machine's (timer slack, the selector's millisecond timeouts, other
tenants), whatever the app does. This measures that part alone, with the same ticker.

    python bench/idle_lag.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import time

import anyio
from _common import pct, tick_until  # bench/ is on sys.path when run as a script


async def measure(seconds: float) -> list[float]:
    lags: list[float] = []
    end = time.perf_counter() + seconds
    await tick_until(lambda: time.perf_counter() > end, lags)
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    for backend in ("asyncio", "trio"):
        try:
            lags = anyio.run(measure, args.seconds, backend=backend)
        except (ModuleNotFoundError, LookupError):  # trio is optional
            continue
        print(f"{backend}: idle loop lag over {len(lags)} ticks, ms: p50 {pct(lags, 0.5):.2f}, "
              f"p99 {pct(lags, 0.99):.2f}, max {max(lags):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
