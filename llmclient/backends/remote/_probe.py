"""What a remote engine learns from its servers before the first request: the model they serve and their slots.

`GET /v1/models` answers on every OpenAI-compatible server (vLLM, SGLang, llama-server, Ollama); `GET /props` is
llama-server's, and its `total_slots` is how many requests it runs at once (more would queue silently inside
it, hidden from the router). `GET /health` tells a replica back from a cool-down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from llmclient.backends.remote._wire import error_message
from llmclient.errors import (
    AuthenticationError,
    InvalidSettingError,
    MalformedResponseError,
    ServerError,
    ServerUnavailableError,
    UnknownModelError,
)

__all__ = ["Probed", "auth_error", "chosen_model", "healthy", "probe", "unreachable"]


@dataclass(frozen=True)
class Probed:
    """One server's answers at start-up."""

    url: str
    models: tuple[str, ...]
    total_slots: int | None
    tools: bool | None = None
    """Whether its chat template renders tools (llama-server's `chat_template_caps`); None: it does not say."""


def auth_error(url: str, status: int, body: bytes | str) -> AuthenticationError:
    """The error for a 401/403 answer, saying how to give a key."""
    return AuthenticationError(
        f"{url} refused the API key ({status}: {error_message(body)}); pass api_key= to LlmClient.remote() or set "
        "LLMCLIENT_API_KEY to the key the server was started with",
        url=url,
        status=status,
    )


def unreachable(url: str, error: Exception) -> ServerUnavailableError:
    """The error for a connection that failed, saying what to check."""
    reason = type(error).__name__ if not str(error) else f"{type(error).__name__}: {error}"
    return ServerUnavailableError(
        f"could not reach {url} ({reason}); is the server running and listening on that address and port?", url=url
    )


async def probe(http: httpx.AsyncClient, url: str, headers: dict[str, str], props: bool) -> Probed:
    """`url`'s served models and, when `props`, what its `/props` says: `total_slots` and whether its template
    takes tools (None where it has no such endpoint)."""
    try:
        response = await http.get(f"{url}/v1/models", headers=headers)
    except httpx.TransportError as error:
        raise unreachable(url, error) from error
    if response.status_code in (401, 403):
        raise auth_error(url, response.status_code, response.content)
    if response.status_code != 200:
        hint = " (is the base URL the server's root, without a path after the port or /v1?)"
        raise ServerError(
            f"{url}/v1/models answered {response.status_code}: {error_message(response.content)}"
            + (hint if response.status_code == 404 else ""),
            url=url,
            status=response.status_code,
            body=response.text[:4096],
        )
    try:
        listed = response.json()["data"]
        models = tuple(str(m["id"]) for m in listed)
    except (ValueError, KeyError, TypeError):
        raise MalformedResponseError(
            f"{url}/v1/models is not an OpenAI model list: {response.text[:120]!r}; is this an OpenAI-compatible "
            "server?",
            url=url,
        ) from None
    total: int | None = None
    tools: bool | None = None
    if props:
        try:
            answer = await http.get(f"{url}/props", headers=headers)
            said = answer.json() if answer.status_code == 200 else {}
            value = said.get("total_slots")
            total = value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
            caps = said.get("chat_template_caps")
            tools = caps.get("supports_tools") if isinstance(caps, dict) else None
        except (httpx.TransportError, ValueError, AttributeError):
            total = tools = None
    return Probed(url, models, total, tools if isinstance(tools, bool) else None)


async def healthy(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> bool:
    """Whether `url` answers `/health` with 200 (or, where it has no `/health`, `/v1/models`)."""
    try:
        response = await http.get(f"{url}/health", headers=headers, timeout=5.0)
        if response.status_code == 404:
            response = await http.get(f"{url}/v1/models", headers=headers, timeout=5.0)
    except httpx.TransportError:
        return False
    return response.status_code == 200


def chosen_model(probed: Sequence[Probed], model: str | None) -> str:
    """The model to ask for: `model` if a server lists it (else `UnknownModelError` listing theirs), or the one
    model they list."""
    listed = sorted({m for p in probed for m in p.models})
    if model is not None:
        if model not in listed:
            raise UnknownModelError(
                f"no server serves {model!r}; they serve: {', '.join(listed) or '(nothing)'}; pass one of those as "
                "model=",
                model=model,
                available=listed,
            )
        return model
    if len(listed) != 1:
        raise InvalidSettingError(
            f"the servers list {len(listed)} models ({', '.join(listed) or 'none'}); choose one with "
            "LlmClient.remote(url, model=...)"
        )
    return listed[0]
