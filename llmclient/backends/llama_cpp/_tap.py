"""Embedding with a causal (generative-architecture) model without computing its vocabulary's logits.

llama.cpp's graph of a causal model ends in the final norm (`result_norm`, the hidden states pooling reads), then
the vocabulary's logits for every token, then the pooling. An embedding context wants only the pooled vector, but
llama.cpp has no switch to leave the logits out, and they are a fifth of SmolLM2's arithmetic per token (its 49k
vocabulary times its width), a quarter of Qwen3-Embedding-0.6B's (151k). A `HiddenTap` is the context's eval
callback: it asks llama.cpp to stop the graph right after `result_norm`, copies those hidden states out and ends
the graph there; the engine pools them (mean, first or last token of each text) as llama.cpp would have.

Only where every layer runs on the CPU. On a GPU the logits are cheap and the stop is not (llama.cpp then computes
the graph in two parts, synchronizing between them, and asks the callback about each of its ~900 nodes): on an
H200, SmolLM2 embedded at 0.92x (short texts) and 0.87x (long) with a tap against without. On the CPU those ~900
calls into Python take about a microsecond each, a millisecond of a 512-token SmolLM2 decode that computes for
about a second; beside a thread spinning in Python (which the calls must take the GIL from) the tap's gain was
gone, but it was no slower than without (1.01x).

Where the graph has no `result_norm` (another architecture's naming), the callback never fires, the whole graph
runs and llama.cpp's own pooled vectors are read: the tap costs nothing and changes nothing. `EmbedDecoder`
checks a new tap once against llama.cpp's pooling before trusting it.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

import numpy

__all__ = ["HiddenTap"]

#: The name llama.cpp's model graphs give their final norm: `res->t_embd`, what its pooling reads.
HIDDEN = b"result_norm"


@functools.cache
def _ggml() -> Any:
    """llama.cpp's ggml library, with the three functions the tap calls typed (once a process)."""
    from llama_cpp import _ggml

    lib = _ggml.libggml
    lib.ggml_get_name.restype, lib.ggml_get_name.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    lib.ggml_nelements.restype, lib.ggml_nelements.argtypes = ctypes.c_int64, [ctypes.c_void_p]
    lib.ggml_backend_tensor_get.restype = None
    lib.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
    return lib


class HiddenTap:
    """One embedding context's eval callback (`callback`, for `llama_context_params.cb_eval`): while `armed`, each
    `llama_decode` stops after the hidden states named `name`, which land in `hidden[:taken]`, one row per token.

    Called on the decode thread only, from inside `llama_decode`; it must never raise (ctypes would print the
    error and return False, which would stop the graph with nothing taken)."""

    def __init__(self, callback_type: Any, rows: int, width: int, *, name: bytes = HIDDEN) -> None:
        self._lib = _ggml()
        self._name = name
        self.width = width
        self.hidden = numpy.empty((rows, width), numpy.float32)
        """The hidden states of the last decode's tokens, in batch order (rows `[:taken]`)."""
        self.taken = 0
        self.armed = True
        """Whether decodes stop at the hidden states; off, the whole graph runs as without a tap."""
        self.cuts = 0
        """Decodes stopped before the logits, so far."""
        self.callback = callback_type(self._eval)  # kept here: the context holds only the pointer

    def reserve(self, rows: int) -> None:
        """Room for `rows` tokens' hidden states (a decode's batch, over all its micro-batches)."""
        if len(self.hidden) < rows:
            self.hidden = numpy.empty((rows, self.width), numpy.float32)

    def _eval(self, tensor: int, ask: bool, _user: int) -> bool:
        lib = self._lib
        if ask:  # before computing: whether to stop after this node (only after the hidden states)
            return self.armed and bool(lib.ggml_get_name(tensor) == self._name)
        count = int(lib.ggml_nelements(tensor))
        rows = count // self.width
        if count % self.width or self.taken + rows > len(self.hidden):
            self.armed = False  # not the shape pooling reads: let the graph run on, and use llama.cpp's pooling
            return True
        # ggml_backend_tensor_get reads the tensor wherever it lives (a GPU's memory too)
        lib.ggml_backend_tensor_get(tensor, self.hidden[self.taken :].ctypes.data, 0, count * 4)
        self.taken += rows
        self.cuts += 1
        return False  # the rest of the graph (the logits, llama.cpp's pooling) is not computed

    def pool(self, spans: list[tuple[int, int]], pooling: str) -> numpy.ndarray[Any, Any]:
        """The pooled vector of each text, given each one's (first row, tokens) in the batch: the mean of its
        rows (`mean`), its first (`cls`) or its last (`last`)."""
        starts = numpy.fromiter((s for s, _ in spans), numpy.intp, len(spans))
        lengths = numpy.fromiter((n for _, n in spans), numpy.intp, len(spans))
        rows = self.hidden[: self.taken]
        out: numpy.ndarray[Any, Any]
        if pooling == "cls":
            out = rows[starts]
        elif pooling == "last":
            out = rows[starts + lengths - 1]
        else:  # the texts are contiguous and in order, so reduceat sums each one's rows
            out = numpy.add.reduceat(rows, starts, axis=0) / lengths[:, None].astype(numpy.float32)
        return out
