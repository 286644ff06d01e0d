"""Embeddings: texts/s against llama-cpp-python's `Llama.embed` on the same file and threads, and a chat model and
an embedding model used in turn in one process against each alone.

    python bench/embed.py [--model PATH] [--threads 2] [--rounds 3] [--short 1000] [--long 100] [--parts all]
    python bench/embed.py --parts side-by-side --rounds 6   # both systems in one process, alternating
    python bench/embed.py --gpu --threads 4 ...             # every layer on the GPU (llmclient's plan does it)

Every measurement runs in a fresh process (two llama.cpp users in one process would each start a team of compute
threads, which slows both), in an order that alternates each round; a figure is read as a ratio against the other
system's in the same round. Embeddings: `short` texts are one sentence (~20 tokens), `long` ones a paragraph of
~250 tokens; both systems mean-pool, normalize, pack up to 512 tokens per decode and use flash attention; load
time and a warm-up text are not timed. (On the CPU llmclient stops a causal model's decodes before the vocabulary's
logits, which llama-cpp-python computes: `llmclient/backends/llama_cpp/_tap.py`.) Alternation: the chat model
answers greedily (64 tokens), the embedding model embeds 100 short texts, `--turns` times each; alone, each does
its part in a process without the other.
llmclient's numpy variant (`embed_array`) is timed on the short texts too.

`side-by-side` (not part of `all`): both systems loaded in one process and used in turn, never at once, each set
measured on one then the other with the order swapped every round: seconds apart instead of a process start and a
load apart, for a machine whose speed drifts between runs (one compute team idles while the other works).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ANIMALS = ("fox", "cat", "heron", "otter", "badger", "owl", "wolf", "hare", "crow", "deer")
PLACES = ("river", "old mill", "harbour", "forest edge", "station", "market square", "orchard", "bridge")
ACTS = ("waited by", "ran past", "slept near", "looked across", "circled", "walked along", "hid behind")


def short_texts(n: int) -> list[str]:
    """n different one-sentence texts."""
    return [
        f"Note {i}: the {ANIMALS[i % 10]} {ACTS[i % 7]} the {PLACES[i % 8]} at {6 + i % 12} o'clock." for i in range(n)
    ]


def long_texts(n: int) -> list[str]:
    """n different paragraphs of about 250 tokens each (12 sentences; within one 512-token batch of both)."""
    return [" ".join(short_texts(n * 12)[i::n]) for i in range(n)]


def _embed_llmclient(model: Path, threads: int, sets: dict[str, list[str]], gpu: bool) -> dict[str, Any]:
    import anyio

    from llmclient import LlmClient

    async def run() -> dict[str, Any]:
        async with await LlmClient.from_path(model, pooling="mean", threads=threads, ctx=2048) as client:
            await client.embed("warm-up text")
            out: dict[str, Any] = {}
            for name, texts in sets.items():
                began = time.perf_counter()
                vectors = await client.embed(texts)
                out[name] = len(vectors) / (time.perf_counter() - began)
            began = time.perf_counter()  # the numpy variant: no list of Python floats
            out["short_array"] = len(await client.embed_array(sets["short"])) / (time.perf_counter() - began)
            from llmclient.backends.llama_cpp._worker import _decode_thread

            policy = _decode_thread().policy
            out["threads_now"] = policy.threads if policy is not None else None  # the thread policy's last choice
            return out

    return anyio.run(run)


def _llama_cpp_python(model: Path, threads: int, gpu: bool) -> Any:
    """llama-cpp-python's `Llama` embedding with mean pooling, as llmclient is set up."""
    import llama_cpp

    return llama_cpp.Llama(
        str(model), embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, n_ctx=2048, n_batch=512,
        n_threads=threads, n_threads_batch=threads, flash_attn=True, n_gpu_layers=-1 if gpu else 0, verbose=False,
    )  # fmt: skip


def _embed_llama_cpp_python(model: Path, threads: int, sets: dict[str, list[str]], gpu: bool) -> dict[str, Any]:
    llm = _llama_cpp_python(model, threads, gpu)
    llm.embed("warm-up text", normalize=True)
    out: dict[str, Any] = {}
    for name, texts in sets.items():
        began = time.perf_counter()
        vectors = llm.embed(texts, normalize=True)
        out[name] = len(vectors) / (time.perf_counter() - began)
    llm.close()
    return out


def _alternate(model: Path, threads: int, mode: str, turns: int) -> dict[str, Any]:
    """mode `chat`, `embed` or `both`: tokens/s of the chat calls and texts/s of the embed calls."""
    import anyio

    from llmclient import LlmClient

    texts = short_texts(100)

    async def run() -> dict[str, Any]:
        chat = await LlmClient.from_path(model, threads=threads, ctx=1024, parallel=1) if mode != "embed" else None
        embed = await LlmClient.from_path(model, threads=threads, ctx=2048, pooling="mean") if mode != "chat" else None
        chat_time = embed_time = 0.0
        tokens = embedded = 0
        try:
            if chat is not None:
                await chat.chat("Hi", max_tokens=4, temperature=0.0)
            if embed is not None:
                await embed.embed("warm-up text")
            for turn in range(turns):
                if chat is not None:
                    began = time.perf_counter()
                    result = await chat.chat(f"Write a long story about a {ANIMALS[turn % 10]}.", max_tokens=64,
                                             temperature=0.0)  # fmt: skip
                    chat_time += time.perf_counter() - began
                    tokens += result.usage.completion_tokens
                if embed is not None:
                    began = time.perf_counter()
                    embedded += len(await embed.embed(texts))
                    embed_time += time.perf_counter() - began
        finally:
            for client in (chat, embed):
                if client is not None:
                    await client.close()
        return {"chat_tok_s": tokens / chat_time if chat_time else None,
                "embed_texts_s": embedded / embed_time if embed_time else None}  # fmt: skip

    return anyio.run(run)


def _side_by_side(model: Path, threads: int, sets: dict[str, list[str]], rounds: int, gpu: bool) -> None:
    """Both systems in this process, in turn: each round embeds each set with one, then the other."""
    import anyio

    from llmclient import LlmClient

    async def run() -> None:
        async with await LlmClient.from_path(model, pooling="mean", threads=threads, ctx=2048) as client:
            await client.embed("warm-up text")
            llm = _llama_cpp_python(model, threads, gpu)
            llm.embed("warm-up text", normalize=True)
            ratios: dict[str, list[float]] = {name: [] for name in sets}
            for r in range(rounds):
                for name, texts in sets.items():
                    rate: dict[str, float] = {}
                    for system in ("llmclient", "llama-cpp-python")[:: 1 if r % 2 == 0 else -1]:
                        began = time.perf_counter()
                        if system == "llmclient":
                            await client.embed(texts)
                        else:
                            llm.embed(texts, normalize=True)
                        rate[system] = len(texts) / (time.perf_counter() - began)
                    ratio = rate["llmclient"] / rate["llama-cpp-python"]
                    ratios[name].append(ratio)
                    print(f"round {r + 1} {name:5}: llmclient {rate['llmclient']:8.1f} texts/s, llama-cpp-python "
                          f"{rate['llama-cpp-python']:8.1f} texts/s, ratio {ratio:.3f}", flush=True)  # fmt: skip
            llm.close()
            for name, values in ratios.items():
                print(f"{name} texts, side by side: ratio median {statistics.median(values):.3f}, range "
                      f"{min(values):.3f}-{max(values):.3f}")  # fmt: skip

    anyio.run(run)


def _child(argv: list[str]) -> dict[str, Any]:
    line = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, check=True).stdout
    return json.loads(line.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None,
                        help="a GGUF file (default: the real SmolLM2 file); `minilm`: a synthetic BERT of "
                        "all-MiniLM-L6-v2's shape (6 layers, 384 wide, random weights)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--first-round", type=int, default=1,
                        help="the first round's number, which sets the order (to go on a run)")  # fmt: skip
    parser.add_argument("--short", type=int, default=1000)
    parser.add_argument("--long", type=int, default=100)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--gpu", action="store_true", help="every layer on the GPU for both systems")
    parser.add_argument("--parts", default="all", choices=["all", "peers", "alternation", "side-by-side"])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model is None:
        from llmclient.testing import smollm2_gguf

        args.model = smollm2_gguf()
    elif str(args.model) == "minilm":
        import tempfile

        from llmclient.testing.synthetic import ModelShape, write_synthetic_bert

        folder = Path(tempfile.mkdtemp(prefix="embed-bench-"))
        args.model = write_synthetic_bert(
            folder / "minilm-shape-F16.gguf", ModelShape("bert", 6, 384, 12, 12, 1536, 0, 512)
        )
    if args.child is not None:
        kind, _, what = args.child.partition(":")
        if kind == "embed":
            sets = {"short": short_texts(args.short), "long": long_texts(args.long)}
            run = _embed_llmclient if what == "llmclient" else _embed_llama_cpp_python
            print(json.dumps(run(args.model, args.threads, sets, args.gpu)))
        else:
            print(json.dumps(_alternate(args.model, args.threads, what, args.turns)))
        return
    common = ["--model", str(args.model), "--threads", str(args.threads), "--short", str(args.short), "--long",
              str(args.long), "--turns", str(args.turns), *(["--gpu"] if args.gpu else [])]  # fmt: skip
    print(f"model {args.model.name}, {args.threads} threads, {args.rounds} rounds{', GPU' if args.gpu else ''}")
    if args.parts == "side-by-side":
        _side_by_side(args.model, args.threads, {"short": short_texts(args.short), "long": long_texts(args.long)},
                      args.rounds, args.gpu)  # fmt: skip
        return
    if args.parts in ("all", "peers"):
        ratios: dict[str, list[float]] = {"short": [], "long": []}
        for r in range(args.first_round - 1, args.first_round - 1 + args.rounds):
            order = ["llmclient", "llama-cpp-python"][:: 1 if r % 2 == 0 else -1]
            got = {system: _child([*common, "--child", f"embed:{system}"]) for system in order}
            for name in ratios:
                ours, theirs = got["llmclient"][name], got["llama-cpp-python"][name]
                ratios[name].append(ours / theirs)
                print(f"round {r + 1} {name:5}: llmclient {ours:8.1f} texts/s, llama-cpp-python {theirs:8.1f} "
                      f"texts/s, ratio {ours / theirs:.3f}  (first: {order[0]})", flush=True)  # fmt: skip
            print(f"round {r + 1} short, embed_array: {got['llmclient']['short_array']:8.1f} texts/s; llmclient's "
                  f"compute threads at the end: {got['llmclient']['threads_now']}", flush=True)  # fmt: skip
        for name, values in ratios.items():
            print(f"{name} texts: ratio median {statistics.median(values):.3f}, range {min(values):.3f}-"
                  f"{max(values):.3f}")  # fmt: skip
    if args.parts in ("all", "alternation"):
        chat_ratios: list[float] = []
        embed_ratios: list[float] = []
        for r in range(args.first_round - 1, args.first_round - 1 + args.rounds):
            order = ["chat", "embed", "both"]
            order = order[r % 3 :] + order[: r % 3]
            got = {mode: _child([*common, "--child", f"alternate:{mode}"]) for mode in order}
            chat_ratio = got["both"]["chat_tok_s"] / got["chat"]["chat_tok_s"]
            embed_ratio = got["both"]["embed_texts_s"] / got["embed"]["embed_texts_s"]
            chat_ratios.append(chat_ratio)
            embed_ratios.append(embed_ratio)
            chat, embed, both = got["chat"], got["embed"], got["both"]
            print(f"round {r + 1} chat alone {chat['chat_tok_s']:6.1f} tok/s, in turn {both['chat_tok_s']:6.1f} "
                  f"({chat_ratio:.3f}); embed alone {embed['embed_texts_s']:6.1f} texts/s, in turn "
                  f"{both['embed_texts_s']:6.1f} ({embed_ratio:.3f})  (order {order})", flush=True)  # fmt: skip
        print(f"in turn / alone: chat median {statistics.median(chat_ratios):.3f} ({min(chat_ratios):.3f}-"
              f"{max(chat_ratios):.3f}), embed median {statistics.median(embed_ratios):.3f} "
              f"({min(embed_ratios):.3f}-{max(embed_ratios):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
