"""What this machine has for running a model: its devices as llama.cpp sees them, system RAM and CPU cores.

`detect()` asks llama.cpp's own device list (the ggml backend device API, through llama-cpp-python's bundled
`libggml`), so the answer is exactly what llama.cpp will use, whatever backend it was built with (CUDA, Metal,
ROCm, Vulkan, ...). If that fails, NVIDIA GPUs are read through NVML (`pip install llmclient[nvml]`); failing
that, the machine is taken to be CPU-only. `LLMCLIENT_MEMORY_GB` replaces the detected memory with a budget.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from llmclient.constants import memory_budget_gb

__all__ = ["Device", "Hardware", "detect", "physical_cores"]

logger = logging.getLogger("llmclient")

_GIB = 1 << 30
# ggml_backend_dev_type
_DEV_CPU, _DEV_GPU, _DEV_IGPU = 0, 1, 2
_KINDS = {"cuda": "cuda", "rocm": "rocm", "hip": "rocm", "metal": "metal", "mtl": "metal", "vulkan": "vulkan"}


@dataclass(frozen=True)
class Device:
    """One device a model can be offloaded to (or the CPU), with its memory in bytes."""

    name: str
    """llama.cpp's name for it: `CUDA0`, `Metal`, `Vulkan0`, ... or `CPU`."""
    description: str
    """The product name, e.g. `NVIDIA H100 80GB HBM3`."""
    kind: str
    """`cpu`, `cuda`, `rocm`, `metal`, `vulkan`, or the backend's own name in lower case."""
    total: int
    free: int
    integrated: bool = False
    """An integrated GPU sharing system memory (its memory is the RAM's)."""

    @property
    def is_gpu(self) -> bool:
        return self.kind != "cpu"


@dataclass(frozen=True)
class Hardware:
    """The machine as the planner sees it."""

    devices: tuple[Device, ...]
    """GPUs (and other offload devices) first, in llama.cpp's order; the CPU is not listed here."""
    ram_total: int
    ram_available: int
    """RAM free for a new model now (`MemAvailable`), in bytes."""
    physical_cores: int
    logical_cores: int
    source: str
    """Where the device list came from: `llama.cpp`, `nvml`, `none` (CPU only), or `given`."""
    budget: int | None = None
    """An explicit memory budget in bytes (`LLMCLIENT_MEMORY_GB` or `.memory_gb()`), replacing detection: the
    GPU memory the model may use if there are GPUs, else the RAM."""

    @property
    def gpus(self) -> tuple[Device, ...]:
        """The devices with their own memory that layers can be offloaded to."""
        return tuple(d for d in self.devices if d.is_gpu)

    def with_budget(self, gigabytes: float | None) -> Hardware:
        """This hardware with an explicit memory budget (None keeps detection)."""
        if gigabytes is None:
            return self
        if not gigabytes > 0:
            raise ValueError(f"a memory budget must be a positive number of GB, got {gigabytes!r}")
        return replace(self, budget=int(gigabytes * 1e9))

    def __str__(self) -> str:
        lines = [f"{'device':<10} {'kind':<7} {'free':>10} {'total':>10}  description"]
        for d in self.devices:
            lines.append(
                f"{d.name:<10} {d.kind:<7} {d.free / _GIB:>6.2f} GiB {d.total / _GIB:>6.2f} GiB  {d.description}"
            )
        lines.append(
            f"{'RAM':<10} {'cpu':<7} {self.ram_available / _GIB:>6.2f} GiB {self.ram_total / _GIB:>6.2f} GiB  "
            f"{self.physical_cores} physical cores, {self.logical_cores} logical"
        )
        if self.budget is not None:
            lines.append(f"budget: {self.budget / 1e9:.2f} GB (given; detection overridden)")
        return "\n".join(lines)


def physical_cores() -> int:
    """Physical CPU cores this process may run on (hyper-threads not counted, CPU affinity respected)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        usable = os.cpu_count() or 1
    try:
        import psutil

        cores = psutil.cpu_count(logical=False) or usable
    except ImportError:
        cores = usable
    logical = os.cpu_count() or usable
    # With affinity narrowed (containers, taskset), scale the physical count to the CPUs we may use.
    if usable < logical:
        cores = max(1, round(cores * usable / logical))
    return max(1, min(cores, usable))


def _ram() -> tuple[int, int]:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return int(vm.total), int(vm.available)
    except ImportError:
        pass
    try:
        info = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            info[key] = int(rest.split()[0]) * 1024
        return info["MemTotal"], info.get("MemAvailable", info.get("MemFree", 0))
    except (OSError, KeyError, ValueError, IndexError):
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return pages, pages // 2


_lock = threading.Lock()
_backend_ready = False


def _declare(lib: Any) -> None:
    """The ctypes signatures of the ggml device functions used here."""
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    lib.ggml_backend_dev_get.restype = ctypes.c_void_p
    for fn in (lib.ggml_backend_dev_name, lib.ggml_backend_dev_description):
        fn.argtypes, fn.restype = [ctypes.c_void_p], ctypes.c_char_p
    lib.ggml_backend_dev_type.argtypes, lib.ggml_backend_dev_type.restype = [ctypes.c_void_p], ctypes.c_int
    size_p = ctypes.POINTER(ctypes.c_size_t)
    lib.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, size_p, size_p]
    lib.ggml_backend_dev_memory.restype = None
    lib.ggml_backend_dev_backend_reg.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_backend_reg.restype = ctypes.c_void_p
    lib.ggml_backend_reg_name.argtypes, lib.ggml_backend_reg_name.restype = [ctypes.c_void_p], ctypes.c_char_p


def _llama_cpp_devices() -> tuple[Device, ...]:
    """llama.cpp's device list through the ggml backend device API. Raises if llama_cpp cannot be used."""
    global _backend_ready
    import llama_cpp
    from llama_cpp import _ggml

    lib = _ggml.libggml
    with _lock:
        if not _backend_ready:  # once per process: start llama.cpp's backends and declare the C signatures
            llama_cpp.llama_backend_init()
            _declare(lib)
            _backend_ready = True
    devices = []
    for i in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(i)
        dev_type = lib.ggml_backend_dev_type(dev)
        if dev_type not in (_DEV_GPU, _DEV_IGPU):
            continue  # the CPU is described by RAM; accelerators (BLAS, AMX) add no memory of their own
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        reg = (lib.ggml_backend_reg_name(lib.ggml_backend_dev_backend_reg(dev)) or b"").decode(errors="replace")
        devices.append(
            Device(
                name=(lib.ggml_backend_dev_name(dev) or b"").decode(errors="replace"),
                description=(lib.ggml_backend_dev_description(dev) or b"").decode(errors="replace"),
                kind=_KINDS.get(reg.lower(), reg.lower() or "gpu"),
                total=int(total.value),
                free=int(free.value),
                integrated=dev_type == _DEV_IGPU,
            )
        )
    return tuple(devices)


def _nvml_devices() -> tuple[Device, ...]:
    """NVIDIA GPUs through NVML (the optional nvidia-ml-py package). Raises if NVML is unavailable."""
    import pynvml

    pynvml.nvmlInit()
    try:
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else str(name)
            devices.append(Device(f"CUDA{i}", name, "cuda", int(mem.total), int(mem.free)))
        return tuple(devices)
    finally:
        pynvml.nvmlShutdown()


def detect(*, memory_gb: float | None = None) -> Hardware:
    """The devices, RAM and CPU cores of this machine, as llama.cpp will see them.

    `memory_gb` (else `$LLMCLIENT_MEMORY_GB`) sets an explicit budget that replaces the detected free memory.
    Detection never raises: a failing source falls back to the next (llama.cpp → NVML → CPU only).
    """
    devices: tuple[Device, ...] = ()
    source = "none"
    try:
        devices, source = _llama_cpp_devices(), "llama.cpp"
    except Exception as error:  # a missing or broken llama-cpp-python build: try the next source
        logger.debug("llama.cpp device list unavailable: %s", error)
        try:
            devices, source = _nvml_devices(), "nvml"
        except Exception as nvml_error:
            logger.debug("NVML unavailable: %s", nvml_error)
    ram_total, ram_available = _ram()
    hardware = Hardware(devices, ram_total, ram_available, physical_cores(), os.cpu_count() or 1, source)
    return hardware.with_budget(memory_gb if memory_gb is not None else memory_budget_gb())
