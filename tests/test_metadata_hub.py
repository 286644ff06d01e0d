"""GGUF metadata of a hub file, read with HTTP ranges from a real LocalHub serving the real SmolLM2 file."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmclient import ModelCache, ModelFile, ModelFormatError, OfflineError, plan, read_gguf_info
from llmclient.hardware import detect
from llmclient.quants import quant_from_filename
from llmclient.testing import SMOLLM2_FILENAME, LocalHub
from tests.conftest import REPO
from tests.test_cache import settled

pytestmark = pytest.mark.anyio


def ranged_bytes(hub: LocalHub, filename: str) -> tuple[int, list[str | None]]:
    """Bytes asked for by GETs of `filename`, and their Range headers (None: the whole file)."""
    total, ranges = 0, []
    for request in settled(hub):
        if request.method == "GET" and request.path.endswith("/" + filename):
            ranges.append(request.range)
            if request.range is None:
                return -1, ranges
            start, end = request.range.removeprefix("bytes=").split("-")
            total += int(end) - int(start) + 1
    return total, ranges


async def test_planning_a_hub_file_reads_only_its_header(hub: LocalHub, cache: ModelCache, smollm2: Path) -> None:
    info = await cache.gguf_info(REPO, SMOLLM2_FILENAME, endpoint=hub.url)

    assert info == read_gguf_info(smollm2)
    read, ranges = ranged_bytes(hub, SMOLLM2_FILENAME)
    size = smollm2.stat().st_size
    assert None not in ranges and len(ranges) >= 2, "growing ranged reads, never the whole file"
    assert info.header_bytes <= read < 0.05 * size
    assert not list(cache.root.glob("models--*/blobs/*")), "nothing was downloaded"

    # planned from the hub's metadata alone
    chosen = plan([ModelFile(SMOLLM2_FILENAME, quant_from_filename(SMOLLM2_FILENAME), info.file_bytes, info)], detect())
    assert chosen.quant == "Q4_1" and chosen.n_ctx == 8192


async def test_metadata_is_stored_so_asking_again_or_offline_transfers_nothing(
    hub: LocalHub, cache: ModelCache
) -> None:
    first = await cache.gguf_info(REPO, SMOLLM2_FILENAME, endpoint=hub.url)
    hub.clear_log()
    again = await cache.gguf_info(REPO, SMOLLM2_FILENAME, endpoint=hub.url)
    assert again == first
    assert [r.method for r in settled(hub)] == ["HEAD"], "one metadata request, no bytes"
    hub.clear_log()
    offline = await cache.gguf_info(REPO, SMOLLM2_FILENAME, endpoint=hub.url, offline=True)
    assert offline == first and settled(hub) == []
    assert list(cache.root.glob("models--*/gguf/*.json"))


async def test_a_cached_file_is_read_locally(hub: LocalHub, cache: ModelCache) -> None:
    await cache.fetch(REPO, SMOLLM2_FILENAME, endpoint=hub.url, progress=False)
    hub.clear_log()
    info = await cache.gguf_info(REPO, SMOLLM2_FILENAME, endpoint=hub.url)
    assert info.block_count == 30
    assert [r.method for r in settled(hub)] == ["HEAD"]


async def test_offline_without_stored_metadata_says_what_to_do(hub: LocalHub, cache: ModelCache) -> None:
    with pytest.raises(OfflineError, match="Plan it once while online"):
        await cache.gguf_info(REPO, SMOLLM2_FILENAME, endpoint=hub.url, offline=True)
    assert settled(hub) == []


async def test_a_file_that_is_not_gguf_is_refused_without_reading_it_all(hub: LocalHub, cache: ModelCache) -> None:
    with pytest.raises(ModelFormatError, match="not a GGUF file"):
        await cache.gguf_info(REPO, "README.md", endpoint=hub.url)
    assert not list(cache.root.glob("models--*/gguf/*.json")), "nothing stored for a bad file"


def write_split_model(folder: Path) -> list[Path]:
    """A tiny llama-shaped model split by the gguf package into three shards (`-0000N-of-00003.gguf`)."""
    import numpy as np
    from gguf import GGUFWriter

    folder.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(folder / "tiny-F32.gguf", "llama", split_max_tensors=4)
    for key, value in (("block_count", 2), ("embedding_length", 64), ("attention.head_count", 2)):
        writer.add_uint32(f"llama.{key}", value)
    writer.add_uint32("llama.context_length", 2048)
    writer.add_tensor("token_embd.weight", np.zeros((128, 64), np.float32))
    for il in range(2):
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{il}.{name}.weight", np.zeros((64, 64), np.float32))
    writer.add_tensor("output_norm.weight", np.ones(64, np.float32))
    writer.write_header_to_file(folder / "tiny-F32.gguf")
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return sorted(folder.glob("tiny-F32-*-of-*.gguf"))


async def test_a_split_model_is_read_from_every_shards_header(tmp_path: Path, cache: ModelCache) -> None:
    shards = write_split_model(tmp_path / "hub" / "owner" / "split-GGUF")
    assert [p.name for p in shards] == [f"tiny-F32-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    with LocalHub(tmp_path / "hub") as hub:
        info = await cache.gguf_info("owner/split-GGUF", shards[1].name, endpoint=hub.url)  # any shard names the set
        heads = [r.path.rsplit("/", 1)[-1] for r in settled(hub) if r.method == "HEAD"]
    assert info == read_gguf_info(shards[0]) and info.shards == 3
    assert heads == [p.name for p in shards]
    assert info.layer_bytes == (4 * 64 * 64 * 4,) * 2 and info.input_bytes == 128 * 64 * 4
    assert info.file_bytes == sum(p.stat().st_size for p in shards)
