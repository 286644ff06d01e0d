"""llama.cpp's log, as llama-cpp-python prints it, less one false alarm of ours.

With one KV cache shared by the parallel requests (`kv_unified`), llama.cpp compares the whole cache with the
model's training context and logs, at error level, `n_ctx_seq (32768) > n_ctx_train (8192) -- possible training
context overflow`, though no request may hold more than the plan's context. While such a context is created that
one line is dropped; a context whose requests could overflow (a `.ctx(n)` above the trained length) still logs it.
Nor is its warning that a pooling other than the GGUF's was asked for (`model default pooling_type is [-1], but
[1] was specified`): the builder's `.pooling(...)` asks for it on purpose.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import threading
from collections.abc import Iterator
from typing import Any

import llama_cpp

__all__ = ["quiet_pooling_note", "unified_kv_is_no_overflow"]

_NOTE = re.compile(rb"n_ctx_seq \((\d+)\) > n_ctx_train \((\d+)\) -- possible training context overflow")
_POOLING = re.compile(rb"model default pooling_type is \[-?\d+\], but \[\d+\] was specified")
_expected: set[tuple[int, int]] = set()
_lock = threading.Lock()
_installed: Any = None


def _install() -> None:
    global _installed
    from llama_cpp import _logger  # llama-cpp-python's own callback: it honours `verbose`

    forward = _logger.llama_log_callback

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def filtered(level: int, text: bytes, data: ctypes.c_void_p) -> None:
        if _POOLING.search(text or b""):
            return
        match = _NOTE.search(text or b"")
        if match is not None:
            with _lock:
                if (int(match[1]), int(match[2])) in _expected:
                    return
        forward(level, text, data)

    _installed = filtered  # ctypes callbacks must outlive their use
    llama_cpp.llama_log_set(filtered, ctypes.c_void_p(0))


@contextlib.contextmanager
def unified_kv_is_no_overflow(kv_tokens: int, n_ctx_train: int) -> Iterator[None]:
    """Within: llama.cpp's overflow note for a shared cache of `kv_tokens` over `n_ctx_train` is not printed."""
    with _lock:
        if _installed is None:
            _install()
        _expected.add((kv_tokens, n_ctx_train))
    try:
        yield
    finally:
        with _lock:
            _expected.discard((kv_tokens, n_ctx_train))


def quiet_pooling_note() -> None:
    """From now on, llama.cpp's warning that a pooling other than the GGUF's was asked for is not printed."""
    with _lock:
        if _installed is None:
            _install()
