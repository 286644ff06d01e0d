"""Continuous batching: every running request advances in one `llama_decode` per step.

Each request gets a sequence slot (llama.cpp's seq_id) in one KV cache shared by all slots (`kv_unified`). A
step puts one token per generating request and a chunk of a joining request's prompt into one `llama_batch`,
decodes it, then samples each request's next token with its own sampler chain. Requests join and leave between
steps; a finished request's slot keeps its tokens' KV cache so that the next request sharing that prefix (a
chat's next turn) does not evaluate it again, until the space is needed.

KV space is reserved, not hoped for: a request takes its prompt + max_tokens (capped at the context) out of the
shared cache when it starts, so a running request can never run out mid-answer; one that does not fit waits.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import numpy

from llmclient.backends import Piece
from llmclient.backends.llama_cpp._constrain import MaskBatch, consume
from llmclient.backends.llama_cpp._running import Running, Slot, shared_prefix
from llmclient.backends.llama_cpp._sampling import SamplerChain
from llmclient.backends.llama_cpp._step import Emit, Prepared
from llmclient.backends.llama_cpp._text import TextAssembler
from llmclient.errors import GenerationError
from llmclient.types import Usage

__all__ = ["BATCH_INVARIANT_CHUNK", "BatchDecoder"]

#: Prompt tokens per batch when answers must not depend on what runs beside them (the CPU default). llama.cpp's
#: CPU kernels compute each row of a batch alike for any batch of up to 63 tokens, but a batch of 64 or more
#: queries takes the tiled flash-attention path, which sums in another order. So prompts are read in chunks of
#: this size, one prompt per batch, taking turns with the batch of generating requests' tokens: a prompt's
#: arithmetic is then the same alone or not, and so is each generated token's. Left: a batch of one token (a
#: request alone) may take other kernels than a batch of several (llamafile's matrix kernels start at 2 columns;
#: flash attention splits a single query's cache of 512+ cells across threads); greedy answers matched in every
#: test and benchmark here, but that part is not guaranteed bit for bit.
BATCH_INVARIANT_CHUNK = 48


class BatchDecoder:
    """The running requests of one llama.cpp context and the step that advances them all."""

    def __init__(self, lib: Any, ctx: Any, vocab: Any, *, n_vocab: int, n_batch: int, n_ctx: int,
                 kv_tokens: int, parallel: int, prefill_chunk: int, seed: int, invariant: bool,
                 overlap: bool = False, jump_forward: bool = True) -> None:  # fmt: skip
        self._lib, self._ctx, self._vocab = lib, ctx, vocab
        self._memory = lib.llama_get_memory(ctx)
        self._n_vocab, self._n_batch, self._seed = n_vocab, n_batch, seed
        self.n_ctx = n_ctx
        """The most tokens (prompt + answer) one request may hold."""
        self.kv_tokens = kv_tokens
        self.prefill_chunk = prefill_chunk
        self.invariant = invariant
        """Keep each request's arithmetic the same whatever runs beside it (see `BATCH_INVARIANT_CHUNK`)."""
        self._prefill_turn = False
        self._slots = [Slot(i) for i in range(parallel)]
        self._running: list[Running] = []
        self._clock = 0
        self._batch = lib.llama_batch_init(n_batch, 0, 1)
        b = self._batch  # the arrays never move: look the fields up once
        self._b_token, self._b_pos, self._b_nseq, self._b_seq, self._b_logits = (
            b.token,
            b.pos,
            b.n_seq_id,
            b.seq_id,
            b.logits,
        )
        self._pieces: dict[int, bytes | None] = {}
        """Each token's text as bytes, None for end-of-generation tokens (filled as tokens are first seen)."""
        self._buffer = ctypes.create_string_buffer(256)
        self._abort_all = False
        self._reads_prompt = False
        """Whether the batch being decoded holds prompt tokens: only such a batch is worth stopping for a cancel."""
        self.overlap = overlap
        """Deliver a step's tokens while the next batch is computed (a GPU's `llama_decode` returns before it is
        done): the Python side of each step then costs no GPU time. On the CPU the decode itself computes, so the
        tokens are delivered first, as soon as they exist."""
        self._in_flight: list[Running] = []
        """The requests with a row in the batch being computed."""
        self._masks: MaskBatch | None = None
        self.jump_forward = jump_forward
        """Decode the tokens a constraint forces in one batch with the sampled one (`_forced`)."""

    @property
    def active(self) -> int:
        return len(self._running)

    def abort(self) -> bool:
        """llama.cpp's abort callback: stop a decode that reads a prompt once every request in it is cancelled
        (a long prompt can take seconds), or any decode when the model closes.

        A batch of generated tokens only is left to finish: it takes one token's time, and llama.cpp reports every
        stopped decode on stderr at error level (`decode: removing memory module entries ...`), which an app would
        print each time a client leaves a stream early."""
        if self._abort_all:
            return True
        running = self._running
        return self._reads_prompt and bool(running) and all(r.cancelled() for r in running)

    # --- joining ----------------------------------------------------------------------------------

    def start(self, prepared: Prepared, emit: Emit, cancelled: Callable[[], bool]) -> bool:
        """Begin `prepared` if a slot and its KV space are free (False: nothing changed, try again later)."""
        free = [s for s in self._slots if not s.busy]
        if not free:
            return False
        prompt = prepared.tokens
        # the longest cached prefix; else an empty slot; else the one unused longest
        slot = max(free, key=lambda s: (shared_prefix(s.tokens, prompt), not s.tokens, -s.last_used))
        reserved = min(len(prompt) + prepared.max_tokens, self.n_ctx)
        taken = sum(r.reserved for r in self._running)
        idle = sorted((s for s in free if s is not slot and s.tokens), key=lambda s: s.last_used)
        held = sum(len(s.tokens) for s in idle)
        if taken + reserved > self.kv_tokens:
            return False
        for other in idle:  # make room by forgetting the least recently used prefixes
            if taken + held + reserved <= self.kv_tokens:
                break
            held -= len(other.tokens)
            self._forget(other, 0)
        common = min(shared_prefix(slot.tokens, prompt), len(prompt) - 1)
        self._forget(slot, common)
        common = len(slot.tokens)
        running = Running(
            slot, prompt, prepared.max_tokens, reserved, SamplerChain(self._n_vocab, prepared.sampling, self._seed),
            TextAssembler(prepared.stops), emit, cancelled, reused=common, fed=common, matcher=prepared.matcher,
            special=prepared.special,
        )  # fmt: skip
        slot.busy = True
        self._running.append(running)
        return True

    # --- one step ---------------------------------------------------------------------------------

    def step(self) -> None:
        """Decode one batch: a token for every generating request, and prompt chunks for joining ones."""
        try:
            if self.overlap:  # the GPU computes the next batch while we hand out the last one's tokens
                sampled = self._collect()
                # except a request's first token: a batch of another shape may cost a graph rebuild (ms) to launch
                self._deliver([s for s in sampled if s[0].produced <= 1])
                self._launch()
                self._deliver([s for s in sampled if s[0].produced > 1])
            else:
                self._launch()
                self._deliver(self._collect())
        except Exception as error:  # a bug of ours: fail what runs, with a cache that starts afresh
            self._sync()
            for r in list(self._running):
                self._finish(r, None, error)

    def _launch(self) -> None:
        """Put a batch together from what the running requests need next and start decoding it."""
        for r in [r for r in self._running if r.cancelled()]:
            self._finish(r, "cancelled")
        if not self._running:
            return
        token, pos, nseq, seq, logits = self._b_token, self._b_pos, self._b_nseq, self._b_seq, self._b_logits
        for r in self._running:
            r.row, r.first_pos = -1, len(r.slot.tokens)
        joining = [r for r in self._running if r.pending < 0 and r.fed < len(r.prompt)]
        generating = [r for r in self._running if r.pending >= 0]
        if self.invariant and joining and generating:  # never in one batch: take turns
            self._prefill_turn = not self._prefill_turn
            if self._prefill_turn:
                generating = []
            else:
                joining = []
        n = 0
        # forced tokens ride along, as many as keep the batch to the sizes whose rows compute alike
        extra = (BATCH_INVARIANT_CHUNK if self.invariant else self._n_batch // 2) - len(generating)
        took: list[tuple[Running, int]] = []
        for r in generating:
            forced = r.forced[: max(0, extra)]
            extra -= len(forced)
            for k, t in enumerate((r.pending, *forced)):
                token[n], pos[n], nseq[n], logits[n] = t, r.first_pos + k, 1, False
                seq[n][0] = r.slot.seq_id
                n += 1
            if len(forced) == len(r.forced):  # all of it: the next token is sampled from its last row
                logits[n - 1] = True
                r.row = n - 1
            took.append((r, len(forced)))
        room = min(self._n_batch - n, self.prefill_chunk if generating or self.invariant else self._n_batch)
        fed: list[tuple[Running, int]] = []
        for r in joining[:1] if self.invariant else joining:  # one prompt per batch: its chunks never vary
            if room <= 0:
                break
            take = min(room, len(r.prompt) - r.fed)
            for i in range(r.fed, r.fed + take):
                token[n], pos[n], nseq[n], logits[n] = r.prompt[i], i, 1, False
                seq[n][0] = r.slot.seq_id
                n += 1
            if r.fed + take == len(r.prompt):
                logits[n - 1] = True
                r.row = n - 1
            fed.append((r, take))
            room -= take
        if n == 0:
            return
        self._batch.n_tokens = n
        self._reads_prompt = bool(fed)
        status = int(self._lib.llama_decode(self._ctx, self._batch))
        if status != 0:
            self._failed(status)
            return
        for r, take in fed:
            r.slot.tokens.extend(r.prompt[r.fed : r.fed + take])
            r.fed += take
        for r, k in took:
            r.slot.tokens.append(r.pending)
            r.slot.tokens.extend(r.forced[:k])
            rest = r.forced[k:]  # what did not fit waits for the next step
            r.pending, r.forced = (rest[0], rest[1:]) if rest else (-1, [])
        self._in_flight = [r for r in self._running if r.row >= 0]

    def _collect(self) -> list[tuple[Running, bytes | None, str | None]]:
        """Wait for the batch in flight and sample each of its requests' next token: (request, the token's text or
        None at the end of generation, and the finish reason if it is the last: `length` where max_tokens or the
        context end it, `stop` where it completes the request's constraint).

        A token that ends its request is not decoded again; any other becomes the request's `pending` token, for
        the next batch.
        """
        in_flight, self._in_flight = self._in_flight, []
        if not in_flight:
            return []
        self._lib.llama_synchronize(self._ctx)
        picks = self._greedy_picks(in_flight)
        # a greedy row whose argmax its matcher accepts needs no mask (masked, its argmax is the same token); the
        # others, and every sampled constrained row, are masked before anything reads them
        masked = [
            r
            for r in in_flight
            if r.matcher is not None
            and not r.done
            and (not r.chain.greedy or not r.matcher.validate_tokens([picks[r.row]]))
        ]
        if masked:
            picks.update(self._mask(in_flight, masked))
        sampled: list[tuple[Running, bytes | None, str | None]] = []
        for r in in_flight:
            if r.done:  # finished while the batch was computed (a stop sequence): its row is not needed
                continue
            try:
                tok = picks[r.row] if r.chain.greedy else r.chain.sample(self._ctx, r.row)
            except Exception as error:  # this request fails; the others go on
                self._finish(r, None, error)
                continue
            piece = self._pieces.get(tok, b"")
            if piece == b"":
                piece = self._piece(tok, r.special)
            end: str | None = None
            if r.matcher is not None:
                end = consume(r.matcher, tok, piece is None)
                if end not in (None, "stop"):
                    self._finish(r, None, GenerationError(f"constrained decoding failed: {end}"))
                    continue
            if piece is not None:
                r.produced += 1
                if end is None and r.matcher is not None and self.jump_forward:
                    forced, text = self._forced(r)
                    piece += text
                    end = "stop" if forced and r.matcher.is_stopped() else None
                    r.forced = forced if end is None else []
                if end is None and (r.produced >= r.max_tokens or len(r.slot.tokens) + 1 >= self.n_ctx):
                    end = "length"
                if end is None:
                    r.pending = tok
            sampled.append((r, piece, end))
        return sampled

    def _forced(self, r: Running) -> tuple[list[int], bytes]:
        """The tokens `r`'s constraint allows no alternative to now, fed to its matcher, with their text (jump-
        forward: `{"name": "` costs one step, not five); none across an end of generation or past the budget."""
        assert r.matcher is not None
        room = min(r.max_tokens - r.produced, self.n_ctx - len(r.slot.tokens) - 2)
        if room <= 0 or not r.matcher.compute_ff_bytes():  # 2 us; the tokens cost 25 us, and most steps force none
            return [], b""
        forced = r.matcher.compute_ff_tokens()[:room]
        pieces = [self._pieces.get(t, b"") or self._piece(t, r.special) for t in forced]
        if not forced or any(p is None for p in pieces) or not r.matcher.consume_tokens(forced):
            return [], b""
        r.produced += len(forced)
        return forced, b"".join(p for p in pieces if p is not None)

    def _mask(self, in_flight: list[Running], masked: list[Running]) -> dict[int, int]:
        """Write each of `masked`'s mask into its row of logits (rows are in batch order, one each); the greedy
        ones' picks from their masked rows."""
        rows = sorted(r.row for r in in_flight)
        logits = numpy.ctypeslib.as_array(self._lib.llama_get_logits(self._ctx), shape=(len(rows), self._n_vocab))
        if self._masks is None:
            self._masks = MaskBatch(self._n_vocab, len(self._slots))
        output = {row: i for i, row in enumerate(rows)}
        self._masks.apply(logits, [(r.matcher, output[r.row]) for r in masked])
        return {r.row: int(logits[output[r.row]].argmax()) for r in masked if r.chain.greedy}

    def _greedy_picks(self, in_flight: list[Running]) -> dict[int, int]:
        """Batch row → its argmax token, for all rows at once when a greedy request is among them.

        `llama_sampler_sample` would copy the whole vocabulary into a candidate array per request (~0.1-0.4 ms for a
        49k vocabulary: most of a 16-request GPU step); the argmax over the logits in place picks the same token,
        the first of equal maxima, as llama.cpp's greedy sampler does. And one `llama_get_logits` and one argmax
        over every output row, not a call and an argmax per request: each of those lets go of the GIL, and with
        many requests those hand-offs to the event loop's thread are what delays it. llama.cpp stores the outputs
        in the order their tokens are in the batch, and every request in flight has exactly one.
        """
        if not any(r.chain.greedy and not r.done for r in in_flight):
            return {}
        rows = sorted(r.row for r in in_flight)
        logits = numpy.ctypeslib.as_array(self._lib.llama_get_logits(self._ctx), shape=(len(rows), self._n_vocab))
        return dict(zip(rows, logits.argmax(axis=1).tolist(), strict=True))

    def _deliver(self, sampled: list[tuple[Running, bytes | None, str | None]]) -> None:
        """Hand each sampled token's text to its request and finish those that are done."""
        for r, piece, end in sampled:
            if r.done:  # cancelled since
                continue
            if piece is None:
                self._finish(r, "stop")
                continue
            shown = r.text.feed(piece)
            if shown:
                r.emit(Piece(shown))
            if r.text.stopped:  # its next token may be in flight: harmless, the slot's cache just holds it too
                self._finish(r, "stop")
            elif end is not None:
                self._finish(r, end)
        if not self._running:
            self._sync()

    def _sync(self) -> None:
        """Wait for a batch still in flight whose results nobody needs (before idling, closing or starting over)."""
        if self._in_flight:
            self._in_flight = []
            self._lib.llama_synchronize(self._ctx)

    def _piece(self, tok: int, special: bool = False) -> bytes | None:
        """`tok`'s text (a control token's own only where `special`: cached are the pieces alike either way)."""
        lib = self._lib
        if lib.llama_vocab_is_eog(self._vocab, tok):
            piece = None
        else:
            n = lib.llama_token_to_piece(self._vocab, tok, self._buffer, len(self._buffer), 0, special)
            if n < 0:
                self._buffer = ctypes.create_string_buffer(-n)
                n = lib.llama_token_to_piece(self._vocab, tok, self._buffer, len(self._buffer), 0, special)
            piece = self._buffer.raw[:n]
        if piece != b"" and not special:
            self._pieces[tok] = piece
        return piece

    def _failed(self, status: int) -> None:
        """A decode failed or was aborted: every request in it loses what the step added to the cache."""
        for r in self._running:
            self._forget(r.slot, r.first_pos)
        if status == 2 or self.abort():  # aborted: all were cancelled (or the model is closing)
            for r in list(self._running):
                self._finish(r, "cancelled")
            return
        error = RuntimeError(f"llama_decode failed with status {status}")
        for r in list(self._running):
            self._finish(r, None, error)

    # --- leaving ----------------------------------------------------------------------------------

    def _finish(self, r: Running, reason: str | None, error: BaseException | None = None) -> None:
        self._running.remove(r)
        r.done = True
        r.chain.close()
        self._clock += 1
        r.slot.busy, r.slot.last_used = False, self._clock
        if error is not None:
            self._forget(r.slot, 0)  # its cache's state is unknown after a failure: the next one starts afresh
            r.emit(error)
            return
        tail = r.text.finish() if reason != "cancelled" else ""
        r.emit(Piece(tail, reason, Usage(len(r.prompt), r.produced, r.reused)))

    def _forget(self, slot: Slot, position: int) -> None:
        """Drop `slot`'s cache from `position` on (all of it if llama.cpp cannot cut there, e.g. a SWA cache)."""
        if position >= len(slot.tokens):
            return
        if not self._lib.llama_memory_seq_rm(self._memory, slot.seq_id, position, -1):
            self._lib.llama_memory_seq_rm(self._memory, slot.seq_id, -1, -1)
            position = 0
        del slot.tokens[position:]

    def close(self) -> None:
        """Cancel what runs and free the batch (the caller frees the context)."""
        self._abort_all = True
        self._sync()
        for r in list(self._running):
            self._finish(r, "cancelled")
        self._lib.llama_batch_free(self._batch)
