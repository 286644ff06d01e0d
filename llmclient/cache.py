"""Where models live: fetch, resume, verify, scan, list and remove GGUF files in the user's cache directory.

The layout is huggingface_hub's own, so its tools (`huggingface_hub.scan_cache_dir`, `hf cache`) can read it:

    <root>/models--<owner>--<name>/
        blobs/<etag>                 verified files, named by their sha256 (git sha1 for small non-LFS files)
        blobs/<etag>.partial         an unfinished download, resumed by the next fetch; never trusted
        snapshots/<commit>/<file>    links to the blobs: the paths handed to callers
        refs/<revision>              the commit a branch or tag pointed to when last fetched
        verified/<etag>.json         size, mtime and sha256 recorded at verification, so nothing is re-hashed
        gguf/<etag>.json             a GGUF header's parsed metadata (read with HTTP ranges, no download)
        gguf/refs/<revision>/<file>.json   which etag and commit a file had when its metadata was read
    <root>/.locks/models--<owner>--<name>/<etag>.lock   one transfer per file across processes

A blob is trusted only while its size and mtime match its record; anything else is re-hashed first.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import anyio

from llmclient._hub.gguf_info import gguf_info
from llmclient._hub.layout import RepoFolders, atomic_write, fsync_dir
from llmclient._hub.lock import file_lock
from llmclient._hub.progress import Progress, TqdmReporter, reporter_for
from llmclient._hub.reference import COMMIT_RE, validate_reference
from llmclient._hub.resolve import RemoteFile, resolve
from llmclient._hub.retry import Backoff, with_retries
from llmclient._hub.scan import CachedFile, CacheScan, PartialDownload, scan_cache
from llmclient._hub.transfer import HttpClientBuilder, PartialFile, download
from llmclient.constants import DEFAULT_MAX_RETRIES, default_cache_dir, download_timeout, hub_offline
from llmclient.errors import HubUnavailableError, OfflineError, VerificationError
from llmclient.metadata import GgufInfo
from llmclient.types import CachedModel, VerifyReport

__all__ = ["CacheScan", "CachedFile", "ModelCache", "PartialDownload", "Progress"]

logger = logging.getLogger("llmclient")


def _hash_file(path: Path, etag: str) -> tuple[str, str]:
    """The file's sha256, and its digest in `etag`'s kind (sha256, or git blob sha1 for a 40-character etag)."""
    sha256 = hashlib.sha256()
    git = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False) if len(etag) == 40 else None
    with path.open("rb") as fh:
        while chunk := fh.read(8 << 20):
            sha256.update(chunk)
            if git is not None:
                git.update(chunk)
    digest = sha256.hexdigest()
    return digest, (git.hexdigest() if git is not None else digest)


class ModelCache:
    """The model cache: verified, resumable downloads from the Hugging Face Hub (or any compatible endpoint).

    Every method is async and keeps file I/O and hashing off the event loop.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        timeout: float | None = None,
        retries: int = DEFAULT_MAX_RETRIES,
        retry_wait: float = 1.0,
    ) -> None:
        """A cache in `root` (default `$LLMCLIENT_CACHE_DIR`, else `platformdirs.user_cache_dir("llmclient")`).

        `timeout`: seconds without a byte before an attempt is abandoned (default `$LLMCLIENT_DOWNLOAD_TIMEOUT`
        or 30). `retries`: failed attempts in a row, without progress, before giving up. `retry_wait`: the
        first pause between attempts, doubled after each failure (a `Retry-After` from the hub wins).
        """
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.timeout = timeout if timeout is not None else download_timeout()
        self.retries = retries
        self.retry_wait = retry_wait

    def __repr__(self) -> str:
        return f"ModelCache({str(self.root)!r})"

    # --- fetch -----------------------------------------------------------------------------------

    async def fetch(
        self,
        repo_id: str,
        filename: str,
        revision: str = "main",
        *,
        endpoint: str | None = None,
        token: str | bool | None = None,
        progress: Progress = True,
        offline: bool | None = None,
    ) -> CachedModel:
        """The verified local copy of `filename` from `repo_id` at `revision`, downloading it if needed.

        A cached, verified file returns without a download; offline (`offline=True` or `HF_HUB_OFFLINE=1`) or
        when `revision` is a commit hash, without any request. An interrupted download (crash, cancellation,
        dropped connection) resumes from its partial file. The bytes are checked against the hub's sha256
        before the file becomes visible. Concurrent fetches of one file, in any processes, share one transfer.

        Raises `InvalidModelReferenceError`, `ModelNotFoundError`, `GatedModelError`, `OfflineError`,
        `DownloadError`, `VerificationError` or `InsufficientDiskError`; each says what to do.
        """
        validate_reference(repo_id, filename, revision)
        repo = RepoFolders(self.root, repo_id)
        offline = hub_offline() if offline is None else offline
        if offline or COMMIT_RE.match(revision):
            cached = await anyio.to_thread.run_sync(self._lookup, repo, filename, revision)
            if cached is not None:
                return cached
            if offline:
                raise OfflineError(
                    f"{repo_id}/{filename} (revision {revision!r}) is not in the cache at {self.root}, and offline "
                    "mode is on (HF_HUB_OFFLINE=1 or offline=True). Fetch it once while online, or point "
                    "LLMCLIENT_CACHE_DIR at a cache that has it."
                )

        # No copy here at all: a download is coming, so get its HTTP client ready while the hub is asked.
        has_copy = await anyio.to_thread.run_sync(self._has_copy, repo, filename, revision)
        builder = None if has_copy else HttpClientBuilder()
        backoff = Backoff(self.retries, self.retry_wait)
        try:
            remote = await with_retries(
                lambda: resolve(repo_id, filename, revision, endpoint=endpoint, token=token, timeout=self.timeout),
                backoff,
                what=f"resolving {repo_id}/{filename}",
            )
        except HubUnavailableError as error:
            cached = await anyio.to_thread.run_sync(self._lookup, repo, filename, revision)
            if cached is not None:
                logger.warning("%s; using the cached %s/%s at commit %s", error, repo_id, filename, cached.commit)
                return cached
            raise

        cached = await anyio.to_thread.run_sync(self._adopt, repo, remote)
        if cached is not None:
            return cached
        async with file_lock(repo.lock(remote.etag)):
            cached = await anyio.to_thread.run_sync(self._adopt, repo, remote)  # another process may have finished
            if cached is not None:
                return cached
            partial = PartialFile(repo.blob(remote.etag + ".partial"))
            reporter = reporter_for(progress, filename)
            try:
                await download(
                    remote, partial, backoff, builder or HttpClientBuilder(), timeout=self.timeout, progress=reporter
                )
            finally:
                if isinstance(reporter, TqdmReporter):
                    reporter.close()
            return await anyio.to_thread.run_sync(self._commit_download, repo, remote, partial)

    async def gguf_info(
        self,
        repo_id: str,
        filename: str,
        revision: str = "main",
        *,
        endpoint: str | None = None,
        token: str | bool | None = None,
        offline: bool | None = None,
    ) -> GgufInfo:
        """The model metadata in a hub GGUF file's header, read without downloading the file.

        The header is read with HTTP Range requests (only its first bytes) and stored in the cache, so asking
        again, or offline, makes no transfer; a file already in the cache is read locally. For a split model,
        every shard's header is read. Raises as `fetch` does, and `ModelFormatError` for a file that is not a
        GGUF model.
        """
        return await gguf_info(
            self.root,
            repo_id,
            filename,
            revision,
            endpoint=endpoint,
            token=token,
            offline=offline,
            timeout=self.timeout,
            backoff=Backoff(self.retries, self.retry_wait),
        )

    # --- maintenance -----------------------------------------------------------------------------

    async def scan(self) -> CacheScan:
        """Everything the cache holds, from its layout alone (nothing is hashed): each repo, each file at each
        commit with its size, whether it is verified, and the refs that named the commit; unfinished downloads."""
        return await anyio.to_thread.run_sync(scan_cache, self.root)

    async def list(self) -> list[CachedModel]:
        """Every verified file in the cache, newest commit first within a repo; nothing is hashed (see `scan`)."""
        return await anyio.to_thread.run_sync(self._list)

    async def verify(self, repo_id: str | None = None, filename: str | None = None) -> builtins.list[VerifyReport]:
        """Re-hash cached files (all, a repo's, or one) against their recorded sha256.

        A file that no longer matches is removed, so the next `fetch` downloads it afresh.
        """
        return await anyio.to_thread.run_sync(self._verify, repo_id, filename)

    async def remove(self, repo_id: str, filename: str | None = None) -> int:
        """Remove a repo's cached files (or one of them) and any partial downloads; the bytes freed."""
        return await anyio.to_thread.run_sync(self._remove, repo_id, filename)

    # --- blocking helpers (run in worker threads) ------------------------------------------------

    def _lookup(self, repo: RepoFolders, filename: str, revision: str) -> CachedModel | None:
        """The cached file for `revision` (a commit, or a ref recorded earlier), verified; no request."""
        commit = revision
        if not COMMIT_RE.match(revision):
            try:
                commit = repo.ref(revision).read_text().strip()
            except OSError:
                return None
        link = repo.snapshot(commit, filename)
        if not link.exists():
            return None
        return self._trusted(repo, filename, commit, Path(os.path.realpath(link)).name, link)

    def _has_copy(self, repo: RepoFolders, filename: str, revision: str) -> bool:
        """Whether some copy of the file is linked here for `revision` (not checked: a hint, not trust)."""
        commit = revision if COMMIT_RE.match(revision) else None
        if commit is None:
            try:
                commit = repo.ref(revision).read_text().strip()
            except OSError:
                return False
        return repo.snapshot(commit, filename).exists()

    def _trusted(self, repo: RepoFolders, filename: str, commit: str, etag: str, link: Path) -> CachedModel | None:
        """A `CachedModel` if the blob matches its record (re-hashing only when the record does not fit)."""
        blob = repo.blob(etag)
        try:
            st = blob.stat()
        except OSError:
            return None
        try:
            record = json.loads(repo.record(etag).read_text())
            fits = record["size"] == st.st_size and record["mtime_ns"] == st.st_mtime_ns
        except (OSError, ValueError, KeyError, TypeError):
            record, fits = {}, False
        if not fits:
            sha256, digest = _hash_file(blob, etag)
            if digest != etag:
                logger.warning("cached %s/%s does not match its checksum; removing it", repo.repo_id, filename)
                blob.unlink(missing_ok=True)
                repo.record(etag).unlink(missing_ok=True)
                return None
            record = self._write_record(repo, etag, sha256, blob)
        return CachedModel(link, repo.repo_id, filename, commit, int(record["size"]), str(record["sha256"]))

    def _adopt(self, repo: RepoFolders, remote: RemoteFile) -> CachedModel | None:
        """If the blob the hub names is already verified here, link it for this commit and return it."""
        if not repo.blob(remote.etag).exists():
            return None
        link = repo.snapshot(remote.commit, remote.filename)
        trusted = self._trusted(repo, remote.filename, remote.commit, remote.etag, link)
        if trusted is not None:
            self._link(repo, remote)
        return trusted

    def _commit_download(self, repo: RepoFolders, remote: RemoteFile, partial: PartialFile) -> CachedModel:
        """Verify the finished partial file and make it visible (atomic rename), or remove it."""
        sha256 = digest = partial.sha256.hexdigest()
        if len(remote.etag) == 40:  # a small non-LFS file: the hub's checksum is its git blob sha1
            sha256, digest = _hash_file(partial.path, remote.etag)
        if digest != remote.etag:
            partial.path.unlink(missing_ok=True)
            raise VerificationError(
                f"{remote.repo_id}/{remote.filename} arrived corrupted: its checksum is {digest}, the hub says "
                f"{remote.etag}. The bad bytes were removed; fetch again to download it afresh (if this repeats, "
                "a proxy or mirror may be altering the file).",
                expected=remote.etag,
                actual=digest,
            )
        blob = repo.blob(remote.etag)
        os.replace(partial.path, blob)
        fsync_dir(blob.parent)
        self._write_record(repo, remote.etag, sha256, blob)
        link = self._link(repo, remote)
        return CachedModel(link, repo.repo_id, remote.filename, remote.commit, blob.stat().st_size, sha256)

    def _write_record(self, repo: RepoFolders, etag: str, sha256: str, blob: Path) -> dict[str, object]:
        st = blob.stat()
        record = {
            "repo_id": repo.repo_id,
            "etag": etag,
            "sha256": sha256,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "verified_at": time.time(),
        }
        atomic_write(repo.record(etag), json.dumps(record, indent=1))
        return record

    def _link(self, repo: RepoFolders, remote: RemoteFile) -> Path:
        """Point `snapshots/<commit>/<file>` at the blob and record `refs/<revision>`; returns the link."""
        link = repo.snapshot(remote.commit, remote.filename)
        blob = repo.blob(remote.etag)
        if not (link.is_symlink() and Path(os.path.realpath(link)) == blob.resolve()):
            link.parent.mkdir(parents=True, exist_ok=True)
            tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                tmp.symlink_to(os.path.relpath(blob, link.parent))
            except OSError:  # no symlinks (Windows without developer mode): a hard link, then a copy
                try:
                    os.link(blob, tmp)
                except OSError:
                    shutil.copy2(blob, tmp)
            os.replace(tmp, link)
        if remote.revision != remote.commit:
            atomic_write(repo.ref(remote.revision), remote.commit)
        return link

    def _list(self) -> builtins.list[CachedModel]:
        return [
            CachedModel(f.path, f.repo_id, f.filename, f.commit, f.size, f.sha256)
            for f in scan_cache(self.root).files
            if f.sha256 is not None and f.state != "missing"  # never verified, or gone: not a usable model
        ]

    def _verify(self, repo_id: str | None, filename: str | None) -> builtins.list[VerifyReport]:
        reports = []
        for file in scan_cache(self.root, repo_id).files:
            if file.state == "missing" or filename not in (None, file.filename):
                continue
            repo, etag = RepoFolders(self.root, file.repo_id), file.etag
            blob = repo.blob(etag)
            sha256, digest = _hash_file(blob, etag)
            ok = digest == etag
            model = CachedModel(file.path, repo.repo_id, file.filename, file.commit, blob.stat().st_size, sha256)
            if ok:
                self._write_record(repo, etag, sha256, blob)
            else:
                logger.warning("%s/%s is corrupted on disk; removed", repo.repo_id, file.filename)
                blob.unlink()
                repo.record(etag).unlink(missing_ok=True)
            reports.append(VerifyReport(model, ok, sha256))
        return reports

    def _remove(self, repo_id: str, filename: str | None) -> int:
        validate_reference(repo_id, filename or "x", "main")
        repo = RepoFolders(self.root, repo_id)
        freed = 0
        if filename is None:
            if repo.folder.is_dir():
                freed = sum(p.stat().st_size for p in (repo.folder / "blobs").glob("*") if p.is_file())
                shutil.rmtree(repo.folder)
            return freed
        etags = set()
        for file in scan_cache(self.root, repo_id).files:
            if file.filename == filename:
                etags.add(file.etag)
                file.path.unlink()
        still_used = {file.etag for file in scan_cache(self.root, repo_id).files}
        for etag in etags - still_used:
            for path in (repo.blob(etag), repo.blob(etag + ".partial"), repo.record(etag)):
                if path.exists():
                    freed += path.stat().st_size if path.parent.name == "blobs" else 0
                    path.unlink()
        return freed
