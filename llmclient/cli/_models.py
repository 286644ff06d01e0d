"""`llmclient presets`, `plan`, `pull` and `hw`: what there is to run, how it would run here, and getting it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import anyio

from llmclient import presets
from llmclient._source import Source
from llmclient.cli._common import (
    builder_for,
    cache_for,
    human_size,
    library_warnings_reported,
    parse_model,
    table,
)
from llmclient.errors import InsufficientMemoryError, LlmClientError
from llmclient.hardware import Hardware, detect
from llmclient.presets import Preset
from llmclient.types import CachedModel, Plan

__all__ = ["hw", "plan", "presets_table", "pull"]

#: Planning reaches the hub for a few presets at a time.
PLAN_CONCURRENCY = 8
#: What the planner's notes say when a size or shape was guessed from the parameter count, not read from the hub.
_ESTIMATED = "estimated from"


@dataclass(frozen=True)
class _Row:
    preset: Preset
    plan: Plan | None
    estimated: bool
    failure: str | None = None
    """Why the hub could not be asked, when the row fell back to what the cache and catalogue know."""
    too_big: bool = False
    """No file of it fits this machine's memory."""


def _params(billions: float) -> str:
    return f"{billions * 1000:.0f}M" if billions < 1 else f"{billions:g}B"


def _context(tokens: int) -> str:
    return f"{tokens // 1024}k" if tokens % 1024 == 0 else str(tokens)


async def _plan_preset(args: argparse.Namespace, preset: Preset, limiter: anyio.CapacityLimiter) -> _Row:
    """The preset's plan here: from the hub, else (offline, or the hub failing) from the cache and catalogue."""
    builder = builder_for(args, Source("preset", preset.name))
    failure = None
    async with limiter:
        try:
            return _row(preset, await builder.plan())
        except InsufficientMemoryError:
            return _Row(preset, None, False, too_big=True)
        except (LlmClientError, OSError, ValueError) as error:
            if args.offline:
                return _Row(preset, None, False, str(error))
            failure = str(error)
        try:
            return _row(preset, await builder.offline().plan(), failure)
        except InsufficientMemoryError:
            return _Row(preset, None, False, failure, too_big=True)
        except (LlmClientError, OSError, ValueError):
            return _Row(preset, None, False, failure)


def _row(preset: Preset, chosen: Plan, failure: str | None = None) -> _Row:
    return _Row(preset, chosen, any(_ESTIMATED in n for n in chosen.notes), failure)


async def _plan_all(args: argparse.Namespace) -> list[_Row]:
    limiter = anyio.CapacityLimiter(PLAN_CONCURRENCY)
    catalogue = presets.list()
    rows: list[_Row | None] = [None] * len(catalogue)

    async def one(i: int, preset: Preset) -> None:
        rows[i] = await _plan_preset(args, preset, limiter)

    with library_warnings_reported(args):  # one footnote instead of a warning per preset when the hub is away
        async with anyio.create_task_group() as group:
            for i, preset in enumerate(catalogue):
                group.start_soon(one, i, preset)
    return [row for row in rows if row is not None]


def presets_table(args: argparse.Namespace) -> int:
    """Print every preset with the quant and file size the planner would choose on this machine."""
    hardware = detect(memory_gb=args.memory_gb)
    rows = anyio.run(_plan_all, args)
    lines = []
    for row in rows:
        p = row.preset
        if row.plan is not None:
            mark = "~" if row.estimated else ""
            quant, size = mark + row.plan.quant, mark + human_size(row.plan.file.size)
        else:
            quant = size = "-"
        lines.append((p.name, _params(p.params_b), _context(p.context_length), p.license, quant, size))
    print(table(("name", "params", "context", "license", "quant", "size"), lines, right=(1, 2, 5)))
    print()
    print(f"quant and size: the file `llmclient pull NAME` would choose here ({_machine(hardware)})")
    if any(row.estimated for row in rows):
        print("~ estimated from the parameter count: the repo was never listed or its header never read"
              + (" (--offline)" if args.offline else ""))  # fmt: skip
    if any(row.too_big for row in rows):
        print("- no file of it fits this machine's memory; `llmclient plan NAME` says what it would need")
    failures = [row for row in rows if row.failure is not None]
    if failures:
        print(f"the hub could not be asked about {len(failures)} preset(s), e.g. {failures[0].preset.name}: "
              f"{failures[0].failure}")  # fmt: skip
    return 0


def _machine(hardware: Hardware) -> str:
    if hardware.budget is not None:
        return f"a budget of {hardware.budget / 1e9:.2f} GB"
    gpus = ", ".join(f"{d.name} {d.free / 1e9:.1f} GB free" for d in hardware.gpus)
    ram = f"{hardware.ram_available / 1e9:.1f} GB RAM available"
    return f"{gpus}; {ram}" if gpus else f"no GPU; {ram}"


def _header(model: Source) -> str:
    if model.kind == "preset":
        return f"model     {model.repo_id} (preset {model.name})"
    return f"model     {model}"


def plan(args: argparse.Namespace) -> int:
    """Print how the model would run here (file, context, offload, memory) without downloading it."""
    model = parse_model(args.model)
    chosen = anyio.run(builder_for(args, model).plan)
    if model.kind != "local":
        print(_header(model))
    print(chosen)
    return 0


async def _pull(args: argparse.Namespace, model: Source) -> tuple[Plan | None, list[CachedModel]]:
    cache = cache_for(args)
    offline = True if args.offline else None
    if model.kind == "hf" and model.file is not None and args.quant is None:
        names, chosen = [model.file], None  # a named file needs no plan: fetch it as it is
    else:
        chosen = await builder_for(args, model).plan()
        names = list(chosen.file.shards or (chosen.file.filename,))
    fetched = [
        await cache.fetch(model.repo_id, name, endpoint=args.endpoint, progress=True, offline=offline) for name in names
    ]
    return chosen, fetched


def pull(args: argparse.Namespace) -> int:
    """Download the file the planner chooses for this machine (or the one named) into the cache, verified."""
    model = parse_model(args.model)
    if model.kind == "local":
        raise ValueError(f"{model.name} is a local file already; pull takes a preset name or a hub repo (owner/name)")
    chosen, fetched = anyio.run(_pull, args, model)
    quant = f"{chosen.quant}, " if chosen is not None else ""
    for cached in fetched:
        size = human_size(cached.size)
        print(f"{cached.repo_id}/{cached.filename}  ({quant}{size})  verified, sha256 {cached.sha256}")
        print(f"  {cached.path}")
    return 0


def hw(args: argparse.Namespace) -> int:
    """Print the devices and memory llama.cpp sees here, and where the list came from."""
    hardware = detect(memory_gb=args.memory_gb)
    print(hardware)
    sources = {"llama.cpp": "llama.cpp's device list", "nvml": "NVML (llama.cpp's list was unavailable)"}
    print(f"source: {sources.get(hardware.source, 'no GPU source answered; CPU only')}")
    if not hardware.gpus:
        print("no GPU: models run on the CPU, from RAM")
    return 0
