"""Moved to `llmclient._hub.progress`; this path stays while llmclient/builder.py imports `Progress` from it."""

from __future__ import annotations

from llmclient._hub.progress import Progress

__all__ = ["Progress"]
