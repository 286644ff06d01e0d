"""What the benchmarks share: the prompts, a percentile, the loop-lag ticker, a free local port, the peer
server's command line, and an older llmclient exported from git to run beside this one."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio


def prompt(i: int) -> list[dict[str, str]]:
    """Request i's messages: a story prompt that asks for more tokens than any run generates."""
    subjects = ("a lighthouse keeper", "a fox", "a clockmaker", "a storm", "a library", "a train", "a garden")
    return [{"role": "user", "content": f"Write a long story about {subjects[i % len(subjects)]} (part {i})."}]


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank: with 8 values p99 is the largest."""
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def tick_until(done: Callable[[], bool], lags: list[float]) -> None:
    """A 1 ms ticker: appends how late each tick woke (ms) to `lags` until `done()`, i.e. the event loop's lag."""
    while not done():
        before = time.perf_counter()
        await anyio.sleep(0.001)
        lags.append((time.perf_counter() - before - 0.001) * 1000)


ROOT = Path(__file__).resolve().parent.parent


def export(revision: str, into: Path) -> Path:
    """`llmclient/` as of git `revision`, in a folder of its own: the folder to put first on sys.path."""
    folder = into / revision
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "llmclient"], check=True,
                             capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(folder)], check=True)  # as pip would leave it
    return folder


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def llama_server_command(model: Path, port: int, ctx: int, threads: int, gpu: bool) -> list[str]:
    """llama-cpp-python's OpenAI-compatible server (uvicorn) on 127.0.0.1:port, with its defaults otherwise."""
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--n_ctx", str(ctx), "--host",
            "127.0.0.1", "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads),
            "--flash_attn", "true", "--n_gpu_layers", "-1" if gpu else "0", "--verbose", "false"]  # fmt: skip
