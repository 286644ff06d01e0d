"""The estimate against what llama.cpp really allocates when it loads the real SmolLM2 file (and a gemma3 shape).

llama.cpp reports each buffer it allocates in its log; the test captures the log while loading and compares.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import pytest

from llmclient import read_gguf_info
from llmclient.estimate import estimate
from llmclient.testing.synthetic import ModelShape, write_synthetic_gguf

BUFFER_RE = re.compile(r"(\S+)\s+(model|KV|compute|output) buffer size =\s+([\d.]+) MiB")
MIB = 1 << 20


@pytest.fixture
def llama_log() -> Iterator[list[str]]:
    """llama.cpp's log lines while the test runs (then logging goes back to stderr)."""
    lines: list[str] = []

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def keep(level: int, text: bytes, user: object) -> None:
        lines.append(text.decode(errors="replace"))

    llama_cpp.llama_log_set(keep, ctypes.c_void_p())
    yield lines
    llama_cpp.llama_log_set(llama_cpp.llama_log_callback(0), ctypes.c_void_p())  # NULL: back to stderr
    del keep


def load_and_report(path: Path, n_ctx: int, lines: list[str]) -> dict[str, float]:
    """Load with the planner's settings and return llama.cpp's reported buffer sizes in bytes, by kind."""
    lines.clear()
    llm = llama_cpp.Llama(str(path), n_ctx=n_ctx, flash_attn=True, swa_full=False, n_threads=1, verbose=True)
    llm.close()
    sizes: dict[str, float] = {}
    for match in BUFFER_RE.finditer("".join(lines)):
        sizes[match.group(2)] = sizes.get(match.group(2), 0.0) + float(match.group(3)) * MIB
    assert {"model", "KV", "compute"} <= sizes.keys(), f"llama.cpp's log changed: {sizes}"
    return sizes


@pytest.mark.parametrize("n_ctx", [2048, 8192])
def test_smollm2_estimate_is_within_10_percent_of_llama_cpp(smollm2: Path, llama_log: list[str], n_ctx: int) -> None:
    reported = load_and_report(smollm2, n_ctx, llama_log)
    est = estimate(read_gguf_info(smollm2), n_ctx)

    assert est.kv_cache == pytest.approx(reported["KV"], rel=0.10)
    assert est.total == pytest.approx(sum(reported.values()), rel=0.10)
    assert est.weights == pytest.approx(reported["model"], rel=0.10)


def test_sliding_window_kv_cache_matches_llama_cpp(tmp_path: Path, smollm2: Path, llama_log: list[str]) -> None:
    shape = ModelShape("gemma3", 12, 512, 4, 2, 1024, 0, 16384, 128, 512, True)
    path = write_synthetic_gguf(tmp_path / "gemma3.gguf", shape, "Q8_0", tokenizer_from=smollm2)
    reported = load_and_report(path, 8192, llama_log)
    est = estimate(read_gguf_info(path), 8192)

    assert est.kv_cache == reported["KV"]  # 2 global layers x 8192 cells + 10 window layers x 1024 cells
    assert est.total == pytest.approx(sum(reported.values()), rel=0.10)
