"""The mistral.rs engine: GGUF models in this process through mistral.rs's Python wheel (the optional extra
`pip install "llmclient[mistralrs]"`), with its known bugs contained.

Importing this package does not import `mistralrs`; `MistralRsEngine.load` does, after setting its environment.
Inside: `_engine.py` (the `Engine`), `_worker.py` (the loader and generation threads, the queue, the lock around
calls), `_requests.py` (requests and errors in mistral.rs's terms), `_settings.py`, `workarounds.py` (each bug and
what contains it).
"""

from __future__ import annotations

from llmclient.backends.mistralrs._engine import MistralRsEngine
from llmclient.backends.mistralrs._settings import IN_SITU_QUANTS, MistralRsSettings, in_situ_quant
from llmclient.backends.mistralrs.workarounds import mistralrs_installed, require_mistralrs

__all__ = ["IN_SITU_QUANTS", "MistralRsEngine", "MistralRsSettings", "in_situ_quant", "mistralrs_installed",
           "require_mistralrs"]  # fmt: skip
