"""The `llmclient` command: browse the presets, plan, pull and manage cached models, and talk to one.

    llmclient presets                      what there is, and what would run here
    llmclient plan mistral7b --ctx 16384   how a model would run here (nothing downloaded)
    llmclient pull mistral7b               download it (the planned quant), verified
    llmclient list | verify [NAME] | rm NAME
    llmclient run mistral7b "Why is the sky blue?"
    llmclient chat mistral7b
    llmclient hw                           the devices and memory llama.cpp sees

A model is named as a preset (`llmclient presets`), a hub repo (`owner/name`, or `owner/name/file.gguf`), or
a path to a local .gguf file. Exit status: 0 done, 1 an error (one line on stderr; `--debug` adds the
traceback), 2 a usage error, 130 interrupted.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence

from llmclient.cli._common import CommandError
from llmclient.cli._parser import Handler, build_parser
from llmclient.errors import LlmClientError

__all__ = ["build_parser", "main"]

#: Errors that are the user's to fix: reported in one line, exit status 1.
USER_ERRORS = (LlmClientError, CommandError, ValueError, OSError)


def _configure_logging(debug: bool) -> None:
    """llmclient's warnings (a retry, a fallback to the cache) on stderr, one line each; everything with --debug."""
    handler = logging.StreamHandler(sys.stderr)
    form = "%(levelname)s %(name)s: %(message)s" if debug else "llmclient: %(message)s"
    handler.setFormatter(logging.Formatter(form))
    logger = logging.getLogger("llmclient")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `llmclient` command with `argv` (default: the process's arguments); the exit status."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.debug)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print("llmclient: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (`llmclient list | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except USER_ERRORS as error:
        if args.debug:
            traceback.print_exc()
        print(f"llmclient: error: {_one_line(error)}", file=sys.stderr)
        return 1
