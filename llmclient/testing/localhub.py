"""LocalHub: a real HTTP server on 127.0.0.1 that speaks the Hugging Face Hub's download protocol.

Serve a folder laid out as `<root>/<owner>/<repo>/<file>` and point huggingface_hub (`HF_ENDPOINT=hub.url`,
`endpoint=hub.url`) or llmclient (`endpoint=hub.url`) at it:

    with LocalHub("mirror/") as hub:
        model = await ModelCache().fetch("owner/repo", "model.gguf", endpoint=hub.url)

It answers `HEAD`/`GET /{repo}/resolve/{revision}/{file}` (with `X-Repo-Commit`, `ETag`, `X-Linked-Etag`,
`X-Linked-Size`, and `Range` answered 206), `/api/models/{repo}[/revision/{rev}]`, `.../tree/{rev}` and
`.../paths-info/{rev}`, and errors the way the hub does (`X-Error-Code: RepoNotFound | EntryNotFound |
RevisionNotFound | GatedRepo`). Each repo has one revision, `main`, whose commit id changes when its files change.

For tests it injects faults (`fail`, `drop_after`, `corrupt`, `ignore_range`, `stall`, `throttle`) and keeps a
log of every request (`hub.requests`). For an air-gapped mirror: `python -m llmclient.testing.localhub ROOT`.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from llmclient.testing._protocol import Fault, HubHandler, HubRequest, HubServer
from llmclient.testing._repos import RepoIndex

__all__ = ["HubRequest", "LocalHub"]


class LocalHub:
    """A Hugging Face Hub download server for a local folder; a context manager exposing `url`."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        gated: Iterable[str] = (),
        token: str | None = None,
        checksums_in_listings: bool = True,
    ) -> None:
        """Serve `root` on `host:port` (port 0 picks a free one). Repos in `gated` need `Authorization: Bearer
        <token>`; without it they answer 401 `GatedRepo`, as the hub does before a license is accepted.

        `checksums_in_listings=False` leaves a file's sha256 out of repo listings until something asks for the file
        itself: for test repos of huge sparse files, whose hashing would take minutes (the real hub always lists
        them)."""
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"LocalHub root {self.root} is not a folder; create <root>/<owner>/<repo>/<file>")
        self.index = RepoIndex(self.root, hash_listings=checksums_in_listings)
        self.gated = set(gated)
        self.token = token
        self._host, self._port = host, port
        self._server: HubServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._faults: list[Fault] = []
        self._log: list[HubRequest] = []

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint to give huggingface_hub or llmclient, e.g. `http://127.0.0.1:54321`."""
        if self._server is None:
            raise RuntimeError("LocalHub is not running; use it as a context manager or call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalHub:
        """Start serving in a background thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = HubServer((self._host, self._port), HubHandler)
        self._server.hub = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="LocalHub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; stalled responses are released and open connections closed."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join()
        self._server = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- what tests read -------------------------------------------------------------------------

    @property
    def requests(self) -> list[HubRequest]:
        """Every request answered so far, in the order they arrived."""
        with self._lock:
            return sorted(self._log, key=lambda r: r.time)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being answered (a client can read the last byte before the hub logs it);
        False if requests are still in flight after `timeout` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def clear_log(self) -> None:
        """Forget the requests logged so far."""
        with self._lock:
            self._log.clear()

    def commit(self, repo_id: str) -> str:
        """The commit id `main` resolves to for `repo_id` now."""
        return self.index.commit(repo_id)

    def sha256(self, repo_id: str, filename: str) -> str:
        """The sha256 of a file as the hub reports it."""
        file = self.index.file(repo_id, filename)
        if file is None:
            raise FileNotFoundError(f"{repo_id}/{filename} is not served by this LocalHub")
        return file.sha256 or self.index.describe(filename, file.local).etag

    # --- fault injection (each applies to requests whose path contains `path`, if given) ---------

    def fail(
        self,
        status: int = 500,
        *,
        times: int | None = 1,
        retry_after: float | None = None,
        path: str | None = None,
        methods: Iterable[str] = ("GET", "HEAD"),
    ) -> None:
        """Answer the next `times` matching requests with `status` (and `Retry-After`, if given)."""
        self._add(Fault("fail", times, path, frozenset(methods), status=status, retry_after=retry_after))

    def drop_after(self, nbytes: int, *, times: int | None = 1, path: str | None = None) -> None:
        """Close the connection after sending `nbytes` of a file's body."""
        self._add(Fault("drop", times, path, frozenset({"GET"}), after_bytes=nbytes))

    def corrupt(self, offset: int | None = None, *, times: int | None = 1, path: str | None = None) -> None:
        """Flip the byte at file `offset` (default: the middle of the file) in transferred bodies."""
        self._add(Fault("corrupt", times, path, frozenset({"GET"}), offset=offset))

    def ignore_range(self, *, times: int | None = None, path: str | None = None) -> None:
        """Answer `Range` requests with 200 and the whole file, as some proxies and mirrors do."""
        self._add(Fault("ignore_range", times, path, frozenset({"GET"})))

    def stall(self, seconds: float, *, after_bytes: int = 0, times: int | None = 1, path: str | None = None) -> None:
        """Send nothing for `seconds` once `after_bytes` of a body are sent (released early by `stop`)."""
        self._add(Fault("stall", times, path, frozenset({"GET"}), seconds=seconds, after_bytes=after_bytes))

    def throttle(self, bytes_per_second: float, *, path: str | None = None) -> None:
        """Send file bodies no faster than `bytes_per_second`, until `clear_faults`."""
        self._add(Fault("throttle", None, path, frozenset({"GET"}), rate=bytes_per_second))

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with self._lock:
            self._faults.clear()

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_faults(self, method: str, path: str) -> list[Fault]:
        """The faults that apply to this request; each use counts against its `times`."""
        taken = []
        with self._lock:
            for fault in self._faults:
                exhausted = fault.times is not None and fault.used >= fault.times
                if exhausted or method not in fault.methods or (fault.path and fault.path not in path):
                    continue
                fault.used += 1
                taken.append(fault)
        return taken

    def _begin(self) -> None:
        with self._lock:
            self._in_flight += 1

    def _record(self, request: HubRequest) -> None:
        with self._lock:
            self._log.append(request)
            self._in_flight -= 1
            self._idle.notify_all()


def main(argv: list[str] | None = None) -> None:
    """`python -m llmclient.testing.localhub ROOT [--port N]`: serve a mirror folder until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m llmclient.testing.localhub", description=main.__doc__)
    parser.add_argument("root", help="folder laid out as <root>/<owner>/<repo>/<file>")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    with LocalHub(args.root, host=args.host, port=args.port) as hub:
        print(f"Serving {args.root} as a Hugging Face Hub at {hub.url}; set HF_ENDPOINT={hub.url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
