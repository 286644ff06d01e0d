"""What mistral.rs 0.9.5 gets wrong, and how this engine keeps it from reaching the app.

Each was reproduced on this project's machines (see `BENCHMARKS.md` and the research notes it cites):

1. Prefill of two or more prompts of equal token length in one batch (or `n_choices > 1`) fails every sequence
   of that batch with `input tensor is not contiguous` (upstream #1882): `AdmissionLock` lets one request at a
   time from its submission to its first token, so no two prompts are ever prefilled together.
2. Two threads calling one `Runner` at once: `RuntimeError: Already borrowed`. Every call goes through
   `Worker.call` under one lock, and generations are streamed only: a non-streamed call holds the borrow (and
   the lock) until its answer is complete, and cannot be stopped.
3. The gemma3 GGUF tokenizer is built wrongly (words split into characters, garbage answers): `refuse_known_bad`
   refuses such models, naming the problem and the llama.cpp engine.
4. It logs to stdout, in colour, from import on unless `RUST_LOG` is set first: `import_mistralrs` sets it (and
   the compute threads) before the import, with the values from `llmclient.constants`.
5. A string `messages` is templated a second time: chats always go as message lists, raw prompts as
   `CompletionRequest`s.
6. Streamed tool calls leak their `<tool_call>` markup as content: `ToolMarkupFilter` holds back text that may
   start such markup and drops it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from types import ModuleType

from llmclient.constants import mistralrs_environment
from llmclient.errors import MissingDependencyError, UnsupportedModelError
from llmclient.metadata import GgufInfo

__all__ = [
    "KNOWN_BAD",
    "AdmissionLock",
    "ToolMarkupFilter",
    "import_mistralrs",
    "mistralrs_installed",
    "refuse_known_bad",
    "require_mistralrs",
]

INSTALL_HINT = 'pip install "llmclient[mistralrs]"'

#: Architectures mistral.rs 0.9.5 is known to get wrong from a GGUF file, and what goes wrong.
KNOWN_BAD: dict[str, str] = {
    "gemma3": "mistral.rs 0.9.5 builds the gemma3 GGUF tokenizer wrongly (its merge ranks are read as Unigram "
    "scores, so words are split into single characters and the answers are garbage)",
}


def mistralrs_installed() -> bool:
    """Whether the `mistralrs` package can be imported, without importing it (a `None` in `sys.modules`, as
    tests and sandboxes use to block an import, counts as not installed)."""
    if "mistralrs" in sys.modules:
        return sys.modules["mistralrs"] is not None
    try:
        return importlib.util.find_spec("mistralrs") is not None
    except (ImportError, ValueError):
        return False


def require_mistralrs() -> None:
    """Nothing if mistral.rs is installed; else `MissingDependencyError` saying how to install it."""
    if not mistralrs_installed():
        raise MissingDependencyError(
            f"the mistral.rs engine needs the optional `mistralrs` package: {INSTALL_HINT} (or pip install "
            "mistralrs==0.9.5); or use the llama.cpp engine, LlmClient.llama_cpp(), which needs nothing more",
            package="mistralrs",
            extra="mistralrs",
        )


_import_lock = threading.Lock()


def import_mistralrs(threads: int) -> ModuleType:
    """The `mistralrs` module, imported after its environment is set (`constants.mistralrs_environment`: its log
    filter, else it logs to stdout from the import on, and its compute threads); variables the app set are kept."""
    require_mistralrs()
    with _import_lock:
        if "mistralrs" not in sys.modules:
            os.environ.update(mistralrs_environment(threads))
        try:
            return importlib.import_module("mistralrs")
        except ImportError as error:  # a broken install: the same hint
            raise MissingDependencyError(
                f"`import mistralrs` failed ({error}); reinstall it: {INSTALL_HINT}", package="mistralrs",
                extra="mistralrs",
            ) from error  # fmt: skip


def refuse_known_bad(info: GgufInfo) -> None:
    """Nothing for a model mistral.rs runs correctly; `UnsupportedModelError` for one in `KNOWN_BAD`."""
    problem = KNOWN_BAD.get(info.architecture)
    if problem is not None:
        raise UnsupportedModelError(
            f"this {info.architecture} model cannot run on the mistral.rs engine: {problem}. Use the llama.cpp "
            "engine for it: LlmClient.llama_cpp() with the same model.",
            architecture=info.architecture,
        )


class AdmissionLock:
    """One request at a time between its submission and its first token (workaround 1): while a request holds it,
    no other prompt is sent, so mistral.rs never prefills two prompts in one batch. Requests already generating
    go on meanwhile; only the starts are serialised."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.admitted = 0
        """Requests that held it (for tests and statistics)."""

    def __enter__(self) -> AdmissionLock:
        self._lock.acquire()
        self.admitted += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class ToolMarkupFilter:
    """Streamed content with tool-call markup taken out (workaround 6): mistral.rs parses a `<tool_call>...
    </tool_call>` into the chunk's `tool_calls`, but streams the markup's first pieces (`<tool`, `_`, `call`, `>`) as
    content before it. Text that may be the start of a tag is held back until it is known not to be one."""

    TAGS = ("<tool_call>", "</tool_call>")

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        """The part of `text` (after what was held back) that is surely content."""
        text = self._held + text
        self._held = ""
        for tag in self.TAGS:
            text = text.replace(tag, "")
        start = text.rfind("<")
        if start != -1 and any(tag.startswith(text[start:]) for tag in self.TAGS):
            text, self._held = text[:start], text[start:]
        return text

    def flush(self) -> str:
        """What was held back at the end of the stream (a `<` that started no tag)."""
        held, self._held = self._held, ""
        return held
