"""The llama.cpp backend: a `llama_cpp.Llama` driven only from its worker thread.

Loads with the plan's settings (context, GPU layers, threads, flash attention, a window-sized SWA cache) and
generates through llama-cpp-python's streaming completion, checking the cancel signal at every token.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from llmclient.backends import GenerateRequest, Piece

__all__ = ["LlamaCppBackend", "LlamaCppSettings"]

logger = logging.getLogger("llmclient")


@dataclass(frozen=True)
class LlamaCppSettings:
    """How to load a model in llama.cpp (normally taken from a `Plan`)."""

    n_ctx: int = 4096
    n_gpu_layers: int = 0
    threads: int | None = None
    flash_attn: bool = True
    chat_format: str | None = None
    """A llama-cpp-python chat format (`chatml`, `llama-3`, `mistral-instruct`, `gemma`, ...) replacing the GGUF's
    own template; None uses the template in the file."""
    tensor_split: tuple[float, ...] = ()
    seed: int = 0xFFFFFFFF
    verbose: bool = False


class _Cancelled(Exception):
    pass


class LlamaCppBackend:
    """A loaded GGUF model. Not thread-safe: only the worker thread that created it may call it."""

    def __init__(self, path: str | os.PathLike[str], settings: LlamaCppSettings) -> None:
        """Load `path` (blocking: seconds for a large model)."""
        import llama_cpp

        self.path = os.fspath(path)
        self.settings = settings
        threads = settings.threads or os.cpu_count() or 1
        self._llm: Any = llama_cpp.Llama(
            self.path,
            n_ctx=settings.n_ctx,
            n_gpu_layers=settings.n_gpu_layers,
            n_threads=threads,
            n_threads_batch=threads,
            flash_attn=settings.flash_attn,
            swa_full=False,
            chat_format=settings.chat_format,
            tensor_split=list(settings.tensor_split) or None,
            seed=settings.seed,
            verbose=settings.verbose,
        )

    @property
    def n_ctx(self) -> int:
        return int(self._llm.n_ctx())

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    def generate(self, request: GenerateRequest, emit: Callable[[Piece], None], cancelled: Callable[[], bool]) -> None:
        import llama_cpp

        seen = {"prompt": 0, "steps": 0}
        eos = int(self._llm.token_eos())

        def watch(input_ids: Any, scores: Any) -> Any:
            # Called before each token is sampled: an exact prompt count, and the earliest point to stop. It runs
            # inside a C callback, where an exception would be swallowed: a cancelled request samples end-of-text.
            if seen["steps"] == 0:
                seen["prompt"] = len(input_ids)
            seen["steps"] += 1
            if cancelled():
                scores[:] = -float("inf")
                scores[eos] = 0.0
            return scores

        sampling = dict(request.sampling)
        sampling.setdefault("max_tokens", None)  # to the end of the context (llama-cpp-python's completion says 16)
        processors = llama_cpp.LogitsProcessorList([watch])
        self._llm.reset()
        text_parts: list[str] = []
        finish: str | None = None
        stream: Iterator[Any] | None = None
        try:
            if request.messages is not None:
                stream = self._llm.create_chat_completion(
                    request.messages, stream=True, logits_processor=processors, **sampling
                )
                for chunk in stream:
                    if cancelled():
                        raise _Cancelled
                    choice = chunk["choices"][0]
                    piece = choice["delta"].get("content") or ""
                    finish = choice.get("finish_reason") or finish
                    if piece:
                        text_parts.append(piece)
                        emit(Piece(piece))
            else:
                stream = self._llm.create_completion(
                    request.prompt or "", stream=True, logits_processor=processors, **sampling
                )
                for chunk in stream:
                    if cancelled():
                        raise _Cancelled
                    choice = chunk["choices"][0]
                    finish = choice.get("finish_reason") or finish
                    if choice["text"]:
                        text_parts.append(choice["text"])
                        emit(Piece(choice["text"]))
        except _Cancelled:
            finish = "cancelled"
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # ends llama-cpp-python's generator, which frees its state
        if cancelled():
            finish = "cancelled"
        text = "".join(text_parts)
        emit(Piece("", finish or "stop", seen["prompt"], self.count_tokens(text) if text else 0))

    def close(self) -> None:
        self._llm.close()
