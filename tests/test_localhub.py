"""LocalHub speaks the Hugging Face Hub's protocol: huggingface_hub itself is the client here."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    GatedRepoError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile

from llmclient.testing import SMOLLM2_FILENAME, SMOLLM2_SHA256, LocalHub
from tests.conftest import GATED_REPO, REPO, TOKEN
from tests.test_cache import ROOT, settled


def test_hf_hub_download_gets_the_real_file(hub: LocalHub, tmp_path: Path, smollm2: Path) -> None:
    path = hf_hub_download(REPO, SMOLLM2_FILENAME, endpoint=hub.url, cache_dir=tmp_path)
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == SMOLLM2_SHA256


def test_hf_endpoint_environment_variable_points_huggingface_hub_at_it(hub: LocalHub, tmp_path: Path) -> None:
    code = (
        "from huggingface_hub import hf_hub_download; "
        f"print(open(hf_hub_download({REPO!r}, 'README.md', cache_dir={str(tmp_path)!r})).read())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "HF_ENDPOINT": hub.url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "SmolLM2 135M Instruct" in out


def test_head_gives_commit_etag_and_size(hub: LocalHub) -> None:
    meta = get_hf_file_metadata(hf_hub_url(REPO, SMOLLM2_FILENAME, endpoint=hub.url))
    assert meta.commit_hash == hub.commit(REPO)
    assert meta.etag == SMOLLM2_SHA256
    assert meta.size == 98_362_432


def test_model_info_lists_siblings_with_sizes_and_lfs_sha256(hub: LocalHub) -> None:
    api = HfApi(endpoint=hub.url)
    info = api.model_info(REPO, files_metadata=True)
    assert info.sha == hub.commit(REPO)
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert set(siblings) == {"README.md", SMOLLM2_FILENAME}
    lfs = siblings[SMOLLM2_FILENAME].lfs
    assert lfs is not None and lfs.sha256 == SMOLLM2_SHA256 and lfs.size == 98_362_432
    assert siblings["README.md"].lfs is None
    assert api.model_info(REPO, revision=hub.commit(REPO)).sha == hub.commit(REPO)


def test_paths_info_and_tree(hub: LocalHub) -> None:
    api = HfApi(endpoint=hub.url)
    [gguf] = api.get_paths_info(REPO, [SMOLLM2_FILENAME])
    assert isinstance(gguf, RepoFile)
    assert gguf.lfs is not None and gguf.lfs.sha256 == SMOLLM2_SHA256 and gguf.size == 98_362_432
    assert sorted(api.list_repo_files(REPO)) == ["README.md", SMOLLM2_FILENAME]


def test_errors_carry_the_hubs_error_codes(hub: LocalHub, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("nobody/nothing", "x.gguf", endpoint=hub.url, cache_dir=tmp_path)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(REPO, "missing.gguf", endpoint=hub.url, cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "README.md", revision="v9", endpoint=hub.url, cache_dir=tmp_path)
    with pytest.raises(GatedRepoError):
        hf_hub_download(GATED_REPO, "tiny.gguf", endpoint=hub.url, cache_dir=tmp_path, token=False)
    assert (
        Path(hf_hub_download(GATED_REPO, "tiny.gguf", endpoint=hub.url, cache_dir=tmp_path, token=TOKEN))
        .read_bytes()
        .startswith(b"GGUF")
    )
    gated = next(r for r in settled(hub) if r.status == 401)
    assert gated.method == "HEAD"


def test_range_requests_are_answered_206_and_bad_ranges_416(hub: LocalHub, smollm2: Path) -> None:
    url = hf_hub_url(REPO, SMOLLM2_FILENAME, endpoint=hub.url)
    data = smollm2.read_bytes()
    part = httpx2.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    tail = httpx2.get(url, headers={"Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == data[-16:]
    assert httpx2.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416

    hub.ignore_range(times=1)
    whole = httpx2.get(url, headers={"Range": "bytes=1000-"})
    assert whole.status_code == 200 and len(whole.content) == len(data)


def test_faults_and_the_request_log(hub: LocalHub) -> None:
    url = hf_hub_url(REPO, "README.md", endpoint=hub.url)
    hub.fail(429, times=2, retry_after=7)
    answers = [httpx2.get(url) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "7"

    hub.drop_after(100, path=SMOLLM2_FILENAME)
    with pytest.raises(httpx2.RemoteProtocolError):
        httpx2.get(hf_hub_url(REPO, SMOLLM2_FILENAME, endpoint=hub.url))

    hub.corrupt(offset=3, path="README.md")
    assert httpx2.get(url).content[3] != httpx2.get(url).content[3]

    log = settled(hub)
    assert [(r.method, r.status) for r in log[:3]] == [("GET", 429), ("GET", 429), ("GET", 200)]
    dropped = log[3]
    assert dropped.path.endswith(SMOLLM2_FILENAME) and dropped.bytes_sent == 100


def test_stall_and_throttle(hub: LocalHub) -> None:
    url = hf_hub_url(REPO, SMOLLM2_FILENAME, endpoint=hub.url)
    hub.stall(30, after_bytes=10)
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.get(url, timeout=0.5)

    hub.throttle(1_000_000, path=SMOLLM2_FILENAME)
    answer = httpx2.get(url, headers={"Range": "bytes=0-499999"})
    assert answer.status_code == 206 and len(answer.content) == 500_000
    assert [r.bytes_sent for r in settled(hub) if r.range == "bytes=0-499999"] == [500_000]


def test_paths_outside_the_repo_are_not_served(hub: LocalHub, hub_root: Path) -> None:
    (hub_root / "secret.txt").write_text("no")
    for path in (
        "/llmclient-test/SmolLM2-135M-Instruct-GGUF/resolve/main/..%2F..%2Fsecret.txt",
        "/llmclient-test/SmolLM2-135M-Instruct-GGUF/resolve/main/%2Fetc%2Fpasswd",
    ):
        assert httpx2.get(hub.url + path).status_code == 404


def test_stop_releases_stalled_responses(hub_root: Path) -> None:
    with LocalHub(hub_root) as server:
        server.stall(60)
        url = hf_hub_url(REPO, SMOLLM2_FILENAME, endpoint=server.url)
        with pytest.raises(httpx2.ReadTimeout):
            httpx2.get(url, timeout=0.3)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
