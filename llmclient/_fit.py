"""What a plan is made of: the memory budget it must fit, a candidate setting, and the search for the largest that fits.

Shared by the rule that chooses (`llmclient.planner`) and the report of the choice (`llmclient._plan_report`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from llmclient.hardware import Hardware
from llmclient.metadata import GgufInfo
from llmclient.quants import Quant
from llmclient.types import MemoryEstimate, ModelFile

__all__ = [
    "FLOOR_CTX", "GPU_HEADROOM", "RAM_HEADROOM", "UNKNOWN_TRAINED_CTX", "Budget", "Est", "FitCtx", "Option",
    "budget_for", "held_info", "info_for", "largest", "scaled_info", "threads_for",
]  # fmt: skip

MIB = 1 << 20
#: The trained context assumed for a file that does not state one.
UNKNOWN_TRAINED_CTX = 4096
#: Never planned below this, whatever the memory.
FLOOR_CTX = 512
#: GPU memory left free on each device: max(fixed, fraction of its total).
GPU_HEADROOM = (512 * MIB, 0.03)
#: RAM left free: max(fixed, fraction of the total), for the OS and the app.
RAM_HEADROOM = (1024 * MIB, 0.10)


def threads_for(hardware: Hardware, fully_offloaded: bool) -> int:
    """CPU threads: every physical core (llama-cpp-python's default of half the logical CPUs leaves cores idle,
    and hyper-threads slow matrix work down); when the GPU does all the work, at most 4."""
    return min(hardware.physical_cores, 4) if fully_offloaded else hardware.physical_cores


def _headroom(total: int, rule: tuple[int, float]) -> int:
    return max(rule[0], int(total * rule[1]))


@dataclass(frozen=True)
class Budget:
    """The bytes a plan may use on each GPU and in RAM, safety margins taken off."""

    gpus: tuple[int, ...]
    ram: int

    def fits(self, est: MemoryEstimate) -> bool:
        """Whether `est` needs no more than the budget everywhere."""
        return est.cpu <= self.ram and all(need <= have for need, have in zip(est.gpu, self.gpus, strict=False))


def budget_for(hardware: Hardware, cpu_only: bool) -> Budget:
    """The budget on `hardware`: free memory less `GPU_HEADROOM` / `RAM_HEADROOM`, or the budget it was given."""
    gpus = () if cpu_only else hardware.gpus
    ram = hardware.ram_available - _headroom(hardware.ram_total, RAM_HEADROOM)
    if hardware.budget is not None and not gpus:
        ram = hardware.budget
    if not gpus:
        return Budget((), max(ram, 0))
    free = [max(d.free - _headroom(d.total, GPU_HEADROOM), 0) for d in gpus]
    if hardware.budget is not None:
        scale = hardware.budget / (sum(d.free for d in gpus) or 1)
        free = [int(d.free * scale) for d in gpus]
    return Budget(tuple(free), max(ram, 0))


def scaled_info(reference: GgufInfo, file_bytes: int) -> GgufInfo:
    """`reference`'s model at another file size: every tensor group scaled by the ratio of tensor bytes."""
    ratio = max(file_bytes - reference.header_bytes, 0) / max(reference.file_bytes - reference.header_bytes, 1)
    return replace(
        reference,
        layer_bytes=tuple(int(b * ratio) for b in reference.layer_bytes),
        input_bytes=int(reference.input_bytes * ratio),
        output_bytes=int(reference.output_bytes * ratio),
        file_bytes=file_bytes,
    )


def held_info(info: GgufInfo, file_quant: Quant | None, requantize: Quant | None, f32_embedding: bool) -> GgufInfo:
    """`info` as an engine holds the weights in memory: with `requantize`, the layers and output head rewritten in
    that type while loading (their bytes scaled by the ratio of bits per weight; an unknown file quant is taken as
    is); with `f32_embedding`, the token embedding expanded to 32-bit floats (candle, under mistral.rs, dequantizes
    it at load)."""
    held = info
    if requantize is not None and file_quant is not None and file_quant.name != requantize.name:
        ratio = requantize.bits_per_weight / file_quant.bits_per_weight
        held = replace(
            held,
            layer_bytes=tuple(int(b * ratio) for b in held.layer_bytes),
            output_bytes=int(held.output_bytes * ratio),
        )
    if f32_embedding:
        held = replace(held, input_bytes=max(held.input_bytes, held.vocab_size * held.embedding_length * 4))
    return held


def largest(lo: int, hi: int, ok: Callable[[int], bool], step: int = 1) -> int | None:
    """The largest multiple of `step` in [lo, hi] with ok() true (ok is monotonic: true up to a point)."""
    if ok(hi):
        return hi
    lo_s, hi_s = -(-lo // step), hi // step
    if lo_s > hi_s or not ok(lo_s * step):
        return None
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        lo_s, hi_s = (mid, hi_s) if ok(mid * step) else (lo_s, mid)
    return lo_s * step


@dataclass(frozen=True)
class Option:
    """One way to run a candidate: its file at a context and a number of offloaded layers, and what that needs."""

    file: ModelFile
    info: GgufInfo
    n_ctx: int
    n_gpu_layers: int
    est: MemoryEstimate


def info_for(file: ModelFile, reference: GgufInfo | None) -> GgufInfo:
    """The file's own header, else `reference`'s scaled to the file's size."""
    if file.info is not None:
        return file.info
    if reference is None:
        raise ValueError(f"{file.filename}: no GGUF header was read for it and no other file of the model to go by")
    return scaled_info(reference, file.size)


Est = Callable[[ModelFile, int, int], MemoryEstimate]
"""`est(file, n_ctx, n_gpu_layers)`: the memory a candidate needs so."""
FitCtx = Callable[..., "Option | None"]
"""`fit_ctx(file, n_gpu_layers, lowest_ctx)`: the candidate at the largest context that fits, or None."""
