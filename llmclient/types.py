"""Values passed between llmclient's layers and returned to callers."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmclient.metadata import GgufInfo
from llmclient.quants import Quant, quality_rank

if TYPE_CHECKING:
    from llmclient.chat.tools import ToolCall
    from llmclient.structured import Constraint

__all__ = ["CachedModel", "MemoryEstimate", "ModelFile", "Plan", "Rejected", "VerifyReport"]


@dataclass(frozen=True)
class CachedModel:
    """A verified model file in the cache, ready to load from `path`."""

    path: Path
    """Where to open the file (inside the cache's `snapshots/<commit>/` folder)."""
    repo_id: str
    filename: str
    commit: str
    """The hub commit the file was resolved at (40 hex characters)."""
    size: int
    """Size in bytes."""
    sha256: str
    """The file's sha256, checked against the hub's when it was downloaded."""


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of re-hashing one cached file with `ModelCache.verify`."""

    model: CachedModel
    ok: bool
    """True when the bytes on disk still hash to the recorded sha256."""
    actual_sha256: str
    """What the bytes on disk hash to now; a mismatching file has been removed from the cache."""


# --- Planning -------------------------------------------------------------------------------------

_GB = 1e9


def format_gb(n: int) -> str:
    """Bytes as decimal gigabytes with two places, e.g. `4.37 GB`."""
    return f"{n / _GB:.2f} GB"


@dataclass(frozen=True)
class MemoryEstimate:
    """The memory llama.cpp is expected to allocate for one model file, context and offload, in bytes."""

    n_ctx: int
    """The context as llama.cpp sizes it (the asked one rounded up to a multiple of 256)."""
    n_gpu_layers: int
    gpu: tuple[int, ...]
    """Bytes on each GPU (empty when nothing is offloaded)."""
    cpu: int
    """Bytes of system RAM."""
    weights: int
    kv_cache: int
    compute: int

    @property
    def total(self) -> int:
        """Everything, on all devices."""
        return sum(self.gpu) + self.cpu


@dataclass(frozen=True)
class ModelFile:
    """One candidate model file (all its shards) the planner may choose."""

    filename: str
    """The file name in its repo (the first shard's for a split model), or a local path."""
    quant: Quant | None
    size: int
    """Bytes of all shards together."""
    info: GgufInfo | None = None
    """Its header, when read; without it the planner scales another file's header of the same model by size."""
    shards: tuple[str, ...] = ()

    @property
    def quant_name(self) -> str:
        return self.quant.name if self.quant is not None else "?"


@dataclass(frozen=True)
class Rejected:
    """A candidate the planner did not choose, with what it would need and why not."""

    file: ModelFile
    n_ctx: int
    need_gpu: int
    need_ram: int
    reason: str


@dataclass(frozen=True)
class Plan:
    """How a model will run here: which file, context, offload and threads, and the memory that takes."""

    file: ModelFile
    n_ctx: int
    """Context length in tokens (what llama.cpp will allocate)."""
    n_gpu_layers: int
    """Layers offloaded, counted as llama.cpp does: block_count + 1 offloads everything."""
    layers: int
    """The model's block_count + 1: `n_gpu_layers` equal to it means fully offloaded."""
    device: str
    """Where it runs: `CPU`, `CUDA0`, `CUDA0+CUDA1`, or e.g. `CUDA0 (28/33 layers) + CPU`."""
    estimate: MemoryEstimate
    budget_gpu: tuple[int, ...]
    """GPU memory the plan may use, per device (free minus the safety margin, or the given budget)."""
    budget_ram: int
    threads: int
    flash_attn: bool
    kv_type: str
    tensor_split: tuple[float, ...]
    """Share of the offloaded layers per GPU (empty for one GPU or none)."""
    rejected: tuple[Rejected, ...]
    notes: tuple[str, ...] = ()
    """Why the context and offload are what they are, in words."""
    parallel: int = 1
    """Requests decoded together in one batch (llama.cpp's `n_seq_max`); more wait in the queue."""
    kv_tokens: int = 0
    """Tokens the shared KV cache holds, across the parallel requests (0: `n_ctx`)."""
    in_situ_quant: str | None = None
    """The type the engine rewrites the weights in while loading (mistral.rs's in-situ quantization, e.g. `Q8_0`);
    None: the file's own weights."""

    @property
    def quant(self) -> str:
        """The chosen file's quantization, e.g. `Q4_K_M` (`?` if neither its name nor header says)."""
        return self.file.quant_name

    @property
    def fully_offloaded(self) -> bool:
        return self.n_gpu_layers >= self.layers

    def __str__(self) -> str:
        est, gb = self.estimate, format_gb
        fa = "on" if self.flash_attn else "off"
        gpu_budget = sum(self.budget_gpu)
        lines = [
            f"file      {self.file.filename}  ({self.quant}, {gb(self.file.size)})",
            f"device    {self.device}; {self.threads} CPU threads; flash attention {fa}",
            f"context   {self.n_ctx} tokens per request; {self.parallel} at once sharing a KV cache of "
            f"{self.kv_tokens or self.n_ctx} tokens ({self.kv_type})",
            f"memory    GPU {gb(sum(est.gpu))} of {gb(gpu_budget)}   RAM {gb(est.cpu)} of {gb(self.budget_ram)}",
            f"          weights {gb(est.weights)}, KV cache {gb(est.kv_cache)}, compute buffers {gb(est.compute)}",
        ]
        lines += [f"note      {n}" for n in self.notes]
        chosen = "chosen" if self.parallel == 1 else f"chosen ({self.parallel} requests at once: KV cache for all)"
        rows = [(self.file, self.n_ctx, sum(est.gpu), est.cpu, chosen)]
        rows += [(r.file, r.n_ctx, r.need_gpu, r.need_ram, r.reason) for r in self.rejected]
        rows.sort(key=lambda r: quality_rank(r[0].quant))
        lines.append(f"{'quant':<9} {'file size':>10} {'context':>8} {'needs GPU':>10} {'needs RAM':>10}  verdict")
        for file, ctx, gpu, ram, verdict in rows:
            lines.append(f"{file.quant_name:<9} {gb(file.size):>10} {ctx:>8} {gb(gpu):>10} {gb(ram):>10}  {verdict}")
        return "\n".join(lines)


# --- Chat -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Tokens a request used, in OpenAI's names."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    """Prompt tokens served from the KV cache of the previous request (OpenAI's `prompt_tokens_details`)."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Timings:
    """Where a request's time went, in seconds."""

    queued: float
    """Waiting for the model to be free."""
    first_token: float
    """From the start of the request's turn to its first piece of text (prompt processing)."""
    total: float
    """From the call to the last piece."""
    tokens_per_second: float
    """Completion tokens per second after the first."""

    @staticmethod
    def measured(began: float, first: float | None, end: float, usage: Usage) -> Timings:
        """Timings as a client saw them (`perf_counter` times), for an engine that reports none (no queue time
        known)."""
        decode = end - (first or end)
        produced = usage.completion_tokens
        rate = (produced - 1) / decode if decode > 0 and produced > 1 else 0.0
        return Timings(0.0, (first or end) - began, end - began, rate)


@dataclass(frozen=True)
class ChatResult:
    """A finished answer."""

    text: str
    """The answer's text (never a tool call's markup)."""
    finish_reason: str
    """`stop` (the model ended or a stop sequence matched), `tool_calls` (it called tools), `length` (max_tokens
    reached) or `cancelled`."""
    usage: Usage
    timings: Timings
    constraint: Constraint | None = field(default=None, repr=False, compare=False)
    """What the answer was held to (`schema=`, `regex=`, ...), None for free text."""
    tool_calls: list[ToolCall] = field(default_factory=list)
    """The tools the model called, in order, each with its arguments parsed and checked against the tool's
    schema (empty for an answer in text)."""
    transcript: tuple[dict[str, Any], ...] = field(default=(), repr=False, compare=False)
    """From `run_tools`: the whole conversation, each call and tool result, this answer last (else empty)."""

    @property
    def message(self) -> dict[str, Any]:
        """The answer as an assistant message to append to the conversation (OpenAI's shape, calls included)."""
        if not self.tool_calls:
            return {"role": "assistant", "content": self.text}
        calls = [call.to_dict() for call in self.tool_calls]
        return {"role": "assistant", "content": self.text or None, "tool_calls": calls}

    @functools.cached_property
    def parsed(self) -> Any:
        """The answer's value: an instance of the type given as `schema=` (pydantic model, dataclass, ...), Python
        objects for a JSON Schema dict or `response_format`, the text for `regex=`, `choices=` and `grammar=`;
        None without a constraint. An answer cut short raises `IncompleteOutputError`. Parsed once: the same object
        on every access."""
        if self.constraint is None:
            return None
        return self.constraint.parse(self.text, self.finish_reason)


@dataclass(frozen=True)
class Chunk:
    """One piece of a streamed answer; the last one has `finish_reason` (and `usage`) set."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()
    """Tool calls completed in this piece, as OpenAI's streaming deltas (`{"index", "id", "type": "function",
    "function": {"name", "arguments"}}`), each call whole and already checked against its tool's schema."""
