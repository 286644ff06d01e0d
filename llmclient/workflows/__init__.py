"""Typed answers, the Python heir of `llm_client`'s workflows: `boolean`, `integer`, `choice`, `extract`, `decide`.

Each is one constrained request (see `llmclient.structured`), so the answer is always of its type: a `bool`, an
`int` within its bounds by value, exactly one of the options matched whole, spans that occur verbatim in the text.
`reason=True` first lets the model think out loud for a few sentences (bounded), then writes the constrained answer
in the same assistant turn; the reasoning of the current task's last call is `client.last_reasoning`. `decide`
asks the same question `votes` times at once, each with its own seed and temperature, through the batch.
"""

from __future__ import annotations

import contextvars
import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from typing_extensions import Unpack

from llmclient.errors import IncompleteOutputError, InvalidRequestError, InvalidRequestTypeError
from llmclient.sampling import SamplingOptions
from llmclient.structured import schema_for_type
from llmclient.structured._types import value_as
from llmclient.workflows._grammars import (
    NONE,
    answer_of,
    choice_answer,
    extract_grammar,
    integer_answer,
    with_reasoning,
)

if TYPE_CHECKING:
    from llmclient.types import ChatResult

__all__ = ["Decision", "Workflows"]

_last_reasoning: contextvars.ContextVar[str | None] = contextvars.ContextVar("llmclient_last_reasoning", default=None)
_THINK = " First think it through in a few sentences after 'Reasoning:', then give the answer after 'Answer:'."


@dataclass(frozen=True)
class Decision:
    """The outcome of `decide`: the option most votes chose, and how sure that is."""

    choice: Any
    """The winning option (None if every vote said none of them)."""
    votes: dict[Any, int]
    """Votes per option that got any (None for "none of these")."""
    confidence: float
    """The winner's share of the votes, 0 to 1 (a tie or a split is a low confidence, never a retry)."""
    reasons: tuple[str, ...]
    """Each vote's reasoning, in the order the votes were asked."""


class Workflows:
    """The typed-answer methods of `LlmClient` (over any engine whose capabilities include structured output)."""

    @property
    def last_reasoning(self) -> str | None:
        """The reasoning of this task's last call with `reason=True` (each task sees its own; None before any)."""
        return _last_reasoning.get()

    async def _answer(
        self,
        prompt: str,
        answer: str,
        reason: bool,
        timeout: float | None,
        options: SamplingOptions,
        lead: bool = False,
    ) -> str:
        client: Any = self  # an LlmClient: its chat
        result: ChatResult = await client.chat(
            prompt, grammar=with_reasoning(answer, reason, lead), timeout=timeout, **options
        )
        reasoning, text = answer_of(result.text, reason)
        if result.finish_reason != "stop":
            raise IncompleteOutputError(
                f"the answer ended ({result.finish_reason}) before it was given; raise max_tokens",
                text=result.text,
                finish_reason=result.finish_reason,
            )
        if reason:
            _last_reasoning.set(reasoning)
        return text

    async def boolean(
        self,
        question: str,
        *,
        context: str | None = None,
        reason: bool = False,
        allow_none: bool = False,
        timeout: float | None = None,
        **options: Unpack[SamplingOptions],
    ) -> bool | None:
        """Yes (True) or no (False); None only with `allow_none=True`, where the model says it cannot tell."""
        instruction = "Answer yes or no." + (f" If it cannot be told, answer {NONE}" if allow_none else "")
        text = await self._answer(
            _prompt(question, context, instruction, reason), choice_answer(["yes", "no"], allow_none), reason,
            timeout, options,
        )  # fmt: skip
        return None if text == NONE else text == "yes"

    async def integer(
        self,
        question: str,
        *,
        min: int | None = None,  # noqa: A002 (the names the caller reads)
        max: int | None = None,  # noqa: A002
        context: str | None = None,
        reason: bool = False,
        allow_none: bool = False,
        timeout: float | None = None,
        **options: Unpack[SamplingOptions],
    ) -> int | None:
        """A whole number from `min` to `max` (held to them by value, not by digits); None only with `allow_none`."""
        if min is not None and max is not None and min > max:
            raise InvalidRequestError(f"min ({min}) is above max ({max})")
        bounds = f" from {min} to {max}" if min is not None and max is not None else ""
        instruction = f"Answer with a whole number{bounds}." + (
            f" If it cannot be told, answer {NONE}" if allow_none else ""
        )
        text = await self._answer(
            _prompt(question, context, instruction, reason), integer_answer(min, max, allow_none), reason, timeout,
            options, lead=True,  # bare, SmolLM2 wrote a dog's legs as "12"; after "Answer: ", as "4"
        )  # fmt: skip
        return None if text == NONE else int(text)

    async def choice(
        self,
        question: str,
        options: Sequence[str],
        *,
        context: str | None = None,
        reason: bool = False,
        allow_none: bool = False,
        timeout: float | None = None,
        **sampling: Unpack[SamplingOptions],
    ) -> str | None:
        """Exactly one of `options`, matched whole whatever their order or overlap; None only with `allow_none`."""
        listed = _options(options)
        instruction = (
            "Answer with exactly one of: "
            + "; ".join(listed)
            + "."
            + (f" If none fits, answer {NONE}" if allow_none else "")
        )
        text = await self._answer(
            _prompt(question, context, instruction, reason), choice_answer(listed, allow_none), reason, timeout,
            sampling,
        )  # fmt: skip
        return None if text == NONE and NONE not in listed else text

    async def extract(
        self,
        instruction: str,
        text: str,
        *,
        item: Any = str,
        max_items: int | None = None,
        timeout: float | None = None,
        **options: Unpack[SamplingOptions],
    ) -> list[Any]:
        """What `instruction` asks for in `text`: for `item=str`, spans that occur verbatim in it (held to that while
        decoding), one item per line; for a schema or type, a list of such values."""
        if not isinstance(text, str) or not isinstance(instruction, str):
            raise InvalidRequestTypeError("extract(instruction, text): both must be strings")
        if max_items is not None and max_items < 0:
            raise InvalidRequestError(f"max_items must be >= 0, got {max_items}")
        client: Any = self
        if item is not str:
            # the list's own schema, so that a type's `$defs` sit at the root, where their `$ref`s point
            schema: dict[str, Any] = (
                {"type": "array", "items": item} if isinstance(item, dict) else schema_for_type(list[item])
            )
            if max_items is not None:
                schema["maxItems"] = max_items
            prompt = f"{instruction}\n\nText: {text}\nAnswer as a JSON list."
            result = await client.chat(prompt, schema=schema, timeout=timeout, **options)
            return list(result.parsed) if isinstance(item, dict) else value_as(list[item], result.parsed)
        if not text.strip():
            return []
        prompt = f'{instruction} One per line, each line starting with "- ".'
        prompt += f"\n\nText: {text}"
        result = await client.chat(prompt, grammar=extract_grammar(text, max_items), timeout=timeout, **options)
        if result.finish_reason != "stop" and not result.text.startswith("- "):
            return []
        spans = [] if result.text == "none" else result.text.removeprefix("- ").split("\n- ")
        return [s for s in spans if s and s in text]  # enforced while decoding; checked again, never trusted

    async def decide(
        self,
        question: str,
        options: Sequence[str] | type,
        *,
        votes: int = 5,
        context: str | None = None,
        timeout: float | None = None,
        **sampling: Unpack[SamplingOptions],
    ) -> Decision:
        """Ask `votes` times at once (each reasoning first, with its own seed and a rising temperature) and take the
        option most votes chose. `options`: strings, `bool`, or an Enum class."""
        if isinstance(votes, bool) or not isinstance(votes, int) or votes < 1:
            raise InvalidRequestError(f"votes must be a whole number >= 1, got {votes!r}")
        labels, values = _labelled(options)
        answers: list[tuple[str | None, str]] = [(None, "")] * votes

        async def vote(i: int) -> None:
            temperature = min(1.0, 0.3 + 0.1 * i)  # rising, so the votes explore rather than repeat one another
            # a vote reads its own reasoning in its own task: the context variable is per task
            asked: dict[str, Any] = {
                **sampling,
                "temperature": temperature,
                "seed": (sampling.get("seed") or 0) + i + 1,
            }
            text = await self.choice(question, labels, context=context, reason=True, timeout=timeout, **asked)
            answers[i] = (text, self.last_reasoning or "")

        async with anyio.create_task_group() as tg:
            for i in range(votes):
                tg.start_soon(vote, i)
        counts = Counter(values[a] if a is not None else None for a, _ in answers)
        order = {v: k for k, v in enumerate(values.values())}
        winner, top = min(counts.items(), key=lambda kv: (-kv[1], order.get(kv[0], len(order))))
        return Decision(winner, dict(counts), top / votes, tuple(r for _, r in answers))


def _prompt(question: str, context: str | None, instruction: str, reason: bool) -> str:
    if not isinstance(question, str):
        raise InvalidRequestTypeError(f"the question must be a string, got {type(question).__name__}")
    if not question.strip():
        raise InvalidRequestError("the question is empty: ask something")
    if context is not None and not isinstance(context, str):
        raise InvalidRequestTypeError(f"context must be a string, got {type(context).__name__}")
    parts = [f"Context:\n{context}"] if context else []
    return "\n\n".join([*parts, question, instruction + (_THINK if reason else "")])


def _options(options: Sequence[str]) -> list[str]:
    if isinstance(options, str) or not options or not all(isinstance(o, str) and o for o in options):
        raise InvalidRequestError("options must be a non-empty list of non-empty strings")
    if len(set(options)) != len(options):
        raise InvalidRequestError("options must be different from one another")
    return list(options)


def _labelled(options: Sequence[str] | type) -> tuple[list[str], dict[str, Any]]:
    """The options' labels for the model, and the value each label stands for."""
    if options is bool:
        return ["yes", "no"], {"yes": True, "no": False}
    if isinstance(options, type) and issubclass(options, enum.Enum):
        return [str(m.value) for m in options], {str(m.value): m for m in options}
    listed = _options(options)  # type: ignore[arg-type]
    return listed, {o: o for o in listed}
