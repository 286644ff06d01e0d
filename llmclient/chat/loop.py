"""The tool loop of `LlmClient` (`run_tools`), and the checks every tool call passes on its way to the caller.

`run_tools` asks the model, runs the Python functions it calls (an async one awaited, a sync one in a worker
thread, the calls of one turn side by side), appends each result as a `tool` message and asks again, until the
model answers in text or `max_rounds` turns have called tools (`ToolLoopError`, with the transcript).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import anyio

from llmclient.chat.messages import Messages, normalize_messages
from llmclient.chat.tools import Tool, ToolCall, ToolChoice, tools_from
from llmclient.errors import InvalidRequestError, ToolCallError, ToolExecutionError, ToolLoopError

if TYPE_CHECKING:
    from llmclient.types import ChatResult

__all__ = ["ToolLoop", "checked_call", "tool_call_delta"]


def checked_call(call: ToolCall, tools: Sequence[Tool]) -> ToolCall:
    """`call` if it names one of `tools` and its arguments match that tool's schema; else `ToolCallError`."""
    raw = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
    for tool in tools:
        if tool.name == call.name:
            return tool.checked(call, raw)
    known = ", ".join(t.name for t in tools)
    raise ToolCallError(f"the model called {call.name!r}, which is not among the tools ({known})", raw=raw)


def tool_call_delta(index: int, call: ToolCall) -> dict[str, Any]:
    """`call` as one OpenAI streaming delta (`choices[0].delta.tool_calls[i]`): its id, name and whole arguments."""
    return {"index": index, **call.to_dict()}


def tool_result_text(value: Any) -> str:
    """A tool's return value as the text the model reads: a string as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    if hasattr(value, "model_dump_json"):  # a pydantic model
        return str(value.model_dump_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


class ToolLoop:
    """`run_tools`: the model calling Python functions until it answers (a mixin of `LlmClient`)."""

    async def run_tools(
        self,
        messages: Messages,
        tools: Sequence[Any],
        *,
        max_rounds: int = 8,
        on_error: Literal["return", "raise"] = "return",
        tool_choice: ToolChoice | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> ChatResult:
        """The model's answer in text after it has called `tools` (Python functions, or `Tool`s made from them) as
        often as it wanted.

        Each round asks the model with the conversation so far; every call it makes is run (async functions
        awaited, sync ones in a worker thread) and its result appended as a `tool` message. `tool_choice` holds for
        the first round only (`"required"`: the model must call a tool first); later rounds are `auto`. A tool that
        raises gives the model `Error: ...` as its result, or with `on_error="raise"` ends the loop with
        `ToolExecutionError`. After `max_rounds` rounds that all called tools, `ToolLoopError` with the transcript.
        The result's `transcript` holds the whole conversation, the answer last. `timeout` and the other options
        apply to each round."""
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
            raise InvalidRequestError(f"max_rounds must be a whole number >= 1, got {max_rounds!r}")
        if on_error not in ("return", "raise"):
            raise InvalidRequestError(f"on_error must be 'return' or 'raise', got {on_error!r}")
        made = tools_from(tools)
        if not made:
            raise InvalidRequestError("run_tools needs tools: give a list of Python functions")
        for tool in made:
            if tool.function is None:
                raise InvalidRequestError(f"tool {tool.name} has no Python function to run; give the function itself")
        client: Any = self  # an LlmClient: its chat
        history: list[dict[str, Any]] = [dict(m) for m in normalize_messages(messages)]
        choice = tool_choice
        for _ in range(max_rounds):
            result: ChatResult = await client.chat(history, tools=made, tool_choice=choice, timeout=timeout, **options)
            choice = None
            history.append(result.message)
            if not result.tool_calls:
                return dataclasses.replace(result, transcript=tuple(history))
            outputs = await self._run_calls(result.tool_calls, {t.name: t for t in made}, on_error, history)
            for call, output in zip(result.tool_calls, outputs, strict=True):
                history.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": output})
        raise ToolLoopError(
            f"the model still called tools after {max_rounds} rounds; raise max_rounds, or see .messages for a model "
            "calling the same tool again and again",
            messages=history,
        )

    async def _run_calls(
        self, calls: Sequence[ToolCall], tools: Mapping[str, Tool], on_error: str, history: list[dict[str, Any]]
    ) -> list[str]:
        """Each call's result as text, the calls of one turn run side by side."""
        outputs = [""] * len(calls)
        failed: list[tuple[ToolCall, Exception]] = []

        async def run(i: int, call: ToolCall) -> None:
            tool = tools[call.name]
            assert tool.function is not None
            try:
                kwargs = tool.keyword_arguments(call.arguments)
                if inspect.iscoroutinefunction(tool.function):
                    value = await tool.function(**kwargs)
                else:
                    value = await anyio.to_thread.run_sync(functools.partial(tool.function, **kwargs))
                    if inspect.isawaitable(value):
                        value = await value
            except Exception as error:  # the model reads what went wrong (or the caller, with on_error="raise")
                failed.append((call, error))
                outputs[i] = f"Error: {type(error).__name__}: {error}"
                return
            outputs[i] = tool_result_text(value)

        async with anyio.create_task_group() as group:
            for i, call in enumerate(calls):
                group.start_soon(run, i, call)
        if failed and on_error == "raise":
            call, error = failed[0]
            raise ToolExecutionError(
                f"tool {call.name} raised {type(error).__name__}: {error}", call=call, messages=history
            ) from error
        return outputs
