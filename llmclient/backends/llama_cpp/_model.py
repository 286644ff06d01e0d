"""A llama.cpp model and its context, driven only from the decode thread: the llama.cpp engine's `StepModel`.

Loads with the plan's settings (context, parallel sequences sharing one KV cache, GPU layers, threads, flash
attention, a window-sized SWA cache) through llama-cpp-python's model and context wrappers, which also give the
tokenizer and the GGUF's chat template (rendered by `llmclient.chat.ChatTemplate`, sandboxed, with tools and
earlier calls in the model's own format, unless `.chat_template` or a named `chat_format` replaces it).
Generation is our own loop over its low-level bindings (`_batch.py`): every running request advances in one
`llama_decode` per step, each with llama.cpp's native sampler chain, incremental detokenization that never splits
a UTF-8 character, and reuse of the KV cache for an already evaluated prefix (a chat's history). Cancellation is
checked at every step and, through llama.cpp's abort callback, inside a long prompt's evaluation.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

# llama.cpp's native libraries must load before numpy (which `_batch` imports): on an H100 machine with numpy
# 2.5.2, a numpy loaded first made every CUDA model load crash in llama.cpp's tokenizer setup
import llama_cpp

# isort: split
from llmclient.backends import EmbedRequest, GenerateRequest
from llmclient.backends.llama_cpp._batch import BATCH_INVARIANT_CHUNK, BatchDecoder
from llmclient.backends.llama_cpp._constrain import build_tokenizer
from llmclient.backends.llama_cpp._embed import OPT_IN_EMBED_TOKENS, EmbedDecoder
from llmclient.backends.llama_cpp._log import unified_kv_is_no_overflow
from llmclient.backends.llama_cpp._settings import LlamaCppSettings, model_role
from llmclient.backends.llama_cpp._step import Emit, Prepared, PreparedEmbed
from llmclient.chat.formats import detect_format, system_folded, template_messages
from llmclient.chat.template import ChatTemplate
from llmclient.chat.tools import tools_from
from llmclient.constants import jump_forward, overlap_steps
from llmclient.errors import ContextOverflowError, InvalidRequestError, InvalidSettingError, UnsupportedFeatureError

__all__ = ["LlamaCppModel"]

logger = logging.getLogger("llmclient")


def _overlaps(settings: LlamaCppSettings) -> bool:
    """Whether the decoder hands out a step's tokens while the next batch computes: where layers run on a GPU,
    unless `$LLMCLIENT_OVERLAP` says otherwise."""
    chosen = overlap_steps()
    return settings.n_gpu_layers != 0 if chosen is None else chosen


class LlamaCppModel:
    """A loaded GGUF model (the engine's `StepModel`). Not thread-safe: once loaded, only the decode thread calls it."""

    def __init__(self, path: str | os.PathLike[str], settings: LlamaCppSettings) -> None:
        """Load `path` (blocking: seconds for a large model)."""
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose

        self.path = os.fspath(path)
        self.settings = settings
        set_verbose(settings.verbose)
        llama_cpp.llama_backend_init()
        threads = settings.threads or os.cpu_count() or 1
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = settings.n_gpu_layers if settings.n_gpu_layers >= 0 else 0x7FFFFFFF
        if settings.tensor_split:
            self._split = (ctypes.c_float * llama_cpp.LLAMA_MAX_DEVICES)(*settings.tensor_split)
            model_params.tensor_split = self._split
        model: Any = _internals.LlamaModel(path_model=self.path, params=model_params, verbose=settings.verbose)
        self._model = model
        self._lib = llama_cpp
        self._threads = self._threads_now = threads
        self.n_ctx = settings.n_ctx
        """The most tokens one request may hold."""
        self.parallel = max(1, settings.parallel)
        self._metadata = self._model.metadata()
        self._chat: BatchDecoder | None = None
        """Generation (None for an embedding model)."""
        self._embedder: EmbedDecoder | None = None
        self._embed_turn = False
        try:
            generates, pooling, causal = model_role(self._metadata, settings.pooling)
            if generates:
                self._chat = self._open_chat(settings, threads)
            if pooling is not None:  # a chat model's texts to embed get a context of their own, sharing the weights
                # no longer than trained: an encoder's position embeddings end there
                limit = min(settings.n_ctx, int(model.n_ctx_train()) or settings.n_ctx)
                max_tokens = limit if not generates else min(limit, OPT_IN_EMBED_TOKENS)
                self._embedder = EmbedDecoder(
                    llama_cpp, model, pooling=pooling, max_tokens=max_tokens, causal=causal, threads=threads,
                    flash_attn=settings.flash_attn, verbose=settings.verbose, on_cpu=settings.n_gpu_layers == 0,
                )  # fmt: skip
        except BaseException:
            if self._chat is not None:
                self._chat.close()
                self._context.close()
            model.close()
            raise
        self._tokenizer: Any = None
        self._tokenizer_lock = threading.Lock()
        self._template = self._chat_template(settings)
        self._formatter = self._chat_formatter(settings.chat_format)
        self.tool_format = detect_format(self._template.text if self._template is not None else None)
        """How this model's template writes tool calls (read by the engine on other threads; never changes)."""

    def _open_chat(self, settings: LlamaCppSettings, threads: int) -> BatchDecoder:
        """The generation context: `parallel` sequences sharing one KV cache, and the decoder that batches them."""
        from llama_cpp import _internals

        model, parallel = self._model, self.parallel
        kv_tokens = max(settings.kv_tokens or settings.n_ctx * parallel, settings.n_ctx)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = kv_tokens
        params.n_batch = max(512, parallel)
        params.n_ubatch = 512
        params.n_seq_max = parallel
        params.kv_unified = True
        params.swa_full = False
        params.n_threads = params.n_threads_batch = threads
        params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if settings.flash_attn else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        params.no_perf = True
        n_ctx_train = int(model.n_ctx_train())
        quiet = unified_kv_is_no_overflow(kv_tokens, n_ctx_train) if settings.n_ctx <= n_ctx_train else nullcontext()
        with quiet:
            self._context: Any = _internals.LlamaContext(model=model, params=params, verbose=settings.verbose)
        self._ctx = self._context.ctx
        # GPU kernels change with the batch size whatever we do; on the CPU, keeping to one kind of batch suffices
        invariant = settings.n_gpu_layers == 0 and parallel < BATCH_INVARIANT_CHUNK
        chunk = settings.prefill_chunk or (BATCH_INVARIANT_CHUNK if invariant else 256)
        decoder = BatchDecoder(
            llama_cpp, self._ctx, model.vocab, n_vocab=int(model.n_vocab()), n_batch=int(params.n_batch),
            n_ctx=settings.n_ctx, kv_tokens=int(llama_cpp.llama_n_ctx(self._ctx)), parallel=parallel,
            prefill_chunk=min(chunk, BATCH_INVARIANT_CHUNK) if invariant else chunk, seed=settings.seed,
            invariant=invariant, overlap=_overlaps(settings), jump_forward=jump_forward(),
        )  # fmt: skip
        # llama.cpp polls this while it computes a batch: a cancelled long prompt stops mid-way
        self._abort_cb = llama_cpp.ggml_abort_callback(lambda _data: decoder.abort())
        llama_cpp.llama_set_abort_callback(self._ctx, self._abort_cb, None)
        return decoder

    @property
    def _decoder(self) -> BatchDecoder:
        """The generation decoder, of a model that generates (tests look at its state)."""
        assert self._chat is not None
        return self._chat

    def _chat_formatter(self, name: str | None) -> Callable[..., Any] | None:
        """llama-cpp-python's format named `name` (or ChatML for a file without a template); None where the
        template (the builder's, else the file's) renders the prompt."""
        from llama_cpp import llama_chat_format as formats

        if self._template is not None:
            return None
        if name is not None:
            for attr in ("format_" + name.replace("-", "_"), "format_" + name.replace("-", "")):
                if hasattr(formats, attr):
                    return getattr(formats, attr)  # type: ignore[no-any-return]
            raise InvalidSettingError(
                f"unknown chat format {name!r}; use e.g. chatml, llama-3, mistral-instruct, gemma"
            )
        return formats.format_chatml  # type: ignore[no-any-return]

    def _chat_template(self, settings: LlamaCppSettings) -> ChatTemplate | None:
        """The Jinja template that renders chats: the builder's, else the file's (unless a named format is set)."""
        text = settings.chat_template
        if text is None and settings.chat_format is None:
            text = self._metadata.get("tokenizer.chat_template") or None
        if text is None:
            return None

        def token(tid: int) -> str:
            return str(self._model.token_get_text(tid)) if tid >= 0 else ""

        return ChatTemplate(text, eos_token=token(self._model.token_eos()), bos_token=token(self._model.token_bos()))

    def constraint_tokenizer(self) -> Any:
        """llguidance's tokenizer for this model's vocabulary, built on first use (any thread; it only reads)."""
        with self._tokenizer_lock:
            if self._tokenizer is None:
                vocab, n_vocab = self._model.vocab, int(self._model.n_vocab())
                eog = [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)]
                self._tokenizer = build_tokenizer(vocab, n_vocab, eog)
            return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text, add_bos=False))

    def _tokenize(self, text: str, add_bos: bool) -> list[int]:
        return list(self._model.tokenize(text.encode(), add_bos=add_bos, special=True))

    def prepare(self, request: GenerateRequest | EmbedRequest) -> Prepared | PreparedEmbed:
        """The request's prompt as tokens (through the chat template for messages), stops and sampling; or the
        texts to embed as tokens (any thread: it only reads the vocabulary)."""
        if isinstance(request, EmbedRequest):
            if self._embedder is None:
                raise _cannot("embeddings")
            return self._embedder.prepare(request)
        if self._chat is None:
            raise _cannot("generation")
        template_stops: list[str] = []
        if request.messages is None:
            prompt = self._tokenize(request.prompt or "", add_bos=True)
        else:
            text, template_stops, added_special = self._render(request)
            prompt = self._tokenize(text, add_bos=not added_special)
        if len(prompt) >= self.n_ctx:
            raise ContextOverflowError(
                f"the prompt is {len(prompt)} tokens but the context holds {self.n_ctx}; shorten it, or load the "
                f"model with a larger context (.ctx(n))",
                prompt_tokens=len(prompt),
                n_ctx=self.n_ctx,
            )
        sampling = request.sampling.settings()
        stops = list(sampling.pop("stop", ()))
        max_tokens = int(sampling.pop("max_tokens", None) or self.n_ctx)
        calls = bool(request.tools) and request.tool_choice != "none"
        return Prepared(prompt, [*stops, *template_stops], max_tokens, sampling, special=calls)

    def _render(self, request: GenerateRequest) -> tuple[str, list[str], bool]:
        """The chat's prompt text, the template's stop sequences, and whether the text holds its special tokens."""
        messages: list[dict[str, Any]] = [dict(m) for m in request.messages or ()]
        tool_defs: list[dict[str, Any]] | None = None
        if request.tools:  # offered unless tool_choice is none; earlier calls rendered either way
            offered = tools_from(request.tools) if request.tool_choice != "none" else ()
            messages, tool_defs = template_messages(self.tool_format, messages, offered)
        if self._template is not None:
            eos = self._template.eos_token
            try:
                text = self._template.render(messages, tools=tool_defs)
            except (
                InvalidRequestError
            ):  # a template that refuses system messages (Gemma's) gets the tools with the user
                if not request.tools or self.tool_format.native or messages[0].get("role") != "system":
                    raise
                text = self._template.render(system_folded(messages), tools=tool_defs)
            return text, [eos] if eos else [], True
        assert self._formatter is not None
        try:
            result = self._formatter(messages=messages)
        except Exception as error:  # the format's own check, or a field it cannot take
            raise InvalidRequestError(
                f"this model's chat format cannot render these messages ({type(error).__name__}: {error}); "
                "check the roles and contents it expects, or set another template with .chat_template(...)"
            ) from error
        stops = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        return result.prompt, [s for s in stops if s], bool(result.added_special)

    def start(self, prepared: Prepared | PreparedEmbed, emit: Emit, cancelled: Callable[[], bool]) -> bool:
        if isinstance(prepared, PreparedEmbed):
            assert self._embedder is not None
            return self._embedder.start(prepared, emit, cancelled)
        assert self._chat is not None
        return self._chat.start(prepared, emit, cancelled)

    def step(self) -> None:
        """One decode: the chat batch or a batch of texts to embed, taking turns while both have work."""
        chat, embed = self._chat, self._embedder
        chatting, embedding = chat is not None and chat.active > 0, embed is not None and embed.active > 0
        if chatting and embedding:
            self._embed_turn = not self._embed_turn
            chatting, embedding = not self._embed_turn, self._embed_turn
        if embedding and embed is not None:
            embed.step()
        elif chatting and chat is not None:
            chat.step()

    @property
    def active(self) -> int:
        return (self._chat.active if self._chat else 0) + (self._embedder.active if self._embedder else 0)

    @property
    def generates(self) -> bool:
        return self._chat is not None

    @property
    def embeds(self) -> bool:
        return self._embedder is not None

    @property
    def dimension(self) -> int | None:
        """The length of this model's vectors (None: it does not embed)."""
        return self._embedder.dimension if self._embedder is not None else None

    @property
    def threads(self) -> int:
        return self._threads

    def set_threads(self, n: int) -> None:
        n = max(1, min(n, self._threads))
        if n != self._threads_now:  # cheap (it sets the context's parameters), but not worth a call per step
            if self._chat is not None:
                self._lib.llama_set_n_threads(self._ctx, n, n)
            if self._embedder is not None:
                self._embedder.set_threads(n)
            self._threads_now = n

    def close(self) -> None:
        if self._chat is not None:
            self._chat.close()
            self._context.close()
        if self._embedder is not None:
            self._embedder.close()
        self._model.close()


def _cannot(feature: str) -> UnsupportedFeatureError:
    """The error for a request this model does not take: chat on an embedding model, or embed without pooling."""
    if feature == "generation":
        message = (
            "this is an embedding model: it turns texts into vectors (client.embed) and generates no text; load a "
            "chat model for chat"
        )
    else:
        message = (
            "this model has no pooling in its GGUF, so it embeds nothing; opt in with the builder's "
            ".pooling('mean') (or 'last', 'cls'), or load an embedding model (e.g. .nomic_embed_text_v1_5())"
        )
    return UnsupportedFeatureError(message, feature=feature)
