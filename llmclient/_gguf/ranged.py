"""Read a GGUF header from a file fetched in pieces (a hub file, with HTTP Range requests): the first bytes only.

The first read asks for 512 KiB; while the parser reports the header continuing past what arrived, the next read
asks for the bytes after it, at least half again as many as held, so the total read stays within about 1.5x the
header (1.8 MB of SmolLM2's 98 MB, some 8 MB of a 150k-vocabulary model's gigabytes).
"""

from __future__ import annotations

from collections.abc import Callable

from llmclient._gguf.parse import ParsedHeader, TruncatedHeader, parse_header
from llmclient.errors import ModelFormatError

__all__ = ["FIRST_READ", "MAX_HEADER", "ReadRange", "read_header"]

FIRST_READ = 512 << 10
#: A header larger than this is taken for a corrupt file rather than read on.
MAX_HEADER = 256 << 20

ReadRange = Callable[[int, int], bytes]
"""`read(start, end)`: bytes [start, end) of the file (fewer at its end, none past it)."""


def read_header(read: ReadRange, size: int | None, name: str) -> tuple[ParsedHeader, int]:
    """The parsed header of the file `name` (`size` bytes long, if known) and the bytes read to get it.

    Raises `ModelFormatError` if the file is not GGUF or ends inside its header; whatever `read` raises passes
    through.
    """
    data = bytearray()
    want = FIRST_READ
    while True:
        if size is not None:
            want = min(want, size)
        if want > len(data):
            chunk = read(len(data), want)
            if not chunk:
                raise ModelFormatError(f"{name} ends inside its GGUF header: it is truncated")
            data += chunk
        try:
            return parse_header(bytes(data)), len(data)
        except TruncatedHeader as short:
            if len(data) >= MAX_HEADER or (size is not None and len(data) >= size):
                raise ModelFormatError(
                    f"{name}: no complete GGUF header in its first {len(data)} bytes; the file is corrupt"
                ) from None
            want = min(max(short.need, len(data) + len(data) // 2), MAX_HEADER)
        except ValueError as error:
            raise ModelFormatError(f"{name}: {error}") from None
