"""Read a local GGUF file's header (every shard's, for a split model) into `GgufInfo`, without its weights."""

from __future__ import annotations

import contextlib
import mmap
import os
from pathlib import Path

from llmclient._gguf.info import GgufInfo, info_from_header, shard_names
from llmclient._gguf.parse import ParsedHeader, TruncatedHeader, parse_header
from llmclient.errors import ModelFormatError

__all__ = ["read_gguf_info"]


def _read_prefix(path: Path) -> ParsedHeader:
    with path.open("rb") as fh:
        try:  # mapped: the parser reads only the header's pages, once, however long the vocabulary is
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file
            return _parse(path, b"")
        except OSError:  # a file system that cannot map it: read as much as the header needs, not the weights
            data = fh.read(1 << 20)
            while True:
                try:
                    return parse_header(data)
                except TruncatedHeader:
                    more = fh.read(len(data))
                    if not more:
                        break
                    data += more
                except ValueError:
                    break
            return _parse(path, data)
        try:
            return _parse(path, mapped)
        finally:
            with contextlib.suppress(BufferError):  # a view still held: the mapping goes with it
                mapped.close()


def _parse(path: Path, data: bytes | mmap.mmap) -> ParsedHeader:
    """The header at the start of `data`, which holds the whole file; a `ModelFormatError` saying what is wrong."""
    try:
        return parse_header(data)
    except TruncatedHeader:
        raise ModelFormatError(f"{path} ends inside its GGUF header: the file is truncated") from None
    except ValueError as error:
        raise ModelFormatError(f"{path}: {error}") from None


def read_gguf_info(path: str | os.PathLike[str]) -> GgufInfo:
    """The `GgufInfo` of a local GGUF file (every shard's header is read when it is split); reads headers only.

    Raises `ModelFormatError` if the file is not GGUF or lacks the keys a model needs, `OSError` if it cannot be
    read.
    """
    path = Path(path)
    names = shard_names(path.name)
    paths = [path.with_name(n) for n in names]
    headers = [_read_prefix(p) for p in paths]
    return info_from_header(headers, sum(p.stat().st_size for p in paths))
