"""The compute-thread policy: fewer threads while other programs take the cores, all of them again once they stop.

The decisions are checked, never a speed: first from fake schedstat readings (what a loaded machine cannot be made
to show on demand), then on this machine with real busy programs beside a real model.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from llmclient.backends.llama_cpp._threads import BASE_BACKOFF, FORGET_S, MAX_BACKOFF, ThreadPolicy


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def steps(
    policy: ThreadPolicy, clock: Clock, n: int, waited_share: float, step: float = 0.01, others: int | None = None
) -> None:
    """`n` decode steps of `step` seconds, each spending `waited_share` of it waiting for a CPU; `others`: the
    machine's other runnable threads after each (None: unknown)."""
    for _ in range(n):
        clock.t += step
        policy.observe(step, step * waited_share, others)


def reasons(policy: ThreadPolicy) -> list[tuple[int, str]]:
    return [(d.threads, d.reason) for d in policy.decisions]


def test_it_starts_at_one_thread_and_takes_every_core_while_none_waits() -> None:
    clock = Clock()
    policy = ThreadPolicy(4, now=clock)
    assert policy.threads == 1, "the safe end: one step with too many threads can take seconds on a busy machine"
    steps(policy, clock, 40, 0.0)
    assert policy.threads == 4
    assert reasons(policy) == [(2, "try"), (2, "kept"), (3, "try"), (3, "kept"), (4, "try"), (4, "kept")]


def test_busy_neighbours_shed_threads_and_the_full_count_returns_when_they_stop() -> None:
    clock = Clock()
    policy = ThreadPolicy(2, now=clock)
    steps(policy, clock, 10, 0.0)
    assert policy.threads == 2
    steps(policy, clock, 5, 0.5)  # two busy programs on 2 cores: our 2 threads got one core's worth
    assert policy.threads == 1 and policy.decisions[-1].reason == "contention"
    steps(policy, clock, 500, 0.33)  # still there: one thread waits a third of the time; no core to try
    assert policy.threads == 1 and policy.decisions[-1].reason == "contention"
    clock.t += BASE_BACKOFF
    steps(policy, clock, 10, 0.0)  # they stopped
    assert policy.threads == 2 and reasons(policy)[-2:] == [(2, "try"), (2, "kept")]


def test_a_core_that_is_not_free_is_tried_less_and_less_often() -> None:
    """One busy program on 2 cores: one thread never waits, so only a try can tell; each failed try doubles the
    wait before the next, up to MAX_BACKOFF."""
    clock = Clock()
    policy = ThreadPolicy(2, now=clock)
    tries: list[float] = []
    for _ in range(4000):  # 40 s of steps
        before = policy.threads
        steps(policy, clock, 1, 0.35 if policy.threads == 2 else 0.0)
        if policy.threads == 2 and before == 1:
            tries.append(clock.t)
    gaps = [round(b - a) for a, b in itertools.pairwise(tries)]
    assert gaps[:4] == [2, 4, 8, 16], gaps
    assert all(gap <= MAX_BACKOFF + 1 for gap in gaps)
    assert {reason for _, reason in reasons(policy)} == {"try", "back"}


def test_no_thread_more_is_tried_while_other_runnable_threads_fill_the_other_cores() -> None:
    """Two busy programs on 2 cores: our one thread waits hardly at all (2% measured), yet a try at 2 threads took
    seconds to fail; the machine's runnable count shows them, and no try is made until a core is free again."""
    clock = Clock()
    policy = ThreadPolicy(2, now=clock)
    steps(policy, clock, 4000, 0.02, others=2)  # 40 s beside two busy programs
    assert policy.threads == 1 and reasons(policy) == [], reasons(policy)
    steps(policy, clock, 4000, 0.0, others=1)  # one left: still no core for a second thread
    assert policy.threads == 1 and reasons(policy) == []
    steps(policy, clock, 10, 0.0, others=0)  # they stopped
    assert policy.threads == 2 and reasons(policy) == [(2, "try"), (2, "kept")]
    steps(policy, clock, 10, 0.0, others=1)  # a neighbour that waits for nothing does not make us shed
    assert policy.threads == 2


def test_runnable_threads_of_a_lower_priority_do_not_stop_a_try_and_counting_them_is_rare() -> None:
    """A `nice`d build shows in the machine-wide count but takes no core from us: where the threads that really
    compete can be counted, a try goes ahead; while they do fill the cores, they are counted ever more rarely."""
    clock = Clock()
    scans: list[float] = []
    rivals = 0

    def competing() -> int:
        scans.append(clock.t)
        return rivals

    policy = ThreadPolicy(2, now=clock, competing=competing)
    steps(policy, clock, 10, 0.0, others=2)  # two niced compile jobs
    assert policy.threads == 2 and reasons(policy) == [(2, "try"), (2, "kept")] and len(scans) == 1
    clock.t += 100
    scans.clear()
    rivals = 2
    policy = ThreadPolicy(2, now=clock, competing=competing)
    steps(policy, clock, 6000, 0.02, others=2)  # 60 s beside two busy programs at our priority
    assert policy.threads == 1 and reasons(policy) == []
    gaps = [round(b - a) for a, b in itertools.pairwise(scans)]
    assert gaps[:4] == [2, 4, 8, 16] and all(gap <= MAX_BACKOFF + 1 for gap in gaps), gaps


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_the_threads_that_compete_are_counted_from_proc_busy_programs_among_them() -> None:
    from llmclient.backends.llama_cpp._threads import Runnable, _rivals

    runnable = Runnable()
    if runnable.read() is None:
        pytest.skip("this machine's /proc/loadavg counts threads /proc does not show (a container)")
    code = "import time\nend = time.time() + 20\nwhile time.time() < end:\n    pass\n"
    busy = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    niced = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", code])
    try:
        time.sleep(0.3)
        counts = [runnable.competing() for _ in range(5)]
        seen = [_rivals(os.getpid(), os.getpriority(os.PRIO_PROCESS, 0)) for _ in range(5)]
    finally:
        for p in [*busy, niced]:
            p.kill()
            p.wait()
    # both busy programs are runnable at every reading (they never sleep); the niced one never counts
    assert min(c for c in counts if c is not None) >= 2, counts
    assert all(r is not None and all(r[p.pid] == 1 for p in busy) and r[niced.pid] == 0 for r in seen), seen
    runnable.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_a_runnable_count_that_counts_a_hosts_unseen_threads_is_not_read(tmp_path: Path) -> None:
    """A container's /proc/loadavg may be its host's: counting many more threads than /proc shows, it is ignored
    (the policy then tries and sheds by its own waits alone); a count like the threads we see is read."""
    from llmclient.backends.llama_cpp._threads import _counts_unseen_threads

    seen = sum(1 for pid in os.listdir("/proc") if pid.isdigit())  # at least one thread each
    for total, unseen in ((10 * seen + 1000, True), (1, False)):
        file = tmp_path / f"loadavg-{total}"
        file.write_text(f"0.50 0.40 0.30 3/{total} 12345\n")
        fd = os.open(file, os.O_RDONLY)
        try:
            assert _counts_unseen_threads(fd) is unseen, total
        finally:
            os.close(fd)


def test_one_stalled_step_sheds_at_once() -> None:
    clock = Clock()
    policy = ThreadPolicy(8, now=clock)
    steps(policy, clock, 100, 0.0)
    assert policy.threads == 8
    steps(policy, clock, 1, 0.6, step=0.5)  # a half-second step that waited 60%: not waiting for the window
    assert policy.threads == 3 and policy.decisions[-1].reason == "stall"


def test_after_a_long_pause_it_starts_again_from_one_thread() -> None:
    clock = Clock()
    policy = ThreadPolicy(2, now=clock)
    steps(policy, clock, 10, 0.0)
    policy.resume(1.0)
    assert policy.threads == 2, "a short pause changes nothing"
    clock.t += FORGET_S
    policy.resume(FORGET_S)
    assert policy.threads == 1 and policy.decisions[-1].reason == "idle"
    steps(policy, clock, 10, 0.0)
    assert policy.threads == 2


def test_turned_off_or_without_readings_the_plan_count_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmclient.constants import adaptive_threads

    clock = Clock()
    policy = ThreadPolicy(2, adaptive=False, now=clock)
    steps(policy, clock, 100, 0.6, step=0.2)
    assert policy.threads == 2 and reasons(policy) == [(2, "fixed")]
    policy.set_most(1)
    assert policy.threads == 1
    monkeypatch.setenv("LLMCLIENT_ADAPTIVE_THREADS", "0")
    assert adaptive_threads() is False
    monkeypatch.setenv("LLMCLIENT_ADAPTIVE_THREADS", "yes")
    with pytest.raises(ValueError, match="LLMCLIENT_ADAPTIVE_THREADS='yes' must be 0 or 1"):
        adaptive_threads()


def busy_programs(n: int) -> list[subprocess.Popen[bytes]]:
    """`n` plain busy loops at nice 0, each ending by itself after two minutes if not stopped."""
    code = "import time\nend = time.time() + 120\nwhile time.time() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


@pytest.mark.slow
@pytest.mark.anyio
async def test_real_busy_programs_make_the_decode_use_one_thread_and_the_cores_come_back(smollm2: Path) -> None:
    """As many busy programs as cores beside a real stream: the policy never keeps more than one thread while they
    run; once they are stopped, it takes every planned thread again within a few streams."""
    from llmclient import LlmClient
    from llmclient.backends.llama_cpp._threads import Runnable
    from llmclient.backends.llama_cpp._worker import _decode_thread

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores < 2:
        pytest.skip("one core: there is nothing to shed")  # the policy never goes below one thread
    policy = _decode_thread().policy
    assert policy is not None
    if not policy.adaptive:
        # on Linux schedstat is there unless the kernel lacks CONFIG_SCHED_INFO: a policy silently off is a failure
        assert not sys.platform.startswith("linux") or os.environ.get("LLMCLIENT_ADAPTIVE_THREADS") == "0", (
            "the thread policy is off on Linux: /proc/thread-self/schedstat could not be read"
        )
        pytest.skip("no schedstat on this system (or LLMCLIENT_ADAPTIVE_THREADS=0): the plan's count is used")
    async with await LlmClient.from_path(smollm2, ctx=1024, threads=cores, temperature=0.0) as client:
        await client.chat("Hi", max_tokens=4)
        busy = busy_programs(cores)
        try:
            await anyio.sleep(0.5)
            since = time.perf_counter()  # by time: the policy keeps only its latest 64 decisions
            await client.chat("Write a long story about a lighthouse keeper.", max_tokens=120)
            loaded = [d for d in policy.decisions if d.at >= since]
            final = policy.threads
        finally:
            for process in busy:
                process.kill()
                process.wait()
        assert not [d for d in loaded if d.reason == "kept"], f"kept more threads beside busy programs: {loaded}"
        assert final == 1 or (loaded and loaded[-1].reason == "try"), f"not down to one thread: {loaded}"
        since = time.perf_counter()
        # up to 25 streams: on a shared machine another program may hold a core for a while; the policy then
        # rightly keeps one thread (no try while other programs' threads fill the other cores), so the streams
        # count only where the other cores were seen free
        rivals, free = Runnable(), 0
        for _ in range(25):
            await client.chat("Write a long story about a lighthouse keeper.", max_tokens=120)
            if policy.threads == cores:
                break
            others = rivals.competing()
            free += others is not None and others < cores - 1
        idle = [d for d in policy.decisions if d.at >= since]
        if policy.threads != cores and free < 3:
            pytest.skip(f"other programs kept this machine's cores busy ({free} of 25 readings free): {idle}")
        assert policy.threads == cores, f"the cores did not come back: {idle}"
        assert final == cores or idle[-1].reason == "kept", f"came back without a try that held: {idle}"
