"""`llmclient run` and `chat`: answers streamed to the terminal; in a chat, Ctrl-C stops the answer, not the chat.

The chat reads lines on the main thread (so line editing and Ctrl-C behave as in any terminal program) and runs
the model on an event loop in a background thread, through a blocking portal. Ctrl-C raises KeyboardInterrupt in
the main thread only; the chat answers it by cancelling the answer's scope in the loop, which leaves the client's
stream and so stops the generation at the next token.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import logging
import sys
from typing import TypeVar

import anyio
import anyio.from_thread

from llmclient.cli._common import CommandError, builder_for, note, parse_model
from llmclient.client import LlmClient
from llmclient.errors import LlmClientError

__all__ = ["PROMPT", "chat", "run"]

#: What the chat shows when it waits for the next message.
PROMPT = "you> "
HELP = (
    "/system TEXT sets the system prompt (/system shows it), /reset forgets the conversation, /help shows this, "
    "/exit leaves.\n"
    "Ctrl-C stops an answer; Ctrl-D leaves."
)
T = TypeVar("T")


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


async def _stream(client: LlmClient, messages: list[dict[str, str]], parts: list[str]) -> str | None:
    """Write the answer to stdout as it comes, keeping its pieces in `parts`; the finish reason."""
    async for chunk in client.stream(messages):
        if chunk.text:
            _write(chunk.text)
            parts.append(chunk.text)
        if chunk.finish_reason is not None:
            return chunk.finish_reason
    return None


def _quiet_llama_cpp(args: argparse.Namespace) -> None:
    """Keep llama.cpp's own log off the terminal once the model is loaded (`--debug` keeps it).

    llama.cpp logs an error line when a generation is stopped in the middle of a step (Ctrl-C), which the client
    does on purpose; llama-cpp-python prints its log at or above its logger's level, which loading resets.
    """
    if not args.debug:
        logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL)


def _end_of_answer(parts: list[str], finish: str | None) -> None:
    if parts and not parts[-1].endswith("\n"):
        _write("\n")
    if finish == "length":
        note("(the answer reached its token limit: --max-tokens, or the end of the context)")


def run(args: argparse.Namespace) -> int:
    """Answer one prompt (the argument, or stdin when it is `-` or left out), streamed to stdout."""
    model = parse_model(args.model)
    if args.prompt is None and sys.stdin.isatty():
        raise CommandError('give a prompt: llmclient run MODEL "..." (or "-" and the prompt on stdin)')
    prompt = sys.stdin.read() if args.prompt in (None, "-") else args.prompt
    if not prompt.strip():
        raise CommandError("the prompt is empty: give it as an argument, or on stdin")
    builder = builder_for(args, model)
    parts: list[str] = []

    async def answer() -> str | None:
        async with await builder.init() as client:
            _quiet_llama_cpp(args)
            return await _stream(client, [{"role": "user", "content": prompt}], parts)

    finish = anyio.run(answer)
    _end_of_answer(parts, finish)
    return 0


def _result(future: concurrent.futures.Future[T]) -> T:
    """The future's result, waiting in short steps so that a Ctrl-C is raised here at once."""
    while True:
        try:
            return future.result(timeout=0.1)
        except concurrent.futures.TimeoutError:
            if future.done():  # the task's own TimeoutError (the same class since Python 3.11)
                raise


class _Chat:
    """One conversation with a loaded model: its history, its system prompt, and answering with Ctrl-C."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, client: LlmClient, system: str | None) -> None:
        self.portal = portal
        self.client = client
        self.system = system
        self.history: list[dict[str, str]] = []

    def command(self, line: str) -> bool:
        """Act on a `/command`; False when it asks to leave."""
        name, _, rest = line.partition(" ")
        if name in ("/exit", "/quit"):
            return False
        if name == "/reset":
            self.history.clear()
            print("(conversation forgotten; the system prompt stays)")
        elif name == "/system" and rest.strip():
            self.system = rest.strip()
            print("(system prompt set)")
        elif name == "/system":
            print(f"(system prompt: {self.system!r})" if self.system else "(no system prompt; /system TEXT sets one)")
        elif name == "/help":
            print(HELP)
        else:
            print(f"(unknown command {name}) {HELP}")
        return True

    def say(self, text: str) -> None:
        """Stream the answer to `text`; Ctrl-C stops it and keeps what was said so far."""
        user = {"role": "user", "content": text}
        system = [{"role": "system", "content": self.system}] if self.system else []
        messages = [*system, *self.history, user]
        parts: list[str] = []
        scope = self.portal.call(anyio.CancelScope)

        async def answer() -> str | None:
            with scope:
                return await _stream(self.client, messages, parts)
            return "stopped"  # the scope was cancelled by Ctrl-C

        future = self.portal.start_task_soon(answer)
        while True:
            try:
                finish = _result(future)
                break
            except KeyboardInterrupt:
                self.portal.start_task_soon(scope.cancel)  # the answer ends at the next token; wait for it
            except LlmClientError as error:
                _end_of_answer(parts, None)
                note(f"llmclient: error: {error}")
                return
        _end_of_answer(parts, finish)
        if finish == "stopped":
            print("[stopped]")
        if parts:  # what was shown is what the model said: keep it, even cut short
            self.history += [user, {"role": "assistant", "content": "".join(parts)}]

    def loop(self) -> None:
        """Read messages and commands until Ctrl-D or /exit."""
        while True:
            try:
                line = input(PROMPT).strip()
            except EOFError:
                print()
                return
            except KeyboardInterrupt:
                print("\n(Ctrl-D leaves)")
                continue
            if not line:
                continue
            if line.startswith("/"):
                if not self.command(line):
                    return
                continue
            self.say(line)


def chat(args: argparse.Namespace) -> int:
    """An interactive chat: each answer streamed, the conversation remembered until /reset."""
    model = parse_model(args.model)
    builder = builder_for(args, model)
    if sys.stdin.isatty():
        with contextlib.suppress(ImportError):  # no readline on Windows
            import readline  # noqa: F401 - line editing and history for input()
    with anyio.from_thread.start_blocking_portal() as portal:
        client = _result(portal.start_task_soon(builder.init))
        _quiet_llama_cpp(args)
        try:
            plan = client.plan
            if plan is not None:
                print(f"{model}: {plan.file.filename} ({plan.quant}) on {plan.device}, {plan.n_ctx}-token context")
            print(HELP)
            _Chat(portal, client, args.system_prompt).loop()
        finally:
            portal.call(client.close)
    return 0
