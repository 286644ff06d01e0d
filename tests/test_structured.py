"""Structured output on the real model: every constrained answer parses and validates against its schema.

The tests taking `client` run on every engine (`tests.conftest.ENGINES`); those taking `llama_client` look at
llama.cpp's masks and decodes."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal, TypedDict

import anyio
import jsonschema
import pydantic
import pytest

from llmclient import (
    Capabilities,
    GenerationError,
    IncompleteOutputError,
    InvalidRequestError,
    LlmClient,
    SchemaError,
    UnsupportedFeatureError,
)
from llmclient.backends.llama_cpp._engine import TEMPLATES, LlamaCppEngine
from llmclient.structured import schema_for_type
from llmclient.testing import FakeEngine
from tests.conftest import ENGINES, builder_for

pytestmark = pytest.mark.anyio

#: Schemas of the shapes the issue names: nested objects, bounded arrays, enums, integer ranges, anyOf, recursive $ref.
SCHEMAS: dict[str, dict[str, Any]] = {
    "nested": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 20},
            "country": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 20},
                    "code": {"type": "string", "pattern": "^[A-Z]{2}$"},
                },
                "required": ["name", "code"],
                "additionalProperties": False,
            },
        },
        "required": ["city", "country"],
        "additionalProperties": False,
    },
    "bounded_array": {
        "type": "object",
        "properties": {
            "colours": {"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 2, "maxItems": 3}
        },
        "required": ["colours"],
        "additionalProperties": False,
    },
    "enum_and_range": {
        "type": "object",
        "properties": {
            "season": {"enum": ["spring", "summer", "autumn", "winter"]},
            "month": {"type": "integer", "minimum": 1, "maximum": 12},
        },
        "required": ["season", "month"],
        "additionalProperties": False,
    },
    "any_of": {
        "type": "object",
        "properties": {
            "answer": {
                "anyOf": [{"type": "integer", "minimum": 0, "maximum": 100}, {"type": "string", "maxLength": 10}]
            }
        },
        "required": ["answer"],
        "additionalProperties": False,
    },
    "recursive": {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 12},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2},
                },
                "required": ["name", "children"],
                "additionalProperties": False,
            }
        },
        "$ref": "#/$defs/node",
    },
}
PROMPTS = {
    "nested": "Give the capital of France and its country as JSON.",
    "bounded_array": "List some colours of the rainbow as JSON.",
    "enum_and_range": "Which season and month is Christmas in, in Europe? Answer as JSON.",
    "any_of": "How many legs does a spider have? Answer as JSON.",
    "recursive": "JSON tree: root 'a' with children 'b' and 'c'; b and c have no children ([]).",
}


@pytest.fixture(scope="module", params=ENGINES)
async def client(request: pytest.FixtureRequest, smollm2: Path) -> AsyncIterator[LlmClient]:
    builder = builder_for(request.param, smollm2).ctx(2048).parallel(6).temperature(0.0)
    async with await builder.init() as made:
        yield made


@pytest.fixture(scope="module")
async def llama_client(smollm2: Path) -> AsyncIterator[LlmClient]:
    builder = LlmClient.llama_cpp().local(smollm2).ctx(2048).parallel(6).temperature(0.0)
    async with await builder.init() as made:
        yield made


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


async def test_every_constrained_answer_validates_against_its_schema_side_by_side_with_free_text(
    client: LlmClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmclient.backends.llama_cpp._batch import BatchDecoder

    masked_free: list[Any] = []
    beside_free = 0
    real_mask = BatchDecoder._mask

    def spy(self: BatchDecoder, in_flight: list[Any], masked: list[Any]) -> dict[int, int]:
        nonlocal beside_free
        masked_free.extend(r for r in masked if r.matcher is None)
        beside_free += any(r.matcher is None for r in in_flight)
        return real_mask(self, in_flight, masked)

    llama = isinstance(client.engine, LlamaCppEngine)  # llama.cpp's batch is ours to look into
    if llama:
        monkeypatch.setattr(BatchDecoder, "_mask", spy)
    results: dict[str, Any] = {}

    async def ask(name: str) -> None:
        results[name] = await client.chat(PROMPTS[name], schema=SCHEMAS[name], max_tokens=200)

    async def free() -> None:
        results["free"] = await client.chat(PROMPTS["nested"], max_tokens=40)

    async with anyio.create_task_group() as tg:  # one batch: five constrained rows and one free one
        for name in SCHEMAS:
            tg.start_soon(ask, name)
        tg.start_soon(free)
    for name, schema in SCHEMAS.items():
        result = results[name]
        assert result.finish_reason == "stop", (name, result.text)
        jsonschema.validate(result.parsed, schema)
    # the free request shared steps with masked rows and was never masked itself. (Its text is not compared with
    # the same request alone: a batch of one token may take other CPU kernels than a batch of several, the one
    # exception to batch invariance that BENCHMARKS.md documents, and a long answer can then diverge.)
    assert (beside_free > 0 and masked_free == []) or not llama
    assert results["free"].parsed is None and results["free"].usage.completion_tokens > 0


class Weather(pydantic.BaseModel):
    city: str = pydantic.Field(max_length=20)
    temperature_c: int = pydantic.Field(ge=-50, le=60)
    sky: Literal["sunny", "cloudy", "rainy"]


@dataclasses.dataclass
class Book:
    title: str
    year: int


class Season(enum.Enum):
    SPRING = "spring"
    WINTER = "winter"


class Pet(TypedDict):
    name: str
    legs: int


async def test_types_come_back_as_themselves(client: LlmClient) -> None:
    answer = await client.chat("The weather in Paris today, as JSON.", schema=Weather, max_tokens=80)
    weather = answer.parsed
    assert isinstance(weather, Weather) and -50 <= weather.temperature_c <= 60
    assert answer.parsed is weather, "parsed once, the same object on every access"
    book = (await client.chat("A famous novel and its year, as JSON.", schema=Book, max_tokens=80)).parsed
    assert isinstance(book, Book) and isinstance(book.year, int)
    season = (await client.chat("Which season has snow?", schema=Season, max_tokens=10)).parsed
    assert isinstance(season, Season)
    pet = (await client.chat("A pet, as JSON.", schema=Pet, max_tokens=40)).parsed
    assert set(pet) == {"name", "legs"} and isinstance(pet["legs"], int)
    words = (await client.chat("Three fruits.", schema=list[str], max_tokens=40)).parsed
    assert isinstance(words, list) and all(isinstance(w, str) for w in words)
    assert schema_for_type(Book)["$defs"]["Book"]["required"] == ["title", "year"]


async def test_openai_response_formats_regex_choices_and_grammar(client: LlmClient) -> None:
    anything = await client.chat("A JSON object about cats.", response_format={"type": "json_object"}, max_tokens=60)
    if anything.finish_reason == "stop":
        assert isinstance(anything.parsed, dict)
    else:  # an object without bounds may run on: then it says so instead of half-parsing
        with pytest.raises(IncompleteOutputError):
            _ = anything.parsed
    spec = {"name": "pet", "schema": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}},
                                      "required": ["name"], "additionalProperties": False}, "strict": True}  # fmt: skip
    named = await client.chat("Name a pet, as JSON.", response_format={"type": "json_schema", "json_schema": spec})
    assert set(named.parsed) == {"name"}
    date = await client.chat("When did the Berlin wall fall? A date.", regex=r"\d{4}-\d{2}-\d{2}", max_tokens=20)
    assert len(date.text) == 10 and date.text[:4].isdigit() and date.text[4] == "-" and date.text.isascii()
    yes_no = await client.chat("Is water wet?", choices=["yes", "no"])
    assert yes_no.parsed in ("yes", "no") and yes_no.finish_reason == "stop"
    lark = await client.chat("Add two small numbers.", grammar='start: /[1-9]/ " + " /[1-9]/ " = " /[0-9]{1,2}/')
    left, right = lark.text.split(" = ")
    assert len(left.split(" + ")) == 2 and right.isdigit()


async def test_requests_with_one_schema_decode_together_each_on_its_own_copy_of_the_first_matcher(
    llama_client: LlmClient,
) -> None:
    """The first request with a grammar makes its matcher on a thread; later ones copy it (1 us, no thread): the
    copies must not share state, or one row's tokens would be refused by another's matcher."""
    client = llama_client
    cities = ["Paris", "Oslo", "Lima", "Cairo", "Tokyo"]
    first = await client.chat(f"The weather in {cities[0]} as JSON.", schema=Weather, max_tokens=120)
    results = [first]

    async def ask(city: str) -> None:
        results.append(await client.chat(f"The weather in {city} as JSON.", schema=Weather, max_tokens=120))

    async with anyio.create_task_group() as tg:  # copies decoded side by side, in one batch
        for city in cities[1:]:
            tg.start_soon(ask, city)
    assert [r.finish_reason for r in results] == ["stop"] * len(cities), [r.text for r in results]
    assert all(isinstance(r.parsed, Weather) for r in results)
    engine = client.engine
    assert isinstance(engine, LlamaCppEngine)
    assert [g for g in engine._templates if "temperature_c" in g] != [], "the schema's first matcher is kept"
    assert len(engine._templates) <= TEMPLATES


async def test_a_stream_with_a_schema_streams_the_text_as_it_comes(client: LlmClient) -> None:
    chunks = [c async for c in client.stream(PROMPTS["enum_and_range"], schema=SCHEMAS["enum_and_range"])]
    assert len(chunks) > 3 and chunks[-1].finish_reason == "stop"
    jsonschema.validate(__import__("json").loads("".join(c.text for c in chunks)), SCHEMAS["enum_and_range"])


async def test_what_cannot_be_enforced_is_refused_before_any_token_naming_it(client: LlmClient) -> None:
    unique = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    with pytest.raises(SchemaError, match="uniqueItems"):
        await client.chat("numbers", schema=unique)
    with pytest.raises(SchemaError, match="unclosed group"):
        await client.chat("x", regex="(")
    with pytest.raises(SchemaError, match="json_object"):
        await client.chat("x", response_format={"type": "xml"})
    with pytest.raises(InvalidRequestError, match="give one of"):
        await client.chat("x", regex="a", choices=["a"])
    assert issubclass(SchemaError, InvalidRequestError) and issubclass(SchemaError, ValueError)
    fake = FakeEngine("[1, 2]")
    async with LlmClient(fake) as plain:
        with pytest.raises(UnsupportedFeatureError, match="structured output"):
            await plain.chat("numbers", schema=list[int])
    assert fake.requests == []


async def test_an_answer_cut_by_max_tokens_says_incomplete_instead_of_half_parsing(client: LlmClient) -> None:
    cut = await client.chat(PROMPTS["recursive"], schema=SCHEMAS["recursive"], max_tokens=5)
    assert cut.finish_reason == "length"
    with pytest.raises(IncompleteOutputError, match="max_tokens") as raised:
        _ = cut.parsed
    assert raised.value.text == cut.text


async def test_a_rejected_token_fails_that_request_and_the_process_lives_on(
    llama_client: LlmClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = llama_client
    from llmclient.backends.llama_cpp._constrain import MaskBatch

    monkeypatch.setattr(MaskBatch, "apply", lambda self, logits, rows: None)  # as if the mask were not applied
    with pytest.raises(GenerationError, match="the constraint rejected token"):
        await client.chat("Say something long and free.", regex="[0-9]{3}")
    monkeypatch.undo()
    assert (await client.chat("Count.", regex="[0-9]{3}")).text.isdigit(), "the client still answers"


async def test_a_fake_engine_that_claims_structured_output_gets_parsed_values() -> None:
    engine = FakeEngine(['{"title": "Dune", ', '"year": 1965}'], capabilities=Capabilities(structured_output=True))
    async with LlmClient(engine) as client:
        book = (await client.chat("a book", schema=Book)).parsed
    assert book == Book("Dune", 1965)
    constraint = engine.requests[0].constraint
    assert constraint is not None and constraint.json_schema == schema_for_type(Book)


async def test_on_a_262k_vocabulary_every_constrained_answer_validates_too(vocab_262k: Path) -> None:
    """A model with random weights and Gemma 3's vocabulary size: whatever it prefers, the mask holds it to the
    schema (and its 213k words beyond SmolLM2's are masked like the rest)."""
    builder = LlmClient.llama_cpp().local(vocab_262k).ctx(1024).parallel(5).temperature(0.0).threads(1)
    async with await builder.init() as model:
        results: dict[str, Any] = {}

        async def ask(name: str) -> None:
            results[name] = await model.chat(PROMPTS[name], schema=SCHEMAS[name], max_tokens=300)

        async with anyio.create_task_group() as tg:
            for name in SCHEMAS:
                tg.start_soon(ask, name)
    for name, schema in SCHEMAS.items():
        assert results[name].finish_reason == "stop", (name, results[name].text[:300])
        jsonschema.validate(results[name].parsed, schema)


@pytest.mark.parametrize("n_vocab", [49_152, 262_144, 1_000])
@pytest.mark.parametrize("allowed_share", [0.00004, 0.01, 0.5, 0.999])
def test_a_mask_blocks_exactly_the_tokens_it_does_not_allow(n_vocab: int, allowed_share: float) -> None:
    import numpy

    from llmclient.backends.llama_cpp._constrain import _mask_row

    rng = numpy.random.default_rng(0)
    allowed = rng.random(n_vocab) < allowed_share
    padded = numpy.concatenate([allowed, numpy.zeros(-n_vocab % 32, dtype=bool)])
    mask = numpy.packbits(padded, bitorder="little").view(numpy.int32).copy()
    row = rng.random(n_vocab).astype(numpy.float32)
    expected = numpy.where(allowed, row, -numpy.inf)
    _mask_row(row, mask, n_vocab)
    assert numpy.array_equal(row, expected)


async def test_forced_tokens_are_decoded_together_and_the_answer_is_the_same(
    llama_client: LlmClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jump-forward: where the schema leaves one continuation (`", "country": "`), those tokens go into one batch
    with the sampled one, so an answer takes fewer decodes per token."""
    import llama_cpp

    from tests.conftest import llama_model

    decodes = 0
    real = llama_cpp.llama_decode

    def counted(ctx: Any, batch: Any) -> int:
        nonlocal decodes
        decodes += 1
        return int(real(ctx, batch))

    monkeypatch.setattr(llama_cpp, "llama_decode", counted)
    client = llama_client
    decoder = llama_model(client)._decoder
    answers, steps = [], []
    for together in (True, False):
        decoder.jump_forward, decodes = together, 0
        answers.append(await client.chat(PROMPTS["nested"], schema=SCHEMAS["nested"], max_tokens=200))
        steps.append(decodes)
    decoder.jump_forward = True
    for answer in answers:
        jsonschema.validate(answer.parsed, SCHEMAS["nested"])
    # the same answer, as a rule; not asserted letter for letter: batches of another shape may take other CPU
    # kernels (the documented exception to batch invariance), and a long answer can then diverge
    per_token = [n / a.usage.completion_tokens for n, a in zip(steps, answers, strict=True)]
    assert per_token[0] < 0.8 * per_token[1], f"decodes with jump-forward {steps}, tokens {[a.usage for a in answers]}"
