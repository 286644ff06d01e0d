"""The typed-answer methods of `SyncLlmClient`: each runs the async client's on its private event loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio.from_thread

from llmclient.workflows import Decision

__all__ = ["SyncWorkflows"]


class SyncWorkflows:
    """`boolean`, `integer`, `choice`, `extract` and `decide`, blocking (a mixin of `SyncLlmClient`, which gives
    `_portal`, `client` and `_reasoning`, a thread-local)."""

    _portal: anyio.from_thread.BlockingPortal
    client: Any
    _reasoning: Any

    def _typed(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A typed-answer method of the async client, blocking; its reasoning kept for this thread."""

        async def call() -> tuple[Any, str | None]:
            value = await getattr(self.client, method)(*args, **kwargs)
            return value, self.client.last_reasoning  # read in the task that made it

        value, self._reasoning.text = self._portal.call(call)
        return value

    @property
    def last_reasoning(self) -> str | None:
        """The reasoning of this thread's last call with `reason=True`."""
        return getattr(self._reasoning, "text", None)

    def boolean(self, question: str, **kwargs: Any) -> bool | None:
        """`LlmClient.boolean`, blocking."""
        return self._typed("boolean", question, **kwargs)  # type: ignore[no-any-return]

    def integer(self, question: str, **kwargs: Any) -> int | None:
        """`LlmClient.integer`, blocking."""
        return self._typed("integer", question, **kwargs)  # type: ignore[no-any-return]

    def choice(self, question: str, options: Sequence[str], **kwargs: Any) -> str | None:
        """`LlmClient.choice`, blocking."""
        return self._typed("choice", question, options, **kwargs)  # type: ignore[no-any-return]

    def extract(self, instruction: str, text: str, **kwargs: Any) -> list[Any]:
        """`LlmClient.extract`, blocking."""
        return self._typed("extract", instruction, text, **kwargs)  # type: ignore[no-any-return]

    def decide(self, question: str, options: Sequence[str] | type, **kwargs: Any) -> Decision:
        """`LlmClient.decide`, blocking."""
        return self._typed("decide", question, options, **kwargs)  # type: ignore[no-any-return]
