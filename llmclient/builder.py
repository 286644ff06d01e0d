"""A model's configuration: name a model, adjust settings, then `plan()` or `load()` an engine.

`ModelConfig` is what every engine's builder shares (the preset methods, `.hf()`, `.local()`, sizing, the cache,
sampling defaults, planning and fetching the file); `LlamaCppConfig` adds llama.cpp's settings and loads a
`LlamaCppEngine`, `MistralRsConfig` mistral.rs's and loads a `MistralRsEngine`.
`LlmClient.llama_cpp()` and `LlmClient.mistral_rs()` give the builders (client.py), which add `init()` and
`init_sync()`. Every method returns a new builder, so a half-configured one can be reused safely:

    base = LlmClient.llama_cpp().temperature(0.2)
    small = await base.smollm2_135m_instruct().init()
    big = await base.mistral7b_instruct_v0_3().ctx(16384).init()
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
from typing_extensions import Self

from llmclient._candidates import Candidates, resolve_candidates
from llmclient._client_settings import ClientSettings
from llmclient._hub.progress import Progress
from llmclient._hub.reference import validate_reference
from llmclient._source import Source
from llmclient.backends import Engine
from llmclient.backends.llama_cpp import LlamaCppEngine, LlamaCppSettings
from llmclient.backends.llama_cpp._settings import POOLINGS
from llmclient.backends.mistralrs import MistralRsEngine, MistralRsSettings, in_situ_quant
from llmclient.backends.mistralrs.workarounds import refuse_known_bad
from llmclient.cache import ModelCache
from llmclient.errors import InvalidSettingError, UnsupportedFeatureError
from llmclient.hardware import detect
from llmclient.planner import plan as make_plan
from llmclient.presets import get as get_preset
from llmclient.presets._methods import PresetMethods
from llmclient.presets._preset import Embedding
from llmclient.sampling import Sampling
from llmclient.types import Plan

__all__ = ["LlamaCppConfig", "Loaded", "MistralRsConfig", "ModelConfig"]

_NOT_SETTINGS = frozenset({"for_file", "init", "init_sync", "load", "plan", "preset", "hf", "local"})
#: File quants mistral.rs has no fast CPU kernel for (candle's x86 `vec_dot` covers Q4_0, Q8_0 and the K-quants):
#: requantized to Q8_0 while loading unless `.in_situ_quant()` says otherwise (Q4_1: 53 against 16 tok/s here).
_SLOW_IN_MISTRALRS = frozenset({"Q4_1"})
_AUTO: Any = object()


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidSettingError(f"{name} must be a positive whole number, got {value!r}")
    return value


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidSettingError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Loaded:
    """A loaded engine and what the client over it needs from the configuration."""

    engine: Engine
    plan: Plan
    defaults: Sampling
    system_prompt: str | None
    max_queue: int | None
    embed_prefixes: Mapping[str, str] = field(default_factory=dict)
    """What `embed(kind=...)` puts before each text: the builder's, else the preset's."""


@dataclass(frozen=True)
class ModelConfig(ClientSettings, PresetMethods):
    """What every engine's configuration shares; immutable (each method returns a changed copy)."""

    _source: Source | None = None
    _quant: str | None = None
    _ctx: int | None = None
    _memory_gb: float | None = None
    _cpu_only: bool = False
    _threads: int | None = None
    _cache_dir: Path | None = None
    _endpoint: str | None = None
    _token: str | bool | None = None
    _offline: bool | None = None
    _progress: Progress = True
    _parallel: int | None = None

    @classmethod
    def for_file(cls, path: str | os.PathLike[str], **settings: Any) -> Self:
        """A builder for a local file with settings named as the builder's methods (`ctx=4096, temperature=0`)."""
        builder = cls().local(path)
        for name, value in settings.items():
            if name.startswith("_") or name in _NOT_SETTINGS or not hasattr(builder, name):
                raise InvalidSettingError(f"unknown setting {name!r}; use a builder method's name, e.g. ctx=4096")
            builder = getattr(builder, name)(value)
        return builder

    # --- what to run ------------------------------------------------------------------------------

    def preset(self, name: str) -> Self:
        """A catalogued model by name or alias (`llmclient.presets.list()`); unknown names list close ones."""
        return replace(self, _source=Source("preset", get_preset(name).name))

    def hf(self, repo: str, file: str | None = None, quant: str | None = None, revision: str = "main") -> Self:
        """Any GGUF repo on the hub; without `file` the planner chooses among its .gguf files."""
        validate_reference(repo, file or "model.gguf", revision)  # InvalidModelReferenceError, before any request
        built = replace(self, _source=Source("hf", repo, file=file, revision=revision))
        return built.quant(quant) if quant is not None else built

    def local(self, path: str | os.PathLike[str]) -> Self:
        """A GGUF file on disk (the first shard of a split model)."""
        return replace(self, _source=Source("local", os.fspath(path)))

    # --- how to size it ---------------------------------------------------------------------------

    def quant(self, quant: str) -> Self:
        """Use this quantization (e.g. `Q4_K_M`) instead of the planner's choice."""
        from llmclient.quants import QUANTS, quant_named

        if quant_named(quant) is None:
            raise InvalidSettingError(f"unknown quant {quant!r}; known: {', '.join(q.name for q in QUANTS)}")
        return replace(self, _quant=quant.upper())

    def ctx(self, n_ctx: int) -> Self:
        """Context length in tokens (default: the largest up to min(trained, 8192) that fits)."""
        return replace(self, _ctx=_positive_int("ctx", n_ctx))

    def memory_gb(self, gigabytes: float) -> Self:
        """A memory budget replacing detection: GPU memory if there are GPUs, else RAM."""
        return replace(self, _memory_gb=_number("memory_gb", gigabytes, 0.001, 1e6))

    def cpu_only(self, on: bool = True) -> Self:
        """Ignore GPUs."""
        return replace(self, _cpu_only=on)

    def threads(self, n: int) -> Self:
        """CPU threads (default: every physical core; at most 4 when fully on the GPU)."""
        return replace(self, _threads=_positive_int("threads", n))

    # --- where it comes from ----------------------------------------------------------------------

    def cache_dir(self, path: str | os.PathLike[str]) -> Self:
        """The model cache (default `$LLMCLIENT_CACHE_DIR`, else the user cache directory)."""
        return replace(self, _cache_dir=Path(path).expanduser())

    def endpoint(self, url: str) -> Self:
        """The hub to use (a mirror or a LocalHub) instead of `HF_ENDPOINT` / huggingface.co."""
        return replace(self, _endpoint=url.rstrip("/"))

    def token(self, token: str) -> Self:
        """A Hugging Face token for gated or private repos (default: `HF_TOKEN` or the saved login)."""
        return replace(self, _token=token)

    def offline(self, on: bool = True) -> Self:
        """Make no request: plan and load from the cache only."""
        return replace(self, _offline=on)

    def progress(self, progress: Progress) -> Self:
        """Download progress: True (a tqdm bar), False, or a callback `(done_bytes, total_bytes)`."""
        return replace(self, _progress=progress)

    # --- how it answers ---------------------------------------------------------------------------

    def parallel(self, n: int) -> Self:
        """Decode up to `n` requests together in one batch (default: 4, fewer if their KV cache does not fit);
        1 serves them one at a time."""
        return replace(self, _parallel=_positive_int("parallel", n))

    # --- plan and load ---------------------------------------------------------------------------

    def _cache(self) -> ModelCache:
        return ModelCache(self._cache_dir)

    def _planning(self) -> dict[str, Any]:
        """The planner's engine-specific arguments (overridden by each engine's configuration)."""
        return {"cpu_only": self._cpu_only}

    async def plan(self) -> Plan:
        """The plan for this machine: file, quant, context, GPU layers, threads. Downloads nothing."""
        chosen, _ = await self._plan()
        return chosen

    async def _plan(self, **planning: Any) -> tuple[Plan, Candidates]:
        """The plan and the candidates it chose among; `planning`: planner arguments beside `_planning()`'s."""
        if self._source is None:
            raise InvalidSettingError(
                "no model chosen: call a preset method (e.g. .smollm2_135m_instruct()), .hf() or .local()"
            )
        candidates = await resolve_candidates(
            self._source, self._cache(), endpoint=self._endpoint, token=self._token, offline=self._offline
        )
        hardware = await anyio.to_thread.run_sync(lambda: detect(memory_gb=self._memory_gb))
        facts = self._embedding()
        chosen = make_plan(
            candidates.files,
            hardware,
            n_ctx=self._ctx or (facts.max_tokens if facts is not None else None),
            quant=candidates.check_quant(self._quant),
            threads=self._threads,
            reference=candidates.reference,
            notes=candidates.notes,
            parallel=self._parallel or (1 if facts is not None else None),  # an embedding model has no chat KV
            **{**self._planning(), **planning},
        )
        return chosen, candidates

    def _embedding(self) -> Embedding | None:
        """The preset's embedding facts, for an embedding preset."""
        source = self._source
        return get_preset(source.name).embedding if source is not None and source.kind == "preset" else None

    async def _fetch(self, chosen: Plan) -> list[Path]:
        """The chosen file's paths (every shard, the first first): the local file, or fetched into the cache
        (verified)."""
        source = self._source
        assert source is not None
        if source.kind == "local":
            return [Path(source.name)]
        cache = self._cache()
        names = chosen.file.shards or (chosen.file.filename,)
        return [
            (
                await cache.fetch(
                    source.repo_id, name, source.revision,
                    endpoint=self._endpoint, token=self._token, progress=self._progress, offline=self._offline,
                )
            ).path
            for name in names
        ]  # fmt: skip


@dataclass(frozen=True)
class LlamaCppConfig(ModelConfig):
    """Configuration for a llama.cpp model; immutable (each method returns a changed copy)."""

    _gpu_layers: int | None = None
    _chat_format: str | None = None
    _chat_template: str | None = None
    _pooling: str | None = None

    def pooling(self, kind: str) -> Self:
        """How to pool a text's tokens into one vector: `mean`, `cls` or `last`. An embedding model's GGUF (and its
        preset) says it already; on a chat model this opts in to `embed` beside chat."""
        if kind not in POOLINGS:
            raise InvalidSettingError(f"pooling must be one of {', '.join(POOLINGS)}, got {kind!r}")
        return replace(self, _pooling=kind)

    def gpu_layers(self, n: int) -> Self:
        """Offload exactly `n` layers (llama.cpp's count: block_count + 1 is everything)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidSettingError(f"gpu_layers must be a whole number >= 0, got {n!r}")
        return replace(self, _gpu_layers=n)

    def chat_format(self, name: str) -> Self:
        """A llama-cpp-python chat format (`chatml`, `llama-3`, ...) instead of the GGUF's own template."""
        return replace(self, _chat_format=name)

    def chat_template(self, text_or_path: str | os.PathLike[str]) -> Self:
        """A Jinja chat template (its text, or a file holding it) instead of the GGUF's own: e.g. one that knows
        tools, for a model whose own does not. Rendered sandboxed, as transformers renders it."""
        from llmclient.chat.template import ChatTemplate, template_text

        text = template_text(text_or_path)
        ChatTemplate(text)  # InvalidSettingError now for a template that does not compile, not at load
        return replace(self, _chat_template=text)

    def _planning(self) -> dict[str, Any]:
        return {"cpu_only": self._cpu_only, "n_gpu_layers": self._gpu_layers}

    async def load(self) -> Loaded:
        """Plan, fetch the chosen file (verified, into the cache) and load it in llama.cpp."""
        chosen, candidates = await self._plan()
        facts = self._embedding()
        path = (await self._fetch(chosen))[0]
        settings = LlamaCppSettings(
            n_ctx=chosen.n_ctx,
            n_gpu_layers=chosen.n_gpu_layers,
            threads=chosen.threads,
            flash_attn=chosen.flash_attn,
            chat_format=self._chat_format or candidates.chat_format,
            chat_template=self._chat_template,
            pooling=self._pooling or (facts.pooling if facts is not None else None),
            tensor_split=chosen.tensor_split,
            parallel=chosen.parallel,
            kv_tokens=chosen.kv_tokens,
        )
        engine = await LlamaCppEngine.load(path, settings)
        if self._embed_prefixes is not None:
            prefixes = dict(self._embed_prefixes)
        else:
            prefixes = {"query": facts.query_prefix, "document": facts.document_prefix} if facts is not None else {}
        return Loaded(engine, chosen, self._sampling, self._system_prompt, self._max_queue, prefixes)


@dataclass(frozen=True)
class MistralRsConfig(ModelConfig):
    """Configuration for a mistral.rs model (CPU: the PyPI wheel's build); immutable (each method returns a changed
    copy)."""

    _in_situ_quant: str | None = _AUTO

    def in_situ_quant(self, quant: str | None) -> Self:
        """Requantize the weights while loading (mistral.rs's in-situ quantization): `Q8_0`, `Q4K`, `HQQ4`, ...
        (`llmclient.backends.mistralrs.IN_SITU_QUANTS`); None loads the file's weights as they are. Default: a
        Q4_1 file becomes Q8_0 (mistral.rs has no fast Q4_1 kernel: ~4x slower), others load as they are. The
        plan sizes the model as it will be held."""
        return replace(self, _in_situ_quant=None if quant is None else in_situ_quant(quant).name)

    def seed(self, seed: int) -> Self:
        """Refused: mistral.rs has no per-request seed (`capabilities.seed` is False)."""
        raise UnsupportedFeatureError(
            "mistral.rs has no per-request seed; leave .seed() out, or use the llama.cpp engine for reproducible "
            "sampling (greedy, temperature 0, is reproducible on both)",
            feature="seed",
        )

    def _planning(self) -> dict[str, Any]:
        return {"cpu_only": True, "f32_embedding": True}

    async def _plan(self, **planning: Any) -> tuple[Plan, Candidates]:
        if self._in_situ_quant is not _AUTO:
            return await self._plan_requantized(self._in_situ_quant)
        chosen, candidates = await self._plan_requantized(None)
        if chosen.quant in _SLOW_IN_MISTRALRS:  # planned again: the Q8_0 weights take more memory
            return await replace(self, _quant=chosen.quant)._plan_requantized("Q8_0")
        return chosen, candidates

    async def _plan_requantized(self, quant: str | None) -> tuple[Plan, Candidates]:
        chosen, candidates = await super()._plan(requantize=in_situ_quant(quant) if quant is not None else None)
        if candidates.reference is not None:
            refuse_known_bad(candidates.reference)  # before any download
        return chosen, candidates

    async def load(self) -> Loaded:
        """Plan, fetch the chosen file (verified, into the cache) and load it in mistral.rs."""
        chosen, _ = await self._plan()
        paths = await self._fetch(chosen)
        settings = MistralRsSettings(
            n_ctx=chosen.n_ctx, threads=chosen.threads, parallel=chosen.parallel, in_situ_quant=chosen.in_situ_quant
        )
        engine = await MistralRsEngine.load(paths, settings)
        return Loaded(engine, chosen, self._sampling, self._system_prompt, self._max_queue)
