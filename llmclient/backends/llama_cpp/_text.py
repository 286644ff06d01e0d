"""Turning sampled tokens into text: whole UTF-8 characters only, and stop sequences never shown in part."""

from __future__ import annotations

import codecs
from collections.abc import Sequence

__all__ = ["TextAssembler"]


class TextAssembler:
    """Feed it each token's bytes; it gives back the text that is safe to show now.

    Bytes that end inside a UTF-8 character wait for the next token. Text that could be the start of a stop
    sequence waits until it is clear either way; once a stop sequence appears, everything from it on is dropped.
    """

    def __init__(self, stop: Sequence[str]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stop = [s for s in stop if s]
        self._held = ""
        self.stopped = False
        self.text = ""
        """Everything shown so far."""

    def feed(self, data: bytes) -> str:
        """The text `data` completes that can be shown now ('' while waiting, and after a stop)."""
        if self.stopped:
            return ""
        self._held += self._decoder.decode(data)
        return self._release(final=False)

    def finish(self) -> str:
        """The text still held back, at the end of generation."""
        if self.stopped:
            return ""
        self._held += self._decoder.decode(b"", final=True)
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        held = self._held
        for stop in self._stop:
            at = held.find(stop)
            if at >= 0:
                self.stopped = True
                self._held = ""
                self.text += held[:at]
                return held[:at]
        keep = 0
        if not final:  # hold back the longest tail that is a prefix of some stop sequence
            for stop in self._stop:
                for n in range(min(len(stop) - 1, len(held)), 0, -1):
                    if held.endswith(stop[:n]):
                        keep = max(keep, n)
                        break
        out, self._held = held[: len(held) - keep], held[len(held) - keep :]
        self.text += out
        return out
