"""Chat messages in OpenAI's shape, checked once and passed on whole to the engine."""

from __future__ import annotations

from llmclient.chat.messages import Message, Messages, ToolCall, ToolCallFunction, normalize_messages

__all__ = ["Message", "Messages", "ToolCall", "ToolCallFunction", "normalize_messages"]
