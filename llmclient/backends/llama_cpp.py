"""The llama.cpp backend: a `llama_cpp.Llama` driven only from its worker thread.

Loads with the plan's settings (context, GPU layers, threads, flash attention, a window-sized SWA cache) through
llama-cpp-python, which also gives the tokenizer and the chat template. Generation is our own lean loop over its
low-level bindings: `llama_batch` + `llama_decode`, llama.cpp's native sampler chain, incremental detokenization
that never splits a UTF-8 character, and reuse of the KV cache for a prompt's already-evaluated prefix (a chat's
history). The cancel signal is checked at every token and, through llama.cpp's abort callback, inside a long
prompt's evaluation.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmclient.backends import GenerateRequest, Piece
from llmclient.backends._sampling import SamplerChain
from llmclient.backends._text import TextAssembler
from llmclient.errors import ContextOverflowError

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
            tensor_split=list(settings.tensor_split) or None,
            seed=settings.seed,
            verbose=settings.verbose,
        )
        self._lib = llama_cpp
        self._ctx = self._llm._ctx.ctx
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm._model.model)
        self._n_vocab = int(self._llm.n_vocab())
        self._n_batch = int(self._llm.n_batch)
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        self._cached: list[int] = []
        """The tokens whose keys and values sit in the KV cache (sequence 0), in order."""
        self._abort_check: Callable[[], bool] = lambda: False
        # llama.cpp polls this while it computes a batch: a cancelled long prompt stops mid-way
        self._abort_cb = llama_cpp.ggml_abort_callback(lambda _data: bool(self._abort_check()))
        llama_cpp.llama_set_abort_callback(self._ctx, self._abort_cb, None)
        self._formatter = self._chat_formatter(settings.chat_format)
        self._piece = ctypes.create_string_buffer(256)

    def _chat_formatter(self, name: str | None) -> Callable[..., Any]:
        from llama_cpp import llama_chat_format as formats

        if name is not None:
            for attr in ("format_" + name.replace("-", "_"), "format_" + name.replace("-", "")):
                if hasattr(formats, attr):
                    return getattr(formats, attr)  # type: ignore[no-any-return]
            raise ValueError(f"unknown chat format {name!r}; use e.g. chatml, llama-3, mistral-instruct, gemma")
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            return formats.format_chatml  # type: ignore[no-any-return]

        def token(tid: int) -> str:
            return str(self._llm._model.token_get_text(tid)) if tid >= 0 else ""

        formatter: Callable[..., Any] = formats.Jinja2ChatFormatter(
            template=template, eos_token=token(self._llm.token_eos()), bos_token=token(self._llm.token_bos())
        )
        return formatter

    @property
    def n_ctx(self) -> int:
        return int(self._llm.n_ctx())

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    def prompt_tokens(self, request: GenerateRequest) -> tuple[list[int], list[str]]:
        """The request's prompt as tokens (through the chat template for messages), and the template's stops."""
        if request.messages is None:
            return list(self._llm.tokenize((request.prompt or "").encode(), add_bos=True, special=True)), []
        result = self._formatter(messages=request.messages)
        stops = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        tokens = self._llm.tokenize(result.prompt.encode(), add_bos=not result.added_special, special=True)
        return list(tokens), [s for s in stops if s]

    def _decode(self, tokens: list[int], start: int) -> int:
        """Evaluate `tokens` at positions from `start` (logits for the last only); llama_decode's status."""
        lib, batch = self._lib, self._batch
        for offset in range(0, len(tokens), self._n_batch):
            chunk = tokens[offset : offset + self._n_batch]
            batch.n_tokens = len(chunk)
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = start + offset + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = offset + i == len(tokens) - 1
            status = int(lib.llama_decode(self._ctx, batch))
            if status != 0:
                self._forget_from(start + offset)
                return status
            self._cached.extend(chunk)
        return 0

    def _forget_from(self, position: int) -> None:
        """Drop the KV cache from `position` on (all of it if llama.cpp cannot cut there, e.g. a SWA cache)."""
        memory = self._lib.llama_get_memory(self._ctx)
        if not self._lib.llama_memory_seq_rm(memory, 0, position, -1):
            self._lib.llama_memory_seq_rm(memory, 0, -1, -1)
            position = 0
        del self._cached[position:]

    def generate(self, request: GenerateRequest, emit: Callable[[Piece], None], cancelled: Callable[[], bool]) -> None:
        prompt, template_stops = self.prompt_tokens(request)
        n_ctx = self.n_ctx
        if len(prompt) >= n_ctx:
            raise ContextOverflowError(
                f"the prompt is {len(prompt)} tokens but the context holds {n_ctx}; shorten it, or load the model "
                f"with a larger context (.ctx(n))",
                prompt_tokens=len(prompt),
                n_ctx=n_ctx,
            )
        sampling = dict(request.sampling)
        stops = sampling.pop("stop", None) or []
        stops = [stops] if isinstance(stops, str) else list(stops)
        max_tokens = sampling.pop("max_tokens", None) or n_ctx
        # Reuse the cached prefix (a chat's history); at least the last prompt token is evaluated for its logits.
        common = 0
        for a, b in zip(self._cached, prompt, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(prompt) - 1)
        self._forget_from(common)
        common = len(self._cached)
        self._abort_check = cancelled
        chain = SamplerChain(self._n_vocab, sampling, self.settings.seed)
        text = TextAssembler([*stops, *template_stops])
        produced, finish = 0, "length"
        failed = True
        try:
            status = self._decode(prompt[common:], common)
            if status != 0:
                if cancelled():
                    emit(Piece("", "cancelled", len(prompt), 0, common))
                    return
                raise RuntimeError(f"llama_decode failed with status {status} while reading the prompt")
            lib = self._lib
            while produced < max_tokens:
                if cancelled():
                    finish = "cancelled"
                    break
                token = chain.sample(self._ctx, -1)
                if lib.llama_vocab_is_eog(self._vocab, token):
                    finish = "stop"
                    break
                n = lib.llama_token_to_piece(self._vocab, token, self._piece, len(self._piece), 0, False)
                if n < 0:
                    self._piece = ctypes.create_string_buffer(-n)
                    n = lib.llama_token_to_piece(self._vocab, token, self._piece, len(self._piece), 0, False)
                produced += 1
                shown = text.feed(self._piece.raw[:n])
                if shown:
                    emit(Piece(shown))
                if text.stopped:
                    finish = "stop"
                    break
                if len(self._cached) + 1 >= n_ctx:
                    break  # the context is full: finish "length"
                if self._decode([token], len(self._cached)) != 0:
                    if cancelled():
                        finish = "cancelled"
                        break
                    raise RuntimeError("llama_decode failed while generating")
            failed = False
        finally:
            chain.close()
            self._abort_check = lambda: False
            if failed:
                self._forget_from(0)  # the cache's state is unknown after a failure: start the next one afresh
        tail = text.finish() if finish != "cancelled" else ""
        emit(Piece(tail, finish, len(prompt), produced, common))

    def close(self) -> None:
        self._lib.llama_batch_free(self._batch)
        self._llm.close()
