"""The fluent builder against real LocalHub repos laid out like the real ones, and the real SmolLM2 model."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

import llmclient.builder
from llmclient import Device, Hardware, presets
from llmclient.client import LlamaCppBuilder, LlmClient
from llmclient.errors import QuantNotAvailableError, UnknownPresetError
from llmclient.estimate import estimate
from llmclient.metadata import read_gguf_info
from llmclient.testing import SMOLLM2_FILENAME, LocalHub
from llmclient.testing.synthetic import GEMMA3_12B, LLAMA_7B, QWEN2_7B, ModelShape, write_synthetic_gguf
from tests.test_cache import settled

pytestmark = pytest.mark.anyio

GIB = 1 << 30
PHI3_MINI = ModelShape("phi3", 32, 3072, 32, 32, 8192, 32064, 131072)
SMOLLM2_1_7B = ModelShape("llama", 24, 2048, 32, 32, 8192, 49152, 8192)
WRITABLE = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q3_K_M", "Q2_K", "Q4_0")
FIVE = {  # preset → the shape of its real model (layers, width, heads, KV heads, FFN, vocabulary)
    "mistral7b_instruct_v0_3": LLAMA_7B,
    "qwen2_5_7b_instruct": QWEN2_7B,
    "gemma3_12b_it": GEMMA3_12B,
    "smollm2_1_7b_instruct": SMOLLM2_1_7B,
    "phi3_5_mini_instruct": PHI3_MINI,
}


def gpu_machine(total_gib: int, free_gib: float, ram_gib: int) -> Hardware:
    gpu = Device("CUDA0", f"{total_gib} GB GPU", "cuda", total_gib * GIB, int(free_gib * GIB))
    return Hardware((gpu,), ram_gib * GIB, int(ram_gib * 0.9 * GIB), 8, 16, "given")


PROFILES = {
    "cpu-16gb": Hardware((), 16 * GIB, int(14.4 * GIB), 8, 16, "given"),
    "gpu-8gb": gpu_machine(8, 7.5, 32),
    "gpu-24gb": gpu_machine(24, 23.5, 64),
}
EXPECTED = {  # the quant planned per profile (fully on the GPU on the GPU profiles)
    "mistral7b_instruct_v0_3": {"cpu-16gb": "Q8_0", "gpu-8gb": "Q6_K", "gpu-24gb": "Q8_0"},
    "qwen2_5_7b_instruct": {"cpu-16gb": "Q8_0", "gpu-8gb": "Q6_K", "gpu-24gb": "Q8_0"},
    # 12B on 8 GB: Q4_K_M (7.3 GB) + a 262k-vocabulary logits buffer (0.5 GB) misses; Q3_K_M fits whole
    "gemma3_12b_it": {"cpu-16gb": "Q6_K", "gpu-8gb": "Q3_K_M", "gpu-24gb": "Q8_0"},
    "smollm2_1_7b_instruct": {"cpu-16gb": "Q8_0", "gpu-8gb": "Q8_0", "gpu-24gb": "Q8_0"},
    "phi3_5_mini_instruct": {"cpu-16gb": "Q8_0", "gpu-8gb": "Q8_0", "gpu-24gb": "Q8_0"},
}


@pytest.fixture(scope="module")
def five_hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five preset repos with each catalogued file the synthetic writer can make, at the catalogued path, sparse."""
    root = tmp_path_factory.mktemp("five")
    for name, shape in FIVE.items():
        preset = presets.get(name)
        for quant, filename in preset.files.items():
            if quant not in WRITABLE:
                continue
            path = root / preset.repo / filename
            path.parent.mkdir(parents=True, exist_ok=True)
            write_synthetic_gguf(path, shape, quant, fill="sparse")
    return root


@pytest.fixture(scope="module")
def five(five_hub: Path) -> Iterator[LocalHub]:
    """One LocalHub for all the five-preset cases, so each big sparse file is hashed at most once."""
    with LocalHub(five_hub, checksums_in_listings=False) as hub:
        yield hub


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", FIVE)
async def test_five_presets_plan_the_expected_quant_per_machine(
    five: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, profile: str
) -> None:
    monkeypatch.setattr(llmclient.builder, "detect", lambda memory_gb=None: PROFILES[profile].with_budget(memory_gb))
    hub = five
    hub.clear_log()
    builder = LlmClient.llama_cpp().preset(name).endpoint(hub.url).cache_dir(tmp_path)
    expected = EXPECTED[name][profile]
    plan = await builder.plan()
    requests = settled(hub)
    assert plan.quant == expected
    assert plan.file.filename in presets.get(name).files.values()
    assert plan.fully_offloaded == profile.startswith("gpu")
    # planning read one header with ranges and the listing, nothing else
    gets = [r for r in requests if r.method == "GET" and "/resolve/" in r.path]
    assert gets and all(r.range is not None for r in gets)
    assert sum(r.bytes_sent for r in gets) < 0.01 * plan.file.size
    assert not list(tmp_path.glob("models--*/blobs/*")), "planning downloads nothing"


async def test_the_issue_one_liner_answers_a_chat_with_the_real_model(tmp_path: Path, smollm2: Path) -> None:
    preset = presets.get("smollm2_135m_instruct")
    (tmp_path / "hub" / preset.repo).mkdir(parents=True)
    os.symlink(smollm2, tmp_path / "hub" / preset.repo / SMOLLM2_FILENAME)  # the repo has only this file here
    os.environ["LLMCLIENT_CACHE_DIR"] = str(tmp_path / "cache")
    try:
        with LocalHub(tmp_path / "hub") as hub:
            client = await LlmClient.llama_cpp().smollm2_135m_instruct().endpoint(hub.url).init()
            async with client:
                answer = await client.chat("What is the capital of France? Answer in one word.", temperature=0)
    finally:
        del os.environ["LLMCLIENT_CACHE_DIR"]
    assert "Paris" in answer.text and answer.finish_reason == "stop"
    assert client.plan is not None and client.plan.quant == "Q4_1"
    assert any("planned among the files it has" in n for n in client.plan.notes)


async def test_init_downloads_only_the_chosen_file(tmp_path: Path, smollm2: Path) -> None:
    """A repo with the real Q4_1 beside synthetic Q8_0 and F16 files; a budget that fits only Q4_1."""
    repo = tmp_path / "hub" / "bartowski" / "SmolLM2-135M-Instruct-GGUF"
    repo.mkdir(parents=True)
    os.symlink(smollm2, repo / SMOLLM2_FILENAME)
    shape = ModelShape("llama", 30, 576, 9, 3, 1536, 0, 8192)
    for quant in ("Q8_0", "F16"):
        write_synthetic_gguf(repo / f"SmolLM2-135M-Instruct-{quant}.gguf", shape, quant, tokenizer_from=smollm2)
    need = estimate(read_gguf_info(smollm2), 8192).total
    with LocalHub(tmp_path / "hub") as hub:
        builder = (
            LlmClient.llama_cpp().smollm2_135m_instruct().endpoint(hub.url).cache_dir(tmp_path / "cache")
            .cpu_only().memory_gb(need / 1e9).progress(False).temperature(0).max_tokens(24)
        )  # fmt: skip
        async with await builder.init() as client:
            answer = await client.chat("What is the capital of France? Answer in one word.")
        gets = [r for r in settled(hub) if r.method == "GET" and "/resolve/" in r.path]
        whole = [r.path.rsplit("/", 1)[-1] for r in gets if r.range is None]
        ranged = {r.path.rsplit("/", 1)[-1] for r in gets if r.range is not None}
    assert client.plan is not None and client.plan.quant == "Q4_1" and client.plan.n_ctx == 8192
    assert [r.reason for r in client.plan.rejected] == ["better, but does not fit in RAM at 8192 tokens"]
    assert whole == [SMOLLM2_FILENAME], "only the chosen file is downloaded"
    assert ranged <= {SMOLLM2_FILENAME}, "one header read, from the smallest file"
    assert "Paris" in answer.text
    assert sorted(p.name for p in (tmp_path / "cache").glob("models--*/snapshots/*/*")) == [SMOLLM2_FILENAME]


async def test_local_files_hf_repos_and_init_sync(tmp_path: Path, smollm2: Path) -> None:
    plan = await LlmClient.llama_cpp().local(smollm2).ctx(2048).plan()
    assert (plan.quant, plan.n_ctx, plan.device) == ("Q4_1", 2048, "CPU")
    from llmclient import SyncLlmClient

    client = SyncLlmClient.from_path(smollm2, ctx=1024, temperature=0.0, max_tokens=16)
    with client:
        assert "Paris" in client.chat("What is the capital of France? Answer in one word.").text
        pieces = list(client.stream("Count from 1 to 3.", max_tokens=8))
    assert pieces[-1].finish_reason in ("stop", "length") and "".join(p.text for p in pieces)

    (tmp_path / "hub" / "someone" / "any-GGUF").mkdir(parents=True)
    os.symlink(smollm2, tmp_path / "hub" / "someone" / "any-GGUF" / SMOLLM2_FILENAME)
    with LocalHub(tmp_path / "hub") as hub:
        builder = LlmClient.llama_cpp().hf("someone/any-GGUF").endpoint(hub.url).cache_dir(tmp_path / "c")
        assert (await builder.plan()).file.filename == SMOLLM2_FILENAME
        with pytest.raises(QuantNotAvailableError, match="the quants available are: Q4_1") as raised:
            await builder.quant("Q8_0").plan()
        assert raised.value.available == ("Q4_1",)
        with pytest.raises(llmclient.ModelNotFoundError, match="Did you mean"):
            await (
                LlmClient.llama_cpp()
                .hf("someone/any-GGUF", file="SmolLM2-135M-Instruct.Q4_2.gguf")
                .endpoint(hub.url)
                .cache_dir(tmp_path / "c")
                .plan()
            )


async def test_offline_planning_uses_what_was_stored(tmp_path: Path, five: LocalHub) -> None:
    online = await LlmClient.llama_cpp().mistral7b().endpoint(five.url).cache_dir(tmp_path).cpu_only().plan()
    offline = await LlmClient.llama_cpp().mistral7b().cache_dir(tmp_path).cpu_only().offline().plan()
    assert (offline.quant, offline.n_ctx, offline.estimate) == (online.quant, online.n_ctx, online.estimate)
    never = await LlmClient.llama_cpp().gemma3_4b().cache_dir(tmp_path / "empty").cpu_only().offline().plan()
    assert any("estimated from the parameter count" in n for n in never.notes)
    assert never.file.filename in presets.get("gemma3_4b_it").files.values()


def test_builders_are_immutable_and_validate_their_settings() -> None:
    base = LlmClient.llama_cpp().temperature(0.2)
    small, big = base.smollm2_135m(), base.mistral7b().ctx(16384)
    assert base._source is None and base._ctx is None
    assert small._source is not None and small._source.name == "smollm2_135m_instruct"
    assert big._ctx == 16384 and small._ctx is None
    assert big._sampling.settings() == {"temperature": 0.2}
    assert isinstance(base, LlamaCppBuilder)
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: base.ctx(0), "ctx must be a positive whole number"),
        (lambda: base.temperature(-1), "temperature must be a number from 0 to 5"),
        (lambda: base.quant("Q9_X"), "unknown quant 'Q9_X'; known: F32"),
        (lambda: base.gpu_layers(-2), "gpu_layers must be a whole number >= 0"),
        (lambda: base.max_tokens(0), "max_tokens must be a whole number >= 1"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            bad()
    with pytest.raises(UnknownPresetError, match="Did you mean .*llama3_1_8b_instruct"):
        base.preset("llama3_1_8b_instrct")
    with pytest.raises(llmclient.InvalidModelReferenceError, match="is not of the form 'owner/name'"):
        base.hf("just-a-name")
    with pytest.raises(llmclient.InvalidSettingError, match="unknown setting 'contxt'"):
        LlamaCppBuilder.for_file("model.gguf", contxt=4096)


async def test_a_cancelled_init_leaves_no_model_loaded(smollm2: Path) -> None:
    import threading

    before = {t.name for t in threading.enumerate()}
    with anyio.move_on_after(0.05):
        await LlmClient.llama_cpp().local(smollm2).ctx(1024).init()
    await anyio.sleep(0.5)
    assert not [t for t in threading.enumerate() if t.name.startswith("llmclient-") and t.name not in before]


async def test_unreachable_hub_and_impossible_layers_say_what_is_wrong(
    tmp_path: Path, five: LocalHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder = LlmClient.llama_cpp().hf("someone/repo-GGUF").endpoint("http://127.0.0.1:9").cache_dir(tmp_path)
    with pytest.raises(llmclient.DownloadError, match="could not list the files of someone/repo-GGUF"):
        await builder.plan()
    monkeypatch.setattr(llmclient.builder, "detect", lambda memory_gb=None: gpu_machine(8, 7.5, 32))
    many = LlmClient.llama_cpp().mistral7b().endpoint(five.url).cache_dir(tmp_path).ctx(131072).gpu_layers(33)
    with pytest.raises(llmclient.InsufficientMemoryError, match=r"33 offloaded layers \(\.gpu_layers\) do not fit"):
        await many.plan()


def test_a_local_file_is_planned_without_loading_the_hub_http_stack(smollm2: Path) -> None:
    # cold start: httpx2/httpcore2 and huggingface_hub's API cost ~0.25 s of import, gguf, tqdm and filelock ~70 ms;
    # a local file never needs them
    script = (
        "import sys, anyio\n"
        "from llmclient import LlamaCppBuilder\n"
        f"plan = anyio.run(LlamaCppBuilder.for_file({str(smollm2)!r}, ctx=512).plan)\n"
        "unneeded = ('httpx2', 'httpcore2', 'huggingface_hub.hf_api', 'gguf', 'tqdm', 'filelock')\n"
        "loaded = sorted(m for m in unneeded if m in sys.modules)\n"
        "print(plan.n_ctx, loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=1) == ["512", "[]\n"]


def test_the_header_parser_sizes_tensors_as_the_gguf_package_does() -> None:
    from gguf import GGML_QUANT_SIZES

    from llmclient._gguf.parse import _QUANT_SIZES, tensor_nbytes

    assert {int(t): sizes for t, sizes in GGML_QUANT_SIZES.items() if int(t) in _QUANT_SIZES} == _QUANT_SIZES
    for ggml_type, (block, size) in GGML_QUANT_SIZES.items():  # the ones missing from our table: from gguf
        assert tensor_nbytes(int(ggml_type), block * 10) == size * 10
    with pytest.raises(ValueError, match="unknown ggml tensor type 999"):
        tensor_nbytes(999, 32)


@pytest.mark.parametrize("mapped", [True, False])
def test_a_local_header_reads_alike_mapped_or_not_and_a_cut_file_says_it_is_truncated(
    smollm2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mapped: bool
) -> None:
    expected = read_gguf_info(smollm2)
    cut = tmp_path / "cut.gguf"
    with smollm2.open("rb") as src:
        cut.write_bytes(src.read(1 << 20))  # inside the tokenizer's arrays (the header is ~1.7 MB)
    empty = tmp_path / "empty.gguf"
    empty.touch()
    if not mapped:  # a file system that cannot map files: read in growing pieces instead

        def no_mmap(*args: object, **kwargs: object) -> None:
            raise OSError(19, "No such device")

        monkeypatch.setattr("llmclient._gguf.local.mmap.mmap", no_mmap)
    assert read_gguf_info(smollm2) == expected
    for broken in (cut, empty):
        with pytest.raises(llmclient.ModelFormatError, match="ends inside its GGUF header: the file is truncated"):
            read_gguf_info(broken)
