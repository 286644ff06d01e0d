"""The mistral.rs engine's own parts: the extra, its environment, what it refuses, the planner's sizing, and each
workaround for a bug of mistral.rs 0.9.5 shown to hold (`llmclient/backends/mistralrs/workarounds.py`).

The client behaviour it shares with llama.cpp (chat, stream, cancel, timeout, queue, close, structured output) is
tested on both engines in test_client.py and test_structured.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import jsonschema
import pytest

from llmclient import (
    ContextOverflowError,
    InvalidSettingError,
    LlmClient,
    MissingDependencyError,
    UnsupportedFeatureError,
    UnsupportedModelError,
)
from llmclient.backends.mistralrs import MistralRsEngine, MistralRsSettings
from llmclient.backends.mistralrs.workarounds import ToolMarkupFilter
from llmclient.hardware import detect
from llmclient.metadata import read_gguf_info
from llmclient.quants import quant_named
from llmclient.testing.synthetic import ModelShape, write_synthetic_gguf

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}


def python(
    script: str, env: dict[str, str] | None = None, prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [*(prefix or []), sys.executable, "-c", script]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
async def client(smollm2: Path) -> AsyncIterator[LlmClient]:
    builder = (
        LlmClient.mistral_rs().local(smollm2).ctx(1024).parallel(2).temperature(0.0).in_situ_quant("Q8_0").threads(1)
    )
    async with await builder.init() as made:
        yield made


def test_without_the_extra_mistral_rs_says_how_to_install() -> None:
    script = (
        "import sys\n"
        "sys.modules['mistralrs'] = None  # as where the extra is not installed\n"
        "from llmclient import LlmClient, MissingDependencyError\n"
        "try:\n"
        "    LlmClient.mistral_rs()\n"
        "except MissingDependencyError as error:\n"
        "    print(isinstance(error, ImportError), error.package, error.extra)\n"
        "    print(error)\n"
    )
    result = python(script)
    assert result.returncode == 0, result.stderr
    first, message = result.stdout.splitlines()
    assert first == "True mistralrs mistralrs"
    assert 'pip install "llmclient[mistralrs]"' in message and "LlmClient.llama_cpp()" in message
    assert issubclass(MissingDependencyError, ImportError)


def test_importing_llmclient_and_making_a_builder_does_not_import_mistralrs() -> None:
    script = (
        "import sys\n"
        "import llmclient, llmclient.backends.mistralrs\n"
        "llmclient.LlmClient.mistral_rs().smollm2_135m_instruct().in_situ_quant('Q8_0')\n"
        "print('mistralrs' in sys.modules)\n"
    )
    result = python(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


#: Loads SmolLM2 through the engine and answers once; prints the answer and what it set before the import.
_CHILD = """
import os, sys, anyio
from llmclient import LlmClient

async def main():
    builder = LlmClient.mistral_rs().local(sys.argv[1]).ctx(512).temperature(0.0).in_situ_quant("Q8_0")
    async with await builder.init() as client:
        answer = await client.chat("What is the capital of France? One word.", max_tokens=8)
    print("ANSWER", answer.finish_reason, answer.usage.completion_tokens > 0)
    print("ENV", os.environ.get("RUST_LOG"), os.environ.get("RAYON_NUM_THREADS"))

anyio.run(main)
"""


def _bare_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RUST_LOG", "RAYON_NUM_THREADS", "HF_HUB_OFFLINE")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_mistralrs_prints_nothing_on_stdout_and_an_apps_own_rust_log_is_kept(smollm2: Path) -> None:
    """mistral.rs logs to stdout, in colour, from its import on, unless RUST_LOG is set before it."""
    child = _CHILD.replace("sys.argv[1]", repr(str(smollm2)))
    result = python(child, env=_bare_env())
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("ANSWER ") and lines[0].endswith(" True"), result.stdout[-2000:]
    assert lines[1] == f"ENV error {detect().physical_cores}", "the log filter and the plan's threads, set first"
    kept = python(child, env=_bare_env(RUST_LOG="warn", RAYON_NUM_THREADS="1"))
    assert kept.returncode == 0, kept.stderr[-2000:]
    assert kept.stdout.splitlines()[-1] == "ENV warn 1"


@pytest.mark.skipif(not Path("/usr/bin/strace").exists(), reason="needs strace to watch connect() calls")
def test_a_local_file_loads_and_answers_without_a_single_network_connection(smollm2: Path) -> None:
    """Without HF_HUB_OFFLINE: the engine asks mistral.rs for no hub token and gives it a local folder."""
    trace = ROOT / ".pytest_cache" / "mistralrs-connect.trace"
    trace.parent.mkdir(exist_ok=True)
    prefix = ["strace", "-f", "-e", "trace=connect", "-o", str(trace)]
    result = python(_CHILD.replace("sys.argv[1]", repr(str(smollm2))), env=_bare_env(), prefix=prefix)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ANSWER ")
    calls = [line for line in trace.read_text().splitlines() if "connect(" in line]
    assert [c for c in calls if "AF_INET" in c] == [], calls


async def test_a_gemma3_model_is_refused_naming_the_problem_and_the_llama_cpp_engine(tmp_path: Path) -> None:
    path = write_synthetic_gguf(tmp_path / "tiny-gemma3.gguf", ModelShape("gemma3", 2, 256, 4, 1, 512, 1024, 4096, 64))
    with pytest.raises(UnsupportedModelError, match="gemma3 GGUF tokenizer wrongly") as refused:
        await LlmClient.mistral_rs().local(path).plan()  # at the plan: before any download
    assert refused.value.architecture == "gemma3" and "LlmClient.llama_cpp()" in str(refused.value)
    with pytest.raises(UnsupportedModelError, match="gemma3"):
        await MistralRsEngine.load(path, MistralRsSettings())  # and by the engine itself
    assert (await LlmClient.llama_cpp().local(path).plan()).file.filename == str(path), "llama.cpp takes it"


async def test_the_plan_sizes_the_weights_as_requantized_and_q4_1_becomes_q8_0_by_default(smollm2: Path) -> None:
    info = read_gguf_info(smollm2)
    base = LlmClient.mistral_rs().local(smollm2).ctx(1024)
    default, q8 = await base.plan(), await base.in_situ_quant("Q8_0").plan()
    as_is = await base.in_situ_quant(None).plan()
    llama = await LlmClient.llama_cpp().local(smollm2).ctx(1024).plan()
    assert [p.in_situ_quant for p in (default, q8, as_is, llama)] == ["Q8_0", "Q8_0", None, None]
    assert default.estimate == q8.estimate and any("requantized to Q8_0" in note for note in q8.notes)
    # the layers and output head grow by Q8_0's bits per weight over Q4_1's; the token embedding is held in f32
    requantized = sum(info.layer_bytes) + info.output_bytes
    q8_0, q4_1 = quant_named("Q8_0"), quant_named("Q4_1")
    assert q8_0 is not None and q4_1 is not None
    expected = requantized * (q8_0.bits_per_weight / q4_1.bits_per_weight - 1)
    assert abs((q8.estimate.weights - as_is.estimate.weights) - expected) <= 0.01 * expected
    f32 = info.vocab_size * info.embedding_length * 4
    assert as_is.estimate.weights - llama.estimate.weights == f32 - info.input_bytes
    with pytest.raises(InvalidSettingError, match="unknown in-situ quantization 'Q9'.*Q8_0"):
        base.in_situ_quant("Q9")
    assert base.in_situ_quant("q4_k")._in_situ_quant == "Q4K"


async def test_the_file_as_it_is_not_requantized_answers_and_keeps_to_a_schema(smollm2: Path) -> None:
    """`.in_situ_quant(None)`: mistral.rs runs SmolLM2's own Q4_1 weights; greedy answers are whole and a
    constrained one validates, as with the requantized weights the shared tests use."""
    builder = LlmClient.mistral_rs().local(smollm2).ctx(512).temperature(0.0).in_situ_quant(None).threads(1)
    async with await builder.init() as client:
        assert client.plan is not None and client.plan.in_situ_quant is None
        free = await client.chat("Name a colour.", max_tokens=12)
        typed = await client.chat("A city and its country, as JSON.", max_tokens=60, schema=CITY)
    assert free.text.strip() and free.usage.completion_tokens > 0
    assert typed.finish_reason == "stop" and set(typed.parsed) == {"city", "country"}
    jsonschema.validate(typed.parsed, CITY)


async def test_a_seed_is_refused_before_any_work(client: LlmClient) -> None:
    assert client.capabilities.seed is False and client.capabilities.structured_output
    with pytest.raises(UnsupportedFeatureError, match="no per-request seed") as refused:
        await client.chat("hi", seed=3)
    assert refused.value.feature == "seed"
    with pytest.raises(UnsupportedFeatureError, match="no per-request seed"):
        LlmClient.mistral_rs().seed(3)
    assert client.engine.running() == 0 and client.engine.waiting() == 0  # type: ignore[attr-defined]


async def test_a_raw_prompt_is_not_templated_and_an_overlong_one_is_refused(client: LlmClient) -> None:
    prompt = "1, 2, 3, 4, 5,"
    raw = await client.complete(prompt, max_tokens=6)
    chat = await client.chat(prompt, max_tokens=1)
    assert raw.usage.completion_tokens == 6 and raw.finish_reason == "length"
    engine = client.engine
    assert isinstance(engine, MistralRsEngine)
    tokens = len(engine._worker.call("tokenize_text", prompt, True, None))
    assert raw.usage.prompt_tokens == tokens, "a raw prompt goes as it is, without the chat template"
    assert chat.usage.prompt_tokens >= tokens + 15, "a chat goes through the chat template"
    with pytest.raises(ContextOverflowError, match=r"the prompt is \d+ tokens but the context holds 1024") as e:
        await client.complete("word " * 1100)
    assert e.value.prompt_tokens > 1024 and e.value.n_ctx == 1024
    with pytest.raises(ContextOverflowError):
        await client.chat("word " * 1100)


async def test_every_start_goes_through_the_admission_lock(client: LlmClient) -> None:
    engine = client.engine
    assert isinstance(engine, MistralRsEngine)
    before = engine.admitted
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(lambda: client.chat("Say hi.", max_tokens=4))
    assert engine.admitted == before + 4


async def test_calls_from_many_threads_at_once_are_taken_in_turn(client: LlmClient) -> None:
    """Two threads calling one Runner at once: `RuntimeError: Already borrowed`, unless every call takes the lock.
    A raw prompt's call holds the Runner until its answer is complete; tokenizing meanwhile waits its turn."""
    engine = client.engine
    assert isinstance(engine, MistralRsEngine)
    worker = engine._worker
    mistralrs = worker._mistralrs
    request = mistralrs.CompletionRequest(model="default", prompt="Once upon a time", max_tokens=24, temperature=0.0)
    errors: list[BaseException] = []
    counts: list[int] = []

    def complete() -> None:
        try:
            worker.call("send_completion_request", request)
        except BaseException as error:
            errors.append(error)

    def tokenize() -> None:
        try:
            counts.append(len(worker.call("tokenize_text", "Once upon a time", False, None)))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=complete), *(threading.Thread(target=tokenize) for _ in range(4))]

    def run_all() -> None:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    await anyio.to_thread.run_sync(run_all)
    assert errors == [] and len(counts) == 4 and len(set(counts)) == 1


def test_streamed_tool_call_markup_is_held_back_and_dropped() -> None:
    """mistral.rs streams `<tool` `_` `call` `>` as content before the parsed tool call; other text is kept whole,
    a `<` that starts no tag included. (Tool calls themselves reach the client with the tool types, on their own
    branch; this is the content side.)"""
    pieces = ["Let me check.", " <tool", "_", "call", ">", '{"name": "f"}', "</tool_call>", " a < b", "<", "/x"]
    markup = ToolMarkupFilter()
    out = [markup.feed(p) for p in pieces] + [markup.flush()]
    assert "".join(out) == 'Let me check. {"name": "f"} a < b</x'
    assert out[1:5] == [" ", "", "", ""], "nothing of a tag is let through while it may still be one"
    held = ToolMarkupFilter()
    assert held.feed("x <") == "x " and held.flush() == "<"


def test_the_sync_client_answers_on_mistral_rs_too(smollm2: Path) -> None:
    builder = LlmClient.mistral_rs().local(smollm2).ctx(512).temperature(0.0).in_situ_quant("Q8_0").threads(1)
    with builder.init_sync() as client:
        assert client.plan is not None and client.plan.in_situ_quant == "Q8_0"
        answer = client.chat("What is the capital of France? One word.", max_tokens=8)
        pieces = list(client.stream("Count to 3.", max_tokens=6))
    assert answer.usage.completion_tokens > 0 and answer.finish_reason in ("stop", "length")
    assert pieces[-1].finish_reason in ("stop", "length") and "".join(p.text for p in pieces)
