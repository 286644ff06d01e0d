"""The memory llama.cpp will allocate for a GGUF model at a context and offload, from the file's header alone.

The estimate follows what llama.cpp allocates (checked against real loads on CPU and GPU, see BENCHMARKS.md):

- weights: each repeating layer's tensors on the device it is offloaded to; the token embedding always in RAM.
  Offloading counts from the end: the output head goes first (n_gpu_layers=1), then the last layers, so
  block_count + 1 offloads everything; a tied output head on the GPU is a copy of the embedding;
- KV cache: per layer, cells x (key + value length x KV heads) x bytes of the cache type, on the layer's device.
  Cells are n_ctx rounded up to 256 (one cache shared by every sequence decoded together, `kv_unified`); a
  sliding-window layer (gemma2/3, cohere2) holds window x sequences + n_ubatch cells (rounded up to 256) when
  that is smaller, as llama.cpp does with `swa_full=False`;
- compute buffers: on the device holding the output head, the logits of one micro-batch (n_vocab x n_ubatch
  floats) plus two hidden states and the attention mask; on a device holding only layers, the larger of the
  feed-forward activations and (without flash attention) the attention scores;
- not counted here: the CUDA pool's scratch space and cuBLAS workspaces (measured: under 90 MiB after a
  512-token prompt), the app itself. The planner keeps a stated margin for them (`llmclient.planner`).
"""

from __future__ import annotations

from collections.abc import Sequence

from llmclient.metadata import GgufInfo
from llmclient.types import MemoryEstimate

__all__ = ["KV_TYPE_BYTES", "N_UBATCH", "context_cells", "estimate", "layer_devices"]

N_UBATCH = 512
KV_TYPE_BYTES = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q5_1": 24 / 32, "q5_0": 22 / 32,
                 "q4_1": 20 / 32, "q4_0": 18 / 32}  # fmt: skip


def _pad(n: int, to: int = 256) -> int:
    return -(-n // to) * to


def context_cells(n_ctx: int) -> int:
    """The KV cells llama.cpp gives a context of `n_ctx` tokens (it rounds up to a multiple of 256)."""
    return _pad(max(n_ctx, 1))


def layer_devices(n_layer: int, n_gpu_layers: int, split: Sequence[float]) -> list[int]:
    """Device of each layer and (last) of the output head: -1 for the CPU, else the GPU index (llama.cpp's rule)."""
    n_gpu_layers = max(0, min(n_gpu_layers, n_layer + 1))
    if not split or n_gpu_layers == 0:
        return [-1] * (n_layer + 1)
    total, acc, cumulative = sum(split) or 1.0, 0.0, []
    for share in split:
        acc += share
        cumulative.append(acc / total)
    start = n_layer + 1 - n_gpu_layers
    devices = []
    for il in range(n_layer + 1):
        if il < start:
            devices.append(-1)
            continue
        x = (il - start) / n_gpu_layers
        devices.append(min(next((i for i, c in enumerate(cumulative) if c > x), len(split) - 1), len(split) - 1))
    return devices


def estimate(
    info: GgufInfo,
    n_ctx: int,
    n_gpu_layers: int = 0,
    *,
    gpu_split: Sequence[float] = (1.0,),
    flash_attn: bool = True,
    kv_type: str = "f16",
    n_ubatch: int = N_UBATCH,
    n_seq_max: int = 1,
) -> MemoryEstimate:
    """The memory llama.cpp will allocate for `info` at `n_ctx` with `n_gpu_layers` offloaded.

    `n_ctx` is the whole KV cache in tokens, shared by up to `n_seq_max` sequences decoded in one batch.

    `gpu_split`: the share of offloaded layers each GPU takes (llama.cpp's default: by free memory). Layers are
    offloaded from the last; `n_gpu_layers = block_count + 1` offloads everything, the output head included.
    """
    if kv_type not in KV_TYPE_BYTES:
        raise ValueError(f"unknown KV cache type {kv_type!r}; use one of {', '.join(KV_TYPE_BYTES)}")
    n_layer = info.block_count
    devices = layer_devices(n_layer, n_gpu_layers, gpu_split)
    n_gpus = max(len(gpu_split), 1)
    gpu_weights, gpu_kv, gpu_compute = [0] * n_gpus, [0] * n_gpus, [0] * n_gpus
    cells = context_cells(n_ctx)
    ubatch = min(n_ubatch, n_ctx)
    kv_bytes = KV_TYPE_BYTES[kv_type]
    cpu_weights, cpu_kv = info.input_bytes, 0
    for il in range(n_layer):
        layer_cells = cells
        if info.swa_layers[il]:
            layer_cells = min(cells, _pad(info.sliding_window * n_seq_max + ubatch))
        kv = int(layer_cells * (info.key_length + info.value_length) * info.head_count_kv[il] * kv_bytes)
        if devices[il] < 0:
            cpu_weights += info.layer_bytes[il]
            cpu_kv += kv
        else:
            gpu_weights[devices[il]] += info.layer_bytes[il]
            gpu_kv[devices[il]] += kv
    f32 = 4
    mask = cells * _pad(ubatch, 64) * (2 if flash_attn else 4)
    ffn = info.feed_forward_length * max(1, info.expert_used_count)
    layer_peak = ubatch * f32 * (2 * info.embedding_length + 3 * ffn) + mask
    if not flash_attn:
        layer_peak += cells * ubatch * info.head_count * f32
    end_peak = ubatch * f32 * (info.vocab_size + 2 * info.embedding_length) + mask
    out = devices[n_layer]
    if out < 0:
        cpu_weights += info.output_bytes
    else:
        gpu_weights[out] += info.output_bytes + (info.input_bytes if info.tied_output else 0)
    for i in range(n_gpus):
        if i == out:
            gpu_compute[i] = max(end_peak, layer_peak)
        elif any(d == i for d in devices[:n_layer]):
            gpu_compute[i] = layer_peak
    if out < 0:
        cpu_compute = max(end_peak, layer_peak if -1 in devices[:n_layer] else 0)
    else:  # inputs staged in host memory
        cpu_compute = ubatch * f32 * 2 * info.embedding_length + mask
    cpu_compute += info.vocab_size * f32 * n_seq_max  # the logits kept for the caller, one row per sequence
    gpu = tuple(w + k + c for w, k, c in zip(gpu_weights, gpu_kv, gpu_compute, strict=True))
    return MemoryEstimate(
        n_ctx=cells,
        n_gpu_layers=max(0, min(n_gpu_layers, n_layer + 1)),
        gpu=gpu if any(gpu) else (),
        cpu=cpu_weights + cpu_kv + cpu_compute,
        weights=cpu_weights + sum(gpu_weights),
        kv_cache=cpu_kv + sum(gpu_kv),
        compute=cpu_compute + sum(gpu_compute),
    )
