"""Tool calling on the real model (SmolLM2 with a Hermes-style template given through `.chat_template`): every
constrained call names a given tool with arguments that validate against its schema, `auto` leaves text free,
streamed deltas add up to the same calls, and `run_tools` runs real Python functions between rounds."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.lowlevel
import jsonschema
import pydantic
import pytest

from llmclient import (
    HERMES_TEMPLATE,
    Capabilities,
    InvalidRequestError,
    InvalidRequestTypeError,
    InvalidSettingError,
    LlmClient,
    SchemaError,
    SyncLlmClient,
    Tool,
    ToolCall,
    ToolCallError,
    ToolExecutionError,
    ToolLoopError,
)
from llmclient.chat import tool_from
from llmclient.testing import FakeEngine
from llmclient.testing.fake import Script

from .conftest import llama_model

pytestmark = pytest.mark.anyio


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


@dataclasses.dataclass
class Place:
    city: str
    country: str


class Booking(pydantic.BaseModel):
    hotel: str = pydantic.Field(max_length=30)
    nights: int = pydantic.Field(ge=1, le=14)


def get_weather(city: str, unit: Unit = Unit.CELSIUS) -> str:
    """Get the current weather in a city.

    Args:
        city: The city's name, in English.
        unit: The temperature unit.
    """
    return f"It is sunny and 22 degrees {unit.value} in {city}."


def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


def find_flights(origin: Place, destination: Place, cabin: Literal["economy", "business"] = "economy") -> str:
    """Find flights between two places."""
    return "no flights"


def book_hotel(booking: Booking) -> str:
    """Book a hotel room."""
    return f"booked {booking.nights} nights at {booking.hotel}"


TOOLS = [get_weather, add, find_flights, book_hotel]
SCHEMAS = {t.__name__: tool_from(t).parameters for t in TOOLS}
#: Prompts and the tool a call must be of (named tool_choice), covering enums, dataclasses and pydantic models.
NAMED = [
    ("What is the weather in Paris?", "get_weather"),
    ("What is 17 plus 25?", "add"),
    ("Find me a flight from Paris, France to Tokyo, Japan.", "find_flights"),
    ("Book two nights at the Grand Hotel.", "book_hotel"),
    ("Tell me a joke.", "get_weather"),
]


def _call(i: int, city: str) -> dict[str, Any]:
    function = {"name": "get_weather", "arguments": json.dumps({"city": city})}
    return {"role": "assistant", "content": None, "tool_calls": [{"id": f"aaaaaaaa{i}", "type": "function",
                                                                   "function": function}]}  # fmt: skip


#: Earlier turns in which the assistant called get_weather for each weather question: SmolLM2 then calls it of its
#: own accord (`auto`) for another city, and still answers a greeting in text.
FEW_SHOT: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Rome?"}, _call(1, "Rome"),
    {"role": "user", "content": "Weather in Oslo?"}, _call(2, "Oslo"),
    {"role": "user", "content": "Weather in Lima?"}, _call(3, "Lima"),
]  # fmt: skip


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def client(smollm2: Path) -> AsyncIterator[LlmClient]:
    builder = LlmClient.llama_cpp().local(smollm2).ctx(2048).parallel(5).temperature(0.0)
    async with await builder.chat_template(HERMES_TEMPLATE).init() as made:
        yield made


def assert_valid(call: ToolCall, name: str | None = None) -> None:
    assert call.name in SCHEMAS and (name is None or call.name == name), call
    jsonschema.validate(call.arguments, SCHEMAS[call.name])
    assert len(call.id) == 9 and call.id.isalnum()


async def test_a_named_tool_choice_always_yields_a_valid_call_of_that_tool(client: LlmClient) -> None:
    results: dict[int, Any] = {}

    async def ask(i: int, prompt: str, name: str) -> None:
        choice = {"type": "function", "function": {"name": name}}
        results[i] = await client.chat(prompt, tools=TOOLS, tool_choice=choice, max_tokens=120)

    async with anyio.create_task_group() as tg:  # side by side in one batch
        for i, (prompt, name) in enumerate(NAMED):
            tg.start_soon(ask, i, prompt, name)
    for i, (_, name) in enumerate(NAMED):
        result = results[i]
        assert result.finish_reason == "tool_calls" and result.text == "" and result.tool_calls
        for call in result.tool_calls:
            assert_valid(call, name)
    booked = tool_from(book_hotel).keyword_arguments(results[3].tool_calls[0].arguments)
    assert isinstance(booked["booking"], Booking), "a pydantic parameter comes back as the model"
    assert llama_model(client).tool_format.name == "hermes"


async def test_required_picks_the_tool_the_question_needs_with_schema_valid_arguments(client: LlmClient) -> None:
    two = [get_weather, add]  # with all four, this 135M model answers the weather with a flight search
    weather = await client.chat("What is the weather in Paris?", tools=two, tool_choice="required", max_tokens=150)
    total = await client.chat("What is 17 plus 25?", tools=two, tool_choice="required", max_tokens=150)
    for result, name in ((weather, "get_weather"), (total, "add")):
        assert result.finish_reason == "tool_calls"
        for call in result.tool_calls:
            assert_valid(call, name)
    assert weather.tool_calls[0].arguments["city"] == "Paris"
    one = await client.chat("What is 17 plus 25?", tools=TOOLS, tool_choice="required", parallel_tool_calls=False)
    assert len(one.tool_calls) == 1 and one.tool_calls[0].arguments == {"a": 17, "b": 25}


async def test_auto_leaves_text_free_or_holds_a_call_to_a_tool_and_its_schema(client: LlmClient) -> None:
    asked = ["Weather in Paris?", "Weather in Cairo?", "Hello, who are you?"]
    results = [
        await client.chat([*FEW_SHOT, {"role": "user", "content": q}], tools=TOOLS, max_tokens=60) for q in asked
    ]
    kinds = []
    for result in results:
        if result.tool_calls:
            assert result.finish_reason == "tool_calls"
            for call in result.tool_calls:
                assert_valid(call)
            kinds.append("call")
        else:
            assert result.text and result.finish_reason in ("stop", "length")
            kinds.append("text")
        assert "<tool_call>" not in result.text and "</tool_call>" not in result.text
    assert set(kinds) == {"call", "text"}, f"both ways out of the lazy grammar were taken: {kinds}"
    plain = await client.chat("Hello, who are you?", tools=TOOLS, tool_choice="none", max_tokens=20)
    assert plain.tool_calls == [] and plain.text and plain.finish_reason in ("stop", "length")


async def test_before_the_trigger_almost_nothing_is_masked_and_after_it_only_the_call(client: LlmClient) -> None:
    import llguidance
    import llguidance.numpy

    from llmclient.chat.formats import HERMES
    from llmclient.structured._tools import tool_call_grammar

    model = llama_model(client)
    tokenizer = model.constraint_tokenizer()
    matcher = llguidance.LLMatcher(tokenizer, tool_call_grammar(HERMES, [tool_from(add)], "auto"), log_level=0)
    allowed = llguidance.numpy.allocate_token_bitmask(1, tokenizer.vocab_size)

    def count() -> int:
        llguidance.numpy.fill_next_token_bitmask(matcher, allowed, 0)
        return sum(bin(w & 0xFFFFFFFF).count("1") for w in allowed[0].tolist())

    before = count()
    assert before > 0.99 * tokenizer.vocab_size, before
    assert matcher.consume_tokens(tokenizer.tokenize_str("Sure. <tool_call>\n"))
    after = count()
    assert 0 < after < 10, after
    assert matcher.consume_tokens(
        tokenizer.tokenize_str('{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>')
    )
    assert matcher.is_accepting()


async def test_a_marker_that_is_a_special_token_is_matched_as_that_token(client: LlmClient) -> None:
    import llguidance

    from llmclient.chat.formats import HERMES
    from llmclient.structured._tools import special_markers, tool_call_grammar

    tokenizer = llama_model(client).constraint_tokenizer()
    fmt = dataclasses.replace(HERMES, trigger="<|im_start|>")  # SmolLM2's special token, standing in for Qwen's
    special = special_markers(tokenizer, fmt)
    [marker] = tokenizer.tokenize_str("<|im_start|>", parse_special=True)
    assert special == {"<|im_start|>": marker} and special_markers(tokenizer, HERMES) == {}
    grammar = tool_call_grammar(fmt, [tool_from(add)], "auto", special=special)
    as_text = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
    assert as_text.consume_tokens(tokenizer.tokenize_str("Hi <|im_start|> as text is text")) and as_text.is_accepting()
    matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
    call = '\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
    assert matcher.consume_tokens([*tokenizer.tokenize_str("Hi"), marker, *tokenizer.tokenize_str(call)])
    assert matcher.is_accepting()


async def test_streamed_deltas_add_up_to_the_calls_of_the_same_request_unstreamed(client: LlmClient) -> None:
    for prompt in ("What is 17 plus 25?", "Find a flight from Oslo to Rome."):
        whole = await client.chat(prompt, tools=TOOLS, tool_choice="required", max_tokens=150)
        calls: dict[int, dict[str, Any]] = {}
        text, reason = "", None
        async for chunk in client.stream(prompt, tools=TOOLS, tool_choice="required", max_tokens=150):
            text += chunk.text
            reason = chunk.finish_reason or reason
            for delta in chunk.tool_calls:  # OpenAI's way: arguments concatenate per index
                got = calls.setdefault(delta["index"], {"name": "", "arguments": ""})
                got["name"] += delta["function"].get("name") or ""
                got["arguments"] += delta["function"].get("arguments") or ""
        assert reason == whole.finish_reason == "tool_calls" and text == whole.text == ""
        streamed = [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())]
        assert streamed == [(c.name, c.arguments) for c in whole.tool_calls]


async def test_a_call_cut_by_max_tokens_is_an_error_that_keeps_the_raw_text(client: LlmClient) -> None:
    with pytest.raises(ToolCallError, match="ended \\(length\\) inside a tool call") as raised:
        await client.chat("What is the weather in Paris?", tools=TOOLS, tool_choice="required", max_tokens=14)
    assert raised.value.raw.startswith('<tool_call>\n{"name": "') and not raised.value.raw.endswith("</tool_call>")


async def test_run_tools_completes_a_two_round_exchange_with_a_real_function(client: LlmClient) -> None:
    ran: list[str] = []

    def weather(city: str) -> str:
        """Get the current weather in a city."""
        ran.append(city)
        return f"It is sunny and 22 C in {city}."

    result = await client.run_tools(
        "What is the weather in Paris?", [weather], tool_choice="required", parallel_tool_calls=False, max_tokens=80
    )
    assert ran == ["Paris"]
    assert result.tool_calls == [] and result.text and result.finish_reason in ("stop", "length")
    roles = [m["role"] for m in result.transcript]
    assert roles == ["user", "assistant", "tool", "assistant"]
    call = result.transcript[1]["tool_calls"][0]
    assert call["function"]["name"] == "weather" and json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    answer = "It is sunny and 22 C in Paris."
    assert result.transcript[2] == {"role": "tool", "tool_call_id": call["id"], "name": "weather", "content": answer}
    assert result.transcript[3] == result.message


async def test_without_a_tool_template_the_generic_format_still_holds_calls_to_their_schema(smollm2: Path) -> None:
    async with await LlmClient.from_path(smollm2, ctx=2048, parallel=1, temperature=0.0) as generic:
        assert llama_model(generic).tool_format.name == "generic"  # SmolLM2's own template knows no tools
        for prompt, name in NAMED[:3]:
            choice = {"type": "function", "function": {"name": name}}
            result = await generic.chat(prompt, tools=TOOLS, tool_choice=choice, max_tokens=120)
            assert result.finish_reason == "tool_calls" and len(result.tool_calls) == 1
            assert_valid(result.tool_calls[0], name)
        some = await generic.chat("What is 17 plus 25?", tools=[add], tool_choice="required", parallel_tool_calls=False)
        assert_valid(some.tool_calls[0], "add")
    no_system = (  # as Gemma's: refuses a system message
        "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n"
    )
    async with await LlmClient.from_path(smollm2, ctx=2048, temperature=0.0, chat_template=no_system) as folded:
        with pytest.raises(InvalidRequestError, match="System role not supported"):
            await folded.chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
        plain = await folded.chat("What is 17 plus 25?", max_tokens=1)
        result = await folded.chat(
            "What is 17 plus 25?", tools=[add], tool_choice="required", parallel_tool_calls=False
        )
        assert_valid(result.tool_calls[0], "add")
        assert result.usage.prompt_tokens > plain.usage.prompt_tokens + 50, "the tools were described in the user turn"


#: ChatML templates that write calls as Llama 3.x and Mistral do (the marker in a comment is what detection reads;
#: SmolLM2's vocabulary has no such special token, so it is matched as text): the other families' grammars and
#: readers, end to end on the real model.
FAMILY_TEMPLATES = {
    "llama3": (
        "{#- <|python_tag|> -#}"
        "{% if tools %}<|im_start|>system\nTo call a function, answer only with JSON: "
        '{"name": function name, "parameters": its arguments}. Functions:\n'
        "{% for t in tools %}{{ t | tojson }}\n{% endfor %}<|im_end|>\n{% endif %}"
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "<|im_start|>assistant\n"
    ),
    "mistral": (
        "{#- [TOOL_CALLS] -#}"
        "{% if tools %}<|im_start|>system\nTo call functions, answer with [TOOL_CALLS] and a JSON list of "
        '{"name": function name, "arguments": its arguments}. Functions:\n'
        "{% for t in tools %}{{ t | tojson }}\n{% endfor %}<|im_end|>\n{% endif %}"
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "<|im_start|>assistant\n"
    ),
}


@pytest.mark.parametrize("family", list(FAMILY_TEMPLATES))
async def test_the_llama3_and_mistral_formats_hold_and_read_calls_on_the_real_model(smollm2: Path, family: str) -> None:
    template = FAMILY_TEMPLATES[family]
    async with await LlmClient.from_path(smollm2, ctx=2048, temperature=0.0, chat_template=template) as client:
        assert llama_model(client).tool_format.name == family
        for prompt, name in NAMED[:3]:
            choice = {"type": "function", "function": {"name": name}}
            result = await client.chat(prompt, tools=TOOLS, tool_choice=choice, max_tokens=120)
            assert result.finish_reason == "tool_calls" and result.text == "" and len(result.tool_calls) == 1
            assert_valid(result.tool_calls[0], name)
            chunks = [c async for c in client.stream(prompt, tools=TOOLS, tool_choice=choice, max_tokens=120)]
            [delta] = [d for c in chunks for d in c.tool_calls]
            assert (delta["function"]["name"], json.loads(delta["function"]["arguments"])) == (
                name, result.tool_calls[0].arguments)  # fmt: skip
            assert "".join(c.text for c in chunks) == ""
        text = await client.chat("Hello, who are you?", tools=TOOLS, tool_choice="none", max_tokens=12)
        assert text.tool_calls == [] and text.text


def test_the_sync_twin_runs_tools_too(smollm2: Path) -> None:
    ran: list[int] = []

    def add_numbers(a: int, b: int) -> int:
        """Add two whole numbers."""
        ran.append(a + b)
        return a + b

    with SyncLlmClient.from_path(smollm2, ctx=1024, parallel=1, temperature=0.0, chat_template=HERMES_TEMPLATE) as c:
        result = c.run_tools("What is 17 plus 25?", [add_numbers], tool_choice="required", parallel_tool_calls=False)
    assert ran == [42] and result.transcript[2]["content"] == "42"


# --- any engine: the client's side -----------------------------------------------------------------


TOOLED = Capabilities(tools=True)


async def test_the_loop_awaits_async_tools_runs_sync_ones_in_threads_and_feeds_back_errors() -> None:
    import threading

    seen: dict[str, Any] = {}

    async def slow_add(a: int, b: int) -> int:
        """Add, asynchronously."""
        await anyio.lowlevel.checkpoint()
        return a + b

    def where(city: str) -> dict[str, str]:
        """Where a city is."""
        seen["thread"] = threading.current_thread() is not threading.main_thread()
        raise LookupError(f"no such city: {city}")

    rounds: Iterator[Script] = iter([
        [ToolCall("c1", "slow_add", {"a": 2, "b": 3}), ToolCall("c2", "where", {"city": "Atlantis"})],
        "Done.",
    ])  # fmt: skip
    engine = FakeEngine(lambda request: next(rounds), capabilities=TOOLED)
    async with LlmClient(engine) as client:
        result = await client.run_tools("go", [slow_add, where])
    assert result.text == "Done." and seen["thread"] is True
    tool_messages = [m for m in result.transcript if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["5", "Error: LookupError: no such city: Atlantis"]
    second = engine.requests[1]
    assert second.messages is not None and [m["role"] for m in second.messages] == ["user", "assistant", "tool", "tool"]
    assert [t["function"]["name"] for t in second.tools] == ["slow_add", "where"]

    engine = FakeEngine([ToolCall("c2", "where", {"city": "Atlantis"})], capabilities=TOOLED)
    async with LlmClient(engine) as client:
        with pytest.raises(ToolExecutionError, match="where raised LookupError") as raised:
            await client.run_tools("go", [where], on_error="raise")
        assert isinstance(raised.value.__cause__, LookupError) and raised.value.call.name == "where"
        with pytest.raises(ToolLoopError, match="after 3 rounds") as looped:
            await client.run_tools("go", [where], max_rounds=3)
        assert [m["role"] for m in looped.value.messages] == ["user", *["assistant", "tool"] * 3]


async def test_calls_that_do_not_fit_their_tool_are_errors_with_the_raw_call() -> None:
    for call, message in (
        (
            ToolCall("c1", "add", {"a": "two", "b": 3}),
            "do not match its schema \\(a: 'two' is not of type 'integer'\\)",
        ),
        (ToolCall("c1", "subtract", {"a": 2}), "called 'subtract', which is not among the tools"),
    ):
        async with LlmClient(FakeEngine([call], capabilities=TOOLED)) as client:
            with pytest.raises(ToolCallError, match=message) as raised:
                await client.chat("hi", tools=[add])
            assert json.loads(raised.value.raw)["name"] == call.name
            with pytest.raises(ToolCallError, match=message):
                _ = [c async for c in client.stream("hi", tools=[add])]


async def test_bad_tools_and_choices_are_refused_before_any_work() -> None:
    def spread(*numbers: int) -> int:
        """Takes *args."""
        return 0

    engine = FakeEngine("never", capabilities=TOOLED)
    refused: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"tools": [add], "tool_choice": {"type": "function", "function": {"name": "mul"}}}, InvalidRequestError,
         "not among the tools"),
        ({"tools": [add], "tool_choice": "always"}, InvalidRequestError, "tool_choice 'always'"),
        ({"tool_choice": "required"}, InvalidRequestError, "needs tools"),
        ({"tools": [add, add]}, InvalidRequestError, "two tools are named add"),
        ({"tools": [42]}, InvalidRequestTypeError, "a tool must be a function"),
        ({"tools": add}, InvalidRequestTypeError, "wrap one in"),
        ({"tools": [spread]}, SchemaError, "parameter numbers"),
        ({"tools": [add], "schema": dict}, InvalidRequestError, "either tools or schema"),
        ({"tools": [add], "parallel_tool_calls": "yes"}, InvalidRequestTypeError, "parallel_tool_calls"),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, InvalidRequestError, "tool name"),
    ]  # fmt: skip
    async with LlmClient(engine) as client:
        for options, kind, message in refused:
            with pytest.raises(kind, match=message):
                await client.chat("hi", **options)
        with pytest.raises(InvalidRequestError, match="has no Python function"):
            await client.run_tools("hi", [{"type": "function", "function": {"name": "now"}}])
        with pytest.raises(InvalidRequestError, match="max_rounds"):
            await client.run_tools("hi", [add], max_rounds=0)
    assert engine.requests == []
    with pytest.raises(InvalidSettingError, match="neither Jinja markup"):
        LlmClient.llama_cpp().chat_template("/no/such/template.jinja")
    with pytest.raises(InvalidSettingError, match="not valid Jinja"):
        LlmClient.llama_cpp().chat_template("{% for x in %}")


async def test_an_openai_tool_dict_reaches_the_engine_as_given_and_its_call_is_checked() -> None:
    spec = {"type": "function", "function": {"name": "now", "description": "The time.", "parameters": {
        "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}  # fmt: skip
    engine = FakeEngine([ToolCall("c1", "now", {"zone": "UTC"})], capabilities=TOOLED)
    async with LlmClient(engine) as client:
        result = await client.chat("time?", tools=[spec], tool_choice="required")
    assert engine.requests[0].tools == (spec,) and engine.requests[0].tool_choice == "required"
    assert result.tool_calls == [ToolCall("c1", "now", {"zone": "UTC"})] and result.finish_reason == "tool_calls"
    assert result.message == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "now", "arguments": '{"zone": "UTC"}'}}]}  # fmt: skip
    assert isinstance(tool_from(spec), Tool) and tool_from(spec).function is None


async def test_a_stream_gives_text_then_each_checked_call_as_an_openai_delta() -> None:
    script: Script = [
        "Let me add",
        " that.",
        ToolCall("c1", "add", {"a": 2, "b": 3}),
        ToolCall("c2", "add", {"a": 1, "b": 1}),
    ]
    async with LlmClient(FakeEngine(script, capabilities=TOOLED)) as client:
        chunks = [c async for c in client.stream("2+3 and 1+1?", tools=[add])]
        whole = await client.chat("2+3 and 1+1?", tools=[add])
    assert [c.text for c in chunks[:2]] == ["Let me add", " that."] and not chunks[0].tool_calls
    deltas = [d for c in chunks for d in c.tool_calls]
    assert deltas == [{"index": i, **call.to_dict()} for i, call in enumerate(whole.tool_calls)]
    assert chunks[-1].finish_reason == whole.finish_reason == "tool_calls" and whole.text == "Let me add that."
