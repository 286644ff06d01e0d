"""Moved to `llmclient._gguf.parse`; this path stays while tests/test_builder.py and bench/_peer_systems.py use it."""

from __future__ import annotations

from llmclient._gguf.parse import _QUANT_SIZES, ParsedHeader, TruncatedHeader, parse_header, tensor_nbytes

__all__ = ["_QUANT_SIZES", "ParsedHeader", "TruncatedHeader", "parse_header", "tensor_nbytes"]
