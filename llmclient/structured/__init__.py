"""Structured output: answers held to a JSON Schema, a type, a regex, a list of choices or a grammar.

`client.chat(..., schema=Person)` gives a `ChatResult` whose `.parsed` is a `Person`; local engines enforce the
constraint token by token (llguidance), so the text always parses unless the answer was cut short.
"""

from __future__ import annotations

from llmclient.structured._constraint import JSON_OPTIONS, Constraint, ConstraintOptions, constraint_from
from llmclient.structured._types import schema_for_type

__all__ = ["JSON_OPTIONS", "Constraint", "ConstraintOptions", "constraint_from", "schema_for_type"]
