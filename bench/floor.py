"""Decode floor: how fast can any loop over this llama.cpp build go, and where does a step's time go?

Same model (the real SmolLM2 file by default), one context (n_ctx 2048, flash attention), greedy, `--tokens`
tokens after the same chat prompt, each loop `--rounds` times interleaved, medians in microseconds per token:

- `floor`: `llama_decode` of one token + `llama_synchronize`, nothing else: no sampling, no text. No loop that
  decodes one token at a time can beat it. The host part of `llama_decode` is reported too: on a GPU the call
  returns once the work is queued, so the rest of the step is the device computing.
- `lean, native sampler`: decode + llama.cpp's greedy sampler (`llama_sampler_sample`) + detokenization.
- `lean, argmax in place`: the same with a numpy argmax over the logits (what llmclient does for greedy requests).
- `overlapped`: the same, but the token's text is made after the next decode is queued (what llmclient does where
  layers run on a GPU: the Python side of a step then overlaps the device's work).
- `Llama.generate`: llama-cpp-python's own token loop, for comparison (timed from its first token on).
- `backend sampler`: llama.cpp's experimental backend sampling (`llama_set_sampler`): the greedy pick runs in the
  model's graph and only the token comes back.

    python bench/floor.py [--model PATH] [--tokens N] [--rounds N] [--gpu] [--threads N]
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import llama_cpp
import numpy


class Loops:
    """The loops, over one loaded model and context."""

    def __init__(self, model: Path, gpu: bool, threads: int) -> None:
        self.llm = llama_cpp.Llama(
            str(model), n_ctx=2048, flash_attn=True, verbose=False, n_gpu_layers=-1 if gpu else 0, n_threads=threads
        )
        self.ctx = self.llm._ctx.ctx
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm._model.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        chat = "<|im_start|>user\nWrite a long story about a lighthouse keeper and a storm.<|im_end|>\n"
        self.tokens = self.llm.tokenize(f"{chat}<|im_start|>assistant\n".encode(), add_bos=False, special=True)
        self.prompt = (llama_cpp.llama_token * len(self.tokens))(*self.tokens)
        self.one = (llama_cpp.llama_token * 1)()
        self.piece = ctypes.create_string_buffer(64)
        self.chain = self._greedy_chain()
        self.host = 0.0
        self.reference: list[int] = []

    @staticmethod
    def _greedy_chain() -> Any:
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain

    def _start(self) -> float:
        llama_cpp.llama_memory_clear(self.memory, True)
        llama_cpp.llama_decode(self.ctx, llama_cpp.llama_batch_get_one(self.prompt, len(self.tokens)))
        llama_cpp.llama_synchronize(self.ctx)
        return time.perf_counter()

    def _decode(self) -> None:
        llama_cpp.llama_decode(self.ctx, llama_cpp.llama_batch_get_one(self.one, 1))

    def _text(self) -> None:
        llama_cpp.llama_token_to_piece(self.vocab, self.one[0], self.piece, 64, 0, False)

    def _argmax(self) -> int:
        logits = numpy.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ctx, -1), shape=(self.n_vocab,))
        return int(logits.argmax())

    def floor(self, n: int) -> float:
        start, host = self._start(), 0.0
        self.one[0] = self.tokens[-1]
        for _ in range(n):
            queued = time.perf_counter()
            self._decode()
            host += time.perf_counter() - queued
            llama_cpp.llama_synchronize(self.ctx)
        self.host = host / n
        return (time.perf_counter() - start) / n

    def native(self, n: int) -> float:
        start = self._start()
        for _ in range(n):
            self.one[0] = llama_cpp.llama_sampler_sample(self.chain, self.ctx, -1)
            self._text()
            self._decode()
        llama_cpp.llama_synchronize(self.ctx)
        return (time.perf_counter() - start) / n

    def argmax(self, n: int) -> float:
        start, out = self._start(), []
        for _ in range(n):
            self.one[0] = self._argmax()
            out.append(self.one[0])
            self._text()
            self._decode()
        llama_cpp.llama_synchronize(self.ctx)
        self.reference = out
        return (time.perf_counter() - start) / n

    def overlapped(self, n: int) -> float:
        start, out = self._start(), []
        for _ in range(n):
            self.one[0] = self._argmax()
            out.append(self.one[0])
            self._decode()
            self._text()
        llama_cpp.llama_synchronize(self.ctx)
        assert out == self.reference, "the overlapped loop picked other tokens"
        return (time.perf_counter() - start) / n

    def generate(self, n: int) -> float:
        self.llm.reset()  # type: ignore[no-untyped-call]
        llama_cpp.llama_memory_clear(self.memory, True)
        start = 0.0
        for count, _ in enumerate(self.llm.generate(self.tokens, temp=0.0, reset=True)):
            if count == 0:
                start = time.perf_counter()
            elif count >= n:
                break
        self.llm.reset()  # type: ignore[no-untyped-call]
        return (time.perf_counter() - start) / n

    def backend(self, n: int) -> float:
        start, out = self._start(), []
        for _ in range(n):
            self.one[0] = llama_cpp.llama_get_sampled_token_ith(self.ctx, -1)
            out.append(self.one[0])
            self._decode()
            self._text()
        llama_cpp.llama_synchronize(self.ctx)
        if out != self.reference:
            print("note: the backend sampler picked other tokens than the argmax", file=sys.stderr)
        return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gpu", action="store_true", help="offload every layer")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.model is None:
        from llmclient.testing import smollm2_gguf

        args.model = smollm2_gguf()
    loops = Loops(args.model, args.gpu, args.threads)
    names: dict[str, Callable[[int], float]] = {
        "floor: decode + synchronize": loops.floor,
        "lean, native sampler": loops.native,
        "lean, argmax in place": loops.argmax,
        "overlapped (text after the next decode is queued)": loops.overlapped,
        "llama-cpp-python's Llama.generate": loops.generate,
    }
    results: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, loop in names.items():
            results[name].append(loop(args.tokens))
    hosts = loops.host
    # backend sampling is attached for good (llama.cpp has no cheap way back), so it runs last
    backend_chain = Loops._greedy_chain()
    if llama_cpp.llama_set_sampler(loops.ctx, 0, backend_chain):
        results["backend sampler"] = [loops.backend(args.tokens) for _ in range(args.rounds)]
    where = "GPU, every layer offloaded" if args.gpu else f"CPU, {args.threads} threads"
    print(f"llama-cpp-python {llama_cpp.__version__}; {where}; {args.tokens} tokens x {args.rounds} rounds; "
          f"command: `python bench/floor.py {' '.join(sys.argv[1:])}`\n")  # fmt: skip
    print("| loop | us per token, median (min-max) | tokens/s |")
    print("|---|---|---|")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"| {name} | {med * 1e6:.0f} ({min(values) * 1e6:.0f}-{max(values) * 1e6:.0f}) | {1 / med:.1f} |")
    print(f"\nHost part of `llama_decode` in the floor loop (the call's own time): {hosts * 1e6:.0f} us per token.")


if __name__ == "__main__":
    main()
