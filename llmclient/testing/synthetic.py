"""Write GGUF model files of any shape with the `gguf` package: for planner tests and memory measurements.

The weights are random bytes (`fill="random"`), or left as a sparse hole that reads as zeros and takes no disk
(`fill="sparse"`): a 70B-shaped file then costs nothing to write. With `tokenizer_from` (e.g. the real SmolLM2
file) the tokenizer is copied, so llama.cpp loads the result; the text it produces is noise, the memory it
takes is real.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmclient._native import import_gguf, import_numpy

# gguf and numpy load when a file is written, after llama.cpp (see llmclient._native), not when this is imported
if TYPE_CHECKING:
    from gguf import GGUFWriter

__all__ = ["ModelShape", "write_synthetic_gguf", "LLAMA_7B", "LLAMA_70B", "QWEN2_7B", "GEMMA3_12B"]


@dataclass(frozen=True)
class ModelShape:
    """The hyperparameters of a transformer, as GGUF keys name them."""

    arch: str = "llama"
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 4
    n_head_kv: int = 4
    n_ff: int = 512
    n_vocab: int = 1024
    context_length: int = 4096
    head_dim: int | None = None
    sliding_window: int = 0
    tied_output: bool = False


LLAMA_7B = ModelShape("llama", 32, 4096, 32, 8, 14336, 32768, 32768)
LLAMA_70B = ModelShape("llama", 80, 8192, 64, 8, 28672, 128256, 131072)
QWEN2_7B = ModelShape("qwen2", 28, 3584, 28, 4, 18944, 152064, 32768)
GEMMA3_12B = ModelShape("gemma3", 48, 3840, 16, 8, 15360, 262144, 131072, 256, 1024, True)

# (most tensors, "more bits" tensors (attn_v / ffn_down on some layers), output, token embedding): ggml type names
# (gguf.GGMLQuantizationType members), and the file type
_MIXES: dict[str, tuple[str, str, str, str, int]] = {
    "Q8_0": ("Q8_0", "Q8_0", "Q8_0", "Q8_0", 7),
    "Q6_K": ("Q6_K", "Q6_K", "Q6_K", "Q6_K", 18),
    "Q5_K_M": ("Q5_K", "Q6_K", "Q6_K", "Q5_K", 17),
    "Q4_K_M": ("Q4_K", "Q6_K", "Q6_K", "Q4_K", 15),
    "Q4_K_S": ("Q4_K", "Q4_K", "Q6_K", "Q4_K", 14),
    "Q3_K_M": ("Q3_K", "Q4_K", "Q6_K", "Q3_K", 12),
    "Q2_K": ("Q2_K", "Q3_K", "Q6_K", "Q2_K", 10),
    "Q4_0": ("Q4_0", "Q4_0", "Q6_K", "Q4_0", 2),
    "F16": ("F16", "F16", "F16", "F16", 1),
}
QUANT_MIXES = tuple(_MIXES)


def _more_bits(il: int, n: int) -> bool:  # llama.cpp's use_more_bits(): first/last eighth and every third
    return il < n // 8 or il >= 7 * n // 8 or (il - n // 8) % 3 == 2


def _tensors(shape: ModelShape, quant: str) -> Iterator[tuple[str, tuple[int, ...], Any]]:
    """(name, numpy-order shape, ggml type) of each tensor."""
    Q = import_gguf().GGMLQuantizationType
    base, more, out, emb = (Q[name] for name in _MIXES[quant][:4])
    hd = shape.head_dim or shape.n_embd // shape.n_head
    q_dim, kv_dim, e = shape.n_head * hd, shape.n_head_kv * hd, shape.n_embd
    yield "token_embd.weight", (shape.n_vocab, e), emb
    for il in range(shape.n_layer):
        b = f"blk.{il}."
        hi = more if _more_bits(il, shape.n_layer) else base
        yield b + "attn_norm.weight", (e,), Q.F32
        yield b + "attn_q.weight", (q_dim, e), base
        yield b + "attn_k.weight", (kv_dim, e), base
        yield b + "attn_v.weight", (kv_dim, e), hi
        yield b + "attn_output.weight", (e, q_dim), base
        if shape.arch == "qwen2":
            yield b + "attn_q.bias", (q_dim,), Q.F32
            yield b + "attn_k.bias", (kv_dim,), Q.F32
            yield b + "attn_v.bias", (kv_dim,), Q.F32
        if shape.arch == "gemma3":
            yield b + "attn_q_norm.weight", (hd,), Q.F32
            yield b + "attn_k_norm.weight", (hd,), Q.F32
            yield b + "post_attention_norm.weight", (e,), Q.F32
            yield b + "post_ffw_norm.weight", (e,), Q.F32
        yield b + "ffn_norm.weight", (e,), Q.F32
        yield b + "ffn_gate.weight", (shape.n_ff, e), base
        yield b + "ffn_up.weight", (shape.n_ff, e), base
        yield b + "ffn_down.weight", (e, shape.n_ff), hi
    yield "output_norm.weight", (e,), Q.F32
    if not shape.tied_output:
        yield "output.weight", (shape.n_vocab, e), out


def _nbytes(dims: tuple[int, ...], qtype: Any) -> int:
    sizes: tuple[int, int] = import_gguf().GGML_QUANT_SIZES[qtype]
    block, size = sizes
    n = int(import_numpy().prod(dims))
    if dims[-1] % block:
        raise ValueError(f"a row of {dims[-1]} elements cannot be stored as {qtype.name} (blocks of {block})")
    return n // block * size


def _copy_tokenizer(writer: GGUFWriter, donor: Path) -> int:
    """Copy every `tokenizer.*` key of `donor`; returns its vocabulary size."""
    gguf = import_gguf()
    reader = gguf.GGUFReader(donor)
    n_vocab = 0
    for field in reader.fields.values():
        if not field.name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        value: Any = field.contents()
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_array(field.name, value)
            if field.name == "tokenizer.ggml.tokens":
                n_vocab = len(value)
        else:
            writer.add_key_value(field.name, value, vtype)
    return n_vocab


def write_synthetic_gguf(
    path: str | os.PathLike[str],
    shape: ModelShape = ModelShape(),
    quant: str = "Q8_0",
    *,
    fill: str = "random",
    tokenizer_from: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> Path:
    """Write a GGUF file of `shape` quantized as `quant` (a name in `QUANT_MIXES`); returns its path.

    With `tokenizer_from`, the donor's tokenizer (and its vocabulary size) replaces `shape.n_vocab`.
    """
    gguf, np = import_gguf(), import_numpy()
    path = Path(path)
    writer = gguf.GGUFWriter(path, shape.arch)
    n_vocab = _copy_tokenizer(writer, Path(tokenizer_from)) if tokenizer_from is not None else shape.n_vocab
    if tokenizer_from is None:
        writer.add_uint32(f"{shape.arch}.vocab_size", n_vocab)
    shape = ModelShape(**{**shape.__dict__, "n_vocab": n_vocab})
    arch = shape.arch
    writer.add_name(f"synthetic {arch} {quant}")
    writer.add_uint32(f"{arch}.block_count", shape.n_layer)
    writer.add_uint32(f"{arch}.context_length", shape.context_length)
    writer.add_uint32(f"{arch}.embedding_length", shape.n_embd)
    writer.add_uint32(f"{arch}.feed_forward_length", shape.n_ff)
    writer.add_uint32(f"{arch}.attention.head_count", shape.n_head)
    writer.add_uint32(f"{arch}.attention.head_count_kv", shape.n_head_kv)
    writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6)
    writer.add_float32(f"{arch}.rope.freq_base", 10000.0)
    if shape.head_dim is not None:
        writer.add_uint32(f"{arch}.attention.key_length", shape.head_dim)
        writer.add_uint32(f"{arch}.attention.value_length", shape.head_dim)
    if shape.sliding_window:
        writer.add_uint32(f"{arch}.attention.sliding_window", shape.sliding_window)
    writer.add_file_type(_MIXES[quant][4])
    writer.add_quantization_version(2)
    tensors = list(_tensors(shape, quant))
    for name, dims, qtype in tensors:
        writer.add_tensor_info(name, dims, np.dtype(np.float32), _nbytes(dims, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    alignment = 32
    with path.open("r+b") as fh:
        fh.seek(0, os.SEEK_END)
        offset = -(-fh.tell() // alignment) * alignment
        sizes = [-(-_nbytes(dims, qtype) // alignment) * alignment for _, dims, qtype in tensors]
        end = offset + sum(sizes)
        if fill == "random":
            rng = np.random.default_rng(seed)
            block = rng.integers(0, 256, size=16 << 20, dtype=np.uint8).tobytes()
            fh.seek(offset)
            for (_, dims, qtype), padded in zip(tensors, sizes, strict=True):
                data = np.ones(dims, np.float32).tobytes() if qtype == gguf.GGMLQuantizationType.F32 else b""
                left = padded - len(data)
                fh.write(data)
                while left > 0:
                    fh.write(block[: min(left, len(block))])
                    left -= len(block)
        elif fill != "sparse":
            raise ValueError(f"fill must be 'random' or 'sparse', not {fill!r}")
        fh.truncate(end)
    return path
