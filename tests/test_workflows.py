"""Typed answers on the real model: right where it knows, of the right type and range where it does not."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from llmclient import (
    Capabilities,
    Decision,
    InvalidRequestError,
    InvalidRequestTypeError,
    LlmClient,
    SyncLlmClient,
    UnsupportedFeatureError,
)
from llmclient.backends import GenerateRequest
from llmclient.testing import FakeEngine

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def client(smollm2: Path) -> AsyncIterator[LlmClient]:
    async with await LlmClient.llama_cpp().local(smollm2).ctx(2048).parallel(5).temperature(0.0).init() as made:
        yield made


async def test_questions_it_knows_get_the_right_typed_answer(client: LlmClient) -> None:
    assert await client.boolean("Is Paris the capital of France?") is True
    assert await client.boolean("Is the sun cold?") is False
    assert await client.integer("How many legs does a dog have?", min=0, max=10) == 4
    assert await client.choice("Which is a fruit?", ["car", "apple", "rock"]) == "apple"
    assert await client.ask("What is the capital of France? One word.", max_tokens=8) != ""


async def test_questions_it_cannot_answer_still_get_the_type_and_range(client: LlmClient) -> None:
    legs = await client.integer("How many legs does a dog have?", min=13, max=17)
    assert isinstance(legs, int) and 13 <= legs <= 17, "the range holds by value, whatever the model believes"
    big = await client.integer("How many grains of sand are on Earth?", min=-5, max=250)
    assert isinstance(big, int) and -5 <= big <= 250
    assert await client.boolean("What did I eat for breakfast yesterday?", allow_none=True) is None
    for options in (["apple pie", "apple", "pie"], ["pie", "apple", "apple pie"], ["apple", "apple pie"]):
        picked = await client.choice("Which dessert is best?", options)
        assert picked in options, "an option matched whole, whatever the order and overlap"
    reasoned = await client.integer("How many days are in a week?", min=1, max=9, reason=True)
    assert isinstance(reasoned, int) and 1 <= reasoned <= 9
    assert isinstance(client.last_reasoning, str) and client.last_reasoning


async def test_each_task_sees_the_reasoning_of_its_own_last_call(client: LlmClient) -> None:
    seen: dict[str, str | None] = {}

    async def ask(name: str, question: str) -> None:
        await client.boolean(question, reason=True)
        seen[name] = client.last_reasoning

    before = client.last_reasoning
    async with anyio.create_task_group() as tg:
        tg.start_soon(ask, "a", "Is water wet?")
        tg.start_soon(ask, "b", "Is fire cold?")
    assert seen["a"] and seen["b"] and seen["a"] != seen["b"]
    assert client.last_reasoning == before, "the calls of other tasks do not change this task's"


TEXTS = [
    "Anna flew from Paris to Tokyo, then took a train to Kyoto.",
    'He said "stop" twice; she said: nothing.\nThen, at 10:45, the bus left Oslo for Bergen.',
    "Zürich, São Paulo and Kraków are cities; so is Reykjavík.",
    "No cities here, only numbers: 1, 2, 3 and a backslash \\ and braces {}.",
    "The invoice lists 3 items: a lamp (12 EUR), a chair (40 EUR) and a desk (150 EUR).",
    "Contact: alice@example.com, bob@example.org; phone +44 20 7946 0958.",
]


@pytest.mark.parametrize("text", TEXTS)
async def test_extract_never_returns_a_string_absent_from_the_text(client: LlmClient, text: str) -> None:
    for instruction in ("List the cities mentioned in the text.", "List the names and numbers in the text."):
        items = await client.extract(instruction, text, max_items=4, max_tokens=80)
        assert len(items) <= 4
        assert all(isinstance(i, str) and i and i in text for i in items), items


@dataclasses.dataclass
class Item:
    name: str
    price_eur: int


async def test_extract_with_an_item_type_returns_values_of_it(client: LlmClient) -> None:
    items = await client.extract("List the items with their prices.", TEXTS[4], item=Item, max_items=3)
    assert 1 <= len(items) <= 3 and all(isinstance(i, Item) and isinstance(i.price_eur, int) for i in items)


async def test_decide_counts_votes_asked_at_once_and_never_loops(client: LlmClient) -> None:
    decision = await client.decide("Which is a fruit?", ["car", "apple", "rock"], votes=5)
    assert isinstance(decision, Decision) and sum(decision.votes.values()) == 5
    assert decision.choice in ("car", "apple", "rock")
    assert decision.confidence == max(decision.votes.values()) / 5 and len(decision.reasons) == 5
    yes_no = await client.decide("Is the sea salty?", bool, votes=3)
    assert yes_no.choice in (True, False) and sum(yes_no.votes.values()) == 3


async def test_votes_run_concurrently_each_with_its_own_seed_and_temperature() -> None:
    running: list[int] = []
    engine: FakeEngine

    def vote(request: GenerateRequest) -> list[str]:
        running.append(engine.running)
        return ["Reasoning: it grows on trees.", "\nAnswer: ", "apple"]

    engine = FakeEngine(vote, delay=0.01, parallel=5, capabilities=Capabilities(structured_output=True, parallel=5))
    async with LlmClient(engine) as client:
        decision = await client.decide("Which is a fruit?", ["car", "apple"], votes=5)
    assert decision == Decision("apple", {"apple": 5}, 1.0, ("it grows on trees.",) * 5)
    assert max(running) == 5, "all five votes generated at once"
    settings = [r.sampling.settings() for r in engine.requests]
    assert len({s["seed"] for s in settings}) == 5 and [s["temperature"] for s in settings] == sorted(
        s["temperature"] for s in settings
    )


async def test_typed_answers_need_structured_output_and_valid_arguments() -> None:
    async with LlmClient(FakeEngine("yes")) as plain:
        with pytest.raises(UnsupportedFeatureError):
            await plain.boolean("Is it?")
    async with LlmClient(FakeEngine("Answer: 3", capabilities=Capabilities(structured_output=True))) as fake:
        with pytest.raises(InvalidRequestError, match="min .* is above max"):
            await fake.integer("n?", min=5, max=1)
        with pytest.raises(InvalidRequestError, match="different from one another"):
            await fake.choice("which?", ["a", "a"])
        with pytest.raises(InvalidRequestError, match="votes must be"):
            await fake.decide("which?", ["a", "b"], votes=0)
        with pytest.raises(InvalidRequestError, match="the question is empty"):
            await fake.boolean("  ")
        with pytest.raises(InvalidRequestTypeError, match="both must be strings"):
            await fake.extract("List the cities.", None)  # type: ignore[arg-type]


def test_the_sync_twin_answers_the_same_way(smollm2: Path) -> None:
    with SyncLlmClient.from_path(smollm2, ctx=1024, parallel=1, temperature=0.0) as client:
        assert client.boolean("Is Paris the capital of France?") is True
        assert client.integer("How many legs does a dog have?", min=0, max=10, reason=True) in range(11)
        assert client.last_reasoning
