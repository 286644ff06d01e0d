"""The catalogue of known models: `list()` them, `get()` one by name or alias.

The data is in `_catalogue.py`; each entry names its GGUF repo, the file of each quant, the license, parameter
count, trained context and where those facts were checked; an embedding model's entry also has its `Embedding`
facts (pooling, dimension, length, query and document prefixes).
"""

from __future__ import annotations

import builtins
import difflib

from llmclient.errors import UnknownPresetError
from llmclient.presets._catalogue import PRESETS
from llmclient.presets._preset import Embedding, Preset

__all__ = ["PRESETS", "Embedding", "Preset", "get", "list", "names"]

_BY_NAME = {p.name: p for p in PRESETS}
_BY_ALIAS = {a: p for p in PRESETS for a in p.aliases}


def list() -> builtins.list[Preset]:  # noqa: A001 - the catalogue's own name for it, as issue and README say
    """Every catalogued model, in catalogue order (by family, then size)."""
    return builtins.list(PRESETS)


def names() -> builtins.list[str]:
    """Every preset name and alias a builder accepts."""
    return sorted([*_BY_NAME, *_BY_ALIAS])


def get(name: str) -> Preset:
    """The preset called `name` (or aliased so); `UnknownPresetError` lists close matches."""
    key = name.strip().lower().replace("-", "_").replace(".", "_")
    found = _BY_NAME.get(key) or _BY_ALIAS.get(key)
    if found is not None:
        return found
    close = difflib.get_close_matches(key, names(), n=5, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownPresetError(
        f"no preset called {name!r}.{hint} See llmclient.presets.list(), or load any GGUF repo with "
        ".hf('owner/repo') or a file with .local(path)."
    )
