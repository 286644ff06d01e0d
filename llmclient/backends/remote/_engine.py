"""`RemoteEngine`: the `Engine` protocol over OpenAI-compatible servers, one or many replicas.

Every request is streamed (with usage), whatever the caller asked: `chat` is built on the stream. Leaving a
stream, cancelling or a timeout closes the HTTP response at once, shielded from the cancellation, and a closed
connection is how llama-server, vLLM and SGLang learn to stop generating (a request left unread, or a
non-streamed one given up, keeps its slot busy). A request is retried only while none of its text has reached the
caller, on another replica where there is one: connection errors, 429/503 (after their `Retry-After`), 500, 502,
504, and a stream that ended before its first token. After text has gone out, an error is a
`StreamInterruptedError` carrying that text.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import anyio
import httpx

from llmclient.backends import Capabilities, GenerateRequest, Piece
from llmclient.backends.remote._embed import RemoteEmbeddings
from llmclient.backends.remote._probe import Probed, chosen_model, healthy, probe
from llmclient.backends.remote._replicas import Replica, ReplicaStats
from llmclient.backends.remote._routing import Dispatcher, affinity_key
from llmclient.backends.remote._settings import RemoteSettings
from llmclient.backends.remote._sse import sse_data
from llmclient.backends.remote._status import Retry, not_sent, raise_for_status
from llmclient.backends.remote._wire import ToolCallParts, parse_chunk, request_body
from llmclient.chat.tools import ToolCall
from llmclient.errors import (
    ClientClosedError,
    LlmClientError,
    MalformedResponseError,
    RemoteError,
    RemoteTimeoutError,
    ServerUnavailableError,
    StreamInterruptedError,
)
from llmclient.types import Timings, Usage

__all__ = ["RemoteEngine"]

logger = logging.getLogger("llmclient")

_BACKOFF_FIRST, _BACKOFF_MAX = 0.25, 4.0
_CLOSE_WAIT = 1.0
"""Seconds a response's close may take (it runs shielded from the caller's cancellation)."""


class RemoteEngine(RemoteEmbeddings):
    """OpenAI-compatible servers as one engine: `await RemoteEngine.connect(["http://a:8080", "http://b:8080"])`;
    it chats and streams, and embeds through the servers' `/v1/embeddings` (`embed`).

    Usually made by `LlmClient.remote(...).init()`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        replicas: Sequence[Replica],
        model: str,
        settings: RemoteSettings,
        headers: dict[str, str],
        *,
        tools: bool = True,
    ) -> None:
        """Made by `connect`, which asks the servers first; `tools`: whether their chat templates take tools."""
        self._http = http
        self._replicas = list(replicas)
        self._dispatch = Dispatcher(self._replicas, settings.routing)
        self.model = model
        """The model name sent with every request."""
        self.settings = settings
        self._headers = headers
        self._closed = False
        self._running = 0
        self._idle = anyio.Event()
        capacities = [r.capacity for r in self._replicas]
        self._capabilities = Capabilities(
            structured_output=True,
            tools=tools,
            embeddings=True,  # asked of the servers: one that does not embed says so (UnsupportedFeatureError)
            parallel=None if None in capacities else sum(c for c in capacities if c is not None),
        )

    @classmethod
    async def connect(
        cls,
        urls: Sequence[str],
        *,
        model: str | None = None,
        api_key: str | None = None,
        settings: RemoteSettings | None = None,
    ) -> RemoteEngine:
        """An engine over the servers at `urls` (each a base URL without `/v1`): asks each for its models (and,
        routing, its slots); a server that cannot be reached starts cooled down, unless none can.

        `model`: the name to ask for (default: the one model the servers list). Raises `ServerUnavailableError`,
        `AuthenticationError`, `UnknownModelError`, `MalformedResponseError`."""
        settings = settings or RemoteSettings()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.connect_timeout, read=30.0, write=30.0, pool=None),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            follow_redirects=False,  # the key goes to the hosts given, nowhere a redirect points
            trust_env=False,  # and not through a proxy from the environment
        )
        try:
            props = settings.routing != "none"  # a gateway's /props would be one backend's
            answers: dict[str, Probed | RemoteError] = {}

            async def ask(url: str) -> None:
                try:
                    answers[url] = await probe(http, url, headers, props)
                except RemoteError as error:
                    answers[url] = error

            async with anyio.create_task_group() as tg:
                for url in urls:
                    tg.start_soon(ask, url)
            failures = [a for a in (answers[u] for u in urls) if isinstance(a, RemoteError)]
            for failure in failures:  # a refused key or a foreign API is the caller's to fix, on any replica
                if not isinstance(failure, ServerUnavailableError):
                    raise failure
            probed = [a for a in (answers[u] for u in urls) if isinstance(a, Probed)]
            if not probed:
                raise failures[0]
            chosen = chosen_model(probed, model)
            known = [p.total_slots for p in probed if p.total_slots is not None]
            replicas = []
            for url in urls:
                answer = answers[url]
                total = answer.total_slots if isinstance(answer, Probed) else min(known, default=None)
                total = settings.max_in_flight or total
                replica = Replica(url, total)
                if isinstance(answer, ServerUnavailableError):
                    logger.warning("%s; it is cooled down and tried again later", answer)
                    replica.cool_down(time.monotonic())
                replicas.append(replica)
        except BaseException:
            await http.aclose()
            raise
        tools = all(p.tools is not False for p in probed)  # llama-server says when its template has no tools
        return cls(http, replicas, chosen, settings, headers, tools=tools)

    @property
    def capabilities(self) -> Capabilities:
        """JSON Schema output; tools (passed to the server) unless a server says its template takes none (a
        request with tools is then refused, not silently answered without them); embeddings (a server without
        them refuses the first `embed`: `UnsupportedFeatureError`); `parallel`: the replicas' capacities
        together."""
        return self._capabilities

    def stats(self) -> tuple[ReplicaStats, ...]:
        """Each replica's state and counters now, in the order the URLs were given."""
        now = time.monotonic()
        return tuple(r.stats(now) for r in self._replicas)

    @property
    def waiting(self) -> int:
        """Requests waiting here for a replica with room."""
        return self._dispatch.waiting

    async def generate(self, request: GenerateRequest) -> AsyncIterator[Piece]:
        """The answer streamed from a replica; see the module's docstring for retries and errors."""
        if self._closed:
            raise ClientClosedError("the remote engine is closed; create a new client with init()")
        path, body = request_body(request, self.model, self.settings.extra_body)
        key = affinity_key(request) if self.settings.routing == "affinity" else None
        began = time.perf_counter()
        tried: list[Replica] = []
        error: LlmClientError | None = None
        self._running += 1
        try:
            for attempt in range(self.settings.retries + 1):
                asked = time.perf_counter()
                replica = await self._dispatch.acquire(key, tried)
                tried.append(replica)
                wait: float | None = None
                held = True
                try:
                    if replica.check_health and not await self._back(replica):
                        error = ServerUnavailableError(f"{replica.url} is not healthy yet", url=replica.url)
                        continue
                    queued = time.perf_counter() - asked
                    final: Piece | None = None
                    async with contextlib.aclosing(self._attempt(replica, path, body, began, queued)) as pieces:
                        async for piece in pieces:
                            if piece.finish_reason is not None:
                                final = piece
                                break
                            yield piece
                    assert final is not None
                    held = False  # the response is closed: its place is free before the caller sees the end
                    self._dispatch.release(replica)
                    yield final
                    return
                except Retry as retry:
                    error, wait = retry.error, retry.wait
                finally:
                    if held:
                        self._dispatch.release(replica)
                if attempt < self.settings.retries:
                    await anyio.sleep(self._backoff(attempt, wait, tried, error))
            assert error is not None
            raise error
        finally:
            self._left()

    def _left(self) -> None:
        """A request ended; the last to end after `aclose` lets the connections close."""
        self._running -= 1
        if self._closed and not self._running:
            self._idle.set()

    def _backoff(self, attempt: int, wait: float | None, tried: list[Replica], error: LlmClientError) -> float:
        """Jittered exponential backoff (0.25 s doubling to 4 s); a `Retry-After` is honoured where no other
        replica can take the retry, and one past `max_retry_wait` gives up."""
        delay = random.uniform(0.5, 1.0) * min(_BACKOFF_MAX, _BACKOFF_FIRST * 2.0**attempt)
        now = time.monotonic()
        elsewhere = any(r.usable(now) and r not in tried for r in self._replicas)
        if wait is not None and not elsewhere:
            if wait > self.settings.max_retry_wait:
                raise error
            delay = max(delay, wait)
        logger.info("%s; retrying in %.2f s (attempt %d of %d)", error, delay, attempt + 2, self.settings.retries + 1)
        return delay

    async def _back(self, replica: Replica) -> bool:
        """After a cool-down: whether `replica` answers `/health` again (if not, a longer cool-down)."""
        if await healthy(self._http, replica.url, self._headers):
            replica.healthy()
            self._dispatch.notify()
            return True
        replica.cool_down(time.monotonic())
        return False

    async def _attempt(
        self, replica: Replica, path: str, body: dict[str, Any], began: float, queued: float
    ) -> AsyncGenerator[Piece, None]:
        """One try on `replica`: its pieces, or `Retry` before any text, or a typed error."""
        url = replica.url
        sent = time.perf_counter()
        deadline = sent + self.settings.first_token_timeout
        texts: list[str] = []
        first: float | None = None
        response: httpx.Response | None = None
        events: AsyncGenerator[str, None] | None = None
        try:
            # no read timeout of httpx's: the first-token and idle timeouts below are this stream's
            timeout = httpx.Timeout(self.settings.connect_timeout, read=None, write=30.0, pool=None)
            request = self._http.build_request("POST", url + path, json=body, headers=self._headers, timeout=timeout)
            replica.sent()
            try:
                with anyio.fail_after(self.settings.first_token_timeout):
                    response = await self._http.send(request, stream=True)
            except httpx.TransportError as failure:
                raise not_sent(replica, failure, "did not accept a connection in time") from None
            if response.status_code != 200:
                await raise_for_status(replica, response)
            kind = response.headers.get("content-type", "")
            if not kind.startswith("text/event-stream"):
                raise MalformedResponseError(
                    f"{url}{path} answered {kind or 'no content type'}, not an event stream; does the server "
                    "stream OpenAI chunks?",
                    url=url,
                )
            events = sse_data(response.aiter_lines(), url)
            reason: str | None = None
            usage: Usage | None = None
            rate: float | None = None
            calls = ToolCallParts()
            while True:
                wait = max(0.0, deadline - time.perf_counter()) if first is None else self.settings.idle_timeout
                try:
                    with anyio.fail_after(wait):
                        payload = await events.__anext__()
                except StopAsyncIteration:
                    break
                chunk = parse_chunk(payload, url)
                usage = chunk.usage or usage
                rate = chunk.tokens_per_second or rate
                reason = chunk.finish_reason or reason
                calls.add(chunk.tool_calls)
                if chunk.text:
                    first = first if first is not None else time.perf_counter()
                    texts.append(chunk.text)
                    yield Piece(chunk.text)
                if self._closed:
                    reason = "cancelled"
                    break
            if reason is None:
                truncated = MalformedResponseError(f"{url}'s stream ended without a finish reason", url=url)
                if not texts:  # nothing reached the caller: an interrupted server (llama_cpp.server's), try again
                    replica.failed_request(time.monotonic())
                    raise Retry(truncated)
                raise truncated
            end = time.perf_counter()
            replica.answered(None if first is None else first - sent)
            decode = end - (first or end)
            produced = usage.completion_tokens if usage is not None else len(texts)
            rate = rate or ((produced - 1) / decode if decode > 0 and produced > 1 else 0.0)
            timings = Timings(queued, (first or end) - sent, end - began, rate)
            # the server's calls in our types; the client checks each against its tool's schema
            tool_calls = tuple(ToolCall.from_dict(call) for call in calls.done())
            yield Piece("", reason, usage or Usage(0, produced), timings, tool_calls)
        except Retry:
            raise
        except (LlmClientError, httpx.TransportError, TimeoutError) as failure:
            raise self._failed(replica, failure, texts, first is None)  # noqa: B904 (the cause is set there)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_WAIT):
                if events is not None:
                    await events.aclose()
                if response is not None:
                    await response.aclose()  # the abort signal: the server stops generating

    def _failed(self, replica: Replica, failure: Exception, texts: list[str], before_first: bool) -> Exception:
        """What to raise for `failure` during a stream: a retry before any text went out, else an error carrying
        the text."""
        url, original = replica.url, failure
        if isinstance(failure, TimeoutError) and not isinstance(failure, LlmClientError):
            what = "its first token" if before_first else f"{self.settings.idle_timeout:g} s without an event"
            failure = RemoteTimeoutError(f"{url} timed out waiting for {what}", url=url)
        elif isinstance(failure, httpx.TransportError):
            failure = ServerUnavailableError(f"{url} dropped the stream ({type(failure).__name__})", url=url)
            replica.suspect()
        if failure is not original:
            failure.__cause__ = original
        if isinstance(failure, ServerUnavailableError | RemoteTimeoutError | MalformedResponseError):
            replica.failed_request(time.monotonic())
        if texts:
            interrupted = StreamInterruptedError(
                f"{failure}; the answer broke off after {len(''.join(texts))} characters (not retried: they had "
                "reached the caller)",
                text="".join(texts),
                url=url,
            )
            interrupted.__cause__ = failure
            return interrupted
        return Retry(failure) if isinstance(failure, ServerUnavailableError) else failure

    async def aclose(self) -> None:
        """Close: requests waiting for a replica fail with `ClientClosedError`, running ones end as `cancelled`
        at their next token (waiting a second at most), then the connections close."""
        if self._closed:
            return
        self._closed = True
        self._dispatch.closed = True
        self._dispatch.notify()
        if self._running:
            with anyio.move_on_after(_CLOSE_WAIT):
                await self._idle.wait()
        await self._http.aclose()
