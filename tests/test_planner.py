"""The planner on synthetic GGUF files (llama-, qwen2- and gemma3-shaped, 7B to 70B) and given hardware."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmclient import Device, Hardware, InsufficientMemoryError, ModelFile, ModelFormatError, plan, read_gguf_info
from llmclient.estimate import estimate
from llmclient.metadata import GgufInfo
from llmclient.quants import quant_from_filename
from llmclient.testing.synthetic import GEMMA3_12B, LLAMA_7B, LLAMA_70B, QWEN2_7B, ModelShape, write_synthetic_gguf

GIB = 1 << 30
QUANTS = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")


def gpu(name: str, total_gib: float, free_gib: float) -> Device:
    return Device(name, f"test GPU {total_gib:g} GiB", "cuda", int(total_gib * GIB), int(free_gib * GIB))


def machine(*gpus: Device, ram_gib: float = 64, cores: int = 8) -> Hardware:
    return Hardware(tuple(gpus), int(ram_gib * GIB), int(ram_gib * 0.9 * GIB), cores, cores * 2, "given")


def model_files(folder: Path, name: str, shape: ModelShape, quants: tuple[str, ...] = QUANTS) -> list[ModelFile]:
    """Sparse synthetic files, one per quant, as the planner's candidates (each with its own header read)."""
    files = []
    for quant in quants:
        path = folder / f"{name}-{quant}.gguf"
        if not path.exists():
            write_synthetic_gguf(path, shape, quant, fill="sparse")
        info = read_gguf_info(path)
        files.append(ModelFile(path.name, quant_from_filename(path.name), info.file_bytes, info))
    return files


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synthetic")


@pytest.fixture(scope="module")
def llama7b(folder: Path) -> list[ModelFile]:
    return model_files(folder, "llama7b", LLAMA_7B)


@pytest.fixture(scope="module")
def llama70b(folder: Path) -> list[ModelFile]:
    return model_files(folder, "llama70b", LLAMA_70B)


def test_synthetic_headers_describe_their_shapes(folder: Path, llama70b: list[ModelFile]) -> None:
    info = llama70b[0].info
    assert info is not None
    assert (info.architecture, info.block_count, info.embedding_length, info.head_count) == ("llama", 80, 8192, 64)
    assert info.head_count_kv == (8,) * 80 and info.key_length == info.value_length == 128
    assert info.context_length == 131072 and info.vocab_size == 128256 and not info.tied_output
    assert info.header_bytes + info.weight_bytes <= info.file_bytes < info.header_bytes + info.weight_bytes + 32 * 800
    qwen = model_files(folder, "qwen2", QWEN2_7B, ("Q4_K_M",))[0].info
    gemma = model_files(folder, "gemma3", GEMMA3_12B, ("Q4_K_M",))[0].info
    assert qwen is not None and gemma is not None
    assert qwen.architecture == "qwen2" and qwen.head_count_kv == (4,) * 28
    assert gemma.tied_output and gemma.sliding_window == 1024 and gemma.key_length == 256
    # llama.cpp's gemma3 pattern: every sixth layer is global, the rest slide
    assert gemma.swa_layers == tuple(i % 6 != 5 for i in range(48))


def test_8_gb_gpu_takes_the_best_quant_that_fits_fully_with_8k_context(llama7b: list[ModelFile]) -> None:
    chosen = plan(llama7b, machine(gpu("CUDA0", 8, 7.5)))
    # Q8_0 (7.85 GB of weights alone) cannot fit 7.5 GiB - 512 MiB; Q6_K (6.1 GB) + 1.07 GB of KV cache can.
    assert (chosen.quant, chosen.n_ctx, chosen.n_gpu_layers, chosen.device) == ("Q6_K", 8192, 33, "CUDA0")
    assert chosen.fully_offloaded and chosen.threads == 4
    verdicts = {r.file.quant_name: r.reason for r in chosen.rejected}
    assert verdicts["Q8_0"].startswith("better, but does not fit fully in GPU memory")
    assert verdicts["Q4_K_M"] == "lower quality than Q6_K"
    assert sum(chosen.estimate.gpu) <= chosen.budget_gpu[0]


def test_24_gb_gpu_runs_7b_at_q8_and_70b_partially_offloaded_at_q4_k_m(
    llama7b: list[ModelFile], llama70b: list[ModelFile]
) -> None:
    hw = machine(gpu("CUDA0", 24, 23.5), ram_gib=64)
    small = plan(llama7b, hw)
    assert (small.quant, small.n_ctx, small.n_gpu_layers) == ("Q8_0", 8192, 33)

    big = plan(llama70b, hw)
    assert big.quant == "Q4_K_M" and big.n_ctx == 8192
    assert 30 <= big.n_gpu_layers <= 45 and big.device == f"CUDA0 ({big.n_gpu_layers}/81 layers) + CPU"
    assert not big.fully_offloaded and big.threads == 8
    assert sum(big.estimate.gpu) <= big.budget_gpu[0] and big.estimate.cpu <= big.budget_ram
    one_more = estimate(big.file.info, 8192, big.n_gpu_layers + 1)  # type: ignore[arg-type]
    assert one_more.gpu[0] > big.budget_gpu[0], "the plan offloads as many layers as fit"
    assert "partial offload" in big.notes[0]


def test_80_gb_gpu_runs_70b_at_q8_0(llama70b: list[ModelFile]) -> None:
    chosen = plan(llama70b, machine(gpu("CUDA0", 79.18, 78.66), ram_gib=128))
    assert (chosen.quant, chosen.n_ctx, chosen.n_gpu_layers) == ("Q8_0", 8192, 81)
    assert 75e9 < sum(chosen.estimate.gpu) < chosen.budget_gpu[0]


def test_two_gpus_split_the_layers_by_free_memory(llama70b: list[ModelFile]) -> None:
    chosen = plan(llama70b, machine(gpu("CUDA0", 24, 23.5), gpu("CUDA1", 24, 23.5)))
    assert (chosen.quant, chosen.n_gpu_layers, chosen.device) == ("Q4_K_M", 81, "CUDA0+CUDA1")
    assert (
        chosen.tensor_split == pytest.approx((0.5, 0.5), rel=1e-6) or chosen.tensor_split[0] == chosen.tensor_split[1]
    )
    first, second = chosen.estimate.gpu
    assert abs(first - second) < 0.1 * first and all(
        g <= b for g, b in zip(chosen.estimate.gpu, chosen.budget_gpu, strict=True)
    )


def test_cpu_only_fits_in_ram_with_headroom(llama7b: list[ModelFile], llama70b: list[ModelFile]) -> None:
    hw = machine(ram_gib=16, cores=6)
    chosen = plan(llama7b, hw)
    assert (chosen.quant, chosen.n_ctx, chosen.n_gpu_layers, chosen.device) == ("Q8_0", 8192, 0, "CPU")
    assert chosen.threads == 6 and chosen.estimate.gpu == ()
    assert chosen.budget_ram == int(16 * 0.9 * GIB) - int(16 * GIB * 0.10)
    # GPUs are ignored when asked
    assert plan(llama7b, machine(gpu("CUDA0", 24, 23.5)), cpu_only=True).device == "CPU"


def test_nothing_fits_raises_with_the_numbers_and_what_would_fit(llama70b: list[ModelFile]) -> None:
    with pytest.raises(InsufficientMemoryError) as raised:
        plan(llama70b, machine(ram_gib=16))
    error = raised.value
    assert error.needed > 20e9 and error.available < 15e9
    assert "Q2_K" in str(error) and "smaller model" in str(error) and "memory_gb" in str(error)


def test_exact_fit_is_taken_and_one_byte_less_falls_to_the_next_quant(llama7b: list[ModelFile]) -> None:
    q6 = next(f for f in llama7b if f.quant_name == "Q6_K")
    need = estimate(q6.info, 8192, 33).gpu[0]  # type: ignore[arg-type]
    exact = plan(llama7b, machine(gpu("CUDA0", 24, 23.5)).with_budget(need / 1e9))
    assert (exact.quant, exact.n_ctx, exact.budget_gpu[0]) == ("Q6_K", 8192, need)
    short = plan(llama7b, machine(gpu("CUDA0", 24, 23.5)).with_budget((need - 1) / 1e9))
    assert (short.quant, short.n_ctx) == ("Q5_K_M", 8192), "context first: a smaller quant keeps the 8k context"


def test_context_is_reduced_only_when_no_quant_fits_at_the_target(llama7b: list[ModelFile]) -> None:
    q2 = next(f for f in llama7b if f.quant_name == "Q2_K")
    at_4k = estimate(q2.info, 4096, 33).gpu[0]  # type: ignore[arg-type]
    chosen = plan(llama7b, machine(gpu("CUDA0", 24, 23.5)).with_budget(at_4k / 1e9))
    assert (chosen.quant, chosen.n_ctx) == ("Q2_K", 4096)
    assert any("context reduced to 4096" in n for n in chosen.notes)
    asked = plan(llama7b, machine(gpu("CUDA0", 24, 23.5)), n_ctx=32768)
    assert asked.n_ctx == 32768 and asked.quant == "Q8_0"


def test_explicit_quant_layers_and_threads_are_obeyed(llama7b: list[ModelFile]) -> None:
    hw = machine(gpu("CUDA0", 24, 23.5))
    chosen = plan(llama7b, hw, quant="q4_k_m", n_gpu_layers=10, threads=3)
    assert (chosen.quant, chosen.n_gpu_layers, chosen.threads) == ("Q4_K_M", 10, 3)
    with pytest.raises(ValueError, match="Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q3_K_M, Q2_K"):
        plan(llama7b, hw, quant="IQ1_S")


def test_sliding_window_layers_hold_only_the_window(folder: Path) -> None:
    gemma = model_files(folder, "gemma3", GEMMA3_12B, ("Q4_K_M",))[0].info
    assert gemma is not None
    per_cell = (256 + 256) * 8 * 2  # key + value length, 8 KV heads, f16
    swa_cells = 1536  # window 1024 + n_ubatch 512, rounded up to 256
    expected = 8 * 8192 * per_cell + 40 * swa_cells * per_cell
    assert estimate(gemma, 8192).kv_cache == expected
    no_window = GgufInfo(**{**gemma.__dict__, "swa_layers": (False,) * 48})
    assert estimate(no_window, 8192).kv_cache == 48 * 8192 * per_cell


def test_context_is_rounded_as_llama_cpp_rounds_it(llama7b: list[ModelFile]) -> None:
    info = llama7b[0].info
    assert info is not None
    assert estimate(info, 1000).n_ctx == 1024 and estimate(info, 1000).kv_cache == estimate(info, 1024).kv_cache
    assert plan(llama7b, machine(ram_gib=64), n_ctx=1000).n_ctx == 1000


def test_missing_metadata_gets_the_documented_defaults(folder: Path) -> None:
    from gguf import GGUFWriter

    # no context_length and no head_count_kv: 4096 tokens assumed, and as many KV heads as heads (llama.cpp's)
    path = folder / "bare.gguf"
    writer = GGUFWriter(path, "llama")
    for key, value in (("block_count", 2), ("embedding_length", 256), ("attention.head_count", 4)):
        writer.add_uint32(f"llama.{key}", value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    info = read_gguf_info(path)
    assert info.head_count_kv == (4, 4) and info.key_length == 64 and info.context_length == 0
    chosen = plan([ModelFile("bare.gguf", None, info.file_bytes, info)], machine())
    assert chosen.n_ctx == 4096 and any("does not state its trained context" in n for n in chosen.notes)

    # no head count at all: no estimate is possible, and the error says which keys are missing
    writer = GGUFWriter(folder / "headless.gguf", "llama")
    writer.add_uint32("llama.block_count", 2)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    with pytest.raises(ModelFormatError, match=r"llama\.block_count, \.embedding_length or \.attention\.head_count"):
        read_gguf_info(folder / "headless.gguf")
    (folder / "text.gguf").write_text("not a model")
    with pytest.raises(ModelFormatError, match="not a GGUF file"):
        read_gguf_info(folder / "text.gguf")


def test_a_split_model_is_one_candidate_sized_by_all_its_shards(llama7b: list[ModelFile]) -> None:
    whole = next(f for f in llama7b if f.quant_name == "Q8_0")
    shards = ("m-Q8_0-00001-of-00002.gguf", "m-Q8_0-00002-of-00002.gguf")
    split = ModelFile(shards[0], whole.quant, whole.size, None, shards)
    others = [f for f in llama7b if f.quant_name != "Q8_0"]
    chosen = plan([split, *others], machine(gpu("CUDA0", 24, 23.5)), reference=others[0].info)
    assert chosen.file is split and chosen.quant == "Q8_0"
    expected = estimate(whole.info, chosen.kv_tokens, 33, n_seq_max=chosen.parallel).gpu[0]  # type: ignore[arg-type]
    assert sum(chosen.estimate.gpu) == pytest.approx(expected, rel=0.01)


def test_plan_prints_a_readable_table(llama70b: list[ModelFile]) -> None:
    text = str(plan(llama70b, machine(gpu("CUDA0", 24, 23.5))))
    lines = text.splitlines()
    assert lines[0].startswith("file      llama70b-Q4_K_M.gguf  (Q4_K_M, 42.")
    assert "partial offload" in text and "context   8192 tokens" in text
    header = next(i for i, line in enumerate(lines) if line.startswith("quant"))
    assert [line.split()[0] for line in lines[header + 1 :]] == list(QUANTS)
    assert "chosen" in lines[header + 4]


def test_parallel_requests_share_what_memory_is_left_after_the_model_and_one_context(
    llama7b: list[ModelFile],
) -> None:
    roomy = plan(llama7b, machine(gpu("CUDA0", 80, 79)))
    assert (roomy.parallel, roomy.kv_tokens) == (4, 4 * roomy.n_ctx), "the default: 4 full contexts when they fit"
    assert roomy.quant == "Q8_0"
    one = plan(llama7b, machine(gpu("CUDA0", 80, 79)), parallel=1)
    assert (one.parallel, one.kv_tokens) == (1, one.n_ctx) and one.estimate.total < roomy.estimate.total
    # 8 GB: Q4_K_M with 8k fits, and what is left holds more KV than one context but less than four
    tight = plan(llama7b, machine(gpu("CUDA0", 8, 7.6)))
    single = plan(llama7b, machine(gpu("CUDA0", 8, 7.6)), parallel=1)
    assert tight.quant == single.quant and tight.n_ctx == single.n_ctx == 8192, "parallel never costs quality"
    assert tight.parallel == 4 and tight.n_ctx < tight.kv_tokens < 4 * tight.n_ctx
    assert any("share" in note for note in tight.notes)
    assert sum(tight.estimate.gpu) <= tight.budget_gpu[0]
    bigger = estimate(tight.file.info, tight.kv_tokens + 256, 33, n_seq_max=4).gpu[0]  # type: ignore[arg-type]
    assert bigger > tight.budget_gpu[0], "the most KV that fits"
    with pytest.raises(ValueError, match="parallel"):
        plan(llama7b, machine(gpu("CUDA0", 80, 79)), parallel=0)
