"""`GgufInfo`: a parsed GGUF header in the terms the memory planner needs, and the names of a split model's shards.

Public as `llmclient.metadata`; built here from the headers `parse` reads, wherever their bytes came from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from llmclient._gguf.parse import ParsedHeader
from llmclient.errors import ModelFormatError

__all__ = ["GgufInfo", "SHARD_RE", "info_from_header", "shard_names"]

#: `name-00001-of-00003.gguf`: one model split into shards; the planner treats the set as one file.
SHARD_RE = re.compile(r"^(?P<stem>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")

#: Which layers use a sliding window when the file does not say: llama.cpp's built-in pattern per architecture
#: (every n-th layer is global). Files may instead carry `<arch>.attention.sliding_window_pattern`.
_SWA_PATTERNS = {"gemma2": 2, "gemma3": 6, "cohere2": 4}

_FORMAT = 1
_BLOCK_RE = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class GgufInfo:
    """A GGUF model's shape and the bytes of its weights, from the file's header alone."""

    architecture: str
    name: str | None
    file_type: int | None
    """`general.file_type` (a llama.cpp `LLAMA_FTYPE_*`), naming the quantization; None if absent."""
    context_length: int
    """The trained context length (`<arch>.context_length`)."""
    block_count: int
    embedding_length: int
    head_count: int
    head_count_kv: tuple[int, ...]
    """Key/value heads of each layer (models may vary it per layer; 0 marks a layer without attention)."""
    key_length: int
    value_length: int
    vocab_size: int
    sliding_window: int
    """The sliding window of SWA layers in tokens, 0 when the model has none."""
    swa_layers: tuple[bool, ...]
    """Which layers use the sliding window (their KV cache is only window-sized)."""
    layer_bytes: tuple[int, ...]
    """Weight bytes of each repeating layer (`blk.N.*`)."""
    input_bytes: int
    """Weight bytes that always stay in system memory: the token embedding."""
    output_bytes: int
    """Weight bytes of the output head: `output.weight` (absent when tied to the embedding) and the final norm."""
    tied_output: bool
    """The output head is the token embedding: offloading it puts a copy of the embedding on the GPU."""
    feed_forward_length: int
    header_bytes: int
    file_bytes: int
    """Header plus tensor data: the file's size (all shards together for a split model)."""
    expert_count: int = 0
    expert_used_count: int = 0
    has_chat_template: bool = False
    shards: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    """Other small scalar keys of interest (rope scaling, expert counts), kept for display."""

    @property
    def weight_bytes(self) -> int:
        """All tensor bytes in the file(s)."""
        return sum(self.layer_bytes) + self.input_bytes + self.output_bytes

    def to_json(self) -> str:
        """A JSON text `from_json` reads back."""
        return json.dumps({"format": _FORMAT, **asdict(self)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> GgufInfo:
        """Read what `to_json` wrote; `ValueError` if it is from another format version or malformed."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.pop("format", None) != _FORMAT:
            raise ValueError("stored GGUF metadata is from another llmclient version")
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names}
        try:
            return cls(**values)
        except TypeError as error:
            raise ValueError(f"stored GGUF metadata is malformed: {error}") from None


def _per_layer(value: Any, n_layer: int, default: int) -> tuple[int, ...]:
    if isinstance(value, list):
        items = [int(v) for v in value][:n_layer]
        return tuple(items + [items[-1] if items else default] * (n_layer - len(items)))
    if isinstance(value, int):
        return (value,) * n_layer
    return (default,) * n_layer


def _swa_layers(fields_: dict[str, Any], arch: str, n_layer: int, window: int) -> tuple[bool, ...]:
    if window <= 0:
        return (False,) * n_layer
    pattern = fields_.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(pattern, list):
        flags = [bool(v) for v in pattern][:n_layer]
        return tuple(flags + [False] * (n_layer - len(flags)))
    n = pattern if isinstance(pattern, int) else _SWA_PATTERNS.get(arch)
    if n is None:
        return (False,) * n_layer  # llama.cpp ignores the window for this architecture
    return tuple(n == 0 or (il % n < n - 1) for il in range(n_layer))


def info_from_header(headers: Sequence[ParsedHeader], file_bytes: int) -> GgufInfo:
    """Build `GgufInfo` from the header of a file (or of every shard, first shard first)."""
    first = headers[0].fields
    arch = first.get("general.architecture")
    if not isinstance(arch, str):
        raise ModelFormatError("the GGUF header has no general.architecture: not a model file llama.cpp can load")

    def key(name: str, default: Any = None) -> Any:
        return first.get(f"{arch}.{name}", default)

    n_layer = int(key("block_count", 0))
    n_embd = int(key("embedding_length", 0))
    n_head_raw = key("attention.head_count", 0)
    n_head = max(_per_layer(n_head_raw, max(n_layer, 1), 0))
    if n_layer <= 0 or n_embd <= 0 or n_head <= 0:
        raise ModelFormatError(
            f"the GGUF header lacks {arch}.block_count, .embedding_length or .attention.head_count, so its memory "
            "cannot be estimated"
        )
    head_kv = _per_layer(key("attention.head_count_kv"), n_layer, n_head)
    head_dim = n_embd // n_head
    window = int(key("attention.sliding_window", 0) or 0)
    tokens = first.get("tokenizer.ggml.tokens")
    vocab = tokens[1] if isinstance(tokens, tuple) else len(tokens) if isinstance(tokens, list) else 0
    layer = [0] * n_layer
    inputs = outputs = 0
    tied = True
    for header in headers:
        for tensor in header.tensors:
            match = _BLOCK_RE.match(tensor.name)
            if match and int(match.group(1)) < n_layer:
                layer[int(match.group(1))] += tensor.nbytes
            elif tensor.name.startswith("token_embd."):
                inputs += tensor.nbytes
                if tensor.name == "token_embd.weight":
                    vocab = vocab or (tensor.shape[1] if len(tensor.shape) > 1 else 0)
            else:
                outputs += tensor.nbytes
                tied = tied and tensor.name != "output.weight"
    extra = {
        k: v
        for k, v in first.items()
        if isinstance(v, int | float | str)
        and (k.startswith(f"{arch}.rope") or k in ("general.size_label", "general.basename", "general.quantized_by"))
    }
    return GgufInfo(
        architecture=arch,
        name=first.get("general.name") if isinstance(first.get("general.name"), str) else None,
        file_type=first.get("general.file_type") if isinstance(first.get("general.file_type"), int) else None,
        context_length=int(key("context_length", 0) or 0),
        block_count=n_layer,
        embedding_length=n_embd,
        head_count=n_head,
        head_count_kv=head_kv,
        key_length=int(key("attention.key_length", head_dim)),
        value_length=int(key("attention.value_length", head_dim)),
        vocab_size=int(vocab),
        sliding_window=window,
        swa_layers=_swa_layers(first, arch, n_layer, window),
        layer_bytes=tuple(layer),
        input_bytes=inputs,
        output_bytes=outputs,
        tied_output=tied,
        feed_forward_length=max(_per_layer(key("feed_forward_length"), n_layer, 4 * n_embd)),
        header_bytes=headers[0].data_offset,
        file_bytes=file_bytes,
        expert_count=int(key("expert_count", 0) or 0),
        expert_used_count=int(key("expert_used_count", 0) or 0),
        has_chat_template=isinstance(first.get("tokenizer.chat_template"), str),
        shards=len(headers),
        extra=extra,
    )


def shard_names(filename: str) -> list[str]:
    """All shard file names of a split model given any one of them, or `[filename]` if it is not split."""
    match = SHARD_RE.match(filename)
    if match is None:
        return [filename]
    count = int(match.group("count"))
    return [f"{match.group('stem')}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]
