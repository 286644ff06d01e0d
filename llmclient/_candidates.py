"""The files a builder may load: a preset's quants, a hub repo's .gguf files, or one local file.

Online, the candidates are the repo's own .gguf files as the hub lists them: one `model_info` call, stored in
the cache so that planning works offline, so files added or renamed since the catalogue was written are found.
One file's header (ranged reads) gives the model's shape, scaled to the other quants by size. With neither
(offline and never seen), a preset is planned from its catalogued files, its parameter count and each quant's
bits per weight.
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio

from llmclient._hub.listing import repo_listing
from llmclient._source import Source
from llmclient.cache import ModelCache
from llmclient.constants import hub_offline
from llmclient.errors import (
    ModelNotFoundError,
    OfflineError,
    QuantNotAvailableError,
)
from llmclient.metadata import SHARD_RE, GgufInfo, read_gguf_info
from llmclient.presets import get as get_preset
from llmclient.quants import quality_rank, quant_from_file_type, quant_from_filename, quant_named
from llmclient.types import ModelFile

__all__ = ["Candidates", "Source", "info_from_parameters", "resolve_candidates"]

logger = logging.getLogger("llmclient")


@dataclass(frozen=True)
class Candidates:
    """The files to plan among, the header to size them by, and what was assumed."""

    files: list[ModelFile]
    reference: GgufInfo | None
    chat_format: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def check_quant(self, quant: str | None) -> str | None:
        """`quant` if some file has it, else `QuantNotAvailableError` listing the quants there are."""
        if quant is None or any(f.quant is not None and f.quant.name == quant.upper() for f in self.files):
            return quant
        have = sorted({f.quant_name for f in self.files}, key=lambda n: quality_rank(quant_named(n)))
        raise QuantNotAvailableError(
            f"no {quant} file here; the quants available are: {', '.join(have)}. Use .quant() with one of them, "
            "or leave it out to let the planner choose.",
            available=have,
        )


def info_from_parameters(params_b: float, context_length: int, file_bytes: int) -> GgufInfo:
    """A stand-in header for a model never seen: 32 layers sharing `file_bytes`, a large vocabulary, and a
    generous KV cache per token (40 KiB x params^0.6: above Llama 3 8B's 128 KiB and 70B's 320 KiB)."""
    layers = 32
    kv_per_token = 40 * 1024 * params_b**0.6
    kv_heads = max(1, round(kv_per_token / (layers * 2 * 128 * 2)))
    vocab = 152064
    embedding = int(file_bytes * 0.05)
    return GgufInfo(
        architecture="unknown", name="estimated from the parameter count", file_type=None,
        context_length=context_length, block_count=layers, embedding_length=4096, head_count=32,
        head_count_kv=(kv_heads,) * layers, key_length=128, value_length=128, vocab_size=vocab, sliding_window=0,
        swa_layers=(False,) * layers, layer_bytes=((file_bytes - 2 * embedding) // layers,) * layers,
        input_bytes=embedding, output_bytes=embedding, tied_output=False, feed_forward_length=14336,
        header_bytes=0, file_bytes=file_bytes,
    )  # fmt: skip


def _group(listing: dict[str, int]) -> list[ModelFile]:
    """One candidate per model file, a split model's shards together; projectors and the like left out."""
    groups: dict[str, list[str]] = {}
    for name in sorted(listing):
        base = name.rsplit("/", 1)[-1].lower()
        if "mmproj" in base or "imatrix" in base:
            continue
        match = SHARD_RE.match(name)
        groups.setdefault(match.group("stem") if match else name, []).append(name)
    files = []
    for names in groups.values():
        quant = quant_from_filename(names[0])
        shards = tuple(names) if len(names) > 1 or SHARD_RE.match(names[0]) else ()
        files.append(ModelFile(names[0], quant, sum(listing[n] for n in names), None, shards))
    return files


async def resolve_candidates(
    source: Source, cache: ModelCache, *, endpoint: str | None, token: str | bool | None, offline: bool | None
) -> Candidates:
    """The candidate files of `source`, with a header to size them by."""
    if source.kind == "local":
        path = Path(os.path.expanduser(source.name))  # noqa: ASYNC240 - a string operation, no I/O
        if not await anyio.Path(path).is_file():
            raise FileNotFoundError(f"{path} does not exist; give the path of a .gguf file (the first shard if split)")
        info = await anyio.to_thread.run_sync(read_gguf_info, path)
        quant = quant_from_file_type(info.file_type) or quant_from_filename(path.name)
        return Candidates([ModelFile(str(path), quant, info.file_bytes, info)], info)

    offline = hub_offline() if offline is None else offline
    repo_id, revision = source.repo_id, source.revision
    # a preset can be planned from the catalogue without a listing; any other repo cannot
    listing = await repo_listing(cache.root, repo_id, revision, endpoint, token, offline, source.kind == "preset")
    notes: list[str] = []
    preset = get_preset(source.name) if source.kind == "preset" else None
    if preset is not None:
        if listing is None:
            files = [
                ModelFile(name, quant_named(q), _size_from_parameters(preset.params_b, q))
                for q, name in preset.files.items()
            ]
            notes.append("sizes estimated from the parameter count: the repo's listing was never fetched")
        else:
            files = _group(listing)
            catalogued = set(preset.files.values())
            if not any(f.filename in catalogued for f in files):
                notes.append(f"none of the catalogued files is in {repo_id} now; planned among the files it has")
    else:
        if listing is None:
            raise OfflineError(
                f"{repo_id} was never listed into the cache at {cache.root}, and offline mode is on; run once "
                "online, or use .local(path)"
            )
        files = _group(listing)
        if source.file is not None:
            files = [f for f in files if f.filename == source.file or source.file in f.shards]
            if not files:
                names = sorted(listing)
                close = difflib.get_close_matches(source.file, names, n=3, cutoff=0.5)
                raise ModelNotFoundError(
                    f"{source.file!r} is not in {repo_id}."
                    + (" Did you mean " + " or ".join(map(repr, close)) + "?" if close else "")
                    + f" Its .gguf files: {', '.join(names[:20]) or 'none'}.",
                    repo_id=repo_id, filename=source.file, available=names,
                )  # fmt: skip
    if not files:
        raise ModelNotFoundError(f"{repo_id} has no .gguf model files to load", repo_id=repo_id)

    reference: GgufInfo | None = None
    first = min(files, key=lambda f: f.size)
    try:
        reference = await cache.gguf_info(
            repo_id, first.filename, revision, endpoint=endpoint, token=token, offline=offline
        )
    except OfflineError:
        if preset is None:
            raise
    if reference is not None:
        files = [replace(f, info=reference) if f is first else f for f in files]
    elif preset is not None:
        reference = info_from_parameters(preset.params_b, preset.context_length, first.size)
        notes.append("the model's shape was estimated from its parameter count: its header was never read")
    return Candidates(files, reference, preset.chat_format if preset else None, tuple(notes))


def _size_from_parameters(params_b: float, quant: str) -> int:
    known = quant_named(quant)
    return int(params_b * 1e9 * (known.bits_per_weight if known is not None else 8.5) / 8)
