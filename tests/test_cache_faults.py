"""ModelCache when things go wrong: crashes, dropped connections, bad servers, corruption, hub errors, races."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from llmclient import (
    DownloadError,
    GatedModelError,
    ModelCache,
    ModelNotFoundError,
    VerificationError,
)
from llmclient._hub.errors import hub_error
from llmclient._hub.listing import repo_listing
from llmclient.testing import SMOLLM2_FILENAME, SMOLLM2_SHA256, LocalHub
from tests.conftest import GATED_REPO, REPO, TOKEN
from tests.test_cache import ROOT, settled, transfers

pytestmark = pytest.mark.anyio


def fetch_in_child(cache_dir: Path, hub: LocalHub) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "tests/fetch_child.py", str(cache_dir), hub.url, REPO, SMOLLM2_FILENAME],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def partial_size(cache_dir: Path) -> int:
    partial = next(cache_dir.rglob("*.partial"), None)
    return partial.stat().st_size if partial is not None else 0


async def test_download_killed_midway_resumes_in_a_new_process(hub: LocalHub, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    hub.stall(60, after_bytes=37_000_000)
    child = fetch_in_child(cache_dir, hub)
    with anyio.fail_after(30):
        while partial_size(cache_dir) < 37_000_000:
            await anyio.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert partial_size(cache_dir) == 37_000_000
    hub.clear_faults()

    again = fetch_in_child(cache_dir, hub)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert json.loads(out)["sha256"] == SMOLLM2_SHA256
    assert "bytes=37000000-" in transfers(hub)
    assert list(cache_dir.rglob("*.partial")) == []


async def test_dropped_connection_resumes_in_the_same_fetch(hub: LocalHub, cache: ModelCache) -> None:
    hub.drop_after(30_000_000)
    model = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    assert model.sha256 == SMOLLM2_SHA256
    assert transfers(hub) == [None, "bytes=30000000-"]


async def test_server_that_ignores_range_still_yields_a_verified_file(hub: LocalHub, cache: ModelCache) -> None:
    hub.drop_after(30_000_000)
    hub.ignore_range()
    model = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    assert model.sha256 == SMOLLM2_SHA256
    gets = [r for r in settled(hub) if r.method == "GET"]
    assert [(r.range, r.status) for r in gets] == [(None, 200), ("bytes=30000000-", 200)]


async def test_corrupted_bytes_raise_verification_error_and_leave_nothing_behind(
    hub: LocalHub, cache: ModelCache
) -> None:
    hub.corrupt(offset=12_345_678)
    with pytest.raises(VerificationError, match="arrived corrupted.*removed; fetch again") as info:
        await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    assert info.value.expected == SMOLLM2_SHA256 and info.value.actual != SMOLLM2_SHA256
    assert await cache.list() == []
    assert [p for p in cache.root.rglob("*") if p.is_file() and not p.name.endswith(".lock")] == []

    model = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    assert model.sha256 == SMOLLM2_SHA256
    assert transfers(hub) == [None, None]


async def test_missing_repo(hub: LocalHub, cache: ModelCache) -> None:
    with anyio.fail_after(10), pytest.raises(ModelNotFoundError, match="repo nobody/nothing-GGUF was not found"):
        await cache.fetch("nobody/nothing-GGUF", "x.gguf", endpoint=hub.url)


async def test_missing_file_lists_the_files_the_repo_has(hub: LocalHub, cache: ModelCache) -> None:
    with anyio.fail_after(10), pytest.raises(ModelNotFoundError) as info:
        await cache.fetch(REPO, "SmolLM2-135M-Instruct.Q4_K_M.gguf", endpoint=hub.url)
    message = str(info.value)
    assert "is not in llmclient-test/SmolLM2-135M-Instruct-GGUF" in message
    assert f"Did you mean '{SMOLLM2_FILENAME}'" in message
    assert info.value.available == ("README.md", SMOLLM2_FILENAME)


async def test_missing_revision(hub: LocalHub, cache: ModelCache) -> None:
    with anyio.fail_after(10), pytest.raises(ModelNotFoundError, match="revision 'v9' does not exist"):
        await cache.fetch(REPO, SMOLLM2_FILENAME, "v9", endpoint=hub.url)


async def test_gated_repo_says_how_to_get_access_and_works_with_a_token(hub: LocalHub, cache: ModelCache) -> None:
    with anyio.fail_after(10), pytest.raises(GatedModelError, match="accept its license.*HF_TOKEN"):
        await cache.fetch(GATED_REPO, "tiny.gguf", endpoint=hub.url, token=False)
    model = await cache.fetch(GATED_REPO, "tiny.gguf", endpoint=hub.url, token=TOKEN, progress=False)
    assert model.path.read_bytes().startswith(b"GGUF")
    gets = [r for r in settled(hub) if r.method == "GET"]
    assert [r.headers.get("authorization") for r in gets] == [f"Bearer {TOKEN}"]


@pytest.mark.parametrize(
    "repo_id, revision, error, says",
    [
        (GATED_REPO, "main", GatedModelError, "is gated: accept its license at http"),
        ("nobody/nothing-GGUF", "main", ModelNotFoundError, "repo nobody/nothing-GGUF was not found on http"),
        (REPO, "v9", ModelNotFoundError, "revision 'v9' does not exist in"),
    ],
)
async def test_a_fetch_and_a_repo_listing_report_a_hub_error_in_the_same_words(
    hub: LocalHub, cache: ModelCache, repo_id: str, revision: str, error: type[Exception], says: str
) -> None:
    with anyio.fail_after(10), pytest.raises(error, match=says) as fetched:
        await cache.fetch(repo_id, "tiny.gguf", revision, endpoint=hub.url, token=False)
    with anyio.fail_after(10), pytest.raises(error) as listed:  # what planning a hub repo asks first
        await repo_listing(cache.root, repo_id, revision, hub.url, False, offline=False, allow_missing=False)
    assert str(listed.value) == str(fetched.value)


def test_errors_that_are_not_the_hubs_are_left_alone() -> None:
    assert hub_error(ValueError("no"), repo_id=REPO, revision="main", endpoint=None) is None
    assert hub_error(KeyError("no"), repo_id=REPO, revision="main", endpoint=None, filename="x.gguf") is None


@pytest.mark.parametrize("method", ["HEAD", "GET"])
async def test_server_errors_k_times_then_success(hub: LocalHub, cache: ModelCache, method: str) -> None:
    hub.fail(500, times=3, methods=[method], path=SMOLLM2_FILENAME)
    with anyio.fail_after(30):
        model = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    assert model.sha256 == SMOLLM2_SHA256
    statuses = [r.status for r in settled(hub) if r.method == method]
    assert statuses[:4] == [500, 500, 500, 200]


async def test_server_errors_forever_give_a_download_error_in_bounded_time(hub: LocalHub, cache: ModelCache) -> None:
    hub.fail(503, times=None, methods=["GET"])
    with anyio.fail_after(30), pytest.raises(DownloadError, match="HTTP 503.*gave up after 4 tries.*fetch again"):
        await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    assert len(transfers(hub)) == 4


async def test_rate_limit_429_waits_as_long_as_retry_after_says(hub: LocalHub, cache: ModelCache) -> None:
    hub.fail(429, times=1, retry_after=1.5, methods=["GET"])
    with anyio.fail_after(30):
        model = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    assert model.sha256 == SMOLLM2_SHA256
    first, second = (r for r in settled(hub) if r.method == "GET")
    assert first.status == 429 and second.status == 200
    assert second.time - first.time >= 1.5  # the hub's wish, not our own 0.05 s backoff


async def test_stalled_transfer_times_out_and_resumes(hub: LocalHub, cache: ModelCache) -> None:
    hub.stall(60, after_bytes=20_000_000)
    with anyio.fail_after(30):
        model = await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    assert model.sha256 == SMOLLM2_SHA256
    assert transfers(hub) == [None, "bytes=20000000-"]


async def test_hub_that_never_answers_gives_a_download_error_in_bounded_time(hub: LocalHub, cache: ModelCache) -> None:
    hub.stall(60, times=None)
    started = time.monotonic()
    with anyio.fail_after(60), pytest.raises(DownloadError, match="ReadTimeout.*gave up after 4 tries"):
        await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    assert time.monotonic() - started >= 4 * cache.timeout  # each try waited for its timeout, then gave up


def test_two_processes_fetching_one_file_make_one_transfer(hub: LocalHub, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    hub.throttle(60_000_000)  # ~1.6 s, so the second process arrives while the first is transferring
    first, second = fetch_in_child(cache_dir, hub), fetch_in_child(cache_dir, hub)
    results = [p.communicate(timeout=120) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], [err for _, err in results]
    outputs = [json.loads(out) for out, _ in results]
    assert outputs[0] == outputs[1] and outputs[0]["sha256"] == SMOLLM2_SHA256
    assert transfers(hub) == [None]
    assert [r.method for r in settled(hub)].count("HEAD") == 2
    assert Path(os.path.realpath(outputs[0]["path"])).name == SMOLLM2_SHA256
