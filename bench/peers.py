"""Peers benchmark: llmclient against what users would pick instead, on the same work, in one run.

Systems, each measured in a fresh process per round, rounds interleaved (A B C D E, A B C D E, ...):

- `llmclient`: `LlmClient.from_path(model, ctx=, threads=, parallel=8)` (and `cpu_only=True` unless `--gpu`, where
  its plan offloads everything): the 8 concurrent requests decode together in one batch;
- `to_thread`: llama-cpp-python's `Llama.create_chat_completion(stream=True)` in `asyncio.to_thread`, behind an
  `asyncio.Lock` (a `Llama` is not thread-safe), so concurrent requests run one after another;
- `one_thread`: the same on one dedicated thread (`loop.run_in_executor` with a one-thread executor): the careful
  way, since llama.cpp starts a team of compute threads for each OS thread that decodes (bench/omp_teams.py);
- `llama_cpp.server`: llama-cpp-python's OpenAI-compatible server under uvicorn on 127.0.0.1, started by the app
  and streamed with `openai.AsyncOpenAI` (the server's defaults: a new request interrupts the running one);
- `mistralrs`: mistral.rs's Python wheel through llmclient's engine, `LlmClient.mistral_rs().local(model)` with
  `ctx=`, `threads=` (mistral.rs's `RAYON_NUM_THREADS`) and `parallel=8` (its `max_seqs`): the file loaded offline,
  this Q4_1 file requantized to Q8_0 while loading (the engine's default for it); each stream on a thread of the
  engine's, their prompts admitted one at a time (mistral.rs fails a batch that prefills two prompts of equal
  length), and its own scheduler batches the generating ones; `mistralrs.gguf`: the same with the file's weights
  as they are (`.in_situ_quant(None)`);
- `gpt4all`: `GPT4All(file, model_path=dir, allow_download=False)`, `generate(streaming=True)` in a chat session
  whose prompt template is the file's own chat template, in a thread behind a lock.

Thread streams reach the event loop through `call_soon_threadsafe`, as the app would receive them. Same GGUF (the
real SmolLM2 file by default), prompts, greedy decoding (temperature 0, no repeat penalty), `--tokens` per
request, context and threads for all. Per system and round: cold start (the parent's clock before spawning the
process to the first streamed token: imports, load, first request), one stream's time to first token (the first
of three) and decode tokens/s (tokens after the first / time after the first; the median of three), 8 concurrent
requests from one asyncio app (aggregate tokens/s, p50/p99 request latency, complete answers, and the loop's own
lag meanwhile: a task sleeping 1 ms in a loop, p99 and max lateness) and peak RSS (the process's, plus the
server's VmHWM for the server system). A peer that cannot load the model or do a part shows "n/a" and a note with
the reason.

    python bench/peers.py [--model PATH] [--systems a,b | --engines] [--rounds 5] [--tokens 128] [--gpu] [--quick]
                          [--loop default|select] [--json FILE] [--plot FILE]

`--systems llmclient,llmclient@c926952`: llmclient as of a git revision, exported to a temporary folder and put
first on the child's `sys.path`, beside this checkout's (a change's cost, measured in one run).

`--loop select`: the app's loop waits in `select()`, which keeps a timer's microseconds, instead of epoll, which rounds
every wait up to a whole millisecond: after any wake-up of the loop (a streamed token), the ticker's next tick comes
up to 1 ms late on epoll whatever the system does, and this takes that out of the lag figures.
`--engines`: llmclient's two engines side by side on the same file (`llmclient` on llama.cpp, `mistralrs` and
`mistralrs.gguf`), and a second table: each figure with its ratio to llama.cpp's, and the slowest first token of
the 8 at once.
`--gpu`: the llama-family systems offload everything; a peer without a GPU build here is skipped with a reason.
`--quick`: 2 rounds of 32 tokens (about 1.5 minutes on 2 idle cores). `--json` keeps every round's raw results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import resource
import selectors
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _common import export, pct, prompt, tick_until  # bench/ is on sys.path when run as a script
from _peer_systems import CONCURRENT, CTX, OPENERS, Settings, Stream, gpt4all_template

SYSTEMS = ("llmclient", "to_thread", "one_thread", "llama_cpp.server", "mistralrs", "mistralrs.gguf", "gpt4all")
#: `--engines`: llmclient's two engines on the same file (llama.cpp, then mistral.rs requantized and as it is).
ENGINES = ("llmclient", "mistralrs", "mistralrs.gguf")
PACKAGES = ("llmclient", "llama-cpp-python", "openai", "uvicorn", "mistralrs", "gpt4all")
WARM_UP: list[dict[str, str]] = [{"role": "user", "content": "Say hello."}]
RESULT_TAG = "PEERS-RESULT "
SHORT_ANSWERS = {
    "llama_cpp.server": " (the server's default `interrupt_requests`: a request waiting for the model ends the "
    "running stream with [DONE])"
}


# --- measuring one system (the child process) -----------------------------------------------------------------


async def timed(stream: Stream, messages: list[dict[str, str]], tokens: int) -> dict[str, Any]:
    """One request: time to first piece, latency, pieces received, decode rate, the error if any, and the wall-clock
    time (`time.time()`) of the first piece."""
    start, first, first_at, count, error = time.perf_counter(), 0.0, 0.0, 0, None
    try:
        async for _ in stream(messages, tokens):
            count += 1
            if not first:
                first, first_at = time.perf_counter(), time.time()
    except Exception as exc:
        error = shorten(exc)
    end = time.perf_counter()
    first = first or end
    rate = (count - 1) / (end - first) if count > 1 and end > first else 0.0
    return {"ttft": first - start, "latency": end - start, "tokens": count, "decode_tps": rate, "error": error,
            "first_at": first_at}  # fmt: skip


async def concurrent(stream: Stream, tokens: int) -> dict[str, Any]:
    """CONCURRENT requests at once from this event loop, with a 1 ms ticker measuring the loop's lag."""
    lags: list[float] = []
    done = asyncio.Event()
    tick = asyncio.ensure_future(tick_until(done.is_set, lags))
    start = time.perf_counter()
    results = await asyncio.gather(*(timed(stream, prompt(i), tokens) for i in range(1, CONCURRENT + 1)))
    wall = time.perf_counter() - start
    done.set()
    await tick
    latencies = [r["latency"] for r in results]
    return {
        "wall": wall,
        "aggregate_tps": sum(r["tokens"] for r in results) / wall,
        "latency_p50": statistics.median(latencies),
        "latency_p99": pct(latencies, 0.99),
        "ttft_p50": statistics.median(r["ttft"] for r in results),
        "lag_p99_ms": pct(lags, 0.99) if lags else 0.0,
        "lag_max_ms": max(lags, default=0.0),
        "complete": sum(1 for r in results if r["error"] is None and r["tokens"] >= tokens - 1),
        "errors": [r["error"] for r in results if r["error"]],
        "requests": results,
    }


def shorten(exc: BaseException) -> str:
    """The exception's type and first line, at most 200 characters."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def vm_hwm_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MB, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


async def measure(system: str, s: Settings) -> dict[str, Any]:
    """Everything for one system in this fresh process: cold start, one stream, 8 concurrent, peak RSS."""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=4 * CONCURRENT))
    out: dict[str, Any] = {}
    opened = OPENERS[system](s)
    try:
        peer = await opened.__aenter__()
        warm = await timed(peer.stream, WARM_UP, 8)
    except Exception as exc:
        return {"error": shorten(exc)}
    try:
        if warm["error"]:
            return {"error": f"the first request failed: {warm['error']}"}
        out["cold_s"] = warm["first_at"] - s.t0
        # one stream, three times (a 128-token run is about a second on a CPU: one alone is at the mercy of noise);
        # the figures of the median one by decode rate, time to first token from the first (nothing cached yet)
        singles = [await timed(peer.stream, prompt(i), s.tokens) for i in (0, 0, 0)]
        out["single"] = {**sorted(singles, key=lambda r: r["decode_tps"])[1], "ttft": singles[0]["ttft"]}
        out["singles"] = singles
        out["concurrent"] = await concurrent(peer.stream, s.tokens)
        if out["concurrent"]["errors"] and peer.serial_fallback is not None:
            out["concurrent_batched"] = out["concurrent"]
            fallback = peer.serial_fallback()
            await opened.__aexit__(None, None, None)
            opened, peer = fallback, await fallback.__aenter__()
            await timed(peer.stream, WARM_UP, 8)
            out["concurrent"] = await concurrent(peer.stream, s.tokens)
        out["rss_client_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out["rss_server_mb"] = vm_hwm_mb(peer.server_pid) if peer.server_pid else 0.0
        out["rss_mb"] = out["rss_client_mb"] + out["rss_server_mb"]
        return out
    finally:
        await opened.__aexit__(None, None, None)


def child(system: str, settings: str) -> None:
    """`--one`: measure one system and print its result as one tagged JSON line."""
    s = Settings(**json.loads(settings))
    loop = asyncio.SelectorEventLoop(selectors.SelectSelector()) if s.loop == "select" else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    result = loop.run_until_complete(measure(system.split("@", 1)[0], s))
    print(RESULT_TAG + json.dumps(result), flush=True)
    os._exit(0)  # a CUDA context's or a native runtime's teardown can crash at exit; the result is out


# --- the run (the parent process) -----------------------------------------------------------------------------


def run_one(system: str, s: Settings, timeout: float, paths: dict[str, Path]) -> dict[str, Any]:
    """Spawn a child for system and return its result (or why there is none)."""
    s = Settings(**{**asdict(s), "t0": time.time()})
    command = [sys.executable, __file__, "--one", system, "--settings", json.dumps(asdict(s))]
    env = dict(os.environ)
    if system in paths:  # llmclient@REV: that revision's package first on the path
        env["PYTHONPATH"] = os.pathsep.join([str(paths[system]), env.get("PYTHONPATH", "")])
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    elapsed = time.time() - s.t0
    said = [line for line in (re.sub(r"\x1b\[[0-9;]*m", "", x).strip() for x in out.stderr.splitlines()) if line]
    for line in reversed(out.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            result: dict[str, Any] = json.loads(line[len(RESULT_TAG) :])
            errors = [x for x in said if "error" in x.lower()]
            if "error" in result and errors:  # a library that fails a load may say why on stderr only (gpt4all)
                result["error"] = f"{errors[0][:200]} ({result['error']})"
            return {**result, "process_s": elapsed}
    return {"error": f"the process exited with {out.returncode}: {said[-1][:200] if said else 'no output'}"}


def compile_bytecode(systems: list[str]) -> None:
    """Compile llmclient's modules to bytecode, as `pip install` does for every system's package: an editable
    checkout under PYTHONDONTWRITEBYTECODE=1 (set on this project's machines) would compile them at every import,
    about 40 ms of a cold start that an installed package never pays."""
    if "llmclient" in systems:
        import compileall

        import llmclient

        compileall.compile_dir(Path(llmclient.__file__).parent, quiet=1)


def gpu_skips(systems: list[str]) -> dict[str, str]:
    """Why a system cannot offload to the GPU here, for those known before starting them."""
    import llama_cpp

    skips: dict[str, str] = {}
    if not llama_cpp.llama_supports_gpu_offload():
        for system in ("llmclient", "to_thread", "one_thread", "llama_cpp.server"):
            skips[system] = f"llama-cpp-python {llama_cpp.__version__} here is a CPU-only build"
    if importlib.metadata.packages_distributions().get("mistralrs") == ["mistralrs"]:
        for system in ("mistralrs", "mistralrs.gguf"):
            skips[system] = "the `mistralrs` wheel is mistral.rs's CPU build (`mistralrs-cuda` is the CUDA one)"
    return {system: reason for system, reason in skips.items() if system in systems}


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def versions() -> str:
    found = []
    for package in PACKAGES:
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{package} (not installed)")
    return ", ".join(found)


def summary(values: list[float], digits: int = 1) -> str:
    """Median, with the min-max range when the rounds differ."""
    if not values:
        return "n/a"
    low, mid, high = min(values), statistics.median(values), max(values)
    if len(values) == 1 or round(low, digits) == round(high, digits):
        return f"{mid:.{digits}f}"
    return f"{mid:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def usable(rounds: list[dict[str, Any]], part: str) -> list[dict[str, Any]]:
    """The rounds' results for a part (`single`, `concurrent`) that ran without an error."""
    return [r[part] for r in rounds if part in r and not (part == "single" and r[part]["error"])]


def table(runs: dict[str, list[dict[str, Any]]], tokens: int) -> tuple[str, list[str]]:
    """The markdown table (medians over rounds) and its notes: why a system or part has no figures."""
    rows = ["| system | cold start, s | TTFT, ms | decode tok/s | 8-way aggregate tok/s | 8-way latency p50 / p99, s "
            "| 8-way loop lag p99 / max, ms | 8-way complete | peak RSS, MB |", "|---" * 9 + "|"]  # fmt: skip
    notes: list[str] = []
    for system, rounds in runs.items():
        failed = [r.get("skipped") or r.get("error") for r in rounds if "skipped" in r or "error" in r]
        reasons = sorted({str(x) for x in failed})
        if reasons:
            word = "skipped" if any("skipped" in r for r in rounds) else "failed"
            notes.append(f"{system}: {word} in {len(failed)}/{len(rounds)} rounds: " + "; ".join(reasons))
        ok = [r for r in rounds if "cold_s" in r]
        single, conc = usable(ok, "single"), usable(ok, "concurrent")
        for r in ok:
            if r["single"]["error"]:
                notes.append(f"{system}: single stream failed: {r['single']['error']}")
        batched = [r["concurrent_batched"] for r in ok if "concurrent_batched" in r]
        if batched:
            n_failed = summary([float(len(b["errors"])) for b in batched], 0)
            first = batched[0]["errors"][0]
            notes.append(f"{system}: 8 at once in one batch: {n_failed} of 8 failed in {len(batched)}/{len(ok)} rounds "
                         f"({first[:90]}{'...' if len(first) > 90 else ''}); the 8-way figures are those of the rerun "
                         "on a fresh instance taking one request at a time (max_seqs=1)")  # fmt: skip
        cut = sorted({e for c in conc for e in c["errors"]})
        if cut:
            notes.append(f"{system}: with 8 at once some requests ended in an error: " + "; ".join(cut[:3]))
        short = [sum(1 for x in c["requests"] if not x["error"] and x["tokens"] < tokens - 1) for c in conc]
        if any(short):
            why = SHORT_ANSWERS.get(system, "")
            notes.append(f"{system}: with 8 at once, {summary([float(n) for n in short], 0)} of 8 answers ended "
                         f"early without an error{why}")  # fmt: skip
        if not ok:
            rows.append(f"| {system} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |")
            continue
        lat = f"{summary([c['latency_p50'] for c in conc], 2)} / {summary([c['latency_p99'] for c in conc], 2)}"
        lag = f"{summary([c['lag_p99_ms'] for c in conc])} / {summary([c['lag_max_ms'] for c in conc])}"
        complete = f"{statistics.median([c['complete'] for c in conc]):g}/{CONCURRENT}" if conc else "n/a"
        rows.append(
            f"| {system} | {summary([r['cold_s'] for r in ok], 2)} | "
            f"{summary([x['ttft'] * 1000 for x in single], 0)} | {summary([x['decode_tps'] for x in single])} | "
            f"{summary([c['aggregate_tps'] for c in conc])} | {lat} | {lag} | {complete} | "
            f"{summary([r['rss_mb'] for r in ok], 0)} |"
        )
    return "\n".join(rows), list(dict.fromkeys(notes))


def engines_table(runs: dict[str, list[dict[str, Any]]]) -> str:
    """`--engines`: each engine's medians beside their ratio to llama.cpp's (`llmclient`), and the slowest first
    token of the 8 at once."""
    parts: dict[str, Callable[[dict[str, Any]], float]] = {
        "cold start, s": lambda r: r["cold_s"],
        "1 stream TTFT, s": lambda r: r["single"]["ttft"],
        "1 stream decode tok/s": lambda r: r["single"]["decode_tps"],
        "8 at once, aggregate tok/s": lambda r: r["concurrent"]["aggregate_tps"],
        "8 at once, slowest TTFT, s": lambda r: max(x["ttft"] for x in r["concurrent"]["requests"]),
        "8 at once, complete": lambda r: r["concurrent"]["complete"],
        "peak RSS, MB": lambda r: r["rss_mb"],
    }
    medians = {
        system: {name: statistics.median([get(r) for r in ok]) for name, get in parts.items()}
        for system, rounds in runs.items()
        if (ok := [r for r in rounds if "cold_s" in r])
    }
    base = medians.get("llmclient")
    rows = ["| engine | " + " | ".join(parts) + " |", "|---" * (len(parts) + 1) + "|"]
    for system, values in medians.items():
        cells = []
        for name, value in values.items():
            ratio = f" ({value / base[name]:.2f}x)" if base and system != "llmclient" and base[name] else ""
            cells.append(f"{value:.3g}{ratio}" if "complete" not in name else f"{value:g}/{CONCURRENT}")
        label = {"llmclient": "llama.cpp", "mistralrs": "mistral.rs (Q8_0 in situ)"}.get(system, system)
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(runs: dict[str, list[dict[str, Any]]], path: Path, title: str) -> None:
    """Grouped bars per system: single-stream and 8-concurrent tokens/s; and the loop lag p99 beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(runs)

    def med(system: str, get: Callable[[dict[str, Any]], float]) -> float:
        ok = [r for r in runs[system] if "cold_s" in r]
        return statistics.median([get(r) for r in ok]) if ok else 0.0

    single = [med(n, lambda r: r["single"]["decode_tps"]) for n in names]
    conc = [med(n, lambda r: r["concurrent"]["aggregate_tps"]) for n in names]
    lag = [med(n, lambda r: r["concurrent"]["lag_p99_ms"]) for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
    xs = range(len(names))
    left.bar([x - 0.2 for x in xs], single, width=0.4, label="one stream, decode")
    left.bar([x + 0.2 for x in xs], conc, width=0.4, label=f"{CONCURRENT} at once, aggregate")
    left.set_ylabel("tokens/s")
    right.bar(list(xs), lag, width=0.6, color="tab:red")
    for x, name in zip(xs, names, strict=True):
        if not any("cold_s" in r for r in runs[name]):
            left.text(x, 0, "n/a", ha="center", va="bottom")
            right.text(x, 0, "n/a", ha="center", va="bottom")
    right.set_ylabel(f"event-loop lag p99 with {CONCURRENT} at once, ms")
    for ax in (left, right):
        ax.set_xticks(list(xs), names, rotation=20, ha="right")
        ax.grid(True, axis="y", alpha=0.3)
    left.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: the real SmolLM2 file)")
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated, from {', '.join(SYSTEMS)}; llmclient@REV runs git revision REV's llmclient",
    )
    parser.add_argument("--engines", action="store_true", help=f"--systems {','.join(ENGINES)}, with ratios")
    parser.add_argument("--rounds", type=int, default=None, help="rounds, each system once per round (default 5)")
    parser.add_argument("--tokens", type=int, default=None, help="max_tokens per request (default 128)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for all (default: the plan's)")
    parser.add_argument("--gpu", action="store_true", help="llama-family systems offload everything")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 32 tokens: a smoke run of a few minutes")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per system and round")
    parser.add_argument("--json", type=Path, default=None, help="also write the per-round raw results here")
    parser.add_argument("--plot", type=Path, default=None, help="draw a PNG of tokens/s and loop lag here")
    parser.add_argument("--loop", choices=("default", "select"), default="default",
                        help="the app's asyncio loop: the default (epoll), or one on select(), whose timers keep "
                        "microseconds where epoll rounds a wait up to whole milliseconds")  # fmt: skip
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--settings", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--from-json", type=Path, default=None, help="table and plot from a --json file; runs nothing")
    args = parser.parse_args()
    if args.one:
        child(args.one, args.settings)
    if args.from_json:
        replay(args.from_json, args.plot)
        return
    systems = list(ENGINES) if args.engines else args.systems.split(",")
    unknown = sorted({system.split("@", 1)[0] for system in systems} - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}; known: {', '.join(SYSTEMS)}")
    rounds = args.rounds or (2 if args.quick else 5)
    tokens = args.tokens or (32 if args.quick else 128)
    if args.model is None:
        from llmclient.testing import smollm2_gguf

        args.model = smollm2_gguf()
    from llmclient.hardware import detect
    from llmclient.planner import threads_for

    hardware = detect()
    threads = args.threads or threads_for(hardware, fully_offloaded=args.gpu)
    template = gpt4all_template(args.model) if "gpt4all" in systems else None
    s = Settings(str(args.model.resolve()), tokens, threads, args.gpu, gpt4all_template=template, loop=args.loop)
    skips = gpu_skips(systems) if args.gpu else {}

    compile_bytecode(systems)
    exported = tempfile.TemporaryDirectory(prefix="peers-revisions-")
    paths = {x: export(x.split("@", 1)[1], Path(exported.name)) for x in systems if x.startswith("llmclient@")}
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {system: [] for system in systems}
    for i in range(rounds):
        for system in systems:
            earlier = runs[system][:1]
            if earlier and ("skipped" in earlier[0] or "error" in earlier[0]):
                runs[system].append({**earlier[0], "not_retried": True})  # it cannot load here: no use retrying
                continue
            result = {"skipped": skips[system]} if system in skips else run_one(system, s, args.timeout, paths)
            runs[system].append(result)
            brief = result.get("skipped") or result.get("error") or f"cold {result['cold_s']:.2f} s"
            print(f"round {i + 1}/{rounds} {system}: {brief}", file=sys.stderr, flush=True)
    wall = time.perf_counter() - started
    exported.cleanup()

    command = shlex.join(["python", "bench/peers.py", *sys.argv[1:]])
    gpus = (", ".join(g.description for g in hardware.gpus) or "no GPU found") if args.gpu else "CPU only"
    machine = (f"{cpu_model()}, {os.cpu_count()} logical CPUs / {hardware.physical_cores} cores, {threads} threads "
               f"for every system; {gpus}")  # fmt: skip
    print(f"Machine: {machine}. Versions: {versions()}. Model: {args.model.name}; {rounds} rounds, {tokens} tokens "
          f"per request, ctx {CTX}, greedy, {args.loop} asyncio loop; llmclient with parallel={CONCURRENT}. "
          f"Command: `{command}` ({wall / 60:.1f} min)\n")  # fmt: skip
    rows, notes = table(runs, tokens)
    print(rows)
    if notes:
        print("\n" + "\n".join(f"- {note}" for note in notes))
    if "llmclient" in systems and any(x.startswith("mistralrs") for x in systems):
        print("\n" + engines_table(runs))
    if args.json:
        record = {"command": command, "machine": machine, "versions": versions(), "settings": asdict(s),
                  "rounds": rounds, "wall_s": wall, "runs": runs}  # fmt: skip
        args.json.write_text(json.dumps(record, indent=1))
    if args.plot:
        where = "GPU" if args.gpu else f"CPU, {threads} threads"
        plot(runs, args.plot, f"{args.model.name}, {where}, {tokens} tokens per request (median of {rounds})")


def replay(path: Path, plot_to: Path | None) -> None:
    """The table (and the plot) of a run saved with --json, e.g. one taken on another machine."""
    record = json.loads(path.read_text())
    settings, runs = record["settings"], record["runs"]
    print(f"Machine: {record['machine']}. Versions: {record['versions']}. Command: `{record['command']}` "
          f"({record['wall_s'] / 60:.1f} min); from {path}\n")  # fmt: skip
    rows, notes = table(runs, settings["tokens"])
    print(rows)
    if notes:
        print("\n" + "\n".join(f"- {note}" for note in notes))
    if plot_to:
        where = "GPU" if settings["gpu"] else f"CPU, {settings['threads']} threads"
        name = Path(settings["model"]).name
        plot(runs, plot_to, f"{name}, {where}, {settings['tokens']} tokens per request (median of {record['rounds']})")


if __name__ == "__main__":
    main()
