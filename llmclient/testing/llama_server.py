"""A real llama-server for tests and benchmarks of the remote engine: built once per machine, run on 127.0.0.1.

`build_llama_server()` compiles llama.cpp's own HTTP server from the llama.cpp sources vendored in the sdist of
the installed llama-cpp-python (`pip download --no-binary :all: llama-cpp-python==<version>` from PyPI), so the
remote and in-process engines run one llama.cpp commit. The binary is cached outside any checkout, keyed by that
version: `<user cache dir>/llmclient/llama-server-<version>/llama-server` (`~/.cache/llmclient/...` on Linux); a
cached binary returns at once. `python scripts/build_llama_server.py` runs it (CI does, before the tests).

`LlamaServer(model)` starts one on a free port with `-t 1` (on shared cores more threads only contend), waits for
`/health` to answer 200 (it answers 503 while loading) and stops it by its pid.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import platformdirs
from filelock import FileLock

__all__ = ["LlamaServer", "build_llama_server", "llama_server_path"]

CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",  # as llmclient's CI builds llama-cpp-python: a native build crashes on AMX CPUs
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # else the build downloads the web UI; the server runs without it
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
)


def llama_cpp_python_version() -> str:
    """The installed llama-cpp-python's version (the sdist the server is built from)."""
    return importlib.metadata.version("llama-cpp-python")


def llama_server_path(version: str | None = None) -> Path:
    """Where the llama-server built from llama-cpp-python `version` (default: the installed one) is cached."""
    root = Path(platformdirs.user_cache_dir("llmclient", appauthor=False))
    return root / f"llama-server-{version or llama_cpp_python_version()}" / "llama-server"


def build_llama_server(*, jobs: int | None = None, nice: int = 10, log: IO[str] | None = None) -> Path:
    """The cached llama-server binary, built first if it is not there (minutes: about 13 CPU-minutes).

    Downloads the sdist from PyPI (the only address contacted), builds the `llama-server` target at nice
    `nice` with `jobs` compile jobs (default: every CPU), and moves the binary into place atomically."""
    version = llama_cpp_python_version()
    target = llama_server_path(version)
    if os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    out = log or sys.stderr
    with FileLock(str(target.parent / ".build.lock")):
        if os.access(target, os.X_OK):  # another process built it while this one waited
            return target
        with tempfile.TemporaryDirectory(prefix="llama-server-") as tmp:
            work = Path(tmp)

            def run(*command: str) -> None:
                print("+", " ".join(command), file=out, flush=True)
                subprocess.run(["nice", "-n", str(nice), *command], check=True, stdout=out, stderr=subprocess.STDOUT)

            run(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                f"llama-cpp-python=={version}", "-d", str(work / "sdist"))  # fmt: skip
            archive = next((work / "sdist").glob("*.tar.gz"))
            with tarfile.open(archive) as tar:
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python < 3.10.12 lacks it
                tar.extractall(work / "src", **safe)  # type: ignore[arg-type]
            source = next((work / "src").iterdir()) / "vendor" / "llama.cpp"
            run("cmake", "-S", str(source), "-B", str(work / "build"), *CMAKE_FLAGS)
            run("cmake", "--build", str(work / "build"), "--target", "llama-server", "-j", str(jobs or os.cpu_count()))
            partial = target.with_name("llama-server.partial")
            shutil.copy2(work / "build" / "bin" / "llama-server", partial)
            os.chmod(partial, 0o755)
            os.replace(partial, target)
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class LlamaServer:
    """One llama-server process on 127.0.0.1: `with LlamaServer(model) as server: ... server.url ...`."""

    def __init__(
        self,
        model: Path,
        *,
        parallel: int = 4,
        ctx: int = 8192,
        threads: int = 1,
        alias: str = "smollm2",
        args: Sequence[str] = (),
        binary: Path | None = None,
        log: Path | None = None,
    ) -> None:
        """`parallel` slots sharing a context of `ctx` tokens; `args`: more llama-server flags; `log`: where its
        output goes (default: a temporary file, shown when it fails to start)."""
        self.binary = binary or llama_server_path()
        self.command = [
            str(self.binary), "--model", str(model), "--host", "127.0.0.1", "--port", "0", "-t", str(threads),
            "-np", str(parallel), "-c", str(ctx), "--alias", alias, "--jinja", "--metrics", "--no-webui", *args,
        ]  # fmt: skip
        self.log = log
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 120.0) -> LlamaServer:
        """Start it on a free port and wait until `/health` answers 200; `RuntimeError` with its log otherwise."""
        if not os.access(self.binary, os.X_OK):
            raise FileNotFoundError(f"no llama-server at {self.binary}; build it: python scripts/build_llama_server.py")
        self.port = _free_port()
        command = [str(self.port) if c == "0" and self.command[i - 1] == "--port" else c
                   for i, c in enumerate(self.command)]  # fmt: skip
        if self.log is None:
            handle, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
            os.close(handle)
            self.log = Path(name)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"llama-server did not become healthy on port {self.port}:\n{tail}")

    def kill(self) -> None:
        """SIGKILL, as a crashed replica: no goodbye to its clients."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM by pid, then SIGKILL if it has not gone within 10 s."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
