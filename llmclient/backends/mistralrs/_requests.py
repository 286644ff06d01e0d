"""A `GenerateRequest` as mistral.rs's request objects, and its answers' finish reasons and errors in our terms."""

from __future__ import annotations

import json
import re
from typing import Any

from llmclient.backends import GenerateRequest
from llmclient.errors import GenerationError, LlmClientError, SchemaError

__all__ = ["as_error", "chat_request", "completion_request", "finish_reason"]

#: mistral.rs's finish reasons, in llmclient's words (others pass through).
_FINISH = {"stop": "stop", "length": "length", "canceled": "cancelled", "cancelled": "cancelled"}


def _sampling(request: GenerateRequest, max_tokens: int | None) -> dict[str, Any]:
    """The sampling fields mistral.rs takes (there is no per-request seed: `Capabilities.seed` is False)."""
    given = request.sampling.settings()
    top_k = given.get("top_k")
    options: dict[str, Any] = {
        "model": "default",
        "max_tokens": max_tokens,
        "temperature": given.get("temperature"),
        "top_p": given.get("top_p"),
        "top_k": top_k or None,  # ours: 0 is no limit
        "min_p": given.get("min_p"),
        "repetition_penalty": given.get("repeat_penalty"),
        "stop_seqs": list(given["stop"]) if given.get("stop") else None,
    }
    if request.constraint is not None:
        # the very grammar the llama.cpp engine enforces, not mistral.rs's own translation of a schema or regex: the
        # same constraint gives the same language on both engines (mistral.rs bundles llguidance). A schema's is
        # llguidance's JSON top-level grammar (with our JSON layout); a regex's, choices' and grammar's is Lark text
        grammar = request.constraint.grammar
        options.update(grammar=grammar, grammar_type="llguidance" if grammar.lstrip().startswith("{") else "lark")
    return options


def chat_request(mistralrs: Any, request: GenerateRequest, max_tokens: int | None) -> Any:
    """A streamed `ChatCompletionRequest` (a list of messages: a string would be templated twice)."""
    assert request.messages is not None
    messages = [{"role": m["role"], "content": m.get("content") or ""} for m in request.messages]
    options = _sampling(request, max_tokens)
    if request.tools:
        options.update(tool_schemas=[json.dumps(t) for t in request.tools], tool_choice=mistralrs.ToolChoice.Auto)
    return mistralrs.ChatCompletionRequest(messages=messages, stream=True, **options)


def completion_request(mistralrs: Any, request: GenerateRequest, max_tokens: int | None) -> Any:
    """A `CompletionRequest` for a raw prompt (mistral.rs streams chats only)."""
    return mistralrs.CompletionRequest(prompt=request.prompt, **_sampling(request, max_tokens))


def finish_reason(reason: str | None) -> str:
    """mistral.rs's finish reason in llmclient's words."""
    return _FINISH.get(reason or "stop", reason or "stop")


def as_error(error: BaseException) -> BaseException:
    """What mistral.rs raised, as an error of our tree (the cause kept)."""
    if isinstance(error, LlmClientError):
        return error
    text = str(error)
    if isinstance(error, ValueError) and re.match(r"invalid grammar", text, re.IGNORECASE):
        failure: BaseException = SchemaError(f"mistral.rs cannot enforce this constraint: {text}")
    else:
        failure = GenerationError(f"the model failed while answering: {type(error).__name__}: {text[:500]}")
    failure.__cause__ = error
    return failure
