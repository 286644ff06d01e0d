"""`Message`: one chat message in OpenAI's shape, with the tool-call fields local and remote engines need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from typing_extensions import NotRequired, Required

from llmclient.errors import InvalidRequestError, InvalidRequestTypeError

__all__ = ["Message", "MessageToolCall", "Messages", "ToolCallFunction", "normalize_messages"]

ROLES = frozenset({"system", "user", "assistant", "tool"})


class ToolCallFunction(TypedDict):
    """The function a tool call names, and its arguments as a JSON string (OpenAI's shape)."""

    name: str
    arguments: str


class MessageToolCall(TypedDict):
    """One tool call of an assistant message, as OpenAI writes it (`ToolCall.to_dict()` makes one)."""

    id: str
    type: Literal["function"]
    function: ToolCallFunction


class Message(TypedDict, total=False):
    """A chat message: `{"role": "user", "content": "Hi"}`; an assistant's may carry `tool_calls` instead of
    content, and a `tool` message answers the call named by `tool_call_id`."""

    role: Required[Literal["system", "user", "assistant", "tool"]]
    content: str | None
    name: NotRequired[str]
    tool_calls: NotRequired[list[MessageToolCall]]
    tool_call_id: NotRequired[str]


Messages = str | Sequence[Message] | Sequence[Mapping[str, Any]]
"""What `chat` takes: a user's text, or a list of messages."""


def normalize_messages(messages: Messages, system_prompt: str | None = None) -> tuple[Message, ...]:
    """`messages` as a tuple of messages (a string becomes one user message), each checked and copied whole,
    with `system_prompt` put first when the conversation has no system message of its own."""
    if isinstance(messages, str):
        items: list[Message] = [{"role": "user", "content": messages}]
    elif isinstance(messages, Mapping):
        raise InvalidRequestTypeError(
            "messages must be a string or a list of {'role', 'content'} dicts; wrap a single one in [ ]"
        )
    else:
        items = [_checked(i, message) for i, message in enumerate(messages)]
    if not items:
        raise InvalidRequestError("no messages: give a prompt string or a list of {'role', 'content'} messages")
    if system_prompt is not None and items[0]["role"] != "system":
        items.insert(0, {"role": "system", "content": system_prompt})
    return tuple(items)


def _checked(i: int, message: Mapping[str, Any]) -> Message:
    if not isinstance(message, Mapping):
        raise InvalidRequestTypeError(f"message {i} is a {type(message).__name__}; each must be a dict")
    role, content = message.get("role"), message.get("content")
    if role not in ROLES:
        raise InvalidRequestError(f"message {i} has role {role!r}; use one of {', '.join(sorted(ROLES))}")
    calls = message.get("tool_calls")
    if content is None and not (role == "assistant" and calls):
        raise InvalidRequestError(f"message {i} ({role}) has no content; give its text as 'content'")
    if content is not None and not isinstance(content, str):
        raise InvalidRequestTypeError(f"message {i} has content of type {type(content).__name__}; it must be a str")
    if calls is not None:
        if role != "assistant" or not isinstance(calls, list):
            raise InvalidRequestError(f"message {i}: only an assistant message has tool_calls, as a list")
        for j, call in enumerate(calls):
            function = call.get("function") if isinstance(call, Mapping) else None
            if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
                raise InvalidRequestError(
                    f"message {i}, tool call {j}: give {{'id', 'type': 'function', 'function': {{'name', "
                    "'arguments'}}}"
                )
    copied: Any = dict(message)  # every key the caller gave reaches the engine (a template may use it)
    return copied  # type: ignore[no-any-return]
