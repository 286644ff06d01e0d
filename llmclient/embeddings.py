"""Embeddings: `await client.embed(texts)` turns texts into vectors, over any engine whose capabilities include them.

The client checks the texts once (strings, none empty), puts the model's query or document prefix before each
where `kind` asks (`nomic-embed-text` expects `search_query: `, EmbeddingGemma `task: search result | query: `),
hands the engine an `EmbedRequest` and normalizes what comes back (unit length, so a dot product is the cosine).
The llama.cpp engine packs the texts, many per `llama_decode`, on the process's decode thread, where they take
turns with every other model's steps: a chat model and an embedding model in one process share one compute team.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio

from llmclient.backends import EmbeddingEngine, EmbedRequest
from llmclient.errors import InvalidRequestError, InvalidRequestTypeError, UnsupportedFeatureError

if TYPE_CHECKING:  # numpy loads after llama.cpp's native libraries, never before (see backends/llama_cpp/_model.py)
    import numpy
    from numpy.typing import NDArray

    from llmclient.backends import Capabilities, Engine

__all__ = ["EmbedKind", "Embeddings", "SyncEmbeddings"]

EmbedKind = Literal["query", "document"]
"""What a text is, for models trained with a prefix for each: the question searched with, or a text searched in."""
_KINDS = ("query", "document")


def _texts(texts: object) -> tuple[str, ...]:
    """`texts` as a tuple of non-empty strings, or the error saying which one is not."""
    if isinstance(texts, str):
        texts = (texts,)
    if not isinstance(texts, Sequence) or isinstance(texts, bytes | bytearray):
        raise InvalidRequestTypeError(
            f"texts must be a string or a list of strings, got {type(texts).__name__}; decode bytes first"
        )
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidRequestTypeError(f"text {index} is {type(text).__name__}, not a string; pass strings only")
        if not text:
            raise InvalidRequestError(f"text {index} is empty; drop empty texts, or give each some text")
    return tuple(texts)


def _normalized(vectors: NDArray[numpy.float32]) -> NDArray[numpy.float32]:
    """Each row scaled to unit length (a row of zeros stays zeros)."""
    import numpy

    norms = numpy.linalg.norm(vectors, axis=1, keepdims=True)
    return cast("NDArray[numpy.float32]", vectors / numpy.where(norms > 0, norms, 1.0).astype(numpy.float32))


class Embeddings:
    """The embedding methods of `LlmClient` (over any engine whose capabilities include embeddings)."""

    if TYPE_CHECKING:
        engine: Engine
        embed_prefixes: Mapping[str, str]
        _in_flight: int

        @property
        def capabilities(self) -> Capabilities: ...

        def _admit(self) -> None: ...

    async def embed(
        self,
        texts: str | Sequence[str],
        *,
        normalize: bool = True,
        truncate: bool = True,
        kind: EmbedKind | None = None,
        timeout: float | None = None,
    ) -> list[list[float]]:
        """One vector per text, in order: `await client.embed(["first text", "second"])` (a single string gives a
        list of one).

        `normalize`: unit length, so that a dot product is the cosine similarity. `truncate`: a text longer than
        the model takes is cut to its first tokens; False raises `ContextOverflowError` naming it. `kind`:
        `"query"` or `"document"` puts the model's prefix for it first (the preset's, or the builder's
        `.embed_prefixes(...)`; models trained without prefixes get none). `timeout`: seconds, queue included;
        past it, `TimeoutError`. An empty list gives an empty list; an empty text raises `InvalidRequestError`."""
        request = self._embed_request(texts, truncate, kind)
        if not request.texts:
            return []
        vectors: list[list[float]] = (await self._embedded(request, normalize, timeout)).tolist()
        return vectors

    async def embed_array(
        self,
        texts: str | Sequence[str],
        *,
        normalize: bool = True,
        truncate: bool = True,
        kind: EmbedKind | None = None,
        timeout: float | None = None,
    ) -> NDArray[numpy.float32]:
        """`embed` as a float32 numpy array of shape (texts, dimension): 4 bytes a number instead of a Python
        float's 32, and no conversion, for vectors bound for numpy, faiss or a vector database."""
        request = self._embed_request(texts, truncate, kind)
        if not request.texts:
            import numpy

            return numpy.zeros((0, 0), numpy.float32)
        return await self._embedded(request, normalize, timeout)

    def _embed_request(self, texts: object, truncate: bool, kind: str | None) -> EmbedRequest:
        if not self.capabilities.embeddings:
            raise UnsupportedFeatureError(
                f"this client's engine ({type(self.engine).__name__}) does not embed: its model is a chat model "
                "without pooling. With llama.cpp, opt in with the builder's .pooling('mean') (or 'last', 'cls'), "
                "or load an embedding model (e.g. .nomic_embed_text_v1_5())",
                feature="embeddings",
            )
        if kind is not None and kind not in _KINDS:
            raise InvalidRequestError(f"kind must be 'query', 'document' or None, got {kind!r}")
        checked = _texts(texts)
        prefix = self.embed_prefixes.get(kind, "") if kind is not None else ""
        return EmbedRequest(tuple(prefix + text for text in checked) if prefix else checked, truncate)

    async def _embedded(self, request: EmbedRequest, normalize: bool, timeout: float | None) -> NDArray[numpy.float32]:
        self._admit()
        self._in_flight += 1
        try:
            scope = anyio.fail_after(timeout) if timeout is not None else contextlib.nullcontext()
            with scope:
                result = await cast(EmbeddingEngine, self.engine).embed(request)
        finally:
            self._in_flight -= 1
        return _normalized(result.vectors) if normalize else result.vectors


class SyncEmbeddings:
    """The embedding methods of `SyncLlmClient`: the async client's, blocking."""

    if TYPE_CHECKING:
        client: Embeddings
        _portal: anyio.from_thread.BlockingPortal

    def embed(
        self,
        texts: str | Sequence[str],
        *,
        normalize: bool = True,
        truncate: bool = True,
        kind: EmbedKind | None = None,
        timeout: float | None = None,
    ) -> list[list[float]]:
        """`LlmClient.embed`, blocking: one vector per text, in order."""
        options: dict[str, Any] = {"normalize": normalize, "truncate": truncate, "kind": kind, "timeout": timeout}
        return self._portal.call(lambda: self.client.embed(texts, **options))

    def embed_array(
        self,
        texts: str | Sequence[str],
        *,
        normalize: bool = True,
        truncate: bool = True,
        kind: EmbedKind | None = None,
        timeout: float | None = None,
    ) -> NDArray[numpy.float32]:
        """`LlmClient.embed_array`, blocking: a float32 array of shape (texts, dimension)."""
        options: dict[str, Any] = {"normalize": normalize, "truncate": truncate, "kind": kind, "timeout": timeout}
        return self._portal.call(lambda: self.client.embed_array(texts, **options))
