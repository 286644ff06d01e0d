"""A synthetic model with Gemma 3's 262,144-token vocabulary on SmolLM2's tokenizer: llama.cpp and llguidance take it.

The file is written once per session (a few seconds, nearly all of it reading and writing the tokenizer's strings)
and loaded once per module; each test then checks one thing the structured-output benchmarks rely on.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import pytest

from llmclient._native import import_numpy

pytestmark = pytest.mark.slow

N_VOCAB = 262_144


@pytest.fixture(scope="module")
def llm(vocab_262k: Path) -> Iterator[llama_cpp.Llama]:
    model = llama_cpp.Llama(model_path=str(vocab_262k), n_ctx=512, n_threads=1, verbose=False)
    yield model
    model.close()


def test_the_file_is_small_and_llama_cpp_sees_262144_tokens(vocab_262k: Path, llm: llama_cpp.Llama) -> None:
    assert vocab_262k.stat().st_size < 64 << 20  # the tied Q4_0 embedding is nearly all of it
    assert llm.n_vocab() == N_VOCAB
    assert llm.metadata["tokenizer.chat_template"].startswith("{% for message in messages %}")


def test_text_tokenizes_as_smollm2_does_and_round_trips(smollm2: Path, llm: llama_cpp.Llama) -> None:
    donor = llama_cpp.Llama(model_path=str(smollm2), vocab_only=True, verbose=False)
    try:
        for text in (b"Hello world", b'<|im_start|>user\n{"a": [1, 2]}<|im_end|>'):
            tokens = llm.tokenize(text, add_bos=False, special=True)
            assert tokens == donor.tokenize(text, add_bos=False, special=True)
            assert llm.detokenize(tokens, special=True) == text
    finally:
        donor.close()


def test_appended_tokens_are_distinct_lowercase_words(llm: llama_cpp.Llama) -> None:
    pieces = [llm.detokenize([token]) for token in range(N_VOCAB - 1000, N_VOCAB)]
    assert len(set(pieces)) == len(pieces)
    assert all(piece.strip().isalpha() and piece.strip().islower() for piece in pieces)


def test_greedy_generation_emits_tokens_from_finite_logits(llm: llama_cpp.Llama) -> None:
    np = import_numpy()
    llm.reset()  # type: ignore[no-untyped-call]
    llm.eval(llm.tokenize(b"Hello world", add_bos=False))
    generated = []
    for _ in range(8):
        assert np.isfinite(llm.scores[llm.n_tokens - 1]).all()
        token = llm.sample(temp=0.0)
        generated.append(token)
        llm.eval([token])
    assert len(generated) == 8 and all(0 <= token < N_VOCAB for token in generated)


def test_llguidance_builds_a_tokenizer_of_262144_tokens(llm: llama_cpp.Llama) -> None:
    llamacpp = pytest.importorskip("llguidance.llamacpp")
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    eos = llama_cpp.llama_vocab_eos(vocab)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # it reads token attributes through a deprecated call
        tokenizer = llamacpp.lltokenizer_from_vocab(vocab, eos_token=[eos])

    assert tokenizer.vocab_size == N_VOCAB
    assert tokenizer.eos_tokens == [eos]
    assert tokenizer.tokenize_str("Hello world") == llm.tokenize(b"Hello world", add_bos=False)
    assert tokenizer.decode_bytes([N_VOCAB - 1]) == llm.detokenize([N_VOCAB - 1])
