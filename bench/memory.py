"""Memory benchmark: the planner's estimate against what llama.cpp really allocates.

Each case loads a model in a fresh child process with the plan's settings (flash attention, `swa_full=False`,
the planned context and GPU layers), then reads:

- the buffer sizes llama.cpp reports in its log (model, KV cache, compute, output), per device;
- on a GPU, the device's free memory (through the same ggml API the planner uses) before the load, after it,
  and after a 512-token prompt and 16 generated tokens (which adds the CUDA pool's scratch space).

    python bench/memory.py [--model PATH] [--ctx 2048 8192] [--synthetic DIR] [--gpu]

Without `--gpu` it runs here on the CPU: the real SmolLM2 file, and synthetic qwen2- and gemma3-shaped files.
With `--gpu`: SmolLM2, then synthetic 7B Q4_K_M/Q8_0 (random weights) and 70B Q4_K_M/Q8_0 (sparse: zero
weights, no disk) with SmolLM2's tokenizer, written into DIR; the 70B Q8_0 does not fit an 80 GB GPU, so it is
planned with partial offload. Prints a Markdown table; exits 1 if a figure is off by more than 10%.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

MIB = 1 << 20
_BUFFER_RE = re.compile(r"(\S+)\s+(model|KV|compute|output) buffer size =\s+([\d.]+) MiB")


def _gpu_free() -> list[int]:
    from llmclient.hardware import detect

    return [d.free for d in detect().gpus]


def child(path: str, n_ctx: int | None, cpu_only: bool) -> NoReturn:
    """Runs in the child process (so the parent holds no GPU memory): plan, load, measure, decode, measure."""
    import llama_cpp

    from llmclient.hardware import detect
    from llmclient.metadata import read_gguf_info
    from llmclient.planner import plan
    from llmclient.quants import quant_from_file_type
    from llmclient.types import ModelFile

    lines: list[str] = []

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def log(level: int, text: bytes, user: object) -> None:
        lines.append(text.decode(errors="replace"))

    llama_cpp.llama_log_set(log, ctypes.c_void_p())
    info = read_gguf_info(path)
    file = ModelFile(path, quant_from_file_type(info.file_type), info.file_bytes, info)
    chosen = plan([file], detect(), n_ctx=n_ctx, cpu_only=cpu_only)
    before = _gpu_free()
    start = time.perf_counter()
    llm = llama_cpp.Llama(
        path,
        n_ctx=chosen.n_ctx,
        n_gpu_layers=chosen.n_gpu_layers,
        flash_attn=True,
        swa_full=False,
        n_threads=chosen.threads,
        verbose=True,
    )
    load_s = time.perf_counter() - start
    after_load = _gpu_free()
    tokens = [(i * 7919) % 1000 + 100 for i in range(min(512, chosen.n_ctx - 32))]
    llm.eval(tokens)
    for _ in range(16):
        llm.eval([int(llm.sample(temp=0.0))])
    after_decode = _gpu_free()
    buffers: dict[str, float] = {}
    for line in "".join(lines).splitlines():
        match = _BUFFER_RE.search(line)
        if match:
            key = f"{match.group(1)} {match.group(2)}"
            buffers[key] = buffers.get(key, 0.0) + float(match.group(3)) * MIB
    result = {
        "device": chosen.device,
        "n_ctx": chosen.n_ctx,
        "ngl": chosen.n_gpu_layers,
        "est_kv": chosen.estimate.kv_cache,
        "est_total": chosen.estimate.total,
        "est_gpu": sum(chosen.estimate.gpu),
        "budget_gpu": sum(chosen.budget_gpu),
        "before": before,
        "after_load": after_load,
        "after_decode": after_decode,
        "buffers": buffers,
        "load_s": load_s,
        "plan": str(chosen),
    }
    print(json.dumps(result), flush=True)
    # Freeing a CUDA context at interpreter exit can crash llama-cpp-python (seen in Llama.__del__): skip it.
    os._exit(0)


def run_case(label: str, path: Path, n_ctx: int | None, *, cpu_only: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", str(path), str(n_ctx or 0), "1" if cpu_only else "0"]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{label}: the load failed:\n{out.stderr[-3000:]}")
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    buffers = row["buffers"]
    row["case"] = label
    row["kv"] = sum(v for k, v in buffers.items() if k.endswith(" KV"))
    row["reported"] = sum(buffers.values())
    if row["before"]:
        row["gpu_load"] = sum(row["before"]) - sum(row["after_load"])
        row["gpu_decode"] = sum(row["before"]) - sum(row["after_decode"])
    return row


def _pct(est: float, real: float) -> str:
    return f"{(est - real) / real * 100:+.1f}%" if real else "n/a"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]) or None, sys.argv[4] == "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="the real model (default: SmolLM2 from PyPI)")
    parser.add_argument("--ctx", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--synthetic", type=Path, default=Path("/tmp/llmclient-synthetic"))
    parser.add_argument("--gpu", action="store_true", help="the GPU cases (synthetic 7B and 70B files)")
    args = parser.parse_args()

    from llmclient.testing.synthetic import GEMMA3_12B, LLAMA_7B, LLAMA_70B, ModelShape, write_synthetic_gguf

    model = args.model
    if model is None:
        from llmclient.testing import smollm2_gguf

        model = smollm2_gguf()
    cases: list[tuple[str, Path, int | None]] = [(f"SmolLM2-135M Q4_1 @{c}", model, c) for c in args.ctx]
    args.synthetic.mkdir(parents=True, exist_ok=True)
    if args.gpu:
        specs = [("7B", LLAMA_7B, "Q4_K_M", "random", None), ("7B", LLAMA_7B, "Q8_0", "random", None),
                 ("70B", LLAMA_70B, "Q4_K_M", "sparse", None), ("70B", LLAMA_70B, "Q8_0", "sparse", None),
                 ("70B", LLAMA_70B, "Q8_0", "sparse", 32768)]  # fmt: skip
    else:
        small_qwen = ModelShape("qwen2", 12, 1024, 16, 2, 2816, 0, 32768)
        small_gemma = ModelShape("gemma3", 12, 1024, 8, 4, 2048, 0, 32768, 128, 512, True)
        specs = [("qwen2-small", small_qwen, "Q8_0", "random", None),
                 ("gemma3-small", small_gemma, "Q8_0", "random", None)]  # fmt: skip
    for name, shape, quant, fill, ctx in specs:
        path = args.synthetic / f"{name}-{quant}.gguf"
        if not path.exists():
            started = time.perf_counter()
            write_synthetic_gguf(path, shape, quant, fill=fill, tokenizer_from=model)
            print(f"wrote {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        cases += [(f"{name} {quant} ({fill})" + (f" @{ctx}" if ctx else ""), path, ctx)]
    del GEMMA3_12B

    rows = []
    for label, path, n_ctx in cases:
        print(f"running {label} ...", file=sys.stderr)
        rows.append(run_case(label, path, n_ctx, cpu_only=not args.gpu))
        print(rows[-1].pop("plan"), file=sys.stderr)
        print(json.dumps(rows[-1]), file=sys.stderr)

    import llama_cpp

    print(f"Machine: {platform.node()}, {platform.processor() or platform.machine()}; llama-cpp-python "
          f"{llama_cpp.__version__}; command: `python bench/memory.py {' '.join(sys.argv[1:])}`\n")  # fmt: skip
    bad = False
    if args.gpu:
        print("| case | plan | est. GPU | GPU used after load | diff | after 512-token prompt | diff | GPU budget |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            d1, d2 = _pct(r["est_gpu"], r["gpu_load"]), _pct(r["est_gpu"], r["gpu_decode"])
            bad |= abs(r["est_gpu"] - r["gpu_load"]) > 0.1 * r["gpu_load"]
            bad |= r["gpu_decode"] > r["budget_gpu"] + 0.0
            print(f"| {r['case']} | {r['device']}, ctx {r['n_ctx']}, ngl {r['ngl']} | {r['est_gpu'] / MIB:,.0f} MiB | "
                  f"{r['gpu_load'] / MIB:,.0f} MiB | {d1} | {r['gpu_decode'] / MIB:,.0f} MiB | {d2} | "
                  f"{r['budget_gpu'] / MIB:,.0f} MiB |")  # fmt: skip
        print()
    print("| case | plan | est. KV | llama.cpp KV | diff | est. total | llama.cpp buffers | diff |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        bad |= abs(r["est_kv"] - r["kv"]) > 0.1 * r["kv"] or abs(r["est_total"] - r["reported"]) > 0.1 * r["reported"]
        print(f"| {r['case']} | {r['device']}, ctx {r['n_ctx']}, ngl {r['ngl']} | {r['est_kv'] / MIB:,.1f} MiB | "
              f"{r['kv'] / MIB:,.1f} MiB | {_pct(r['est_kv'], r['kv'])} | {r['est_total'] / MIB:,.1f} MiB | "
              f"{r['reported'] / MIB:,.1f} MiB | {_pct(r['est_total'], r['reported'])} |")  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
