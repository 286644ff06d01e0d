"""LocalHub's side of the wire: the HTTP handler that answers in the Hugging Face Hub's terms and applies faults."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from llmclient.testing._repos import RepoFile, RepoIndex


@dataclass(frozen=True)
class HubRequest:
    """One request LocalHub answered, as the tests see it."""

    method: str
    path: str
    """The URL path, undecoded, without the query string."""
    headers: Mapping[str, str]
    status: int
    bytes_sent: int
    """Body bytes sent (for a dropped connection, those sent before the drop)."""
    time: float
    """`time.monotonic()` when the request arrived."""

    @property
    def range(self) -> str | None:
        """The request's `Range` header, if any."""
        return self.headers.get("range")


@dataclass
class Fault:
    kind: str
    times: int | None  # None: every matching request
    path: str | None  # substring the request path must contain
    methods: frozenset[str]
    status: int = 500
    retry_after: float | None = None
    after_bytes: int = 0
    offset: int | None = None
    seconds: float = 0.0
    rate: float = 0.0
    used: int = field(default=0)


class ServedHub(Protocol):
    """What the handler needs of the hub it answers for: `LocalHub` is one (named here, not imported, so that
    `localhub` builds on this module and never the other way round)."""

    root: Path
    index: RepoIndex
    gated: set[str]
    token: str | None
    _stopping: threading.Event

    def _begin(self) -> None: ...

    def _take_faults(self, method: str, path: str) -> list[Fault]: ...

    def _record(self, request: HubRequest) -> None: ...


class HubServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    hub: ServedHub

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.open_sockets: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        for sock in list(self.open_sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Dropped(Exception):
    pass


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HubServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # the hub keeps its own log

    def do_HEAD(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    # --- dispatch --------------------------------------------------------------------------------

    def _handle(self) -> None:
        self.server.hub._begin()
        self._arrived = time.monotonic()
        self._sent = 0
        self._status = 0
        hub = self.server.hub
        split = urlsplit(self.path)
        self._query = parse_qs(split.query)
        try:
            self._body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            faults = hub._take_faults(self.command, split.path)
            fail = next((f for f in faults if f.kind == "fail"), None)
            if fail is not None:
                headers = {} if fail.retry_after is None else {"Retry-After": f"{fail.retry_after:g}"}
                self._error(fail.status, "", f"LocalHub injected {fail.status}", headers)
            else:
                self._route(split.path, faults)
        except _Dropped:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            hub._record(
                HubRequest(
                    self.command,
                    split.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self._status,
                    self._sent,
                    self._arrived,
                )
            )

    def _route(self, path: str, faults: list[Fault]) -> None:
        parts = path.strip("/").split("/")
        if len(parts) >= 4 and parts[0] == "api" and parts[1] == "models":
            repo_id, rest = f"{unquote(parts[2])}/{unquote(parts[3])}", parts[4:]
            if not self._repo_ok(repo_id):
                return
            if not rest and self.command == "GET":
                return self._model_info(repo_id, "main")
            if len(rest) == 2 and rest[0] == "revision" and self.command == "GET":
                return self._model_info(repo_id, unquote(rest[1]))
            if len(rest) >= 2 and rest[0] == "tree" and self.command == "GET":
                return self._tree(repo_id, unquote(rest[1]), unquote("/".join(rest[2:])))
            if len(rest) == 2 and rest[0] == "paths-info" and self.command == "POST":
                return self._paths_info(repo_id, unquote(rest[1]))
        elif len(parts) >= 5 and parts[2] == "resolve" and self.command in ("GET", "HEAD"):
            repo_id = f"{unquote(parts[0])}/{unquote(parts[1])}"
            if not self._repo_ok(repo_id):
                return
            commit = self._revision_ok(repo_id, unquote(parts[3]))
            if commit is None:
                return
            filename = unquote("/".join(parts[4:]))
            file = self.server.hub.index.file(repo_id, filename)
            if file is None:
                return self._error(
                    404, "EntryNotFound", f'{filename} does not exist on "{parts[3]}"', {"X-Repo-Commit": commit}
                )
            return self._resolve(file, commit, faults)
        self._error(404, "", "Sorry, we can't find the page you are looking for.")

    def _repo_ok(self, repo_id: str) -> bool:
        hub = self.server.hub
        if not hub.index.exists(repo_id):
            self._error(404, "RepoNotFound", "Repository not found")
            return False
        if repo_id in hub.gated and self.headers.get("Authorization") != f"Bearer {hub.token}":
            status = 403 if self.headers.get("Authorization") else 401
            self._error(
                status,
                "GatedRepo",
                f"Access to model {repo_id} is restricted. You must have access to it "
                "and be authenticated to access it. Please log in.",
            )
            return False
        return True

    def _revision_ok(self, repo_id: str, revision: str) -> str | None:
        commit = self.server.hub.index.commit(repo_id)
        if revision in ("main", commit):
            return commit
        self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return None

    # --- answers ---------------------------------------------------------------------------------

    def _model_info(self, repo_id: str, revision: str) -> None:
        commit = self._revision_ok(repo_id, revision)
        if commit is not None:
            blobs = self._query.get("blobs", ["false"])[0].lower() == "true"
            gated = repo_id in self.server.hub.gated
            self._json(self.server.hub.index.model_info(repo_id, commit, blobs=blobs, gated=gated))

    def _tree(self, repo_id: str, revision: str, prefix: str) -> None:
        commit = self._revision_ok(repo_id, revision)
        if commit is not None:
            recursive = self._query.get("recursive", ["false"])[0].lower() == "true"
            expand = self._query.get("expand", ["false"])[0].lower() == "true"
            self._json(self.server.hub.index.tree(repo_id, commit, prefix, recursive=recursive, expand=expand))

    def _paths_info(self, repo_id: str, revision: str) -> None:
        commit = self._revision_ok(repo_id, revision)
        if commit is None:
            return
        if "json" in (self.headers.get("Content-Type") or ""):
            form = {k: v if isinstance(v, list) else [v] for k, v in json.loads(self._body or b"{}").items()}
        else:
            form = parse_qs(self._body.decode())
        expand = str(form.get("expand", ["false"])[0]).lower() == "true"
        index = self.server.hub.index
        answer = []
        for path in form.get("paths", []):
            file = index.file(repo_id, str(path))
            if file is not None:
                answer.append(file.to_json(expand=expand, commit=commit))
            elif (self.server.hub.root / repo_id / str(path)).is_dir() and ".." not in str(path):
                answer.append({"type": "directory", "oid": commit, "size": 0, "path": str(path).strip("/")})
        self._json(answer)

    def _resolve(self, file: RepoFile, commit: str, faults: list[Fault]) -> None:
        size = file.size
        start, end, status = 0, size - 1, 200
        wanted = self.headers.get("Range")
        if wanted and not any(f.kind == "ignore_range" for f in faults):
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted.strip())
            if match is None or not (match[1] or match[2]):
                return self._error(416, "", "Invalid range", {"Content-Range": f"bytes */{size}"})
            if match[1]:
                start, end = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1)
            else:
                start = max(size - int(match[2]), 0)
            if start >= size or start > end:
                return self._error(416, "", "Range Not Satisfiable", {"Content-Range": f"bytes */{size}"})
            status = 206
        self._status = status
        self.send_response(status)
        etag = f'"{file.etag}"'
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "ETag": etag,
            "X-Repo-Commit": commit,
            "Content-Length": str(end - start + 1),
            "Content-Disposition": f'inline; filename="{Path(file.path).name}"',
        }
        if file.sha256 is not None:
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": str(size)})
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "GET":
            self._send_body(file, start, end + 1, faults)

    def _send_body(self, file: RepoFile, start: int, stop: int, faults: list[Fault]) -> None:
        shaping = [f for f in faults if f.kind in ("drop", "corrupt", "stall", "throttle")]
        with file.local.open("rb") as fh:
            if not shaping:  # the fast path: the kernel copies the file to the socket
                offset = start
                while offset < stop:
                    sent = os.sendfile(self.connection.fileno(), fh.fileno(), offset, min(stop - offset, 1 << 24))
                    if sent == 0:
                        raise _Dropped
                    offset += sent
                    self._sent += sent
                return
            fh.seek(start)
            offset = start
            began = time.monotonic()
            stalled: set[int] = set()  # a stall holds each response once
            while offset < stop:
                chunk = bytearray(fh.read(min(64 * 1024, stop - offset)))
                for fault in shaping:
                    at = fault.after_bytes - self._sent
                    if fault.kind == "drop" and at < len(chunk):
                        self.wfile.write(chunk[:at])
                        self._sent += at
                        self.wfile.flush()
                        raise _Dropped
                    if fault.kind == "stall" and id(fault) not in stalled and 0 <= at < len(chunk):
                        self.wfile.write(chunk[:at])
                        self.wfile.flush()
                        self._sent += at
                        offset += at
                        chunk = chunk[at:]
                        stalled.add(id(fault))
                        self._pause(fault.seconds)
                    if fault.kind == "corrupt":
                        target = file.size // 2 if fault.offset is None else fault.offset
                        if offset <= target < offset + len(chunk):
                            chunk[target - offset] ^= 0xFF
                    if fault.kind == "throttle":
                        ahead = (self._sent + len(chunk)) / fault.rate - (time.monotonic() - began)
                        if ahead > 0:
                            self._pause(ahead)
                self.wfile.write(chunk)
                self._sent += len(chunk)
                offset += len(chunk)
            self.wfile.flush()

    def _pause(self, seconds: float) -> None:
        """Send nothing for `seconds`; ends early (dropping the response) if the hub stops or the client leaves."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.server.hub._stopping.wait(min(left, 0.05)) or self._client_left():
                raise _Dropped

    def _client_left(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        try:
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _json(self, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self._status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
            self._sent = len(body)

    def _error(self, status: int, code: str, message: str, extra: Mapping[str, str] | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self._status = status
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
