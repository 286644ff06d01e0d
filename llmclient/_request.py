"""A request as the client checks it: messages, sampling with the client's defaults, constraint and tools, refused
where the engine's capabilities lack what it asks for, before any work (`build_request`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmclient.backends import Engine, GenerateRequest
from llmclient.chat.messages import Messages, normalize_messages
from llmclient.chat.tools import tool_choice_of, tools_from
from llmclient.errors import InvalidRequestError, InvalidRequestTypeError, UnsupportedFeatureError
from llmclient.sampling import Sampling
from llmclient.structured import ConstraintOptions, constraint_from

__all__ = ["Tools", "build_request"]

Tools = Sequence[Any] | None
"""What `tools=` takes: a list of `ToolLike` (Python functions, OpenAI tool dicts) or `Tool`s."""
_CONSTRAINTS = frozenset(ConstraintOptions.__annotations__)


def build_request(
    engine: Engine,
    defaults: Sampling,
    system_prompt: str | None,
    messages: Messages | None,
    prompt: str | None,
    tools: Tools,
    asked: dict[str, Any],
) -> GenerateRequest:
    """The `GenerateRequest` for a call's arguments (`asked`: its keyword options), checked once: a bad value raises
    `InvalidRequestError`/`InvalidRequestTypeError`, what `engine` cannot do `UnsupportedFeatureError`."""
    capabilities, name = engine.capabilities, type(engine).__name__
    shape = {k: asked.pop(k) for k in list(asked) if k in _CONSTRAINTS}
    tool_choice, parallel = asked.pop("tool_choice", None), asked.pop("parallel_tool_calls", True)
    sampling = defaults.merged(Sampling.of(asked))
    chat = normalize_messages(messages, system_prompt) if messages is not None else None
    if not capabilities.generation:
        raise UnsupportedFeatureError(
            f"this client's model ({name}) is an embedding model: it turns texts into vectors (client.embed) and "
            "generates no text; load a chat model for chat",
            feature="generation",
        )
    if prompt is not None and not prompt:
        raise InvalidRequestError("the prompt is empty: give some text to continue")
    if tools and not capabilities.tools:
        raise UnsupportedFeatureError(
            f"this client's engine ({name}) does not take tools; leave `tools` out or use an engine whose "
            "capabilities include tools",
            feature="tools",
        )
    if sampling.settings().get("seed") is not None and not capabilities.seed:
        raise UnsupportedFeatureError(
            f"this client's engine ({name}) has no per-request seed; leave `seed` out (temperature 0 is "
            "reproducible without one) or use the llama.cpp engine",
            feature="seed",
        )
    made = tools_from(tools)
    mode, _ = tool_choice_of(tool_choice, made)
    constraint = constraint_from(**shape)
    if constraint is not None and made and mode != "none":
        raise InvalidRequestError(
            f"give either tools or {', '.join(shape)}: a tool's arguments are already held to its schema"
        )
    if constraint is not None and not capabilities.structured_output:
        raise UnsupportedFeatureError(
            f"this client's engine ({name}) does not enforce structured output; leave out {', '.join(shape)} or "
            "use an engine whose capabilities include structured_output",
            feature="structured_output",
        )
    defs = tuple(t.definition() for t in made)
    if not isinstance(parallel, bool):
        raise InvalidRequestTypeError(f"parallel_tool_calls must be True or False, got {parallel!r}")
    return GenerateRequest(chat, prompt, sampling, defs, constraint, tool_choice if made else None, parallel)
