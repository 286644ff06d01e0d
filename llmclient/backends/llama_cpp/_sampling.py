"""llama.cpp's native sampler chain for one request's settings (no per-token Python over the vocabulary)."""

from __future__ import annotations

from typing import Any

__all__ = ["SamplerChain"]


class SamplerChain:
    """A `llama_sampler` chain: penalties → top-k → top-p → min-p → temperature → draw (or greedy at 0)."""

    def __init__(self, n_vocab: int, sampling: dict[str, Any], default_seed: int) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.greedy = False
        """Only an argmax: the decoder picks it from the logits itself (`BatchDecoder._greedy_picks`)."""
        params = llama_cpp.llama_sampler_chain_default_params()
        params.no_perf = True
        self.chain = llama_cpp.llama_sampler_chain_init(params)

        def add(sampler: Any) -> None:
            llama_cpp.llama_sampler_chain_add(self.chain, sampler)

        repeat = float(sampling.get("repeat_penalty", 1.0))
        if repeat != 1.0:
            add(llama_cpp.llama_sampler_init_penalties(n_vocab, 64, repeat, 0.0, 0.0))
        temperature = float(sampling.get("temperature", 0.8))
        if temperature <= 0.0:
            add(llama_cpp.llama_sampler_init_greedy())
            self.greedy = repeat == 1.0  # nothing in the chain keeps state or reorders: the argmax is all
            return
        add(llama_cpp.llama_sampler_init_top_k(int(sampling.get("top_k", 40))))
        add(llama_cpp.llama_sampler_init_top_p(float(sampling.get("top_p", 0.95)), 1))
        add(llama_cpp.llama_sampler_init_min_p(float(sampling.get("min_p", 0.05)), 1))
        add(llama_cpp.llama_sampler_init_temp(temperature))
        seed = sampling.get("seed")
        add(llama_cpp.llama_sampler_init_dist(int(seed) & 0xFFFFFFFF if seed is not None else default_seed))

    def sample(self, ctx: Any, index: int) -> int:
        """Sample (and accept) the next token from the logits at `index` of the last decode."""
        return int(self._lib.llama_sampler_sample(self.chain, ctx, index))

    def close(self) -> None:
        self._lib.llama_sampler_free(self.chain)
