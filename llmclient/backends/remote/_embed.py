"""`RemoteEngine.embed`: a server's `/v1/embeddings`, over the replicas.

The texts go in requests of `CHUNK` at once, side by side, each to a replica with room (least busy first); the
vectors come back in the texts' order. A request is retried as a chat request is before its first token
(connection errors, 429/503 after their `Retry-After`, 5xx, on another replica where there is one): an
embedding request has no output to lose.

A server that does not embed (llama-server started without `--embeddings`, a server whose model is not an
embedding model) answers 501 or 404: `UnsupportedFeatureError` with the server's words and how to fix it. A text
too long for the server is `ContextOverflowError` naming which text: the refused request is halved until the
one text is found. The server decides the limit and does not truncate (llama-server refuses a text longer than
its physical batch, `-ub`), so `truncate=True` cannot cut it here; the error says so.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from llmclient.backends import EmbedRequest
from llmclient.backends.remote._status import Retry, not_sent, raise_for_status
from llmclient.backends.remote._wire import error_message
from llmclient.errors import (
    ClientClosedError,
    ContextOverflowError,
    LlmClientError,
    MalformedResponseError,
    ServerUnavailableError,
    UnsupportedFeatureError,
)

if TYPE_CHECKING:
    import numpy
    from numpy.typing import NDArray

    from llmclient.backends import Embedded
    from llmclient.backends.remote._replicas import Replica
    from llmclient.backends.remote._routing import Dispatcher
    from llmclient.backends.remote._settings import RemoteSettings

__all__ = ["CHUNK", "RemoteEmbeddings"]

CHUNK = 64
"""Texts per request: several requests can go to several replicas at once, and a refused one is halved cheaply."""

_SIZES = re.compile(r"input \((\d+) tokens\).*?batch size: (\d+)")
_Part = tuple["NDArray[numpy.float32]", int]  # vectors, prompt tokens


class _TooLong(Exception):
    """The server refused a request because a text in it is too long."""

    def __init__(self, url: str, said: str, tokens: int, limit: int) -> None:
        super().__init__(said)
        self.url, self.said, self.tokens, self.limit = url, said, tokens, limit


class RemoteEmbeddings:
    """The embedding half of `RemoteEngine`."""

    if TYPE_CHECKING:
        model: str
        settings: RemoteSettings
        _http: httpx.AsyncClient
        _headers: dict[str, str]
        _dispatch: Dispatcher
        _closed: bool
        _running: int

        def _left(self) -> None: ...

        async def _back(self, replica: Replica) -> bool: ...

        def _backoff(self, attempt: int, wait: float | None, tried: list[Replica], error: LlmClientError) -> float: ...

    async def embed(self, request: EmbedRequest) -> Embedded:
        """The vectors of `request.texts`, in order, from the servers' `/v1/embeddings` (see the module)."""
        import numpy

        from llmclient.backends import Embedded

        if self._closed:
            raise ClientClosedError("the remote engine is closed; create a new client with init()")
        texts = request.texts
        starts = range(0, len(texts), CHUNK)
        parts: dict[int, _Part] = {}
        errors: list[tuple[int, LlmClientError]] = []
        self._running += 1
        try:
            async with anyio.create_task_group() as tg:

                async def part(start: int) -> None:
                    try:
                        parts[start] = await self._embedded(texts[start : start + CHUNK], start, len(texts))
                    except LlmClientError as error:
                        errors.append((start, error))
                        tg.cancel_scope.cancel()  # the call fails: the other requests need not finish

                for start in starts:
                    tg.start_soon(part, start)
        finally:
            self._left()
        if errors:
            raise min(errors, key=lambda e: e[0])[1]
        if not parts:
            return Embedded(numpy.zeros((0, 0), numpy.float32), 0)
        dimensions = {parts[s][0].shape[1] for s in starts}
        if len(dimensions) != 1:
            raise MalformedResponseError(
                f"the servers answered vectors of different sizes {sorted(dimensions)}; do all replicas serve the "
                "same model?",
                url=", ".join(sorted({r.url for r in self._dispatch.replicas})),
            )
        vectors = numpy.concatenate([parts[s][0] for s in starts])
        return Embedded(vectors, sum(parts[s][1] for s in starts))

    async def _embedded(self, texts: Sequence[str], offset: int, total: int) -> _Part:
        """`texts`' vectors; a refusal for length is halved until the text to blame is found."""
        import numpy

        try:
            return await self._request(texts)
        except _TooLong as too_long:
            if len(texts) == 1:
                raise ContextOverflowError(
                    f"text {offset} of {total} is too long for {too_long.url} ({too_long.said}); shorten or split "
                    "it, or start the server with a larger batch and context (llama-server: -b and -ub as large as "
                    "the longest text, and -c). The server does not truncate, so truncate=True cannot cut it here",
                    prompt_tokens=too_long.tokens,
                    n_ctx=too_long.limit,
                ) from None
        half = len(texts) // 2
        first = await self._embedded(texts[:half], offset, total)
        second = await self._embedded(texts[half:], offset + half, total)
        if first[0].shape[1] != second[0].shape[1]:
            raise MalformedResponseError(
                "the servers answered vectors of different sizes; do all replicas serve the same model?",
                url=", ".join(sorted({r.url for r in self._dispatch.replicas})),
            )
        return numpy.concatenate([first[0], second[0]]), first[1] + second[1]

    async def _request(self, texts: Sequence[str]) -> _Part:
        """One request for `texts`, retried before it is answered as a chat request is."""
        body: dict[str, Any] = {"model": self.model, "input": list(texts), "encoding_format": "float"}
        tried: list[Replica] = []
        error: LlmClientError | None = None
        for attempt in range(self.settings.retries + 1):
            replica = await self._dispatch.acquire(None, tried)
            tried.append(replica)
            wait: float | None = None
            try:
                if replica.check_health and not await self._back(replica):
                    error = ServerUnavailableError(f"{replica.url} is not healthy yet", url=replica.url)
                    continue
                return await self._post(replica, body, len(texts))
            except Retry as retry:
                error, wait = retry.error, retry.wait
            finally:
                self._dispatch.release(replica)
            if attempt < self.settings.retries:
                await anyio.sleep(self._backoff(attempt, wait, tried, error))
        assert error is not None
        raise error

    async def _post(self, replica: Replica, body: dict[str, Any], count: int) -> _Part:
        url = replica.url
        timeout = httpx.Timeout(self.settings.connect_timeout, read=self.settings.first_token_timeout, write=30.0,
                                pool=None)  # fmt: skip
        replica.sent()
        try:
            response = await self._http.post(url + "/v1/embeddings", json=body, headers=self._headers, timeout=timeout)
        except httpx.TransportError as failure:
            raise not_sent(replica, failure, "did not answer an embeddings request in time") from None
        if response.status_code != 200:
            _refused(url, response)
            await raise_for_status(replica, response)
        replica.answered(None)  # healthy; an embedding's latency is not a first token's, so not in that average
        return _vectors(response, url, count)


def _refused(url: str, response: httpx.Response) -> None:
    """Raise what a refusal means for embeddings: the server does not embed, or a text is too long."""
    status, said = response.status_code, error_message(response.content)
    if status in (501, 404):
        raise UnsupportedFeatureError(
            f"{url} does not serve embeddings ({status}: {said}); start llama-server with --embeddings (and "
            "--pooling for a chat model), or point the client at a server whose model is an embedding model",
            feature="embeddings",
        )
    error: Any = None
    with contextlib.suppress(ValueError, AttributeError):
        error = response.json().get("error")
    if isinstance(error, dict) and error.get("type") == "exceed_context_size_error":
        raise _TooLong(url, said, int(error.get("n_prompt_tokens") or 0), int(error.get("n_ctx") or 0))
    if status == 500 and "too large to process" in said:  # llama-server: a text longer than its physical batch
        sizes = _SIZES.search(said)  # "input (601 tokens) is too large ... (current batch size: 512)"
        raise _TooLong(url, said, *(int(n) for n in sizes.groups()) if sizes else (0, 0))


def _vectors(response: httpx.Response, url: str, count: int) -> _Part:
    """The vectors of an OpenAI embeddings answer, in input order (floats or base64 float32)."""
    import numpy

    try:
        answer = response.json()
        rows = sorted(answer["data"], key=lambda row: int(row["index"]))
        if [int(row["index"]) for row in rows] != list(range(count)):
            raise ValueError(f"{len(rows)} vectors for {count} texts")
        vectors = [
            numpy.frombuffer(base64.b64decode(row["embedding"]), "<f4")
            if isinstance(row["embedding"], str)
            else numpy.asarray(row["embedding"], numpy.float32)
            for row in rows
        ]
        if len({v.shape for v in vectors}) != 1 or vectors[0].ndim != 1 or not vectors[0].size:
            raise ValueError("vectors of different or empty shapes")
        usage = answer.get("usage") or {}
        return numpy.stack(vectors).astype(numpy.float32, copy=False), int(usage.get("prompt_tokens") or 0)
    except (ValueError, KeyError, TypeError, AttributeError) as failure:
        raise MalformedResponseError(
            f"{url}/v1/embeddings answered what is not an OpenAI embeddings response ({failure}); is it an "
            "OpenAI-compatible server?",
            url=url,
        ) from None
