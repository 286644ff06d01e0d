"""Parse a GGUF file's header (key/values and tensor table) from its first bytes, without the tensor data.

A hub file is read with growing HTTP ranges, so the parser works on a prefix and says how much more it needs
(`TruncatedHeader.need`) when the prefix ends inside the header. Large arrays (the tokenizer's vocabulary and
merges, tens of thousands of strings) are skipped over, keeping only their length: planning never needs them.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from typing import Any

from llmclient._native import import_gguf

__all__ = ["GGUF_MAGIC", "HeaderTensor", "ParsedHeader", "TruncatedHeader", "parse_header", "tensor_nbytes"]

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
#: Arrays longer than this are not kept (only their length): vocabularies, merges, token scores.
MAX_KEPT_ARRAY = 4096

# GGUF value types (gguf.GGUFValueType) → struct format for the fixed-size ones.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")

#: ggml tensor type → (elements per block, bytes per block), as the gguf package's `GGML_QUANT_SIZES` has them
#: (tests/test_builder.py holds them equal). Kept here because importing gguf costs ~30 ms of every cold
#: start, and planning reads a tensor table; a type missing here is looked up in gguf.
_QUANT_SIZES = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 40),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292), 16: (256, 66),
    17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82), 23: (256, 136),
    24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2), 34: (256, 54),
    35: (256, 66), 39: (32, 17), 40: (64, 36), 41: (128, 18),
}  # fmt: skip


class TruncatedHeader(Exception):
    """The bytes end inside the header; `need` is a total length that would get further (not always all)."""

    def __init__(self, need: int) -> None:
        super().__init__(f"GGUF header continues past the bytes read; need at least {need}")
        self.need = need


@dataclass(frozen=True)
class HeaderTensor:
    """One entry of the tensor table."""

    name: str
    shape: tuple[int, ...]
    """Dimensions in ggml order (ne0 first: the row length)."""
    ggml_type: int
    offset: int

    @property
    def n_elements(self) -> int:
        count = 1
        for n in self.shape:
            count *= n
        return count

    @property
    def nbytes(self) -> int:
        return tensor_nbytes(self.ggml_type, self.n_elements)


@dataclass(frozen=True)
class ParsedHeader:
    """A GGUF header: format version, key/values, the tensor table, and where the tensor data starts."""

    version: int
    fields: dict[str, Any]
    """Scalars, strings and short arrays as Python values; long arrays as `("array", length)`."""
    tensors: tuple[HeaderTensor, ...]
    data_offset: int
    """Byte offset of the first tensor's data: the header's length, padding included."""


def tensor_nbytes(ggml_type: int, n_elements: int) -> int:
    """Bytes of a tensor of `n_elements` elements stored as `ggml_type`."""
    sizes = _QUANT_SIZES.get(ggml_type)
    if sizes is None:
        gguf = import_gguf()
        try:
            sizes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ggml_type)]
        except (ValueError, KeyError):
            raise ValueError(f"unknown ggml tensor type {ggml_type}; upgrade the gguf package") from None
    block, size = sizes
    return n_elements // block * size


class _Reader:
    def __init__(self, data: bytes | memoryview | mmap.mmap) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        end = self.pos + n
        if end > len(self.data):
            raise TruncatedHeader(end)
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        return struct.unpack_from("<" + fmt, self.take(size))[0]

    def string(self) -> str:
        length = self.unpack("Q")
        if length > 1 << 30:
            raise ValueError(f"GGUF string of {length} bytes: the file is corrupt or not GGUF")
        return bytes(self.take(length)).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        data, pos, start, end = self.data, self.pos, self.pos, len(self.data)
        length_at = _U64.unpack_from
        for i in range(count):
            if pos + 8 > end:
                average = (pos - start) / i if i else 16.0
                raise TruncatedHeader(int(pos + (count - i) * average) + 8)
            pos += 8 + length_at(data, pos)[0]
        if pos > len(data):
            raise TruncatedHeader(pos)
        self.pos = pos

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type, count = self.unpack("I"), self.unpack("Q")
            if count > MAX_KEPT_ARRAY:
                if item_type == _STRING:
                    self.skip_strings(count)
                elif item_type in _SCALARS:
                    self.take(count * struct.calcsize("<" + _SCALARS[item_type]))
                else:
                    raise ValueError(f"GGUF array of {count} items of type {item_type} is not supported")
                return ("array", count)
            return [self.value(item_type) for _ in range(count)]
        raise ValueError(f"unknown GGUF value type {vtype}: the file is corrupt or from a newer GGUF version")


def parse_header(data: bytes | memoryview | mmap.mmap) -> ParsedHeader:
    """Parse the header at the start of `data`; raise `TruncatedHeader` if `data` ends inside it.

    Raises `ValueError` if the bytes are not a GGUF file.
    """
    reader = _Reader(data)
    magic = bytes(reader.take(4))
    if magic != GGUF_MAGIC:
        raise ValueError(f"not a GGUF file (starts with {magic!r}, expected b'GGUF')")
    version = reader.unpack("I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} is not supported (2 and 3 are)")
    n_tensors, n_kv = reader.unpack("Q"), reader.unpack("Q")
    if n_tensors > 1 << 24 or n_kv > 1 << 24:
        raise ValueError(f"GGUF header claims {n_tensors} tensors and {n_kv} keys: the file is corrupt")
    fields: dict[str, Any] = {}
    for _ in range(n_kv):
        key = reader.string()
        fields[key] = reader.value(reader.unpack("I"))
    tensors = []
    for _ in range(n_tensors):
        name = reader.string()
        n_dims = reader.unpack("I")
        if n_dims > 8:
            raise ValueError(f"tensor {name!r} has {n_dims} dimensions: the file is corrupt")
        shape = tuple(reader.unpack("Q") for _ in range(n_dims))
        ggml_type, offset = reader.unpack("I"), reader.unpack("Q")
        tensors.append(HeaderTensor(name, shape, ggml_type, offset))
    alignment = fields.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = DEFAULT_ALIGNMENT
    data_offset = -(-reader.pos // alignment) * alignment
    return ParsedHeader(version, fields, tuple(tensors), data_offset)
