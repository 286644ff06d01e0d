"""`RemoteSettings`: how a remote engine times out, retries, caps and routes (the builder's values)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmclient.backends.remote._routing import Routing

__all__ = ["RemoteSettings"]


@dataclass(frozen=True)
class RemoteSettings:
    """The remote engine's settings; the defaults suit llama-server, vLLM and SGLang on a local network."""

    connect_timeout: float = 3.0
    """Seconds to open a connection (a refused or timed-out one is retried on another replica)."""
    first_token_timeout: float = 120.0
    """Seconds from sending a request to its first token, the server's queue and the prompt's reading included
    (llama-server's keep-alive comments do not extend it)."""
    idle_timeout: float = 60.0
    """Seconds between two events of a stream, once text flows."""
    retries: int = 2
    """Attempts after the first, each on another replica where there is one, only before any text is out."""
    max_in_flight: int | None = None
    """Requests each replica is given at once; None: its `/props` `total_slots` (llama-server), else no cap."""
    routing: Routing = "least_busy"
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    """Fields added to every request body (server-specific ones such as `ignore_eos` or `cache_prompt`); the
    request's own values win."""
    max_retry_wait: float = 30.0
    """A `Retry-After` longer than this is not waited for: `ServerUnavailableError` at once."""
