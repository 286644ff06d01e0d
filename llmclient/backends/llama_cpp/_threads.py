"""How many compute threads the next decode step uses: every core the plan gives while the cores are free, fewer
while other programs compete for them.

Why fewer: llama.cpp's compute threads meet at a barrier after every graph node, so a step goes at the pace of its
most starved thread. With more threads than free cores, the kernel keeps preempting one of them and the others wait
for it: on 2 cores beside 2 busy programs, 2 threads made 0.6-26 tokens/s and 1 thread 46-54, and the decoding
thread waited for a CPU 50% and 33% of the time (bench/busy_threads.py).

The signal is the decode thread's own wait for a CPU: Linux's schedstat counts the time a thread was runnable but
not running (`run_delay`). Over a window of steps, the share `f` of wall time spent waiting says how much of the
cores the team received: n threads got about n(1 - f) cores' worth, so that many threads is what to use. A free
core cannot be seen from fewer threads (one thread beside one busy program on 2 cores waits no more than alone),
so the policy tries one thread more now and then, keeps it if the decode thread still does not wait, and waits
twice as long before the next try if it did (at most `MAX_BACKOFF` seconds).

Nor is one thread more tried while `/proc/loadavg` shows other runnable threads on every core but the team's: a
try there costs seconds (a step of a team with more threads than free cores waits at every barrier), and the team's
own wait does not reveal those neighbours (one thread beside two busy programs on 2 cores waited 2%).

Our own event loop's thread makes the team wait too, and shedding for it would only slow generation down: where
`/proc/loadavg` tells how many threads are runnable machine-wide, a window in which no other thread was runnable at
some moment sheds nothing (a count read in a container may include its whole host; then it never vetoes).

The first guess is the cores that the machine's other runnable threads leave free, at least one: one step with too
many threads can take seconds on a busy machine (the safe end is one thread), one with too few costs a few
milliseconds on an idle one. After `FORGET_S` without work it guesses again. Where schedstat is missing (not Linux,
or a kernel built without it), the plan's count is used throughout.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RunDelay", "Runnable", "ThreadDecision", "ThreadPolicy"]

logger = logging.getLogger("llmclient")

#: A window is this much wall time of decode steps (and at least `WINDOW_STEPS` steps): enough time slices of a
#: loaded CPU (a few ms each) for the waiting share to mean something.
WINDOW_S = 0.03
WINDOW_STEPS = 2
#: Waiting more than this share of a window means the team did not get its cores: shed threads.
SHED = 0.2
#: While trying one thread more, waiting more than this share means that core was not free after all.
PROBE_FAIL = 0.1
#: Waiting less than this share at the current count: there may be room for one more thread.
ROOM = 0.05
#: A single step that waited this share (and took at least `STALL_S`) sheds at once, without finishing the window.
STALL = 0.3
STALL_S = 0.1
#: Seconds before trying one thread more after a failed try: doubled on each failure up to `MAX_BACKOFF`.
BASE_BACKOFF = 1.0
MAX_BACKOFF = 30.0
#: While the machine-wide runnable count leaves no core free, the threads that really compete are counted at most
#: this often (doubled while they do, up to `MAX_BACKOFF`): a scan of /proc takes milliseconds.
SCAN_S = 1.0
#: After the decode thread has had nothing to do for this long, guess again as at the start: the machine may have
#: changed meanwhile.
FORGET_S = 5.0


@dataclass(frozen=True)
class ThreadDecision:
    """One decision about the thread count (a change, or a try that held), and why."""

    at: float
    """`time.perf_counter()` when it was taken."""
    threads: int
    waited: float
    """The share of the window's wall time the decode thread waited for a CPU."""
    reason: str
    """`contention` (shed), `stall` (shed after one bad step), `try` (one more), `kept` (the try held),
    `back` (the try failed), `start` (the first guess), `idle` (start over after a pause), `bound` (a model with
    fewer threads is all that is left), `fixed` (not adaptive: the plan's count)."""


@dataclass
class ThreadPolicy:
    """Decides the compute-thread count between decode steps from what the steps waited for a CPU."""

    most: int
    """The upper bound: the plan's threads (every physical core by default)."""
    adaptive: bool = True
    """False: always `most` (`LLMCLIENT_ADAPTIVE_THREADS=0`, or no schedstat on this system)."""
    now: Callable[[], float] = time.perf_counter
    """The clock (a fake one in tests)."""
    threads: int = 0
    """The count for the next step."""
    decisions: list[ThreadDecision] = field(default_factory=list)
    """The latest changes (the last 64), for tests and diagnostics."""
    _wall: float = 0.0
    _waited: float = 0.0
    _steps: int = 0
    _others: int | None = None
    """The fewest other runnable threads seen in the window (None: no reading)."""
    competing: Callable[[], int | None] | None = None
    """Other runnable threads that compete with ours (not of a lower priority), or None where unknown: slower to
    read than the machine-wide count, so read only when that count leaves no core free."""
    _next_scan: float = 0.0
    _scan_every: float = 1.0
    _tried_from: int | None = None
    _backoff: float = BASE_BACKOFF
    _next_try: float = 0.0

    def __post_init__(self) -> None:
        self.most = max(1, self.most)
        self.threads = 1 if self.adaptive else self.most
        if not self.adaptive:
            self._decide(self.most, 0.0, "fixed")

    def set_most(self, most: int) -> None:
        """A new upper bound (a model with more or fewer planned threads came or went)."""
        self.most = max(1, most)
        if not self.adaptive and self.threads != self.most:
            self._decide(self.most, 0.0, "fixed")
        elif self.threads > self.most:
            self._decide(self.most, 0.0, "bound")

    def start(self, others: int | None) -> None:
        """The first guess, before any step: the cores that `others` runnable threads leave free, else one thread.

        `others` is read system-wide (a container may see its whole host), so it only ever lowers the guess; tries
        and sheds correct it from the steps' own waits."""
        if self.adaptive:
            guess = self._guess(others)
            if guess != self.threads:
                self._decide(guess, 0.0, "start")

    def resume(self, idle: float, others: int | None = None) -> None:
        """The decode thread has work again after `idle` seconds with none; `others` as for `start`."""
        self._reset_window()
        if self.adaptive and idle >= FORGET_S:
            self._tried_from = None
            self._backoff, self._next_try = BASE_BACKOFF, self.now()
            guess = self._guess(others)
            if self.threads != guess:
                self._decide(guess, 0.0, "idle")

    def _guess(self, others: int | None) -> int:
        """The cores `others` runnable threads leave free, at least one; one where that is unknown."""
        return 1 if others is None else max(1, min(self.most, self.most - others))

    def observe(self, wall: float, waited: float, others: int | None = None) -> None:
        """A step took `wall` seconds, of which the decode thread waited `waited` for a CPU; `others`: runnable
        threads on the machine just after it, less the team's own (None where unknown)."""
        if not self.adaptive or wall <= 0:
            return
        if others is not None:
            self._others = max(0, others) if self._others is None else min(self._others, max(0, others))
        self._wall += wall
        self._waited += min(waited, wall)
        self._steps += 1
        share = min(waited, wall) / wall
        if share >= STALL and wall >= STALL_S and self.threads > 1:
            self._settle(share, stalled=True)
            return
        if self._wall >= WINDOW_S and self._steps >= WINDOW_STEPS:
            self._settle(self._waited / self._wall, stalled=False)

    def _settle(self, share: float, stalled: bool) -> None:
        n, now = self.threads, self.now()
        alone_window = self._others
        self._reset_window()
        if self._tried_from is not None:  # the window of a try: was that core free?
            tried_from, self._tried_from = self._tried_from, None
            if share > PROBE_FAIL:
                self._backoff = min(2 * self._backoff, MAX_BACKOFF)
                self._next_try = now + self._backoff
                self._decide(tried_from, share, "back")
            else:
                self._backoff, self._next_try = BASE_BACKOFF, now  # climb on while there is room
                self._decide(n, share, "kept")
            return
        # our own event loop's thread also makes the team wait; with no other program runnable at any moment of the
        # window (where that can be read), shedding would only slow the generation down
        alone = alone_window == 0 and not stalled
        if share > SHED and n > 1 and not alone:
            got = int(n * (1.0 - share) + 0.5)  # the cores' worth the team received
            self._next_try = max(self._next_try, now + self._backoff)
            self._decide(max(1, min(n - 1, got)), share, "stall" if stalled else "contention")
        elif share < ROOM and n < self.most and now >= self._next_try and not self._no_free_core(alone_window, n):
            self._tried_from = n
            self._decide(n + 1, share, "try")

    def _no_free_core(self, others: int | None, n: int) -> bool:
        """Whether the window's fewest other runnable threads leave no core for one thread more: then a try is
        not made at all. The team's low wait does not show such neighbours: one thread beside two busy programs on
        2 cores waited 2% of the time, while each try at 2 threads took up to 3 s before it could fail.

        The machine-wide count includes threads of a lower priority (a `nice`d build), which take no core from us;
        where `competing` can tell, it is asked (at most every `SCAN_S` seconds, less often while it agrees)."""
        if others is None or others + n + 1 <= self.most:
            return False
        now = self.now()
        if self.competing is None or now < self._next_scan:
            return True
        rivals = self.competing()
        if rivals is not None and rivals + n + 1 <= self.most:
            self._scan_every = SCAN_S
            return False
        self._scan_every = min(2 * self._scan_every, MAX_BACKOFF)
        self._next_scan = now + self._scan_every
        return True

    def _reset_window(self) -> None:
        self._wall = self._waited = 0.0
        self._steps = 0
        self._others = None

    def _decide(self, threads: int, share: float, reason: str) -> None:
        self.decisions.append(ThreadDecision(self.now(), threads, share, reason))
        del self.decisions[:-64]
        logger.debug("compute threads %d -> %d (%s, waited %.0f%%)", self.threads, threads, reason, share * 100)
        self.threads = threads


class RunDelay:
    """The calling thread's total wait for a CPU so far, in seconds (Linux schedstat), or None where unavailable.

    Open it on the thread it measures: `/proc/thread-self` is resolved when the file is opened.
    """

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = None
        if self.read() is None:
            self.close()

    def read(self) -> float | None:
        if self._fd is None:
            return None
        try:
            fields = os.pread(self._fd, 128, 0).split()
            return int(fields[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Runnable:
    """Threads runnable on the whole machine right now (Linux `/proc/loadavg`), or None where unavailable, or
    where the count is not this machine's: a container's `/proc/loadavg` may count its whole host's threads (the
    kernel does not scope it), so where it counts far more threads than `/proc` shows, it is not read at all."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open("/proc/loadavg", os.O_RDONLY)
        except OSError:
            self._fd = None
        if self._fd is not None and _counts_unseen_threads(self._fd):
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self) -> int | None:
        if self._fd is None:
            return None
        try:
            return int(os.pread(self._fd, 128, 0).split()[3].split(b"/")[0])
        except (OSError, IndexError, ValueError):
            return None

    def competing(self) -> int | None:
        """Runnable threads of other processes at our priority or above (a lower one takes no core from us), from
        each thread's /proc stat: ~6 ms for 80 processes, so only now and then. None where unreadable."""
        if self._fd is None:
            return None
        rivals = _rivals(os.getpid(), os.getpriority(os.PRIO_PROCESS, 0))
        return None if rivals is None else sum(rivals.values())


def _counts_unseen_threads(fd: int) -> bool:
    """Whether `/proc/loadavg`'s count of all threads is far above the threads `/proc` lets us see (a PID
    namespace, a container): then its runnable count is the host's, not ours to act on."""
    try:
        total = int(os.pread(fd, 128, 0).split()[3].split(b"/")[1])
    except (OSError, IndexError, ValueError):
        return True
    seen = 0
    with contextlib.suppress(OSError):
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                with contextlib.suppress(OSError):
                    seen += len(os.listdir(f"/proc/{pid}/task"))
    return total > 2 * seen + 64


def _rivals(own: int, nice: int) -> collections.Counter[int] | None:
    """Process id -> its threads that are runnable now at niceness `nice` or below, for every process but `own`."""
    rivals: collections.Counter[int] = collections.Counter()
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != own]
    except OSError:
        return None
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError, IndexError, ValueError):
                    with open(f"/proc/{pid}/task/{tid}/stat", "rb") as stat:
                        fields = stat.read().rsplit(b")", 1)[1].split()
                    if fields[0] == b"R" and int(fields[16]) <= nice:  # its state and niceness
                        rivals[pid] += 1
    return rivals
