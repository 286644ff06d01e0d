"""What a server's non-200 answer means: a retry (429, 503, 5xx) or a typed error saying what to do."""

from __future__ import annotations

import json
import time

import anyio
import httpx

from llmclient.backends.remote._probe import auth_error, unreachable
from llmclient.backends.remote._replicas import Replica
from llmclient.backends.remote._wire import error_message, retry_after
from llmclient.errors import (
    ContextOverflowError,
    LlmClientError,
    RemoteTimeoutError,
    ServerError,
    ServerUnavailableError,
)

__all__ = ["Retry", "not_sent", "raise_for_status"]


class Retry(Exception):
    """An attempt failed before any text went out: try again (`error` is raised if no attempt is left); `wait`: the
    seconds the server asked for (`Retry-After`)."""

    def __init__(self, error: LlmClientError, wait: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


def not_sent(replica: Replica, failure: httpx.TransportError, late: str) -> Retry:
    """A request `replica` did not take (refused, dropped, or `late`: what it did not do in time), noted on it (a
    refused connection cools it down) and to be retried."""
    refused = isinstance(failure, httpx.ConnectTimeout | httpx.ConnectError)
    replica.failed_request(time.monotonic(), refused=refused)
    if isinstance(failure, httpx.TimeoutException):
        return Retry(RemoteTimeoutError(f"{replica.url} {late}", url=replica.url))
    return Retry(unreachable(replica.url, failure))


async def raise_for_status(replica: Replica, response: httpx.Response) -> None:
    """Raise what `response` (not a 200) means, and note it on `replica`: `Retry` for 429/503 (resting the
    replica for its `Retry-After`) and 5xx; `AuthenticationError` for 401/403; `ContextOverflowError` for
    llama-server's prompt past the context; `ServerError` for the rest (a redirect too: never followed)."""
    url, status = replica.url, response.status_code
    with anyio.move_on_after(5.0):
        await response.aread()
    body = response.content if response.is_stream_consumed else b""
    said = error_message(body)
    now = time.monotonic()
    if status in (401, 403):
        raise auth_error(url, status, body)
    if status in (429, 503):
        wait = retry_after(response.headers.get("retry-after"))
        replica.busy(now, wait)
        raise Retry(ServerUnavailableError(f"{url} is busy ({status}: {said})", url=url, retry_after=wait), wait)
    if status >= 500:
        replica.failed_request(now)
        raise Retry(ServerError(f"{url} failed ({status}: {said})", url=url, status=status, body=said))
    if 300 <= status < 400:
        where = response.headers.get("location", "?")
        raise ServerError(
            f"{url} redirected to {where}; redirects are not followed (the API key goes only to the hosts given): "
            "give the final URL",
            url=url,
            status=status,
        )
    _overflow(url, status, body)
    hint = " (is the base URL right, and the model one the server lists?)" if status == 404 else ""
    raise ServerError(f"{url} refused the request ({status}: {said}){hint}", url=url, status=status, body=said)


def _overflow(url: str, status: int, body: bytes) -> None:
    """llama-server's 400 for a prompt past the context, as `ContextOverflowError`."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return
    if status == 400 and isinstance(error, dict) and error.get("type") == "exceed_context_size_error":
        raise ContextOverflowError(
            f"{url}: {error.get('message')}; shorten the conversation or start the server with a larger context",
            prompt_tokens=int(error.get("n_prompt_tokens") or 0),
            n_ctx=int(error.get("n_ctx") or 0),
        )
