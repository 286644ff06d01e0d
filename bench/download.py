"""Download benchmark: llmclient's `ModelCache.fetch` against `huggingface_hub.hf_hub_download`.

Both download the same files from the same in-process LocalHub (a real HTTP server on 127.0.0.1), each run into
a fresh, empty cache folder that is removed afterwards. Runs are interleaved (ours, theirs, then theirs, ours,
...) so that drifting machine load hits both alike. Two files: the real SmolLM2-135M GGUF (98 MB) and a random
`big.gguf` of `--big-gb` GiB. Then a fetch that finds the big file cached is timed: with `revision="main"` (one
HEAD request, no re-hash) and with the commit hash (no request at all).

    python bench/download.py [--rounds N] [--big-gb X] [--quick]

Prints a Markdown section (machine, versions, command, results) to stdout; progress goes to stderr. Exits 1
if a cached fetch re-hashed the file, downloaded it, or (by commit hash) made any request.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import huggingface_hub
from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.utils.tqdm import disable_progress_bars

import llmclient.cache
from llmclient import ModelCache
from llmclient.testing import SMOLLM2_FILENAME, LocalHub, smollm2_gguf

SMALL_REPO = "bench/SmolLM2-GGUF"
BIG_REPO = "bench/big-GGUF"
BIG_FILENAME = "big.gguf"
PIECE = 64 << 20  # the random file is written in 64 MiB pieces
CACHED_RUNS = 20
CACHED_TARGET_MS = 20.0
MB = 1_000_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the machine ---------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def total_ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024 / 2**30
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


# --- the hub's files -----------------------------------------------------------------------------


def write_random(path: Path, size: int) -> None:
    """`size` random bytes at `path`, written in 64 MiB pieces."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        left = size
        while left:
            piece = min(PIECE, left)
            fh.write(os.urandom(piece))
            left -= piece


def link_smollm2(root: Path) -> Path:
    """Link the real SmolLM2 GGUF (downloaded from PyPI once per machine) into the hub's folder."""
    target = root / SMALL_REPO / SMOLLM2_FILENAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(smollm2_gguf())
    return target


def warm_hub(hub: LocalHub, repo_id: str, filename: str) -> None:
    """One HEAD through huggingface_hub, so the hub hashes the file (and reads it into the page cache) now."""
    get_hf_file_metadata(hf_hub_url(repo_id, filename, endpoint=hub.url))


# --- one download each ---------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    requests: Counter[str]


def fresh_dir(scratch: Path) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="cache-", dir=scratch))
    return folder


def settle(folder: Path) -> None:
    """Remove a run's cache and flush dirty pages, so writeback of one run does not slow the next."""
    shutil.rmtree(folder)
    os.sync()


def logged_requests(hub: LocalHub) -> Counter[str]:
    """The methods of the requests logged since `clear_log`, once none is still being answered."""
    hub.wait_idle()
    return Counter(r.method for r in hub.requests)


def check_size(path: str | Path, size: int, who: str) -> None:
    actual = os.stat(path).st_size
    if actual != size:
        raise RuntimeError(f"{who} produced {path} of {actual} bytes, expected {size}")


async def ours(hub: LocalHub, repo_id: str, filename: str, size: int, scratch: Path) -> Run:
    folder = fresh_dir(scratch)
    try:
        hub.clear_log()
        start = time.perf_counter()
        model = await ModelCache(folder).fetch(repo_id, filename, endpoint=hub.url, progress=False)
        seconds = time.perf_counter() - start
        check_size(model.path, size, "ModelCache.fetch")
    finally:
        settle(folder)
    return Run(seconds, logged_requests(hub))


def theirs(hub: LocalHub, repo_id: str, filename: str, size: int, scratch: Path) -> Run:
    folder = fresh_dir(scratch)
    try:
        hub.clear_log()
        start = time.perf_counter()
        path = hf_hub_download(repo_id, filename, endpoint=hub.url, cache_dir=folder)
        seconds = time.perf_counter() - start
        if not isinstance(path, str):
            raise RuntimeError(f"hf_hub_download returned {path!r}, not a path")
        check_size(path, size, "hf_hub_download")
    finally:
        settle(folder)
    return Run(seconds, logged_requests(hub))


@dataclass
class FileResult:
    label: str
    size: int
    ours: list[Run] = field(default_factory=list)
    theirs: list[Run] = field(default_factory=list)

    def median_s(self, runs: list[Run]) -> float:
        return statistics.median(r.seconds for r in runs)

    def mb_s(self, runs: list[Run]) -> float:
        return self.size / MB / self.median_s(runs)

    @property
    def ratios(self) -> list[float]:
        """Per round, our throughput over theirs (their seconds over ours)."""
        return [t.seconds / o.seconds for o, t in zip(self.ours, self.theirs, strict=True)]

    @staticmethod
    def requests(runs: list[Run]) -> str:
        kinds = {tuple(sorted(r.requests.items())) for r in runs}
        return " / ".join(", ".join(f"{n} {m}" for m, n in kind) for kind in sorted(kinds))


async def bench_file(
    hub: LocalHub, label: str, repo_id: str, filename: str, size: int, rounds: int, scratch: Path
) -> FileResult:
    result = FileResult(label, size)
    for i in range(rounds):
        order = ("ours", "theirs") if i % 2 == 0 else ("theirs", "ours")
        for who in order:
            if who == "ours":
                run = await ours(hub, repo_id, filename, size, scratch)
                result.ours.append(run)
            else:
                run = theirs(hub, repo_id, filename, size, scratch)
                result.theirs.append(run)
            log(f"  {label} round {i + 1}/{rounds} {who:6}: {run.seconds:7.3f} s  {size / MB / run.seconds:8.1f} MB/s")
    return result


# --- a fetch that finds the file cached ----------------------------------------------------------


@dataclass
class CachedResult:
    label: str
    times_ms: list[float]
    requests: Counter[str]
    hash_calls: int

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.times_ms, n=10, method="inclusive")[8]


class CountingHash:
    """Wraps `llmclient.cache._hash_file`, counting the calls (each one reads the whole file)."""

    def __init__(self, real: Callable[[Path, str], tuple[str, str]]) -> None:
        self.real = real
        self.calls = 0

    def __call__(self, path: Path, etag: str) -> tuple[str, str]:
        self.calls += 1
        return self.real(path, etag)


async def bench_cached(hub: LocalHub, scratch: Path, size: int) -> list[CachedResult]:
    folder = fresh_dir(scratch)
    cache = ModelCache(folder)
    try:
        first = await cache.fetch(BIG_REPO, BIG_FILENAME, endpoint=hub.url, progress=False)
        check_size(first.path, size, "ModelCache.fetch")
        results = []
        real = llmclient.cache._hash_file
        for label, revision in (("revision `main`", "main"), ("revision = commit hash", hub.commit(BIG_REPO))):
            counter = CountingHash(real)
            llmclient.cache._hash_file = counter
            try:
                hub.clear_log()
                times = []
                for _ in range(CACHED_RUNS):
                    start = time.perf_counter()
                    model = await cache.fetch(BIG_REPO, BIG_FILENAME, revision, endpoint=hub.url, progress=False)
                    times.append((time.perf_counter() - start) * 1000)
                    if model.path != first.path:
                        raise RuntimeError(f"cached fetch returned {model.path}, expected {first.path}")
                requests = logged_requests(hub)
            finally:
                llmclient.cache._hash_file = real
            result = CachedResult(label, times, requests, counter.calls)
            log(f"  cached fetch, {label}: median {result.median:.2f} ms, p90 {result.p90:.2f} ms, {dict(requests)}")
            results.append(result)
        return results
    finally:
        settle(folder)


# --- the report ----------------------------------------------------------------------------------


def fmt_size(size: int) -> str:
    return f"{size / 2**30:.2f} GiB" if size >= 2**30 // 4 else f"{size / MB:.1f} MB"


def report(args: argparse.Namespace, files: list[FileResult], cached: list[CachedResult]) -> tuple[str, bool]:
    """The Markdown section, and whether the no-re-hash / no-request checks held."""
    command = shlex.join(["python", *sys.argv])
    lines = [
        f"### Download benchmark ({'`--quick` run' if args.quick else f'{args.rounds} rounds'})",
        "",
        f"Command: `{command}` (from the repo root)",
        "",
        f"- Machine: {platform.platform()}; CPU {cpu_model()}, {os.cpu_count()} logical cores; "
        f"{total_ram_gib():.1f} GiB RAM",
        f"- Python {platform.python_version()}, huggingface_hub {huggingface_hub.__version__}, "
        f"llmclient {importlib.metadata.version('llmclient')}",
        f"- {args.rounds} interleaved rounds per file (ours/theirs, then theirs/ours, ...), each run into a fresh "
        "empty cache folder, removed and `sync`ed after the run; one untimed warm-up download each before timing. "
        "The hub is an in-process LocalHub on 127.0.0.1 (`sendfile`), its source files in the page cache.",
        "- ours: `await ModelCache(dir).fetch(repo, file, endpoint=hub.url, progress=False)`; "
        "theirs: `hf_hub_download(repo, file, endpoint=hub.url, cache_dir=dir)` (progress bars off). "
        "MB = 10^6 bytes.",
        "",
        "| File | Size | ours median s | ours MB/s | theirs median s | theirs MB/s "
        "| ratio ours/theirs (median) | min | max | target >= 1.0 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for f in files:
        ratios = f.ratios
        ratio = statistics.median(ratios)
        lines.append(
            f"| {f.label} | {fmt_size(f.size)} | {f.median_s(f.ours):.3f} | {f.mb_s(f.ours):.1f} "
            f"| {f.median_s(f.theirs):.3f} | {f.mb_s(f.theirs):.1f} | **{ratio:.2f}** | {min(ratios):.2f} "
            f"| {max(ratios):.2f} | {'met' if ratio >= 1.0 else 'MISSED'} |"
        )
    lines += [
        "",
        "Requests per download: "
        + "; ".join(
            f"{f.label}: ours {FileResult.requests(f.ours)}, theirs {FileResult.requests(f.theirs)}" for f in files
        )
        + ".",
    ]
    ok = True
    lines += [
        "",
        f"Fetch of the cached big file ({CACHED_RUNS} runs each, same `ModelCache`, `llmclient.cache._hash_file` "
        "wrapped to count calls):",
        "",
        f"| Revision | median ms | p90 ms | hub requests | `_hash_file` calls | target <= {CACHED_TARGET_MS:.0f} ms, "
        "no re-hash |",
        "| --- | ---: | ---: | --- | ---: | --- |",
    ]
    for c in cached:
        by_commit = c.label != "revision `main`"
        expected: Counter[str] = Counter() if by_commit else Counter({"HEAD": CACHED_RUNS})
        held = c.hash_calls == 0 and c.requests == expected
        ok = ok and held
        shown = ", ".join(f"{n} {m}" for m, n in sorted(c.requests.items())) or "none"
        met = held and c.median <= CACHED_TARGET_MS
        lines.append(
            f"| {c.label} | {c.median:.2f} | {c.p90:.2f} | {shown} | {c.hash_calls} | {'met' if met else 'MISSED'} |"
        )
    return "\n".join(lines) + "\n", ok


# --- main ----------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> tuple[str, bool]:
    disable_progress_bars()
    big_size = int(args.big_gb * 2**30)
    with tempfile.TemporaryDirectory(prefix="llmclient-bench-") as tmp:
        root = Path(tmp) / "hub"
        scratch = Path(tmp) / "caches"
        scratch.mkdir()
        small = link_smollm2(root)
        small_size = small.stat().st_size
        log(f"writing {fmt_size(big_size)} of random bytes to {root / BIG_REPO / BIG_FILENAME}")
        write_random(root / BIG_REPO / BIG_FILENAME, big_size)
        with LocalHub(root) as hub:
            log("warming up: the hub hashes both files; one untimed download each")
            warm_hub(hub, SMALL_REPO, SMOLLM2_FILENAME)
            warm_hub(hub, BIG_REPO, BIG_FILENAME)
            await ours(hub, SMALL_REPO, SMOLLM2_FILENAME, small_size, scratch)
            theirs(hub, SMALL_REPO, SMOLLM2_FILENAME, small_size, scratch)
            files = [
                await bench_file(
                    hub, f"SmolLM2 `{SMOLLM2_FILENAME}`", SMALL_REPO, SMOLLM2_FILENAME, small_size, args.rounds, scratch
                ),
                await bench_file(
                    hub, f"random `{BIG_FILENAME}`", BIG_REPO, BIG_FILENAME, big_size, args.rounds, scratch
                ),
            ]
            cached = await bench_cached(hub, scratch, big_size)
    return report(args, files, cached)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per file (default 5)")
    parser.add_argument("--big-gb", type=float, default=None, help="size of the random file in GiB (default 1.0)")
    parser.add_argument("--quick", action="store_true", help="a quick check: 2 rounds, a 0.25 GiB random file")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 2 if args.quick else 5
    if args.big_gb is None:
        args.big_gb = 0.25 if args.quick else 1.0
    if args.rounds < 1 or args.big_gb <= 0:
        parser.error("--rounds must be >= 1 and --big-gb > 0")
    markdown, ok = asyncio.run(run(args))
    print(markdown, end="")
    if not ok:
        log("FAILED: a cached fetch re-hashed the file, downloaded it, or made an unexpected request")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
