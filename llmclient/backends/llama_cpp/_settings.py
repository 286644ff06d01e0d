"""How to load a model in llama.cpp: the settings a `Plan` turns into, and what a GGUF is for under them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llmclient.errors import InvalidSettingError

__all__ = ["POOLINGS", "LlamaCppSettings", "model_role"]

#: Pooling names as the builder takes them → llama.cpp's `LLAMA_POOLING_TYPE_*`.
POOLINGS = {"mean": 1, "cls": 2, "last": 3}


@dataclass(frozen=True)
class LlamaCppSettings:
    """How to load a model in llama.cpp (normally taken from a `Plan`)."""

    n_ctx: int = 4096
    """The most tokens one request may hold (prompt + answer)."""
    n_gpu_layers: int = 0
    threads: int | None = None
    flash_attn: bool = True
    chat_format: str | None = None
    """A llama-cpp-python chat format (`chatml`, `llama-3`, `mistral-instruct`, `gemma`, ...) replacing the GGUF's
    own template; None uses the template in the file."""
    chat_template: str | None = None
    """A Jinja chat template's text replacing the GGUF's own (and any `chat_format`)."""
    tensor_split: tuple[float, ...] = ()
    seed: int = 0xFFFFFFFF
    verbose: bool = False
    parallel: int = 1
    """Requests decoded together in one batch."""
    kv_tokens: int = 0
    """Tokens the KV cache shared by the parallel requests holds (0: n_ctx x parallel)."""
    pooling: str | None = None
    """How texts are pooled into one vector: `mean`, `cls` or `last`; None: the GGUF's own. A GGUF that declares
    a pooling (or an encoder) is an embedding model and only embeds; a chat model embeds only with one set here."""
    prefill_chunk: int | None = None
    """Prompt tokens evaluated per step. Default: on the CPU, `BATCH_INVARIANT_CHUNK` (48) always, which keeps each
    answer the same whatever runs beside it (a larger value is capped to it); with GPU layers, 256 while other
    requests are generating, a whole batch when alone."""


def model_role(metadata: Mapping[str, str], pooling: str | None) -> tuple[bool, int | None, bool]:
    """(whether it generates, the pooling it embeds with or None, whether its attention is causal) for a model of
    this GGUF metadata, given the pooling asked for (`mean`, `cls`, `last`; None: the GGUF's own).

    A GGUF that declares a pooling, or an encoder (non-causal attention: BERT and its kin), is an embedding model:
    it only embeds. Any other model generates, and embeds only with a pooling asked for."""
    arch = metadata.get("general.architecture", "")
    declared = int(metadata.get(f"{arch}.pooling_type", "-1") or -1)
    causal = metadata.get(f"{arch}.attention.causal", "true").strip().lower() not in ("false", "0")
    asked = POOLINGS[pooling] if pooling is not None else None
    if declared == 4:  # LLAMA_POOLING_TYPE_RANK: a reranker scores pairs, it does not embed
        raise InvalidSettingError("this GGUF is a reranking model (rank pooling); llmclient does not run rerankers yet")
    if declared in POOLINGS.values() or not causal:
        chosen = asked if asked is not None else declared if declared in POOLINGS.values() else None
        if chosen is None:
            raise InvalidSettingError(
                f"this {arch} encoder's GGUF declares no pooling; choose one with the builder's .pooling('mean') "
                "(or 'cls'), as its model card says"
            )
        return False, chosen, causal
    return True, asked, causal
