"""Write GGUF model files of any shape with the `gguf` package: for planner tests and memory measurements.

The weights are random bytes (`fill="random"`), random bytes whose block scales are small finite numbers
(`fill="finite"`: the logits are finite too, so the file can generate), or left as a sparse hole that reads as zeros
and takes no disk (`fill="sparse"`): a 70B-shaped file then costs nothing to write. With `tokenizer_from` (e.g. the
real SmolLM2 file) the tokenizer is copied, so llama.cpp loads the result; the text it produces is noise, the memory
it takes is real. With `vocab_size` as well, the copied vocabulary grows to that size (262,144 for Gemma 3's), so
vocabulary-bound costs (logits, output matmul, grammar masks) are real too.
"""

from __future__ import annotations

import itertools
import os
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmclient._native import import_gguf, import_numpy

# gguf and numpy load when a file is written, after llama.cpp (see llmclient._native), not when this is imported
if TYPE_CHECKING:
    from gguf import GGUFWriter

__all__ = [
    "GEMMA3_12B",
    "LLAMA_7B",
    "LLAMA_70B",
    "QWEN2_7B",
    "TINY_BERT",
    "TINY_LLAMA",
    "ModelShape",
    "write_synthetic_bert",
    "write_synthetic_gguf",
]


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
# Two small layers and a tied output: with a big vocabulary, nearly all of the file and of each token's compute is the
# vocabulary's, as in the small models whose structured-output costs this stands in for
TINY_LLAMA = ModelShape("llama", 2, 256, 4, 4, 512, 1024, 4096, None, 0, True)

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

# For fill="finite": where each block keeps its fp16 scales (byte offsets into the block; ggml's block_* structs) and
# the scale written there, chosen so the weights stay within about +-0.1 whatever the random quants and sub-scales
_BLOCK_SCALES: dict[str, tuple[tuple[int, ...], float]] = {
    "Q4_0": ((0,), 0.01),  # d * (q - 8), |q - 8| <= 8
    "Q8_0": ((0,), 0.0005),  # d * q, |q| <= 128
    "Q2_K": ((80, 82), 0.002),  # d * sc * q - dmin * m: sc, m <= 15, q <= 3
    "Q3_K": ((108,), 0.0005),  # d * (sc - 32) * q: |sc - 32| <= 32, |q| <= 4
    "Q4_K": ((0, 2), 0.0001),  # d * sc * q - dmin * m: sc, m <= 63, q <= 15
    "Q5_K": ((0, 2), 0.00005),  # as Q4_K, q <= 31
    "Q6_K": ((208,), 0.00002),  # d * sc * q: |sc| <= 128, |q| <= 32
}
_CHUNK = 16 << 20


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


def _finite_data(rng: Any, dims: tuple[int, ...], qtype: Any) -> Iterator[bytes]:
    """The bytes of a tensor of random, finite, small weights, a chunk at a time (norms are all ones)."""
    gguf, np = import_gguf(), import_numpy()
    Q = gguf.GGMLQuantizationType
    n = int(np.prod(dims))
    if qtype == Q.F32:
        yield np.ones(n, np.float32).tobytes()
        return
    if qtype == Q.F16:
        for start in range(0, n, _CHUNK // 2):
            yield rng.uniform(-0.1, 0.1, min(_CHUNK // 2, n - start)).astype(np.float16).tobytes()
        return
    offsets, scale = _BLOCK_SCALES[qtype.name]
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    d = np.array([scale], np.float16).view(np.uint8)
    n_blocks, step = n // block, _CHUNK // size
    for start in range(0, n_blocks, step):
        blocks = rng.integers(0, 256, size=(min(step, n_blocks - start), size), dtype=np.uint8)
        for at in offsets:  # random bytes there would make some scales inf or NaN, and then every logit NaN
            blocks[:, at : at + 2] = d
        yield blocks.tobytes()


def _extra_tokens(model: str, taken: set[str], count: int) -> list[str]:
    """`count` new tokens, none in `taken`: lowercase words, shortest first, each after a space marker and bare.

    Letters stand for themselves both in byte-level BPE (GPT-2's byte-to-unicode table keeps printable ASCII) and in
    SentencePiece, so llama.cpp's loader and detokenizer accept them in either. No merge makes them, so tokenizing
    text never yields them; a model can still emit them, and a grammar must still mask them.
    """
    space = {"gpt2": "\u0120", "llama": "\u2581"}.get(model, "")  # Ġ and ▁: a leading space in each scheme
    extra: list[str] = []
    for length in itertools.count(1):
        for letters in itertools.product(string.ascii_lowercase, repeat=length):
            word = "".join(letters)
            for token in (space + word, word) if space else (word,):
                if token not in taken:
                    extra.append(token)
                    if len(extra) == count:
                        return extra
    raise AssertionError("unreachable")  # itertools.count never ends


def _copy_tokenizer(writer: GGUFWriter, donor: Path, vocab_size: int | None) -> int:
    """Copy every `tokenizer.*` key of `donor`, its vocabulary grown to `vocab_size`; returns the vocabulary size."""
    gguf = import_gguf()
    reader = gguf.GGUFReader(donor)
    fields = {name: field for name, field in reader.fields.items() if name.startswith("tokenizer.")}
    tokens: list[str] = list(fields["tokenizer.ggml.tokens"].contents())
    if vocab_size is not None and vocab_size < len(tokens):
        raise ValueError(f"vocab_size {vocab_size} is smaller than the donor's {len(tokens)} tokens")
    model = str(fields["tokenizer.ggml.model"].contents()) if "tokenizer.ggml.model" in fields else ""
    extra = _extra_tokens(model, set(tokens), vocab_size - len(tokens)) if vocab_size not in (None, len(tokens)) else []
    for name, field in fields.items():
        vtype = field.types[0]
        value: Any = field.contents()
        if vtype != gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, value, vtype)
            continue
        if extra and name == "tokenizer.ggml.tokens":
            value = tokens + extra
        elif extra and name == "tokenizer.ggml.token_type":
            value = value + [int(gguf.TokenType.NORMAL)] * len(extra)
        elif extra and name == "tokenizer.ggml.scores":  # SentencePiece: below every real piece, merged last
            value = value + [min(value) - 1.0] * len(extra)
        writer.add_array(name, value)
    return len(tokens) + len(extra)


def write_synthetic_gguf(
    path: str | os.PathLike[str],
    shape: ModelShape = ModelShape(),
    quant: str = "Q8_0",
    *,
    fill: str = "random",
    tokenizer_from: str | os.PathLike[str] | None = None,
    vocab_size: int | None = None,
    seed: int = 0,
) -> Path:
    """Write a GGUF file of `shape` quantized as `quant` (a name in `QUANT_MIXES`); returns its path.

    With `tokenizer_from`, the donor's tokenizer (and its vocabulary size) replaces `shape.n_vocab`. With
    `vocab_size` as well, the donor's tokens, merges, special tokens and chat template are kept and new normal
    tokens (lowercase words the donor lacks) are appended up to `vocab_size`; the embedding and output tensors
    take that many rows. Use `fill="finite"` for a file that generates: its logits are finite noise.
    """
    if fill not in ("random", "finite", "sparse"):
        raise ValueError(f"fill must be 'random', 'finite' or 'sparse', not {fill!r}")
    if vocab_size is not None and tokenizer_from is None:
        raise ValueError("vocab_size grows a copied tokenizer: pass tokenizer_from, or set shape.n_vocab")
    gguf = import_gguf()
    path = Path(path)
    writer = gguf.GGUFWriter(path, shape.arch)
    n_vocab = shape.n_vocab if tokenizer_from is None else _copy_tokenizer(writer, Path(tokenizer_from), vocab_size)
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
    return _write_tensors(path, writer, list(_tensors(shape, quant)), fill, seed)


def _write_tensors(path: Path, writer: GGUFWriter, tensors: list[tuple[str, tuple[int, ...], Any]], fill: str,
                   seed: int) -> Path:  # fmt: skip
    """Write the header, the tensors' descriptions and their data (`fill`), closing `writer`."""
    gguf, np = import_gguf(), import_numpy()
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
        elif fill == "finite":
            rng = np.random.default_rng(seed)
            fh.seek(offset)
            for (_, dims, qtype), padded in zip(tensors, sizes, strict=True):
                written = 0
                for chunk in _finite_data(rng, dims, qtype):
                    written += fh.write(chunk)
                fh.write(bytes(padded - written))
        fh.truncate(end)
    return path


#: A BERT small enough to write in a blink: MiniLM's layout (embeddings, 2 encoder layers, no output head).
TINY_BERT = ModelShape("bert", 2, 128, 4, 4, 256, 0, 512)
_WORD_TEXT = (
    "the a of and to in is it that was for on are with as his they be at one have this from or had by "
    "hot word but what some we can out other were all there when up use your how said an each she which "
    "do their time if will way about many then them write would like so these her long make thing see "
    "him two has look more day could go come did number sound no most people my over know water than "
    "call first who may down side been now find cat dog fox sun moon rain tree house car road city river "
    "sea ship"
)
_WORDS = tuple(_WORD_TEXT.split())


def _bert_vocab() -> tuple[list[str], list[int]]:
    """A WordPiece vocabulary as llama.cpp's BERT converter writes it (a word start marked `▁`, a word piece bare),
    with the special tokens where BERT's are: [PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103."""
    tokens = ["[PAD]", *(f"[unused{i}]" for i in range(99)), "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    types = [3] * 100 + [2, 3, 3, 3]  # gguf.TokenType: CONTROL 3, UNKNOWN 2, NORMAL 1
    pieces = [*string.ascii_lowercase, *string.digits, *string.punctuation]
    for token in dict.fromkeys([*(f"\u2581{w}" for w in (*_WORDS, *pieces)), *pieces]):
        tokens.append(token)
        types.append(1)
    return tokens, types


def write_synthetic_bert(
    path: str | os.PathLike[str], shape: ModelShape = TINY_BERT, *, pooling: str | None = "mean", seed: int = 0
) -> Path:
    """Write a BERT-architecture encoder GGUF (llama.cpp's `bert`: token, token-type and position embeddings, post-norm
    encoder layers with biases, non-causal attention) with a small WordPiece tokenizer and finite random F16
    weights; `pooling` (`mean`, `cls`, `last` or None) is declared in its metadata, as embedding GGUFs do."""
    from llmclient.backends.llama_cpp._settings import POOLINGS

    gguf = import_gguf()
    Q = gguf.GGMLQuantizationType
    path = Path(path)
    tokens, types = _bert_vocab()
    writer = gguf.GGUFWriter(path, "bert")
    writer.add_name("synthetic bert")
    writer.add_tokenizer_model("bert")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_type_count(2)
    for key, token_id in (("unknown", 100), ("padding", 0), ("cls", 101), ("seperator", 102), ("mask", 103)):
        writer.add_uint32(f"tokenizer.ggml.{key}_token_id", token_id)
    e, ff, ctx = shape.n_embd, shape.n_ff, shape.context_length
    writer.add_uint32("bert.block_count", shape.n_layer)
    writer.add_uint32("bert.context_length", ctx)
    writer.add_uint32("bert.embedding_length", e)
    writer.add_uint32("bert.feed_forward_length", ff)
    writer.add_uint32("bert.attention.head_count", shape.n_head)
    writer.add_float32("bert.attention.layer_norm_epsilon", 1e-12)
    writer.add_bool("bert.attention.causal", False)
    if pooling is not None:
        writer.add_uint32("bert.pooling_type", POOLINGS[pooling])
    writer.add_file_type(1)  # mostly F16
    tensors: list[tuple[str, tuple[int, ...], Any]] = [
        ("token_embd.weight", (len(tokens), e), Q.F16),
        ("token_types.weight", (2, e), Q.F32),  # added as a row view: F32, as converters keep it
        ("position_embd.weight", (ctx, e), Q.F16),
        ("token_embd_norm.weight", (e,), Q.F32),
        ("token_embd_norm.bias", (e,), Q.F32),
    ]
    for il in range(shape.n_layer):
        b = f"blk.{il}."
        for name, rows, cols in (("attn_q", e, e), ("attn_k", e, e), ("attn_v", e, e), ("attn_output", e, e),
                                 ("ffn_up", ff, e), ("ffn_down", e, ff)):  # fmt: skip
            tensors += [(f"{b}{name}.weight", (rows, cols), Q.F16), (f"{b}{name}.bias", (rows,), Q.F32)]
        for norm in ("attn_output_norm", "layer_output_norm"):
            tensors += [(f"{b}{norm}.weight", (e,), Q.F32), (f"{b}{norm}.bias", (e,), Q.F32)]
    return _write_tensors(path, writer, tensors, "finite", seed)
