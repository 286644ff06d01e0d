"""`ChatTemplate`: a model's own Jinja chat template, rendered in jinja2's sandbox the way Hugging Face renders it.

The template sees what transformers gives it: `messages`, `tools` (OpenAI tool dicts), `add_generation_prompt`,
`bos_token`, `eos_token`, `raise_exception`, `strftime_now`, and a `tojson` that keeps non-ASCII text as is. A
template cannot reach Python's internals from the sandbox (it renders text a GGUF file brought).
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llmclient.errors import InvalidRequestError, InvalidSettingError

__all__ = ["HERMES_TEMPLATE", "ChatTemplate", "template_text"]


def template_text(text_or_path: str | os.PathLike[str]) -> str:
    """A template's text: `text_or_path` itself when it holds Jinja markup, else the file it names."""
    if isinstance(text_or_path, str) and ("{{" in text_or_path or "{%" in text_or_path):
        return text_or_path
    if not isinstance(text_or_path, str | os.PathLike):
        raise InvalidSettingError(f"chat_template takes a template's text or a file path, got {text_or_path!r}")
    path = Path(text_or_path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidSettingError(
            f"chat_template: {str(text_or_path)[:80]!r} is neither Jinja markup ({{{{ ... }}}}, {{% ... %}}) nor a "
            f"readable file ({error.strerror})"
        ) from None
    if "{{" not in text and "{%" not in text:
        raise InvalidSettingError(f"chat_template: {path} holds no Jinja markup; is it a chat template?")
    return text


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:  # fmt: skip
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise(message: str) -> None:
    raise ValueError(message)


def _strftime_now(format: str) -> str:  # noqa: A002 (the name templates call it with)
    return datetime.datetime.now().strftime(format)


class ChatTemplate:
    """A Jinja chat template, compiled once; `render` is safe from any thread."""

    def __init__(self, text: str, *, bos_token: str = "", eos_token: str = "") -> None:
        """Compile `text` (`InvalidSettingError` if it is not valid Jinja)."""
        import jinja2
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        class _Generation(jinja2.ext.Extension):  # transformers' {% generation %} marks: rendered as their content
            tags = {"generation"}  # noqa: RUF012 (jinja2's own attribute)

            def parse(self, parser: Any) -> Any:
                next(parser.stream)
                return parser.parse_statements(("name:endgeneration",), drop_needle=True)

        self.text = text
        self.bos_token, self.eos_token = bos_token, eos_token
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols, _Generation]
        )
        env.filters["tojson"] = _tojson
        env.globals.update(raise_exception=_raise, strftime_now=_strftime_now)
        try:
            self._template = env.from_string(text)
        except jinja2.TemplateSyntaxError as error:
            raise InvalidSettingError(f"the chat template is not valid Jinja (line {error.lineno}: {error})") from None

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        """The prompt for `messages` (and `tools`, where given), ending with the assistant's turn opened;
        `InvalidRequestError` where the template refuses them (its own `raise_exception`, a field it lacks)."""
        try:
            return self._template.render(
                messages=[dict(m) for m in messages],
                tools=[dict(t) for t in tools] if tools else None,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except Exception as error:
            raise InvalidRequestError(
                f"this model's chat template cannot render these messages ({type(error).__name__}: {error}); "
                "check the roles and contents it expects, or set another template with .chat_template(...)"
            ) from error


#: A ChatML template that knows tools the way Hermes and Qwen 2.5 write them (`<tool_call>` JSON, results in
#: `<tool_response>`): for a ChatML model whose own template has no tools, e.g. `.chat_template(HERMES_TEMPLATE)`.
HERMES_TEMPLATE = """\
{%- set system = messages[0].content if messages and messages[0].role == 'system' else none -%}
{%- if tools -%}
<|im_start|>system
{{ system if system is not none else 'You are a helpful assistant.' }}

# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML \
tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
{% elif system is not none -%}
<|im_start|>system
{{ system }}<|im_end|>
{% endif -%}
{%- for message in messages -%}
{%- if message.role == 'user' or (message.role == 'assistant' and not message.tool_calls) -%}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% elif message.role == 'assistant' -%}
<|im_start|>assistant
{% if message.content %}{{ message.content }}
{% endif -%}
{%- for call in message.tool_calls -%}
<tool_call>
{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}
</tool_call>
{% endfor -%}
<|im_end|>
{% elif message.role == 'tool' -%}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' -%}
<|im_start|>user
{% endif -%}
<tool_response>
{{ message.content }}
</tool_response>
{% if loop.last or messages[loop.index0 + 1].role != 'tool' -%}
<|im_end|>
{% endif -%}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}
"""
