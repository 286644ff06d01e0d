"""Chat messages in OpenAI's shape, tools and the calls the model makes to them, chat templates, and the tool-call
formats of model families (how each writes a call, and how to read one back).

Shared by every engine: the client checks messages and tools here; a local engine renders its template and reads
its model's calls with these; a remote one maps a server's calls to the same `ToolCall`.
"""

from __future__ import annotations

from llmclient.chat.messages import Message, Messages, MessageToolCall, ToolCallFunction, normalize_messages
from llmclient.chat.template import HERMES_TEMPLATE, ChatTemplate
from llmclient.chat.tools import Tool, ToolCall, ToolChoice, ToolLike, tool_from, tools_from

__all__ = [
    "HERMES_TEMPLATE",
    "ChatTemplate",
    "Message",
    "MessageToolCall",
    "Messages",
    "Tool",
    "ToolCall",
    "ToolCallFunction",
    "ToolChoice",
    "ToolLike",
    "normalize_messages",
    "tool_from",
    "tools_from",
]
