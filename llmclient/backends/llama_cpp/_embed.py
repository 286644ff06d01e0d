"""Embedding on the decode thread: many texts in one `llama_decode`, each pooled into one vector.

An embedding context of its own (llama.cpp's `embeddings=True` with the model's pooling) beside any chat context
of the same model: the weights are shared, the caches are not, so a chat's KV cache never mixes with texts being
embedded. Each step packs the waiting texts, oldest request first, into one batch: as many as fit in
`STEP_TOKENS` tokens (a longer text goes alone), each text a sequence of its own; then it reads each sequence's
pooled vector and clears the cache. A big request so takes many steps, and the decode thread runs every other
model's step between two of them. With last-token pooling a text longer than a step is read over several.

A whole text is always in one of llama.cpp's micro-batches: mean and CLS pooling read a sequence only in the
micro-batch that holds its end (llama.cpp keeps the last micro-batch's pooled vector of each sequence), and a
non-causal encoder (BERT) aborts the process on a batch larger than its micro-batch. The steps run in a context
whose micro-batch is one step (`STEP_TOKENS`); a text longer than that goes alone to a second context sized for
the model's longest text, made the first time one comes. (One context sized for the longest text made every step
of short texts slower: SmolLM2 opted in at 2048 tokens embedded short texts at 0.92x llama-cpp-python's rate, side
by side, where 512 gave 0.98x.) Last-token pooling of a causal model sees the whole text through the cache, so
there one context reads a long text over several small steps.

A causal model's contexts stop each decode at the hidden states and pool them here (`_tap.HiddenTap`): llama.cpp
would otherwise compute the vocabulary's logits for every token, which embedding never reads.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy

from llmclient.backends import Embedded, EmbedRequest, Piece
from llmclient.backends.llama_cpp._log import quiet_pooling_note
from llmclient.backends.llama_cpp._settings import POOLINGS
from llmclient.backends.llama_cpp._step import Emit, PreparedEmbed
from llmclient.backends.llama_cpp._tap import HIDDEN, HiddenTap
from llmclient.errors import ContextOverflowError, GenerationError, InvalidRequestError

__all__ = ["OPT_IN_EMBED_TOKENS", "STEP_TOKENS", "EmbedDecoder"]

#: Tokens one step embeds at most (a text longer than this is embedded alone): about one chat prompt chunk's
#: worth of compute on a small model, so a big request never holds the decode thread for long; and larger batches
#: gain little, since every token of a batch attends over the batch's whole cache (masked to its own text).
STEP_TOKENS = 512
#: The most tokens a text may have when a chat model embeds (opted in with a pooling): its whole-text micro-batch
#: also computes the vocabulary's logits for every token (llama.cpp's graph of a generative model does), which
#: takes tokens x vocabulary x 4 bytes of compute buffer (400 MB for SmolLM2 at this length).
OPT_IN_EMBED_TOKENS = 2048
#: Micro-batch of last-token pooling (the only pooling that may split a text across micro-batches).
_LAST_UBATCH = 512
#: Two texts a new tap's vectors are checked on against llama.cpp's own pooling, before the tap is trusted.
_PROBES = ("An embedding check.", "A second line, a little longer, to embed beside the first one.")

logger = logging.getLogger("llmclient")
_NAMES = {number: name for name, number in POOLINGS.items()}


def _spans(lengths: list[int]) -> list[tuple[int, int]]:
    """(first token, tokens) of each text of a batch that holds them in order, one after another."""
    spans, start = [], 0
    for length in lengths:
        spans.append((start, length))
        start += length
    return spans


@dataclass
class _Context:
    """One llama.cpp embedding context: its owner (which frees it), the pointer, its cache (None for an encoder)."""

    owner: Any
    ctx: Any
    memory: Any
    sequences: int
    """Sequences (texts) one batch may hold."""
    tap: HiddenTap | None
    """Where decodes stop at the hidden states (a causal model), or None: llama.cpp pools."""


@dataclass
class _Job:
    texts: list[list[int]]
    emit: Emit
    cancelled: Callable[[], bool]
    vectors: Any
    """float32 (texts, dimension), filled as steps embed them."""
    next: int = 0
    """The first text not yet in a batch."""
    done: int = 0
    tokens: int = 0
    """Tokens of all its texts."""


class EmbedDecoder:
    """One model's embedding context and the texts waiting in it. Not thread-safe: only the decode thread calls
    `start`, `step` and `close`; `prepare` only reads the vocabulary (any thread)."""

    def __init__(self, lib: Any, model: Any, *, pooling: int, max_tokens: int, causal: bool, threads: int,
                 flash_attn: bool, verbose: bool, on_cpu: bool) -> None:  # fmt: skip
        """`on_cpu`: every layer runs on the CPU (there a causal model skips its logits; see `_tap`)."""
        quiet_pooling_note()
        self._lib, self._model = lib, model
        self.max_tokens = max_tokens
        """The most tokens one text may have."""
        self.pooling = pooling
        self._pooling_name = _NAMES[pooling]
        self._threads = threads
        self._flash_attn, self._verbose = flash_attn, verbose
        self._splits = pooling == POOLINGS["last"] and causal
        """Whether a text longer than a step is read over several (the others must be whole in one micro-batch)."""
        n_batch = max(STEP_TOKENS, max_tokens)
        self.dimension = int(lib.llama_model_n_embd_out(model.model))
        # only where the pooled vector is the hidden state's own width (no projection after the pooling), and on
        # the CPU: on a GPU the logits cost less than the stop (an H200 embedded SmolLM2 at 0.87-0.92x with it)
        same = self.dimension == int(lib.llama_model_n_embd(model.model))
        self._hidden = HIDDEN if causal and same and on_cpu else None
        """The graph node a causal model's decodes stop at, to pool its output here (None: llama.cpp pools)."""
        self._batch = lib.llama_batch_init(n_batch, 0, 1)
        b = self._batch
        self._token = numpy.ctypeslib.as_array(b.token, shape=(n_batch,))
        self._pos = numpy.ctypeslib.as_array(b.pos, shape=(n_batch,))
        self._nseq = numpy.ctypeslib.as_array(b.n_seq_id, shape=(n_batch,))
        self._logits = numpy.ctypeslib.as_array(b.logits, shape=(n_batch,))
        self._nseq[:] = 1
        self._logits[:] = 1  # pooling reads every token's output
        self._seq = b.seq_id
        self._vocab = model.vocab
        # the steps' context: its cache holds one batch (or, splitting, one long text read over steps), then it is
        # cleared; its micro-batch is one step, or a split text's part
        ubatch = min(n_batch, _LAST_UBATCH) if self._splits else STEP_TOKENS
        self._main = self._open(n_batch if self._splits else STEP_TOKENS, ubatch, sequences=STEP_TOKENS)
        self._long: _Context | None = None
        """The context for one text longer than a step, made the first time one comes (mean and CLS pooling)."""
        self._sequences = self._main.sequences
        # a tokenizer that ends each text with a special token (BERT's [SEP], an end-of-text token) keeps it when a
        # long text is cut
        self._ends_special = bool(lib.llama_vocab_get_add_eos(self._vocab) or lib.llama_vocab_get_add_sep(self._vocab))
        # last-token pooling reads the end-of-text token, which such models are trained to sum the text up in; where
        # the tokenizer does not add it (Qwen3-Embedding's GGUF asks the caller to), it is added here
        eos = int(lib.llama_vocab_eos(self._vocab))
        self._eos = eos if pooling == POOLINGS["last"] and not self._ends_special and eos >= 0 else None
        self._partial: _Job | None = None
        """The request whose text is being read over several steps."""
        self._fed = 0
        """Tokens of that text in the cache."""
        self._jobs: collections.deque[_Job] = collections.deque()
        self.decodes = 0
        """`llama_decode` calls made so far (each embeds one batch of texts)."""

    def _open(self, n_ctx: int, n_ubatch: int, *, sequences: int) -> _Context:
        """An embedding context of this model: `n_ctx` tokens of cache and batch, micro-batches of `n_ubatch`."""
        from llama_cpp import _internals

        lib = self._lib
        params = lib.llama_context_default_params()
        params.n_ctx = params.n_batch = n_ctx
        params.n_ubatch = n_ubatch
        params.n_seq_max = min(sequences, int(lib.llama_max_parallel_sequences()))
        params.kv_unified = True
        params.embeddings = True
        params.pooling_type = self.pooling
        params.n_threads = params.n_threads_batch = self._threads
        on = self._flash_attn
        params.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_ENABLED if on else lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.no_perf = True
        tap = None
        if self._hidden is not None:
            # room for one micro-batch, what a decode here carries (a step, a long text's part, or one long text)
            tap = HiddenTap(lib.ggml_backend_sched_eval_callback, n_ubatch, self.dimension, name=self._hidden)
            params.cb_eval = tap.callback
        owner = _internals.LlamaContext(model=self._model, params=params, verbose=self._verbose)
        # None for an encoder without a cache
        context = _Context(owner, owner.ctx, lib.llama_get_memory(owner.ctx), int(params.n_seq_max), tap)
        if tap is not None:
            try:
                self._check(context, tap)
            except GenerationError:
                owner.close()  # type: ignore[no-untyped-call]
                raise
        return context

    def _check(self, context: _Context, tap: HiddenTap) -> None:
        """Disarm `tap` unless its pooling of two probe texts is llama.cpp's own (the graph of this model ends as
        the tap expects). Two small decodes, once per context."""
        texts = [list(self._model.tokenize(t.encode(), add_bos=True, special=False)) for t in _PROBES]
        texts = texts[: context.sequences]  # the context for long texts holds one
        spans = _spans([len(t) for t in texts])
        for seq_id, ((start, _), tokens) in enumerate(zip(spans, texts, strict=True)):
            self._put(start, tokens, 0, seq_id)
        self._batch.n_tokens = sum(map(len, texts))
        got = []
        for armed in (True, False):
            tap.armed, tap.taken = armed, 0
            status = int(self._lib.llama_decode(context.ctx, self._batch))
            if status != 0:
                raise GenerationError(f"embedding failed: llama_decode returned {status}")
            if armed and tap.taken == 0:  # no node of that name: llama.cpp pools, as without a tap
                break
            got.append(tap.pool(spans, self._pooling_name) if armed else self._pooled(context, len(texts)))
            self._clear(context)
        self._clear(context)
        cosine = 0.0
        if len(got) == 2:
            ours, theirs = got
            cosine = float(min(numpy.sum(ours * theirs, axis=1) / numpy.linalg.norm(ours, axis=1)
                               / numpy.linalg.norm(theirs, axis=1)))  # fmt: skip
        tap.armed, tap.taken, tap.cuts = cosine > 0.9999, 0, 0
        if not tap.armed:
            logger.debug("embedding: llama.cpp computes this model's logits too (no %r node to stop at, or cosine "
                         "%.6f to its pooling)", self._hidden, cosine)  # fmt: skip

    def _pooled(self, context: _Context, count: int) -> numpy.ndarray[Any, Any]:
        """llama.cpp's pooled vector of each of the first `count` sequences of the last decode."""
        out = numpy.empty((count, self.dimension), numpy.float32)
        for seq_id in range(count):
            pooled = self._lib.llama_get_embeddings_seq(context.ctx, seq_id)
            if not pooled:
                raise GenerationError("embedding failed: llama.cpp gave no pooled vector")
            out[seq_id] = numpy.ctypeslib.as_array(pooled, shape=(self.dimension,))
        return out

    @property
    def active(self) -> int:
        return len(self._jobs)

    def prepare(self, request: EmbedRequest) -> PreparedEmbed:
        """Each text as tokens (with the tokenizer's own special tokens, reading none in the text itself)."""
        texts: list[list[int]] = []
        limit = self.max_tokens
        for index, text in enumerate(request.texts):
            tokens = list(self._model.tokenize(text.encode(), add_bos=True, special=False))
            if self._eos is not None:
                tokens.append(self._eos)
            if not tokens:
                raise InvalidRequestError(f"text {index} gives no tokens to embed; drop it or give it some text")
            if len(tokens) > limit:
                if not request.truncate:
                    raise ContextOverflowError(
                        f"text {index} of {len(request.texts)} is {len(tokens)} tokens but this model embeds at most "
                        f"{limit}; shorten or split it, or pass truncate=True to embed its first {limit} tokens",
                        prompt_tokens=len(tokens),
                        n_ctx=limit,
                    )
                kept = self._ends_special or self._eos is not None
                tokens = [*tokens[: limit - 1], tokens[-1]] if kept else tokens[:limit]
            texts.append(tokens)
        return PreparedEmbed(texts)

    def start(self, prepared: PreparedEmbed, emit: Emit, cancelled: Callable[[], bool]) -> bool:
        vectors = numpy.empty((len(prepared.texts), self.dimension), numpy.float32)
        if not prepared.texts:
            emit(Embedded(vectors, 0))
            return True
        self._jobs.append(_Job(prepared.texts, emit, cancelled, vectors, tokens=sum(map(len, prepared.texts))))
        return True

    def step(self) -> None:
        """Embed one batch of the waiting texts, oldest first; hand each finished request its vectors."""
        for job in [j for j in self._jobs if j.cancelled()]:
            self._jobs.remove(job)
            if job is self._partial:  # its first tokens are in the cache: start the next text afresh
                self._partial, self._fed = None, 0
                self._clear()
            job.emit(Piece("", "cancelled"))
        head = next((j for j in self._jobs if j.next < len(j.texts)), None)
        if head is not None and len(head.texts[head.next]) > STEP_TOKENS:
            if self._splits:
                self._step_long(head)
            else:  # alone, whole, in the context for long texts
                if self._long is None:
                    self._long = self._open(self.max_tokens, self.max_tokens, sequences=1)
                self._put(0, head.texts[head.next], 0, 0)
                head.next += 1
                self._decode([(head, head.next - 1)], len(head.texts[head.next - 1]), self._long)
            return
        rows: list[tuple[_Job, int]] = []
        n = 0
        for job in self._jobs:
            while job.next < len(job.texts):
                tokens = job.texts[job.next]
                if n + len(tokens) > STEP_TOKENS or len(rows) == self._sequences:  # a long one waits for its own step
                    break
                self._put(n, tokens, 0, len(rows))
                rows.append((job, job.next))
                job.next += 1
                n += len(tokens)
            else:
                continue
            break
        if rows:
            self._decode(rows, n, self._main)

    def _step_long(self, job: _Job) -> None:
        """The next `STEP_TOKENS` of a text too long for one step (last-token pooling only: the cache holds what
        earlier steps read, and the last token, read in the last step, attends to all of it)."""
        tokens = job.texts[job.next]
        chunk = tokens[self._fed : self._fed + STEP_TOKENS]
        self._put(0, chunk, self._fed, 0)
        self._partial, self._fed = job, self._fed + len(chunk)
        if self._fed < len(tokens):
            self._decode([], len(chunk), self._main)
        else:
            job.next += 1
            self._partial, self._fed = None, 0
            self._decode([(job, job.next - 1)], len(chunk), self._main)

    def _put(self, n: int, tokens: list[int], first_pos: int, seq_id: int) -> None:
        """Write `tokens` into the batch from row `n` on, in sequence `seq_id`, from position `first_pos`."""
        end = n + len(tokens)
        self._token[n:end] = tokens
        self._pos[n:end] = numpy.arange(first_pos, first_pos + len(tokens))
        seq = self._seq
        for i in range(n, end):
            seq[i][0] = seq_id

    def _decode(self, rows: list[tuple[_Job, int]], n: int, context: _Context) -> None:
        """Decode the batch's first `n` tokens in `context` and keep the pooled vector of each of `rows` (sequence i
        is row i, the texts in order; one row is all `n` tokens, a whole text or a long one's last part); with no
        rows, a part of a long text, whose tokens stay in the cache."""
        self._batch.n_tokens = n
        self.decodes += 1
        tap = context.tap
        cuts = 0
        if tap is not None:
            tap.reserve(n)
            tap.taken, cuts = 0, tap.cuts
        status = int(self._lib.llama_decode(context.ctx, self._batch))
        try:
            if status != 0:
                raise GenerationError(f"embedding failed: llama_decode returned {status}")
            cut = tap if tap is not None and tap.cuts > cuts else None  # stopped at the hidden states: pooled here
            if cut is not None and cut.taken != n:
                raise GenerationError(
                    f"embedding failed: read {cut.taken} tokens' hidden states of {n} (a graph llmclient's tap "
                    "does not know: please report it, naming the model file)"
                )
            if rows:
                if cut is None:
                    pooled = self._pooled(context, len(rows))
                else:  # one row is all `n` tokens: a whole text, or a long one's last part
                    lengths = [n] if len(rows) == 1 else [len(job.texts[index]) for job, index in rows]
                    pooled = cut.pool(_spans(lengths), self._pooling_name)
                for (job, index), vector in zip(rows, pooled, strict=True):
                    job.vectors[index] = vector
                    job.done += 1
        except GenerationError as error:
            failed = {id(j): j for j, _ in rows}
            if self._partial is not None:
                failed[id(self._partial)] = self._partial
                self._partial, self._fed = None, 0
            for job in failed.values():
                self._jobs.remove(job)
                job.emit(error)
        if rows or self._partial is None:
            self._clear(context)
        while self._jobs and self._jobs[0].done == len(self._jobs[0].texts):
            job = self._jobs.popleft()
            job.emit(Embedded(job.vectors, job.tokens))

    def _clear(self, context: _Context | None = None) -> None:
        memory = (context or self._main).memory
        if memory is not None:
            self._lib.llama_memory_clear(memory, True)

    def set_threads(self, n: int) -> None:
        self._threads = n
        for context in (self._main, self._long):
            if context is not None:
                self._lib.llama_set_n_threads(context.ctx, n, n)

    def close(self) -> None:
        """Fail what waits (the model is closing) and free the batch and the context."""
        for job in self._jobs:
            job.emit(Piece("", "cancelled"))
        self._jobs.clear()
        self._lib.llama_batch_free(self._batch)
        for context in (self._main, self._long):
            if context is not None:
                context.owner.close()
