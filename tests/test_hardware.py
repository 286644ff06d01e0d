"""Hardware detection: llama.cpp's own device list here, the fallbacks, and the explicit budget."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import llmclient.hardware
from llmclient import detect
from llmclient.hardware import physical_cores


def meminfo() -> dict[str, int]:
    values = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0]) * 1024
    return values


def test_detect_reads_llama_cpps_device_list_and_this_machines_ram() -> None:
    hw = detect()
    assert hw.source == "llama.cpp"
    # this llama-cpp-python build is CPU-only: llama.cpp lists no GPU, so neither do we
    import llama_cpp

    assert bool(hw.gpus) == bool(llama_cpp.llama_supports_gpu_offload())
    info = meminfo()
    assert hw.ram_total == info["MemTotal"]
    assert abs(hw.ram_available - info["MemAvailable"]) < 0.1 * info["MemTotal"]
    assert 1 <= hw.physical_cores <= hw.logical_cores == os.cpu_count()
    assert hw.budget is None
    assert "RAM" in str(hw) and f"{hw.physical_cores} physical cores" in str(hw)


def test_physical_cores_respect_cpu_affinity() -> None:
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})
        assert physical_cores() == 1
    finally:
        os.sched_setaffinity(0, allowed)
    assert physical_cores() >= 1


def test_memory_budget_comes_from_the_argument_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMCLIENT_MEMORY_GB", "12.5")
    assert detect().budget == 12_500_000_000
    assert detect(memory_gb=3).budget == 3_000_000_000
    monkeypatch.setenv("LLMCLIENT_MEMORY_GB", "lots")
    with pytest.raises(ValueError, match=r"LLMCLIENT_MEMORY_GB='lots' must be a positive number of GB"):
        detect()
    monkeypatch.delenv("LLMCLIENT_MEMORY_GB")
    with pytest.raises(ValueError, match="positive number of GB"):
        detect(memory_gb=0)


def test_a_broken_llama_cpp_falls_back_to_nvml_then_to_cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> tuple[llmclient.hardware.Device, ...]:
        raise OSError("libggml.so: cannot open shared object file")

    monkeypatch.setattr(llmclient.hardware, "_llama_cpp_devices", broken)
    hw = detect()
    try:
        import pynvml  # noqa: F401

        assert hw.source in ("nvml", "none")
    except ImportError:
        assert hw.source == "none"
    assert hw.gpus == () or hw.source == "nvml"
    assert hw.ram_total > 0 and hw.physical_cores >= 1
