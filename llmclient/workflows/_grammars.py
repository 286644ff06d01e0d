"""The grammars of the typed answers: each one's answer, optionally after a bounded reasoning in the same turn.

Every answer is a whole-string alternative or an inline JSON Schema, so what is parsed back is exactly one of the
allowed values: an option is matched whole (never "the first option the reply contains"), an integer is held to
its range by value (`%json {"minimum", "maximum"}`), and "none of these" is an alternative of its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

__all__ = [
    "ANSWER",
    "NONE",
    "REASONING",
    "answer_of",
    "choice_answer",
    "extract_grammar",
    "integer_answer",
    "with_reasoning",
]

#: What the reasoning cascade writes before its answer, and the word that starts the answer.
REASONING = "Reasoning: "
ANSWER = "\nAnswer: "
#: The "none of these" answer, where `allow_none=True`.
NONE = "None of the above."
#: Tokens of thinking out loud before the answer: a few sentences, then the answer is forced.
REASONING_TOKENS = 120


def _literal(text: str) -> str:
    """`text` as a Lark string literal (JSON's escapes are Lark's)."""
    return json.dumps(text, ensure_ascii=False)


def choice_answer(options: Sequence[str], allow_none: bool) -> str:
    """A Lark rule body: exactly one of `options`, whole (and `NONE` where allowed)."""
    alternatives = [*options, NONE] if allow_none else list(options)
    return " | ".join(_literal(o) for o in alternatives)


def integer_answer(low: int | None, high: int | None, allow_none: bool) -> str:
    """A Lark rule body: an integer from `low` to `high` by value (and `NONE` where allowed)."""
    schema: dict[str, object] = {"type": "integer"}
    if low is not None:
        schema["minimum"] = low
    if high is not None:
        schema["maximum"] = high
    body = f"%json {json.dumps(schema)}"
    return f"{body} | {_literal(NONE)}" if allow_none else body


def with_reasoning(answer: str, reason: bool, lead: bool = False) -> str:
    """The whole grammar: `answer` (after `Answer: ` where `lead`), or a bounded reasoning then `answer` in the same
    assistant turn."""
    if not reason:
        head = f"{_literal(ANSWER.lstrip())} " if lead else ""
        return f"start: {head}answer\nanswer: {answer}\n"
    return (
        f"start: {_literal(REASONING)} thinking {_literal(ANSWER)} answer\n"
        f"thinking[max_tokens={REASONING_TOKENS}]: /[^\\n]+/\n"
        f"answer: {answer}\n"
    )


def answer_of(text: str, reason: bool) -> tuple[str, str]:
    """(the reasoning, the answer) of a reply made by `with_reasoning`'s grammar."""
    if not reason:
        return "", text.removeprefix(ANSWER.lstrip())  # where `lead` put it
    head, _, answer = text.rpartition(ANSWER)
    return head.removeprefix(REASONING), answer


def extract_grammar(text: str, max_items: int | None) -> str:
    """Items, one per line after `- `, each a span of `text` that starts and ends on a word boundary; or `(none)`."""
    more = "*" if max_items is None else f"{{0,{max(0, max_items - 1)}}}"
    items = f'"- " span ("\\n- " span){more}'
    body = f'{items} | "none"' if max_items != 0 else '"none"'
    return f"start: {body}\nspan: %regex {json.dumps({'substring_words': text})}\n"
