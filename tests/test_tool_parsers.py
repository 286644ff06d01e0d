"""Tool calls read back from raw model text, per family, whole and streamed; the formats templates are detected as,
the messages each is given, sandboxed rendering, and tool schemas made from Python signatures.

The raw outputs are written the way each family writes calls (as its model card, chat template and llama.cpp's
tests show them), including what unconstrained models get wrong: arguments first, arguments as a JSON string,
`parameters` for `arguments`, a call without its closing tag, a call cut mid-stream, malformed JSON.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, Literal

import pydantic
import pytest

from llmclient import HERMES_TEMPLATE, InvalidRequestError, SchemaError, ToolCallError
from llmclient.chat import ChatTemplate, tool_from, tools_from
from llmclient.chat.formats import GENERIC, HERMES, LLAMA3, MISTRAL, detect_format, template_messages
from llmclient.chat.parsers import ToolCallReader, parse_tool_calls

PARIS = ("get_weather", {"city": "Paris", "unit": "celsius"})
TIME = ("get_time", {"zone": "Europe/Paris"})

#: (family, raw output, the text it shows, the calls it holds)
RECORDED: dict[str, tuple[str, str, str, list[tuple[str, dict[str, Any]]]]] = {
    "hermes-2-pro: arguments first": (
        "hermes",
        '<tool_call>\n{"arguments": {"city": "Paris", "unit": "celsius"}, "name": "get_weather"}\n</tool_call>',
        "",
        [PARIS],
    ),
    "qwen2.5: two calls in one turn": (
        "hermes",
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {"zone": "Europe/Paris"}}\n</tool_call>',
        "",
        [PARIS, TIME],
    ),
    "qwen2.5: text before the call": (
        "hermes",
        'Let me look that up.\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "Europe/Paris"}}\n'
        "</tool_call>\n",
        "Let me look that up.\n",
        [TIME],
    ),
    "qwen3: thinking, then the call": (
        "hermes",
        "<think>\nThe user wants the weather in Paris; get_weather takes a city.\n</think>\n\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>',
        "<think>\nThe user wants the weather in Paris; get_weather takes a city.\n</think>\n\n",
        [PARIS],
    ),
    "qwen3: no closing tag before the end of the turn": (
        "hermes",
        '<tool_call>\n{"name": "get_time", "arguments": {"zone": "Europe/Paris"}}\n',
        "",
        [TIME],
    ),
    "hermes: arguments as a JSON string": (
        "hermes",
        '<tool_call>\n{"name": "get_time", "arguments": "{\\"zone\\": \\"Europe/Paris\\"}"}\n</tool_call>',
        "",
        [TIME],
    ),
    "hermes: plain text with a stray angle bracket": ("hermes", "Use a < b, or <tool", "Use a < b, or <tool", []),
    "llama3.1: python tag": (
        "llama3",
        '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris", "unit": "celsius"}}',
        "",
        [PARIS],
    ),
    "llama3.2: a bare object, with a type key": (
        "llama3",
        '{"type": "function", "name": "get_time", "parameters": {"zone": "Europe/Paris"}}',
        "",
        [TIME],
    ),
    "llama3.2: two calls separated by a semicolon": (
        "llama3",
        '{"name": "get_weather", "parameters": {"city": "Paris", "unit": "celsius"}}; '
        '{"name": "get_time", "parameters": {"zone": "Europe/Paris"}}',
        "",
        [PARIS, TIME],
    ),
    "llama3.1: text": ("llama3", "The capital of France is Paris.", "The capital of France is Paris.", []),
    "mistral-nemo: a list with ids": (
        "mistral",
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}, "id": "a1B2c3D4e"}, '
        '{"name": "get_time", "arguments": {"zone": "Europe/Paris"}, "id": "f5G6h7I8j"}]',
        "",
        [PARIS, TIME],
    ),
    "mistral-7b-v0.3: a space after the marker": (
        "mistral",
        '[TOOL_CALLS] [{"name": "get_time", "arguments": {"zone": "Europe/Paris"}}]',
        "",
        [TIME],
    ),
    "mistral-small-3.2: name[ARGS]": (
        "mistral",
        '[TOOL_CALLS]get_time[ARGS]{"zone": "Europe/Paris"}',
        "",
        [TIME],
    ),
    "mistral: text": ("mistral", "Bonjour ! Comment puis-je aider ?", "Bonjour ! Comment puis-je aider ?", []),
    "generic: our own format": (
        "generic",
        'Checking.\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "Europe/Paris"}}\n</tool_call>',
        "Checking.\n",
        [TIME],
    ),
    "generic: llama.cpp's tool_call wrapper": (
        "generic",
        '{"tool_call": {"name": "get_time", "arguments": {"zone": "Europe/Paris"}}}',
        "",
        [TIME],
    ),
    "generic: llama.cpp's response wrapper": ("generic", '{"response": "It is noon."}', "It is noon.", []),
    "generic: a JSON answer is no call": (
        "generic",
        '{"city": "Paris"} is the JSON.',
        '{"city": "Paris"} is the JSON.',
        [],
    ),
    "generic: text opening with a brace": ("generic", "{braces} are fine", "{braces} are fine", []),
    "llama3.2: a JSON answer is no call": ("llama3", '{"answer": 4}', '{"answer": 4}', []),
}

#: (family, raw output cut mid-call)
CUT = {
    "hermes": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par',
    "llama3": '<|python_tag|>{"name": "get_weather", "parameters": {"ci',
    "mistral": '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}, {"na',
    "generic": 'Sure.\n<tool_call>\n{"name": "get_weather"',
}
#: (family, malformed raw output, what the error says)
MALFORMED = {
    "hermes": ('<tool_call>\n{"name": get_weather, "arguments": {}}\n</tool_call>', "not valid JSON"),
    "llama3": ('{"name": "get_weather", "parameters": {"city": Paris}}', "not valid JSON"),
    "mistral": ('[TOOL_CALLS][{"arguments": {"city": "Paris"}}]', "names no tool"),
    "generic": ('<tool_call>\n["get_weather", "Paris"]\n</tool_call>', "a JSON str, not an object"),
}


def streamed(fmt: str, raw: str, step: int) -> tuple[str, list[tuple[str, dict[str, Any]]], list[str]]:
    """`raw` fed `step` characters at a time: the text shown, the calls, and each piece of text as shown."""
    reader = ToolCallReader(fmt)
    pieces: list[str] = []
    calls = []
    for i in range(0, len(raw), step):
        text, got = reader.feed(raw[i : i + step])
        pieces.append(text)
        calls += got
    text, got = reader.finish()
    pieces.append(text)
    return "".join(pieces), [(c.name, c.arguments) for c in calls + got], pieces


@pytest.mark.parametrize("case", list(RECORDED))
def test_recorded_outputs_of_each_family_give_their_text_and_calls_whole_or_streamed(case: str) -> None:
    fmt, raw, text, calls = RECORDED[case]
    shown, got = parse_tool_calls(fmt, raw)
    assert shown == text and [(c.name, c.arguments) for c in got] == calls
    for step in (1, 2, 7):
        shown_streamed, calls_streamed, pieces = streamed(fmt, raw, step)
        assert (shown_streamed, calls_streamed) == (text, calls)
        markers = ("<tool_call>", "</tool_call>", "<|python_tag|>", "[TOOL_CALLS]")
        assert not any(m in p for p in pieces for m in markers if m not in text), "no markup in any piece shown"
    ids = [c.id for c in got]
    assert len(set(ids)) == len(ids) and all(i.isalnum() for i in ids)
    if case.startswith("mistral-nemo"):
        assert ids == ["a1B2c3D4e", "f5G6h7I8j"], "the model's own ids are kept"


@pytest.mark.parametrize("fmt", list(CUT))
def test_a_call_cut_mid_stream_is_an_error_that_keeps_the_raw_text(fmt: str) -> None:
    raw = CUT[fmt]
    reader = ToolCallReader(fmt)
    shown = "".join(reader.feed(ch)[0] for ch in raw)
    with pytest.raises(ToolCallError, match="ended \\(length\\) inside a tool call; raise max_tokens") as raised:
        reader.finish("length")
    assert (
        raw.endswith(raised.value.raw) and raised.value.raw.strip() and shown == raw[: len(raw) - len(raised.value.raw)]
    )
    assert shown in ("", "Sure.\n"), "text before the call is shown, the call never is"


@pytest.mark.parametrize("fmt", list(MALFORMED))
def test_a_malformed_call_is_a_clear_error_that_keeps_the_raw_text(fmt: str) -> None:
    raw, says = MALFORMED[fmt]
    with pytest.raises(ToolCallError, match=says) as raised:
        parse_tool_calls(fmt, raw)
    assert raised.value.raw.strip() and raised.value.raw in raw
    assert issubclass(ToolCallError, ValueError)


# --- formats and templates --------------------------------------------------------------------------

#: Markers as they appear in the families' own templates.
TEMPLATES = {
    "hermes": "{%- for tool_call in message.tool_calls %}<tool_call>\n{{ tool_call | tojson }}\n</tool_call>",
    "llama3": "{{- '<|start_header_id|>ipython<|end_header_id|>\\n\\n' }}{{- message.content | tojson }}",
    "mistral": "{{- '[TOOL_CALLS][' }}{%- for tool in message.tool_calls %}{{ tool.function | tojson }}",
    "generic": "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>",
}


def test_the_format_is_detected_from_the_template_and_any_other_is_generic() -> None:
    for name, text in TEMPLATES.items():
        assert detect_format(text).name == name
    assert detect_format(None) is GENERIC and detect_format(HERMES_TEMPLATE) is HERMES
    assert detect_format("<|python_tag|>") is LLAMA3 and detect_format("[TOOL_CALLS]") is MISTRAL


def get_time(zone: str) -> str:
    """The time in a zone."""
    return "12:00"


HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "Time in Paris and Tokyo?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "aaaaaaaa1", "type": "function", "function": {"name": "get_time", "arguments": '{"zone": "Paris"}'}},
        {"id": "aaaaaaaa2", "type": "function", "function": {"name": "get_time", "arguments": '{"zone": "Tokyo"}'}}]},
    {"role": "tool", "tool_call_id": "aaaaaaaa1", "content": "12:00"},
    {"role": "tool", "tool_call_id": "aaaaaaaa2", "content": "19:00"},
]  # fmt: skip


def test_a_native_template_renders_tools_earlier_calls_and_their_results() -> None:
    messages, tools = template_messages(HERMES, HISTORY, tools_from([get_time]))
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == {"zone": "Paris"}, "objects, as templates read"
    prompt = ChatTemplate(HERMES_TEMPLATE).render(messages, tools=tools)
    assert '{"type": "function", "function": {"name": "get_time", "description": "The time in a zone."' in prompt
    assert '<tool_call>\n{"name": "get_time", "arguments": {"zone": "Tokyo"}}\n</tool_call>' in prompt
    assert "<|im_start|>user\n<tool_response>\n12:00\n</tool_response>\n<tool_response>\n19:00\n" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_the_generic_format_gives_any_template_only_the_roles_it_knows() -> None:
    messages, tools = template_messages(GENERIC, HISTORY, tools_from([get_time]))
    assert tools is None and [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert '{"name": "get_time", "description": "The time in a zone."' in messages[0]["content"]
    assert (
        messages[2]["content"].count("<tool_call>") == 2 and '"arguments": {"zone": "Tokyo"}' in messages[2]["content"]
    )
    assert (
        messages[3]["content"] == "<tool_response>\n12:00\n</tool_response>\n<tool_response>\n19:00\n</tool_response>"
    )
    smol = ChatTemplate(TEMPLATES["generic"] + "{% endfor %}")
    assert "<|im_start|>system\nYou can call these tools" in smol.render(messages)
    with_system, _ = template_messages(GENERIC, [{"role": "system", "content": "Be brief."}, *HISTORY], [])
    assert with_system[0] == {"role": "system", "content": "Be brief."}, "no tools offered: nothing added"


def test_templates_render_in_a_sandbox_and_their_refusals_are_request_errors() -> None:
    escape = ChatTemplate("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(InvalidRequestError, match="cannot render these messages"):
        escape.render([{"role": "user", "content": "hi"}])
    strict = ChatTemplate("{% if messages[0].role != 'user' %}{{ raise_exception('users first') }}{% endif %}ok")
    with pytest.raises(InvalidRequestError, match="users first"):
        strict.render([{"role": "assistant", "content": "hi"}])
    assert ChatTemplate("{{ messages[0].content | tojson }}").render([{"role": "user", "content": "café"}]) == '"café"'


# --- schemas from signatures ------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Box(pydantic.BaseModel):
    label: str
    corners: list[Point]


def paint(target: Point, colour: Colour, coats: int = 1, finish: Literal["matte", "gloss"] = "matte") -> str:
    """Paint something.

    Longer notes that are not the description's first paragraph.

    Args:
        target: Where to paint,
            as a point.
        colour (Colour): Which colour.

    Returns:
        What was painted.
    """
    return f"{colour.value} at {target.x},{target.y} x{coats} {finish}"


def pack(box: Box) -> str:
    """:param box: The box to pack."""
    return box.label


def test_a_function_becomes_a_tool_schema_from_its_signature_hints_and_docstring() -> None:
    tool = tool_from(paint)
    assert tool.name == "paint" and tool.description == "Paint something."
    params = tool.parameters
    assert params["required"] == ["target", "colour"] and params["additionalProperties"] is False
    assert params["properties"]["colour"] == {"enum": ["red", "blue"], "description": "Which colour."}
    assert params["properties"]["coats"] == {"type": "integer"}
    assert params["properties"]["finish"]["enum"] == ["matte", "gloss"]
    assert params["properties"]["target"] == {"$ref": "#/$defs/Point"} and "Point" in params["$defs"]
    kwargs = tool.keyword_arguments({"target": {"x": 1, "y": 2}, "colour": "blue"})
    assert kwargs == {"target": Point(1, 2), "colour": Colour.BLUE}
    assert paint(**kwargs) == "blue at 1,2 x1 matte"
    boxed = tool_from(pack)
    assert boxed.parameters["properties"]["box"]["description"] == "The box to pack."
    box = boxed.keyword_arguments({"box": {"label": "b", "corners": [{"x": 0, "y": 0}]}})["box"]
    assert isinstance(box, Box) and box.corners[0].x == 0
    assert json.loads(json.dumps(tool.definition()))["function"]["name"] == "paint"


def test_what_a_schema_cannot_say_is_refused_naming_the_parameter() -> None:
    def bad(x: set[complex]) -> None:
        """Complex numbers have no JSON."""

    with pytest.raises(SchemaError, match="complex"):
        tool_from(bad)
    with pytest.raises(SchemaError, match="parameters must be a JSON Schema of an object"):
        tool_from({"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}})
    odd: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "integer", "minimum": "zero"}}}
    with pytest.raises(SchemaError, match="not a valid JSON Schema"):
        tool_from({"type": "function", "function": {"name": "f", "parameters": odd}})
    with pytest.raises(InvalidRequestError, match="only 'function' tools"):
        tool_from({"type": "code_interpreter"})


def test_a_call_in_openai_shape_comes_back_parsed_and_a_bad_one_is_an_error_with_it() -> None:
    from llmclient import ToolCall

    call = ToolCall("c1", "now", {"zone": "UTC"})
    assert ToolCall.from_dict(call.to_dict()) == call
    assert ToolCall.from_dict({"function": {"name": "now", "arguments": ""}}).arguments == {}
    with pytest.raises(ToolCallError, match="not valid JSON") as raised:
        ToolCall.from_dict({"id": "c2", "type": "function", "function": {"name": "now", "arguments": "{zone"}})
    assert raised.value.name == "now" and "{zone" in raised.value.raw


# --- the grammar of each family, on a byte-level tokenizer ------------------------------------------


class _Bytes:
    """A tokenizer whose tokens are the 256 bytes (and an end token): a grammar then checks text byte by byte."""

    def __init__(self) -> None:
        self.eos_token_id, self.bos_token_id = 256, None
        self.tokens = [bytes([i]) for i in range(256)] + [b"<eos>"]
        self.special_token_ids = [256]

    def __call__(self, text: str | bytes) -> list[int]:
        return list(text.encode() if isinstance(text, str) else text)


def accepts(fmt: Any, mode: str, text: str, only: str | None = None, parallel: bool = True) -> bool:
    import llguidance

    from llmclient.structured._tools import tool_call_grammar

    tokenizer = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Bytes()), slices=[])
    grammar = tool_call_grammar(fmt, tools_from([get_time, paint]), mode, only, parallel=parallel)
    matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
    return matcher.consume_tokens(list(text.encode())) and matcher.is_accepting()


TIME_CALL = '{"name": "get_time", "arguments": {"zone": "UTC"}}'
PAINT_CALL = '{"name": "paint", "arguments": {"target": {"x": 1, "y": 2}, "colour": "red"}}'


def test_each_familys_grammar_admits_text_or_its_own_calls_and_nothing_else() -> None:
    hermes = f"<tool_call>\n{TIME_CALL}\n</tool_call>"
    for fmt in (HERMES, GENERIC):
        assert accepts(fmt, "auto", "Any text at all, even < and {")
        assert accepts(fmt, "auto", f"Let me see.{hermes}\n<tool_call>\n{PAINT_CALL}\n</tool_call>")
        assert not accepts(fmt, "auto", "<tool_call>\n" + TIME_CALL.replace("get_time", "get_date") + "\n</tool_call>")
        assert not accepts(fmt, "auto", "<tool_call>\n" + TIME_CALL.replace('"UTC"', "7") + "\n</tool_call>")
        assert not accepts(fmt, "required", "Sure." + hermes) and accepts(fmt, "required", hermes)
        assert not accepts(fmt, "required", hermes, only="paint") and not accepts(
            fmt, "required", hermes * 2, "get_time"
        )
        assert accepts(fmt, "required", hermes + "\n" + hermes) and not accepts(
            fmt, "required", hermes * 2, parallel=False
        )
    llama = TIME_CALL.replace('"arguments"', '"parameters"')
    assert accepts(LLAMA3, "auto", "The time is noon.") and accepts(LLAMA3, "auto", llama)
    assert not accepts(LLAMA3, "auto", TIME_CALL) and not accepts(LLAMA3, "required", "The time is noon.")
    mistral = f"[TOOL_CALLS][{TIME_CALL}, {PAINT_CALL}]"
    assert accepts(MISTRAL, "auto", "Bonjour.") and accepts(MISTRAL, "auto", "Voilà." + mistral)
    assert accepts(MISTRAL, "required", mistral) and not accepts(MISTRAL, "required", "Bonjour.")
    assert not accepts(MISTRAL, "required", mistral, parallel=False)
