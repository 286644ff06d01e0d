"""`RemoteConfig`: the builder's configuration for OpenAI-compatible servers, then `load()` an engine.

`LlmClient.remote(url | [urls], model=..., api_key=...)` gives the `RemoteBuilder` (client.py), which adds
`init()` and `init_sync()`. The sampling defaults, system prompt and `max_queue` are every builder's
(`ClientSettings`); what is here is how to reach the servers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from typing_extensions import Self

from llmclient._client_settings import ClientSettings
from llmclient.backends.remote._engine import RemoteEngine
from llmclient.backends.remote._routing import ROUTINGS, Routing
from llmclient.backends.remote._settings import RemoteSettings
from llmclient.constants import remote_api_key
from llmclient.errors import InvalidSettingError

__all__ = ["RemoteConfig", "base_url"]

#: Body fields the engine itself sets on every request; `extra_body` may not replace them.
_RESERVED = frozenset({"model", "messages", "prompt", "stream", "stream_options"})


def base_url(url: str) -> str:
    """`url` as a base URL: `http(s)://host[:port][/path]` without a trailing `/` or `/v1` (the OpenAI SDK's
    form is taken too); `InvalidSettingError` for anything else."""
    if not isinstance(url, str):
        raise InvalidSettingError(f"a server URL must be a string such as 'http://127.0.0.1:8080', got {url!r}")
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise InvalidSettingError(f"{url!r} is not a URL ({error}); give e.g. 'http://127.0.0.1:8080'") from None
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.query or parsed.fragment:
        raise InvalidSettingError(
            f"{url!r} is not a server's base URL; give http:// or https://, a host and an optional port, e.g. "
            "'http://127.0.0.1:8080'"
        )
    text = str(parsed).rstrip("/")
    return text[: -len("/v1")] if text.endswith("/v1") else text


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidSettingError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RemoteConfig(ClientSettings):
    """Configuration for OpenAI-compatible servers; immutable (each method returns a changed copy)."""

    _urls: tuple[str, ...] = ()
    _model: str | None = None
    _api_key: str | None = field(default=None, repr=False)
    _settings: RemoteSettings = field(default_factory=RemoteSettings)

    @classmethod
    def to(cls, urls: str | Sequence[str], *, model: str | None = None, api_key: str | None = None) -> Self:
        """A configuration for the servers at `urls` (checked now, contacted at `init`)."""
        if not isinstance(urls, str | Sequence):
            raise InvalidSettingError(f"give a server URL or a list of them ('http://127.0.0.1:8080'), not {urls!r}")
        given = [urls] if isinstance(urls, str) else list(urls)
        if not given:
            raise InvalidSettingError("give at least one server URL, e.g. LlmClient.remote('http://127.0.0.1:8080')")
        checked = tuple(base_url(u) for u in given)
        if len(set(checked)) != len(checked):
            raise InvalidSettingError(f"a server URL is given twice: {', '.join(checked)}")
        if model is not None and (not isinstance(model, str) or not model):
            raise InvalidSettingError(f"model must be a non-empty string or None, got {model!r}")
        return cls(_urls=checked, _model=model, _api_key=api_key)

    def _set(self, **changes: Any) -> Self:
        return replace(self, _settings=replace(self._settings, **changes))

    def routing(self, routing: Routing) -> Self:
        """How requests are spread over the replicas: `least_busy` (default), `affinity` (a conversation's turns
        on the replica that caches its prefix; see `session_key`), or `none` (one URL: a gateway that routes)."""
        if routing not in ROUTINGS:
            raise InvalidSettingError(f"routing must be one of {', '.join(ROUTINGS)}, got {routing!r}")
        return self._set(routing=routing)

    def max_in_flight(self, n: int) -> Self:
        """Requests each replica is given at once (default: its `/props` `total_slots` where the server reports
        it, as llama-server does; else no cap); more wait here, first come first served."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidSettingError(f"max_in_flight must be a whole number >= 1, got {n!r}")
        return self._set(max_in_flight=n)

    def timeouts(
        self, *, connect: float | None = None, first_token: float | None = None, idle: float | None = None
    ) -> Self:
        """Seconds to connect (default 3), from sending to the first token (120, the server's queue and the
        prompt included) and between two events once text flows (60); each past it fails the attempt."""
        changes: dict[str, float] = {}
        for name, value in (("connect_timeout", connect), ("first_token_timeout", first_token)):
            if value is not None:
                changes[name] = _positive(name, value)
        if idle is not None:
            changes["idle_timeout"] = _positive("idle_timeout", idle)
        return self._set(**changes)

    def retries(self, n: int) -> Self:
        """Attempts after the first (default 2), each on another replica where there is one, only while no text
        has reached the caller."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidSettingError(f"retries must be a whole number >= 0, got {n!r}")
        return self._set(retries=n)

    def extra_body(self, fields: Mapping[str, Any]) -> Self:
        """Fields added to every request body, for what a server takes beyond OpenAI's (llama-server's
        `cache_prompt`, vLLM's `ignore_eos`); a request's own settings win over them."""
        reserved = sorted(_RESERVED & set(fields))
        if reserved:
            raise InvalidSettingError(f"extra_body may not set {', '.join(reserved)}: the engine sets them")
        return self._set(extra_body=dict(fields))

    async def load(self) -> RemoteEngine:
        """Ask the servers for their models (and slots) and return the engine over them."""
        if not self._urls:
            raise InvalidSettingError("no server given: start with LlmClient.remote('http://127.0.0.1:8080')")
        if self._settings.routing == "none" and len(self._urls) > 1:
            raise InvalidSettingError(
                "routing='none' is for one URL (a gateway that routes itself); give one URL, or another routing"
            )
        api_key = self._api_key if self._api_key is not None else remote_api_key()
        return await RemoteEngine.connect(self._urls, model=self._model, api_key=api_key, settings=self._settings)
