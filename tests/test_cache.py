"""ModelCache against a real LocalHub serving the real SmolLM2 GGUF: fetch, reuse, offline, layout, maintenance."""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import anyio
import pytest
from huggingface_hub import scan_cache_dir

import llmclient.cache
from llmclient import (
    InsufficientDiskError,
    InvalidModelReferenceError,
    ModelCache,
    OfflineError,
)
from llmclient.testing import SMOLLM2_FILENAME, SMOLLM2_SHA256, HubRequest, LocalHub
from tests.conftest import REPO

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


def settled(hub: LocalHub) -> list[HubRequest]:
    """The hub's log once every request it is answering has been logged."""
    assert hub.wait_idle(), "a request is still being answered"
    return hub.requests


def transfers(hub: LocalHub, filename: str = SMOLLM2_FILENAME) -> list[str | None]:
    """The Range header of every GET of `filename` so far (None: from byte 0)."""
    return [r.range for r in settled(hub) if r.method == "GET" and r.path.endswith("/" + filename)]


async def test_real_gguf_is_fetched_and_verified_with_a_progress_callback(hub: LocalHub, cache: ModelCache) -> None:
    reports: list[tuple[int, int | None]] = []
    model = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=lambda d, t: reports.append((d, t)))

    assert model.sha256 == SMOLLM2_SHA256
    assert model.size == 98_362_432 == model.path.stat().st_size
    assert model.commit == hub.commit(REPO)
    assert hashlib.sha256(model.path.read_bytes()).hexdigest() == SMOLLM2_SHA256
    assert reports[0] == (0, model.size) and reports[-1] == (model.size, model.size)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(reports)), "progress must never go back"
    assert len(reports) > 10, "progress is reported while downloading, not only at the end"


def test_real_gguf_is_fetched_with_a_tqdm_bar_on_a_terminal(hub: LocalHub, tmp_path: Path) -> None:
    # A real pseudo-terminal, so tqdm decides by itself that it is attached to one.
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    child = subprocess.Popen(
        [sys.executable, "tests/fetch_child.py", str(tmp_path / "c"), hub.url, REPO, SMOLLM2_FILENAME, "--progress"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "COLUMNS": "100"},
    )
    os.close(follower)
    screen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        screen += data
    out, _ = child.communicate(timeout=60)
    os.close(leader)
    assert child.returncode == 0, screen.decode(errors="replace")
    text = screen.decode(errors="replace")
    assert SMOLLM2_FILENAME in text and "100%" in text and "93.8M/93.8M" in text, text[-500:]
    assert SMOLLM2_SHA256 in out.decode()


async def test_progress_false_prints_nothing(
    hub: LocalHub, cache: ModelCache, capsys: pytest.CaptureFixture[str]
) -> None:
    await cache.fetch(REPO, "README.md", endpoint=hub.url, progress=False)
    assert capsys.readouterr() == ("", "")


async def test_cached_file_returns_without_a_download_or_rehash(
    hub: LocalHub, cache: ModelCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    hub.clear_log()
    hashed: list[Path] = []
    real_hash = llmclient.cache._hash_file

    def counting_hash(path: Path, etag: str) -> tuple[str, str]:
        hashed.append(path)
        return real_hash(path, etag)

    monkeypatch.setattr(llmclient.cache, "_hash_file", counting_hash)

    again = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)

    assert again == first
    assert [r.method for r in settled(hub)] == ["HEAD"]
    assert hashed == []


async def test_commit_revision_and_offline_fetches_make_no_request(hub: LocalHub, cache: ModelCache) -> None:
    first = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    url = hub.url
    hub.stop()  # nothing can answer now: a request would fail

    by_commit = await cache.fetch(REPO, SMOLLM2_FILENAME, first.commit, endpoint=url)
    offline = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=url, offline=True)

    assert by_commit == first == offline


async def test_hf_hub_offline_env_serves_cached_files_and_refuses_the_rest(
    hub: LocalHub, cache: ModelCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    await cache.fetch(REPO, "README.md", endpoint=hub.url, progress=False)
    hub.clear_log()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    assert (await cache.fetch(REPO, "README.md", endpoint=hub.url)).path.read_text().startswith("---")
    with pytest.raises(OfflineError, match="not in the cache.*offline mode is on"):
        await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url)
    assert hub.requests == []


async def test_unreachable_hub_falls_back_to_the_cached_copy(hub: LocalHub, cache: ModelCache) -> None:
    first = await cache.fetch(REPO, "README.md", endpoint=hub.url, progress=False)
    url = hub.url
    hub.stop()
    assert await cache.fetch(REPO, "README.md", endpoint=url) == first


async def test_small_non_lfs_file_is_verified_by_its_git_blob_sha1(hub: LocalHub, cache: ModelCache) -> None:
    model = await cache.fetch(REPO, "README.md", endpoint=hub.url, progress=False)
    data = model.path.read_bytes()
    assert model.sha256 == hashlib.sha256(data).hexdigest()
    head = next(r for r in settled(hub) if r.method == "HEAD")
    assert head.status == 200
    assert Path(os.path.realpath(model.path)).name == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


async def test_layout_is_huggingface_hubs_own(hub: LocalHub, cache: ModelCache) -> None:
    model = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    folder = cache.root / "models--llmclient-test--SmolLM2-135M-Instruct-GGUF"
    assert model.path == folder / "snapshots" / model.commit / SMOLLM2_FILENAME
    assert Path(os.path.realpath(model.path)) == folder / "blobs" / SMOLLM2_SHA256
    assert (folder / "refs" / "main").read_text() == model.commit

    info = scan_cache_dir(cache.root)
    assert info.warnings == []
    [repo] = info.repos
    assert repo.repo_id == REPO and repo.size_on_disk == model.size
    assert {f.file_name for r in repo.revisions for f in r.files} == {SMOLLM2_FILENAME}


async def test_cache_root_comes_from_argument_env_or_platformdirs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LLMCLIENT_CACHE_DIR", raising=False)
    assert ModelCache().root.name == "llmclient" and "cache" in str(ModelCache().root).lower()
    monkeypatch.setenv("LLMCLIENT_CACHE_DIR", str(tmp_path / "env"))
    assert ModelCache().root == tmp_path / "env"
    assert ModelCache(tmp_path / "arg").root == tmp_path / "arg"


async def test_list_verify_and_remove(hub: LocalHub, cache: ModelCache) -> None:
    gguf = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    readme = await cache.fetch(REPO, "README.md", endpoint=hub.url, progress=False)
    assert sorted(await cache.list(), key=lambda m: m.filename) == [readme, gguf]

    reports = await cache.verify()
    assert {(r.model.filename, r.ok) for r in reports} == {(SMOLLM2_FILENAME, True), ("README.md", True)}

    freed = await cache.remove(REPO, "README.md")
    assert freed == readme.size
    assert await cache.list() == [gguf]
    assert await cache.remove(REPO) == gguf.size
    assert await cache.list() == []


async def test_scan_lists_each_file_at_each_commit_with_its_size_state_and_refs(
    tmp_path: Path, cache: ModelCache
) -> None:
    repo = tmp_path / "hub" / "owner" / "repo-GGUF"
    repo.mkdir(parents=True)
    (repo / "model.gguf").write_bytes(b"GGUF" + b"\1" * 1000)
    (repo / "README.md").write_text("# a repo\n")
    with LocalHub(tmp_path / "hub") as hub:
        old = await cache.fetch("owner/repo-GGUF", "model.gguf", endpoint=hub.url, progress=False)
        (repo / "model.gguf").write_bytes(b"GGUF" + b"\2" * 2000)  # the repo's next commit
        new = await cache.fetch("owner/repo-GGUF", "model.gguf", endpoint=hub.url, progress=False)
        readme = await cache.fetch("owner/repo-GGUF", "README.md", endpoint=hub.url, progress=False)
    assert old.commit != new.commit == readme.commit

    scan = await cache.scan()
    assert (scan.root, scan.repos, scan.partials) == (cache.root, ("owner/repo-GGUF",), ())
    found = {(f.filename, f.commit): f for f in scan.files}
    assert set(found) == {("model.gguf", old.commit), ("model.gguf", new.commit), ("README.md", new.commit)}
    for model in (old, new, readme):
        file = found[model.filename, model.commit]
        assert (file.path, file.size, file.sha256, file.state) == (model.path, model.size, model.sha256, "verified")
        assert file.revisions == (("main",) if model.commit == new.commit else ())
    assert found["model.gguf", old.commit].etag == old.sha256  # a .gguf is an LFS file: its blob is its sha256
    assert len(found["README.md", new.commit].etag) == 40  # a small file: its git blob sha1
    assert scan.files[0].commit == new.commit, "newest commit first"
    assert scan.size == old.size + new.size + readme.size

    Path(os.path.realpath(readme.path)).write_bytes(b"tampered")
    Path(os.path.realpath(old.path)).unlink()
    (cache.root / "models--owner--repo-GGUF" / "verified" / f"{new.sha256}.json").unlink()
    states = {(f.filename, f.commit): f.state for f in (await cache.scan()).files}
    assert states == {
        ("model.gguf", old.commit): "missing",
        ("model.gguf", new.commit): "unverified",
        ("README.md", new.commit): "changed",
    }
    assert [m.filename for m in await cache.list()] == ["README.md"]  # verified once, and still there


async def test_verify_finds_a_file_damaged_on_disk_and_removes_it(hub: LocalHub, cache: ModelCache) -> None:
    model = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    blob = Path(os.path.realpath(model.path))
    stat = blob.stat()
    with blob.open("r+b") as fh:  # flip one byte but keep size and mtime, as bit rot would
        fh.seek(1234)
        byte = fh.read(1)
        fh.seek(1234)
        fh.write(bytes([byte[0] ^ 1]))
    os.utime(blob, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    [report] = await cache.verify(REPO, SMOLLM2_FILENAME)
    assert not report.ok and report.actual_sha256 != SMOLLM2_SHA256
    assert not blob.exists()
    hub.clear_log()
    again = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    assert again.sha256 == SMOLLM2_SHA256 and transfers(hub) == [None]


async def test_a_file_changed_behind_the_caches_back_is_rehashed_not_trusted(hub: LocalHub, cache: ModelCache) -> None:
    model = await cache.fetch(REPO, "README.md", endpoint=hub.url, progress=False)
    blob = Path(os.path.realpath(model.path))
    blob.write_bytes(b"tampered")  # size and mtime no longer match the record
    hub.clear_log()
    again = await cache.fetch(REPO, "README.md", endpoint=hub.url, progress=False)
    assert again.path.read_bytes() != b"tampered"
    assert transfers(hub, "README.md") == [None]


@pytest.mark.parametrize(
    "repo_id, filename, revision",
    [
        (REPO, "../../x.gguf", "main"),
        (REPO, "/etc/passwd", "main"),
        (REPO, "sub/../../x.gguf", "main"),
        (REPO, "C:\\x.gguf", "main"),
        ("not-a-repo", "x.gguf", "main"),
        ("a/b/c", "x.gguf", "main"),
        ("../etc", "x.gguf", "main"),
        (REPO, "x.gguf", "../main"),
    ],
)
async def test_bad_references_are_rejected_before_any_request(
    hub: LocalHub, cache: ModelCache, repo_id: str, filename: str, revision: str
) -> None:
    with pytest.raises(InvalidModelReferenceError, match="must be|is not"):
        await cache.fetch(repo_id, filename, revision, endpoint=hub.url)
    assert hub.requests == []
    assert not cache.root.exists() or not any(cache.root.rglob("*.gguf"))


async def test_too_little_disk_space_is_refused_before_the_transfer(
    hub: LocalHub, cache: ModelCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake disk reading: this machine's disk cannot be filled for real.
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=50 * 2**20))
    with pytest.raises(InsufficientDiskError, match="GiB more but only 0.05 GiB is free.*LLMCLIENT_CACHE_DIR") as info:
        await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    assert info.value.needed == 98_362_432
    assert transfers(hub) == []
    assert await cache.list() == []


async def test_cancelled_fetch_keeps_its_partial_file_and_the_next_one_resumes(
    hub: LocalHub, cache: ModelCache
) -> None:
    hub.stall(30, after_bytes=40_000_000)
    with anyio.move_on_after(5) as scope:
        held: list[int] = []
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                partial = next(cache.root.rglob("*.partial"), None)
                while partial is None or partial.stat().st_size < 40_000_000:
                    await anyio.sleep(0.05)
                    partial = next(cache.root.rglob("*.partial"), None)
                held.append(partial.stat().st_size)
                group.cancel_scope.cancel()  # cancel the fetch mid-transfer

            group.start_soon(watch)
            await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    assert not scope.cancelled_caught, "the stall should have been reached well within 5 s"
    assert held == [40_000_000]
    assert await cache.list() == []
    scan = await cache.scan()
    assert [(p.repo_id, p.etag, p.size) for p in scan.partials] == [(REPO, SMOLLM2_SHA256, 40_000_000)]
    assert scan.files == () and scan.size == 40_000_000
    hub.clear_faults()

    model = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    assert model.sha256 == SMOLLM2_SHA256
    assert transfers(hub) == [None, "bytes=40000000-"]


async def test_the_event_loop_keeps_running_during_a_fetch(hub: LocalHub, cache: ModelCache) -> None:
    hub.throttle(40_000_000)  # ~2.5 s for the file, so a blocked loop would be obvious
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
        group.cancel_scope.cancel()
    # A fetch that blocked the loop would let the ticker run a handful of times at most.
    assert ticks > 50


async def test_concurrent_tasks_share_one_transfer(hub: LocalHub, cache: ModelCache) -> None:
    hub.throttle(100_000_000)
    results = []

    async def one() -> None:
        results.append(await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False))

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(one)
    assert len(results) == 3 and len(set(results)) == 1
    assert transfers(hub) == [None]


def test_localhub_commit_is_forty_hex(hub: LocalHub) -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", hub.commit(REPO))


async def test_the_fetched_file_loads_and_generates_in_llama_cpp(hub: LocalHub, cache: ModelCache) -> None:
    from llama_cpp import Llama

    model = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)

    def generate() -> str:
        llm = Llama(model_path=str(model.path), n_ctx=256, n_threads=2, verbose=False, seed=1)
        out = llm.create_completion("The capital of France is", max_tokens=8, temperature=0.0)
        llm.close()
        return str(out["choices"][0]["text"])  # type: ignore[index]

    text = await anyio.to_thread.run_sync(generate)
    assert "Paris" in text
