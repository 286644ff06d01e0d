"""What the `llmclient` subcommands share: naming a model on the command line, the builder it gives, tables."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from llmclient import presets
from llmclient._source import Source
from llmclient.cache import ModelCache
from llmclient.client import LlamaCppBuilder
from llmclient.errors import UnknownPresetError

__all__ = [
    "CommandError",
    "builder_for",
    "cache_for",
    "human_size",
    "library_warnings_reported",
    "note",
    "parse_model",
    "table",
]


class CommandError(Exception):
    """A mistake on the command line that is not the library's to report (a name not in the cache, ...)."""


def parse_model(text: str) -> Source:
    """`text` as a model: a path to a .gguf file, `owner/name[/file]` on the hub, else a preset name or alias.

    An unknown preset raises `UnknownPresetError` naming the closest ones, in the command line's words.
    """
    path = Path(text).expanduser()
    if text.startswith(("/", "./", "../", "~")) or (text.endswith(".gguf") and path.is_file()):
        return Source("local", str(path))
    if "/" in text:
        owner, name, *rest = text.split("/", 2)
        return Source("hf", f"{owner}/{name}", rest[0] if rest and rest[0] else None)
    try:
        return Source("preset", presets.get(text).name)
    except UnknownPresetError as error:
        # the library's message ends by pointing at the Python API; point at the command instead
        message = str(error).split(" See ", 1)[0]
        raise UnknownPresetError(
            f"{message} Run `llmclient presets` for the list, or name a hub repo as owner/name."
        ) from None


def cache_for(args: argparse.Namespace) -> ModelCache:
    """The cache `--cache-dir` names, else the default (`$LLMCLIENT_CACHE_DIR` or the user cache dir)."""
    return ModelCache(args.cache_dir)


def builder_for(args: argparse.Namespace, model: Source) -> LlamaCppBuilder:
    """A builder for `model` with every option the subcommand has (`--ctx`, `--quant`, `--temperature`, ...)."""
    builder = LlamaCppBuilder()
    if model.kind == "preset":
        builder = builder.preset(model.name)
    elif model.kind == "hf":
        builder = builder.hf(model.name, file=model.file)
    else:
        builder = builder.local(model.name)
    if args.cache_dir is not None:
        builder = builder.cache_dir(args.cache_dir)
    if args.endpoint is not None:
        builder = builder.endpoint(args.endpoint)
    if args.offline:
        builder = builder.offline()
    for option in ("ctx", "memory_gb", "quant", "threads", "max_tokens", "temperature", "seed", "system_prompt"):
        value = getattr(args, option, None)
        if value is not None:
            builder = getattr(builder, option)(value)
    if getattr(args, "cpu_only", False):
        builder = builder.cpu_only()
    return builder


def human_size(n: int) -> str:
    """Bytes in decimal units: `98.4 MB`, `4.37 GB`."""
    if n < 1e9:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e9:.2f} GB"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Rows as aligned columns under `header`; the columns numbered in `right` are aligned right."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [
            str(cell).rjust(width) if i in right else str(cell).ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), *(line(row) for row in rows)])


def note(message: str) -> None:
    """A line for the person at the terminal, on stderr (stdout stays the command's answer)."""
    print(message, file=sys.stderr, flush=True)


@contextmanager
def library_warnings_reported(args: argparse.Namespace) -> Iterator[None]:
    """Leave out llmclient's warnings (they are in the command's own report); `--debug` keeps them."""
    logger = logging.getLogger("llmclient")
    level = logger.level
    if not args.debug:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
