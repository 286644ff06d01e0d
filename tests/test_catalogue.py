"""The preset catalogue: complete, consistent, and every preset reachable from the builder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from llmclient import presets
from llmclient.client import LlamaCppBuilder
from llmclient.errors import UnknownPresetError
from llmclient.metadata import SHARD_RE
from llmclient.quants import quant_from_filename, quant_named

ROOT = Path(__file__).resolve().parent.parent
LICENSES = {"apache-2.0", "mit", "llama3.1", "llama3.2", "llama3.3", "gemma", "mrl", "qwen", "qwen-research",
            "falcon-llm-license", "other"}  # fmt: skip
REQUIRED = [
    "smollm2_135m_instruct", "smollm2_360m_instruct", "smollm2_1_7b_instruct", "llama3_2_1b_instruct",
    "llama3_2_3b_instruct", "llama3_1_8b_instruct", "llama3_3_70b_instruct", "mistral7b_instruct_v0_3",
    "mistral_nemo_instruct_2407", "mistral_small_24b_instruct_2501", "mixtral_8x7b_instruct_v0_1",
    "qwen2_5_0_5b_instruct", "qwen2_5_1_5b_instruct", "qwen2_5_3b_instruct", "qwen2_5_7b_instruct",
    "qwen2_5_14b_instruct", "qwen2_5_32b_instruct", "phi3_5_mini_instruct", "phi4", "phi4_mini_instruct",
    "gemma2_2b_it", "gemma2_9b_it", "gemma3_1b_it", "gemma3_4b_it", "gemma3_12b_it", "gemma3_27b_it",
    "falcon3_7b_instruct",
]  # fmt: skip


def test_the_catalogue_has_the_models_the_issue_names_and_more_than_25() -> None:
    names = {p.name for p in presets.list()}
    assert len(names) >= 25
    assert set(REQUIRED) <= names
    assert any(n.startswith("granite3") and n.endswith("8b_instruct") for n in names)
    assert any(n.startswith("qwen3_") for n in names)


@pytest.mark.parametrize("preset", presets.list(), ids=lambda p: p.name)
def test_every_preset_is_complete_and_consistent(preset: presets.Preset) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*[a-z0-9]", preset.name) and "__" not in preset.name
    assert re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", preset.repo) and "gguf" in preset.repo.lower()
    assert re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", preset.base_repo)
    assert preset.license in LICENSES, f"{preset.license!r}: add it to the known licenses if it is right"
    if preset.embedding is None:
        assert 0.05 < preset.params_b < 1000 and preset.context_length >= 2048
    else:  # embedding models are small and read short texts
        facts = preset.embedding
        assert 0.01 < preset.params_b < 10 and preset.context_length >= 256
        assert facts.pooling in ("mean", "cls", "last") and 128 <= facts.dimension <= 8192
        assert 128 <= facts.max_tokens <= preset.context_length
        assert preset.chat_format is None, "an embedding model has no chat template to replace"
    assert preset.display and preset.family and preset.source, "each preset says where it was checked"
    assert preset.files, "at least one quant"
    for quant, filename in preset.files.items():
        assert quant_named(quant) is not None, f"unknown quant {quant}"
        assert filename.endswith(".gguf")
        named = quant_from_filename(filename)
        assert named is not None and named.name == quant, f"{filename} does not say it is {quant}"
        shard = SHARD_RE.match(filename.rsplit("/", 1)[-1])
        assert shard is None or shard.group("index") == "00001", "a split file is catalogued by its first shard"
    assert len(set(preset.files.values())) == len(preset.files), "one file per quant"
    assert preset.chat_format in (None, "chatml", "llama-3", "mistral-instruct", "gemma", "phi-3", "zephyr")


def test_names_and_aliases_are_unique_and_resolve() -> None:
    seen: list[str] = []
    for preset in presets.list():
        seen += [preset.name, *preset.aliases]
        assert presets.get(preset.name) is preset
        for alias in preset.aliases:
            assert presets.get(alias) is preset
    assert len(seen) == len(set(seen)), "a name or alias is used twice"


def test_every_preset_and_alias_has_its_builder_method() -> None:
    builder = LlamaCppBuilder()
    for preset in presets.list():
        for name in (preset.name, *preset.aliases):
            method = getattr(LlamaCppBuilder, name, None)
            assert callable(method), f"LlamaCppBuilder.{name} is missing: run scripts/gen_preset_methods.py"
            assert getattr(builder, name)()._source.name == preset.name
            assert preset.display in (method.__doc__ or "")
    generated = subprocess.run(
        [sys.executable, "scripts/gen_preset_methods.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert generated.returncode == 0, generated.stderr


def test_an_unknown_preset_lists_close_matches() -> None:
    with pytest.raises(UnknownPresetError, match=r"no preset called 'mistral7b_instuct'\. Did you mean .*mistral7b"):
        LlamaCppBuilder().preset("mistral7b_instuct")
    with pytest.raises(UnknownPresetError, match=r"\.hf\('owner/repo'\)"):
        presets.get("no-such-model-at-all")


def test_the_issue_s_embedding_models_are_catalogued_with_their_pooling_and_prefixes() -> None:
    embedding = {p.name: p.embedding for p in presets.list() if p.embedding is not None}
    assert {"nomic_embed_text_v1_5", "bge_small_en_v1_5", "all_minilm_l6_v2", "qwen3_embedding_0_6b",
            "embeddinggemma_300m"} <= set(embedding)  # fmt: skip
    nomic = embedding["nomic_embed_text_v1_5"]
    assert nomic is not None and (nomic.query_prefix, nomic.document_prefix) == ("search_query: ", "search_document: ")
    assert {e.pooling for e in embedding.values() if e is not None} == {"mean", "cls", "last"}
    for name in embedding:
        assert "embedding model" in (getattr(LlamaCppBuilder, name).__doc__ or "")
