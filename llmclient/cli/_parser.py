"""The `llmclient` command's arguments: its subcommands, their options, and the handler each one runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from llmclient import __version__
from llmclient.cli._cache import list_cache, rm, verify
from llmclient.cli._chat import chat, run
from llmclient.cli._models import hw, plan, presets_table, pull

__all__ = ["Handler", "build_parser"]

Handler = Callable[[argparse.Namespace], int]
"""A subcommand: the parsed arguments in, the exit status out."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _debug_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--debug", action="store_true", default=default, help="show tracebacks and debug logs")


def _cache_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where models come from")
    cache_help = "the model cache (default: $LLMCLIENT_CACHE_DIR, else the user cache dir)"
    group.add_argument("--cache-dir", type=Path, metavar="DIR", help=cache_help)
    group.add_argument(
        "--endpoint", metavar="URL", help="the hub to use, e.g. a mirror (default: $HF_ENDPOINT, else huggingface.co)"
    )
    group.add_argument("--offline", action="store_true", help="make no request: use the cache only")


def _sizing_options(parser: argparse.ArgumentParser, per_model: bool = True) -> None:
    group = parser.add_argument_group("sizing")
    group.add_argument(
        "--ctx", type=_positive_int, metavar="N", help="context length in tokens (default: what fits, up to 8192)"
    )
    group.add_argument(
        "--memory-gb", type=_positive_float, metavar="GB", help="a memory budget in GB replacing detection"
    )
    if per_model:  # not for `presets`, which plans them all
        group.add_argument(
            "--quant", metavar="QUANT", help="this quantization (e.g. Q4_K_M) instead of the planner's choice"
        )
        group.add_argument("--cpu-only", action="store_true", help="ignore GPUs")
        group.add_argument(
            "--threads", type=_positive_int, metavar="N", help="CPU threads (default: every physical core)"
        )


def _answer_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("answers")
    group.add_argument(
        "--max-tokens", type=_positive_int, metavar="N", help="longest answer in tokens (default: the context)"
    )
    group.add_argument(
        "--temperature", type=float, metavar="T", help="sampling temperature, 0 for the most likely answer"
    )
    group.add_argument("--seed", type=int, metavar="N", help="sampling seed, for repeatable answers")
    group.add_argument("--system", dest="system_prompt", metavar="TEXT", help="a system prompt")


MODEL_HELP = "a preset (see `llmclient presets`), a hub repo owner/name[/file.gguf], or a local .gguf file"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `llmclient` command, each subcommand's handler in its `handler` default."""
    parser = argparse.ArgumentParser(
        prog="llmclient",
        description="A local LLM, sized to this machine, downloaded and verified once.",
        epilog="A model is a preset name, a hub repo (owner/name or owner/name/file.gguf) or a local .gguf path.",
    )
    parser.add_argument("--version", action="version", version=f"llmclient {__version__}")
    _debug_option(parser, False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:  # noqa: A002 - argparse's word
        sub = commands.add_parser(name, help=help, description=help)
        _debug_option(sub, argparse.SUPPRESS)  # also accepted after the command; never resets the global one
        sub.set_defaults(handler=handler)
        return sub

    sub = command("presets", presets_table, "the catalogued models, with the quant and size planned for this machine")
    _cache_options(sub)
    _sizing_options(sub, per_model=False)

    sub = command("plan", plan, "how a model would run here: file, context, offload, memory (downloads nothing)")
    sub.add_argument("model", help=MODEL_HELP)
    _cache_options(sub)
    _sizing_options(sub)

    sub = command("pull", pull, "download a model (the quant planned for this machine) into the cache, verified")
    sub.add_argument("model", metavar="PRESET|REPO", help="a preset, or a hub repo owner/name[/file.gguf]")
    _cache_options(sub)
    _sizing_options(sub)

    sub = command("list", list_cache, "the cached models: size, quant, verified or not")
    _cache_options(sub)

    sub = command("verify", verify, "re-hash cached files against their sha256; corrupted ones are removed")
    sub.add_argument("name", nargs="?", help="a preset, owner/name[/file] or a cached file name (default: all)")
    _cache_options(sub)

    sub = command("rm", rm, "remove a cached model (a whole repo, or one file of it)")
    sub.add_argument("name", help="a preset, owner/name[/file] or a cached file name")
    _cache_options(sub)

    sub = command("run", run, "answer one prompt, streamed to stdout")
    sub.add_argument("model", help=MODEL_HELP)
    sub.add_argument("prompt", nargs="?", help="the prompt (default, or '-': read stdin)")
    _cache_options(sub)
    _sizing_options(sub)
    _answer_options(sub)

    sub = command("chat", chat, "an interactive chat: /system TEXT, /reset; Ctrl-C stops an answer, Ctrl-D leaves")
    sub.add_argument("model", help=MODEL_HELP)
    _cache_options(sub)
    _sizing_options(sub)
    _answer_options(sub)

    sub = command("hw", hw, "the devices and memory llama.cpp sees on this machine")
    sub.add_argument(
        "--memory-gb", type=_positive_float, metavar="GB", help="show a memory budget in GB replacing detection"
    )
    return parser
