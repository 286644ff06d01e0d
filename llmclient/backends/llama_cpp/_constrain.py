"""Holding sampled tokens to a constraint inside the batched step (llguidance, one matcher per request).

After a batch is decoded, a greedy constrained request's argmax is offered to its matcher first: accepted, it is
the masked argmax too, and no mask is needed. For the others the masks are computed (in Rust, GIL released; on
many cores several at once) and each is written into that request's row of logits, in place, before anything
samples: llama.cpp's sampler chain and the greedy argmax both read the masked row, and an unconstrained row is
never touched. The
sampled token is then fed to the request's matcher; a token the matcher rejects fails that request with an error
(it never aborts the process, as llama.cpp's own grammar sampler can).
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any

import numpy

__all__ = ["MaskBatch", "build_tokenizer", "consume"]

_build_lock = threading.Lock()


def build_tokenizer(vocab: Any, n_vocab: int, eog: list[int]) -> Any:
    """llguidance's tokenizer for a llama.cpp vocabulary, every end-of-generation token an end for the matcher
    (~0.3 s for 49k tokens, seconds for 262k: build once per model, off the decode thread)."""
    import llguidance.llamacpp

    with _build_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # it reads token attributes through a deprecated call
        return llguidance.llamacpp.lltokenizer_from_vocab(vocab, n_vocab=n_vocab, eos_token=eog)


class MaskBatch:
    """The masks of one model's constrained requests, computed together and applied to their logits rows."""

    def __init__(self, n_vocab: int, rows: int) -> None:
        self._n_vocab = n_vocab
        self._masks = numpy.full((rows, (n_vocab + 31) // 32), -1, dtype=numpy.int32)
        self._executor: Any = None

    def apply(self, logits: Any, constrained: list[tuple[Any, int]]) -> None:
        """Mask `logits` (outputs x n_vocab, float32, written in place) row by row: (matcher, output row) pairs."""
        import llguidance
        import llguidance.numpy

        if len(constrained) > self._masks.shape[0]:
            self._masks = numpy.full((len(constrained), self._masks.shape[1]), -1, dtype=numpy.int32)
        if len(constrained) >= 4 and (os.cpu_count() or 1) >= 8:  # many masks, spare cores: in parallel
            if self._executor is None:
                self._executor = llguidance.LLExecutor()
            pairs = [(matcher, i) for i, (matcher, _) in enumerate(constrained)]
            llguidance.numpy.fill_next_token_bitmask_par(self._executor, pairs, self._masks)
        else:  # a thread hand-off would cost more, and on a small CPU meet the compute team still spinning
            for i, (matcher, _) in enumerate(constrained):
                llguidance.numpy.fill_next_token_bitmask(matcher, self._masks, i)
        for i, (_, row) in enumerate(constrained):
            _mask_row(logits[row], self._masks[i], self._n_vocab)


def _mask_row(row: Any, mask: Any, n_vocab: int) -> None:
    """Set `row`'s logits of the tokens `mask` does not allow to -inf, in place.

    Two ways, by how much is allowed (262k tokens, measured): where few tokens are (inside JSON's structure), keep
    their logits, fill the row and put them back (~40 us); where most are (inside a string), write -inf through the
    inverted bits (~60 us). A boolean index over the whole row costs 140-320 us."""
    if numpy.count_nonzero(mask) * 8 < mask.size:  # fewer than 1 word in 8 allows anything
        allowed = numpy.flatnonzero(numpy.unpackbits(mask.view(numpy.uint8), count=n_vocab, bitorder="little"))
        kept = row[allowed]
        row.fill(-numpy.inf)
        row[allowed] = kept
    else:
        blocked = numpy.unpackbits(numpy.invert(mask.view(numpy.uint8)), count=n_vocab, bitorder="little")
        numpy.copyto(row, -numpy.inf, where=blocked.view(bool))


def consume(matcher: Any, token: int, end_of_generation: bool) -> str | None:
    """Feed `token` to `matcher`: None to go on, `stop` once the constraint is complete, or an error message."""
    if end_of_generation:  # allowed by the mask only where the value is complete
        return "stop" if matcher.is_accepting() else "the model ended before the constrained answer was complete"
    if not matcher.consume_token(token):
        return f"the constraint rejected token {token}: {matcher.get_error() or 'not allowed here'}"
    return "stop" if matcher.is_stopped() else None
