"""Embeddings on the real llama.cpp engine: SmolLM2 opted in with mean pooling, and a synthetic BERT encoder.

The BERT file is written with the `gguf` package (`write_synthetic_bert`): llama.cpp's `bert` architecture with
non-causal attention and the pooling in its metadata, as an embedding GGUF has; its weights are random, so its
vectors mean nothing, but every path a real encoder takes (WordPiece tokens, [CLS]/[SEP], one micro-batch per
batch, pooled outputs) is the real one.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import numpy
import pytest

from llmclient import (
    Capabilities,
    ContextOverflowError,
    InvalidRequestError,
    InvalidRequestTypeError,
    LlmClient,
    UnsupportedFeatureError,
)
from llmclient.backends import EmbedRequest
from llmclient.backends.llama_cpp._embed import STEP_TOKENS, EmbedDecoder
from llmclient.backends.llama_cpp._tap import HiddenTap
from llmclient.testing import FakeEngine
from llmclient.testing.synthetic import TINY_BERT, write_synthetic_bert
from tests.conftest import llama_model

pytestmark = pytest.mark.anyio

TEXTS = [
    "The cat sat on the mat.",
    "A ship sails across the sea at night.",
    "Rain fell on the city all day long.",
    "Which river runs through the old town?",
    "The fox and the dog ran up the road.",
]
#: Alone and in a batch, the same text's vectors agree this closely (each component of unit vectors): batches of
#: other sizes take other CPU kernels (matrix tiles, flash attention's tiled path at 64+ queries), which sum in
#: another order, so the last digits differ; measured here up to ~4e-3 for SmolLM2 with flash attention.
TOLERANCE = 1e-2


@pytest.fixture(scope="session")
def bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-layer BERT encoder GGUF with mean pooling declared in its metadata."""
    return write_synthetic_bert(tmp_path_factory.mktemp("bert") / "tiny-bert-F16.gguf")


def _embedder(client: LlmClient) -> EmbedDecoder:
    embedder = llama_model(client)._embedder
    assert embedder is not None
    return embedder


async def test_an_encoder_gives_one_unit_vector_of_its_dimension_per_text(bert: Path) -> None:
    async with await LlmClient.from_path(bert) as client:
        assert client.capabilities.embeddings and not client.capabilities.generation
        vectors = await client.embed(TEXTS)
        single = await client.embed(TEXTS[0])
    assert len(vectors) == len(TEXTS) and all(len(v) == TINY_BERT.n_embd for v in vectors)
    assert all(isinstance(x, float) for x in vectors[0])
    assert numpy.allclose(numpy.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len(single) == 1 and len(single[0]) == TINY_BERT.n_embd
    assert len({tuple(v) for v in vectors}) == len(TEXTS), "different texts, different vectors"


async def test_normalize_false_gives_the_pooled_vectors_whose_direction_normalize_gives(bert: Path) -> None:
    async with await LlmClient.from_path(bert) as client:
        raw = await client.embed_array(TEXTS, normalize=False)
        unit = await client.embed_array(TEXTS)
    assert raw.dtype == numpy.float32 and raw.shape == unit.shape == (len(TEXTS), TINY_BERT.n_embd)
    norms = numpy.linalg.norm(raw, axis=1)
    assert not numpy.allclose(norms, 1.0, atol=1e-3), "raw vectors are not already unit length"
    assert numpy.allclose(raw / norms[:, None], unit, atol=1e-6)


@pytest.mark.parametrize("model", ["bert", "smollm2"])
async def test_a_text_embeds_the_same_alone_and_anywhere_in_a_batch(model: str, bert: Path, smollm2: Path) -> None:
    builder = LlmClient.llama_cpp().local(bert) if model == "bert" else LlmClient.llama_cpp().local(smollm2).ctx(1024)
    async with await builder.pooling("mean").init() as client:
        alone = await client.embed_array(TEXTS[2])
        batched = await client.embed_array(TEXTS)
        reversed_ = await client.embed_array(TEXTS[::-1])
        crowded = await client.embed_array(TEXTS * 10)  # 50 texts: one batch of 64+ tokens, other kernels
        others = await client.embed_array([*TEXTS[:2], *TEXTS[3:]])
    assert numpy.abs(batched[2] - alone[0]).max() < TOLERANCE
    assert numpy.abs(reversed_[::-1] - batched).max() < TOLERANCE
    assert numpy.abs(crowded[2::5] - alone[0]).max() < TOLERANCE
    # the tolerance tells texts apart: every other text is farther from this one than it
    assert numpy.abs(others - alone[0]).max(axis=1).min() > TOLERANCE


async def test_many_texts_take_few_decodes_and_come_back_in_order(bert: Path) -> None:
    texts = [f"the {w} of the {v} river" for w in ("cat", "dog", "fox", "sun", "moon") for v in range(40)]
    async with await LlmClient.from_path(bert) as client:
        embedder = _embedder(client)
        before = embedder.decodes
        vectors = await client.embed_array(texts)
        decodes = embedder.decodes - before
        lengths = [len(t) for t in embedder.prepare(EmbedRequest(tuple(texts))).texts]
        alone = [await client.embed_array(t) for t in texts[::37]]
    # every step but the last is full to within one text: the fewest whole-text batches of STEP_TOKENS
    fewest = -(-sum(lengths) // (STEP_TOKENS - max(lengths) + 1))
    assert decodes <= fewest < len(texts) // 4, f"{len(texts)} texts in {decodes} decodes"
    for got, want in zip(vectors[::37], alone, strict=True):
        assert numpy.abs(got - want[0]).max() < TOLERANCE


async def test_no_texts_give_no_vectors(bert: Path) -> None:
    async with await LlmClient.from_path(bert) as client:
        assert await client.embed([]) == []
        assert (await client.embed_array(())).shape == (0, 0)


@pytest.mark.parametrize(
    ("texts", "error", "message"),
    [
        (["fine", ""], InvalidRequestError, r"text 1 is empty"),
        (["fine", 3], InvalidRequestTypeError, r"text 1 is int, not a string"),
        ([None], InvalidRequestTypeError, r"text 0 is NoneType"),
        (b"bytes", InvalidRequestTypeError, r"decode bytes first"),
        (42, InvalidRequestTypeError, r"a string or a list of strings, got int"),
    ],
)
async def test_bad_texts_are_refused_before_any_work(bert: Path, texts: object, error: type, message: str) -> None:
    async with await LlmClient.from_path(bert) as client:
        before = _embedder(client).decodes
        with pytest.raises(error, match=message):
            await client.embed(texts)  # type: ignore[arg-type]
        assert _embedder(client).decodes == before


async def test_a_text_longer_than_the_model_takes_is_cut_or_named(bert: Path) -> None:
    phrase = "the cat sat on the road "  # 8 tokens: the, cat, s, a, t, on, the, road
    long = phrase * 20
    # what the model reads of it: [CLS], 62 tokens, [SEP] (the end token is kept when a text is cut)
    first_64 = phrase * 7 + "the cat sat on"
    async with await LlmClient.from_path(bert, ctx=64) as client:
        with pytest.raises(
            ContextOverflowError, match=r"text 1 of 2 is 162 tokens but this model embeds at most 64"
        ) as caught:
            await client.embed(["short", long], truncate=False)
        assert (caught.value.prompt_tokens, caught.value.n_ctx) == (162, 64)
        cut = await client.embed_array([long, long + " and then a dog came by", first_64, phrase * 7])
    # the same tokens in one batch: the same arithmetic, to the last bits (the random encoder's vectors of similar
    # texts are close, so a tolerance for other batches would not tell them apart)
    assert numpy.abs(cut[0] - cut[1]).max() < 1e-5, "past the limit, the rest of a text is not read"
    assert numpy.abs(cut[0] - cut[2]).max() < 1e-5, "up to it, every token is, and the end token is kept"
    assert numpy.abs(cut[0] - cut[3]).max() > 1e-4, "a text of 6 tokens fewer is another vector"


async def test_an_embedding_model_refuses_chat_and_a_chat_model_refuses_embed_unless_given_a_pooling(
    bert: Path, smollm2: Path
) -> None:
    async with await LlmClient.from_path(bert) as client:
        with pytest.raises(UnsupportedFeatureError, match=r"embedding model.*client\.embed") as caught:
            await client.chat("Hello")
        assert caught.value.feature == "generation"
        with pytest.raises(UnsupportedFeatureError):
            await client.complete("Once upon")
    async with await LlmClient.from_path(smollm2, ctx=1024) as client:
        assert not client.capabilities.embeddings and client.capabilities.generation
        with pytest.raises(UnsupportedFeatureError, match=r"\.pooling\('mean'\)") as refused:
            await client.embed("Hello")
        assert refused.value.feature == "embeddings"
    async with await LlmClient.from_path(smollm2, ctx=1024, pooling="mean", temperature=0.0) as client:
        assert client.capabilities.embeddings and client.capabilities.generation
        answer = await client.chat("What is the capital of France? One word.", max_tokens=8)
        vectors = await client.embed(["Paris", "France"])
        assert answer.text and len(vectors) == 2 and len(vectors[0]) == llama_model(client).dimension


async def test_an_engine_without_embeddings_refuses_embed() -> None:
    async with LlmClient(FakeEngine()) as client:
        with pytest.raises(UnsupportedFeatureError, match="does not embed"):
            await client.embed(["a"])


async def test_kind_puts_the_models_prefix_before_each_text(bert: Path) -> None:
    builder = LlmClient.llama_cpp().local(bert).embed_prefixes(query="which ", document="the ")
    async with await builder.init() as client:
        query = await client.embed_array(["cat sat"], kind="query")
        document = await client.embed_array(["cat sat"], kind="document")
        plain = await client.embed_array(["cat sat", "which cat sat", "the cat sat"])
        with pytest.raises(InvalidRequestError, match="kind must be 'query', 'document' or None"):
            await client.embed(["cat"], kind="passage")  # type: ignore[arg-type]
    assert numpy.abs(query[0] - plain[1]).max() < TOLERANCE and numpy.abs(document[0] - plain[2]).max() < TOLERANCE
    assert numpy.abs(query[0] - plain[0]).max() > TOLERANCE


async def test_embedding_and_chat_models_in_one_process_take_turns_on_the_decode_thread(
    bert: Path, smollm2: Path
) -> None:
    """A big embedding request is many steps; the chat model steps between them, so its answer goes on meanwhile."""
    texts = [f"text number {i} about the city by the river" for i in range(600)]
    async with (
        await LlmClient.from_path(bert) as embedder,
        await LlmClient.from_path(smollm2, ctx=1024, temperature=0.0) as chat,
    ):
        decoder = _embedder(embedder)
        pieces_during: list[int] = []

        async def stream() -> None:
            async for chunk in chat.stream("Count from 1 to 50, one number per line.", max_tokens=120):
                if decoder.active:
                    pieces_during.append(len(chunk.text))

        async with anyio.create_task_group() as tg:
            tg.start_soon(stream)
            await anyio.sleep(0.2)  # the stream first: its prompt read, it is generating
            before = decoder.decodes
            vectors = await embedder.embed_array(texts)
            steps = decoder.decodes - before
    assert vectors.shape == (len(texts), TINY_BERT.n_embd) and steps > 1
    assert pieces_during, f"the chat stream produced nothing during the {steps} embedding steps"


def test_the_sync_twin_embeds(bert: Path) -> None:
    with LlmClient.llama_cpp().local(bert).init_sync() as client:
        vectors = client.embed(TEXTS[:2])
        array = client.embed_array(TEXTS[:2])
    assert len(vectors) == 2 and numpy.abs(numpy.asarray(vectors, numpy.float32) - array).max() < 1e-6


async def test_last_token_pooling_reads_an_end_of_text_token_the_tokenizer_would_not_add(smollm2: Path) -> None:
    async with await LlmClient.from_path(smollm2, ctx=1024, pooling="last") as client:
        embedder = _embedder(client)
        tokens = embedder.prepare(EmbedRequest(("The cat sat.",))).texts[0]
        eos = int(_vocab_eos(client))
        vectors = await client.embed_array(["The cat sat.", "The cat sat. And then?"])
    assert tokens[-1] == eos and tokens.count(eos) == 1
    assert numpy.abs(vectors[0] - vectors[1]).max() > TOLERANCE, "the last token read is each text's own end"


def _vocab_eos(client: LlmClient) -> int:
    import llama_cpp

    return int(llama_cpp.llama_vocab_eos(llama_model(client)._model.vocab))


async def test_a_cancelled_embed_stops_at_the_next_step_and_the_model_goes_on(bert: Path) -> None:
    texts = [f"the cat by the river, number {i}" for i in range(3000)]
    async with await LlmClient.from_path(bert) as client:
        decoder = _embedder(client)
        needed = sum(len(t) for t in decoder.prepare(EmbedRequest(tuple(texts))).texts) // STEP_TOKENS
        before = decoder.decodes
        with anyio.CancelScope() as scope:

            async def cancel_after_first_step() -> None:
                while decoder.decodes == before:
                    await anyio.sleep(0.001)
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_after_first_step)
                await client.embed(texts)
        assert scope.cancelled_caught
        after = await client.embed(TEXTS)  # the model is free again, and the next request is whole
        done = decoder.decodes - before
    assert len(after) == len(TEXTS) and decoder.active == 0
    assert done < needed / 2, f"{done} of {needed} steps ran after the cancel"


async def test_with_last_token_pooling_a_long_text_is_read_over_several_steps_as_if_whole(
    smollm2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mean pooling and encoders need each text whole in one batch; last-token pooling can take a long text a step
    at a time (the cache keeps what was read), so a chat model beside it waits one step, not the whole text."""
    from llmclient.backends.llama_cpp import _embed

    long = " ".join(TEXTS * 14)  # ~600 tokens: a step and a bit
    async with await LlmClient.from_path(smollm2, ctx=2048, pooling="last") as client:
        decoder = _embedder(client)
        length = len(decoder.prepare(EmbedRequest((long,))).texts[0])
        before = decoder.decodes
        split = await client.embed_array([long, TEXTS[0]])
        steps = decoder.decodes - before
        monkeypatch.setattr(_embed, "STEP_TOKENS", 2048)
        before = decoder.decodes
        whole = await client.embed_array([long, TEXTS[0]])
        assert decoder.decodes - before == 1
    assert length > STEP_TOKENS and steps == -(-length // STEP_TOKENS) + 1
    assert numpy.abs(split - whole).max() < TOLERANCE


async def test_a_fake_engine_embeds_for_tests_of_code_that_embeds() -> None:
    engine = FakeEngine(capabilities=Capabilities(embeddings=True), embed_dimension=16)
    async with LlmClient(engine, embed_prefixes={"query": "q: "}) as client:
        first = await client.embed(["alpha", "beta"], kind="query")
        again = await client.embed_array("alpha", kind="query")
    assert len(first) == 2 and len(first[0]) == 16 and numpy.allclose(numpy.linalg.norm(first, axis=1), 1.0)
    assert numpy.allclose(first[0], again[0]) and not numpy.allclose(first[0], first[1])
    assert [r.texts for r in engine.embedded] == [("q: alpha", "q: beta"), ("q: alpha",)]


def second_context(embedder: EmbedDecoder) -> object:
    """The decoder's context for texts longer than a step (None until one came)."""
    return embedder._long


async def test_a_text_longer_than_a_step_is_pooled_whole_in_a_context_of_its_own(smollm2: Path) -> None:
    """Mean pooling needs a whole text in one micro-batch: a text past `STEP_TOKENS` goes alone to a second context
    sized for the longest text, made when the first one comes; short texts keep the step-sized one."""
    import llama_cpp

    long_text = " ".join(
        f"Line {i}: the {('fox', 'owl', 'heron')[i % 3]} crossed the river at dawn." for i in range(70)
    )
    async with await LlmClient.from_path(smollm2, ctx=2048, pooling="mean") as client:
        embedder = _embedder(client)
        short = await client.embed_array(TEXTS)
        assert second_context(embedder) is None  # no long text yet: no second context
        (length,) = [len(t) for t in embedder.prepare(EmbedRequest((long_text,))).texts]
        mixed = await client.embed_array([TEXTS[0], long_text, TEXTS[1]])
        assert second_context(embedder) is not None
        alone = await client.embed_array(long_text)
    reference = llama_cpp.Llama(
        str(smollm2), embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, n_ctx=2048, n_batch=2048,
        n_ubatch=2048, verbose=False,
    )  # fmt: skip
    try:
        theirs = numpy.asarray(reference.embed(long_text, normalize=True), numpy.float32)
    finally:
        reference.close()
    assert STEP_TOKENS < length <= 2048
    assert float(alone[0] @ theirs) > 0.999  # the whole text's mean, as llama.cpp pools it in one micro-batch
    assert numpy.abs(mixed[1] - alone[0]).max() < TOLERANCE
    assert numpy.abs(mixed[[0, 2]] - short[:2]).max() < TOLERANCE  # the short ones around it: as without it
    assert float(short[0] @ alone[0]) < 0.99


def _taps(embedder: EmbedDecoder) -> list[HiddenTap]:
    """The taps of the decoder's contexts (a causal model's: where its decodes stop at the hidden states)."""
    contexts = (embedder._main, embedder._long)
    return [c.tap for c in contexts if c is not None and c.tap is not None]


@pytest.mark.parametrize("pooling", ["mean", "last"])
async def test_a_causal_model_pools_its_hidden_states_and_skips_the_vocabularys_logits(
    smollm2: Path, pooling: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """llama.cpp's graph of a chat model computes every token's logits after the hidden states it pools; a tap stops
    each decode at the hidden states and pools them as llama.cpp does (here against llama.cpp pooling the same
    batches, the tap off): the same vectors, with every decode cut short."""
    from llmclient.backends.llama_cpp import _embed

    texts = [*TEXTS, " ".join(TEXTS * 14)]  # the last one (~600 tokens) is longer than a step
    async with await LlmClient.from_path(smollm2, ctx=2048, pooling=pooling) as client:
        embedder = _embedder(client)
        before = embedder.decodes
        tapped = await client.embed_array(texts)
        decodes = embedder.decodes - before
        taps = _taps(embedder)
    monkeypatch.setattr(_embed, "HIDDEN", None)  # llama.cpp computes the whole graph and pools
    async with await LlmClient.from_path(smollm2, ctx=2048, pooling=pooling) as client:
        assert _taps(_embedder(client)) == []
        pooled = await client.embed_array(texts)
    assert taps and all(t.armed for t in taps)
    assert sum(t.cuts for t in taps) == decodes >= 2  # every decode stopped before the logits
    assert numpy.abs(tapped - pooled).max() < 1e-4  # summed in another order: the last float digits differ


@pytest.mark.parametrize("node", [b"attn_norm-0", b"no-such-node"])
async def test_a_tap_that_does_not_pool_as_llama_cpp_does_is_turned_off_before_any_text(
    smollm2: Path, node: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each new tap is checked against llama.cpp's own pooling of two texts: a graph whose node of that name is not
    the pooled hidden states (here the first layer's norm), or that has no such node (another architecture's
    naming), keeps llama.cpp's pooling, and its vectors are right."""
    from llmclient.backends.llama_cpp import _embed

    async with await LlmClient.from_path(smollm2, pooling="mean") as client:
        right = await client.embed_array(TEXTS)
    monkeypatch.setattr(_embed, "HIDDEN", node)
    async with await LlmClient.from_path(smollm2, pooling="mean") as client:
        (tap,) = _taps(_embedder(client))
        assert not tap.armed
        got = await client.embed_array(TEXTS)
    assert tap.cuts == 0 and numpy.abs(got - right).max() < 1e-4


async def test_an_encoder_has_no_logits_to_skip_and_llama_cpp_pools(bert: Path) -> None:
    async with await LlmClient.from_path(bert) as client:
        assert _taps(_embedder(client)) == []
        assert len(await client.embed(TEXTS)) == len(TEXTS)


def test_with_layers_on_a_gpu_llama_cpp_computes_the_whole_graph(smollm2: Path) -> None:
    """On a GPU the logits cost less than stopping the graph (an H200 embedded SmolLM2 at 0.87-0.92x with a tap),
    so a decoder whose model is offloaded has none; on the CPU the same model has one."""
    import llama_cpp
    from llama_cpp import _internals

    model = _internals.LlamaModel(path_model=str(smollm2), params=llama_cpp.llama_model_default_params(),
                                  verbose=False)  # fmt: skip
    try:
        for on_cpu in (False, True):
            decoder = EmbedDecoder(llama_cpp, model, pooling=1, max_tokens=512, causal=True, threads=2,
                                   flash_attn=True, verbose=False, on_cpu=on_cpu)  # fmt: skip
            try:
                assert [t.armed for t in _taps(decoder)] == ([True] if on_cpu else [])
            finally:
                decoder.close()
    finally:
        model.close()  # type: ignore[no-untyped-call]
