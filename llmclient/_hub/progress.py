"""Download progress: the caller's callback, or a tqdm bar shown when stderr is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from llmclient._hub.transfer import ProgressFn

__all__ = ["Progress", "TqdmReporter", "reporter_for"]

Progress = bool | Callable[[int, "int | None"], object]
"""`True`: a tqdm bar when stderr is a terminal; `False`: silent; a callable gets `(done_bytes, total_bytes)`."""


class TqdmReporter:
    """A tqdm bar on stderr, created at the first report so it starts from the bytes already held."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.bar: Any = None

    def __call__(self, done: int, total: int | None) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm  # here, not at import: ~30 ms that a cached or local model never needs

            # disable=None: shown only when stderr is a terminal
            self.bar = tqdm(
                total=total,
                initial=done,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=self.desc,
                disable=None,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        else:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def reporter_for(progress: Progress, filename: str) -> ProgressFn | None:
    """The progress callback for `progress`: None, the caller's callable, or a tqdm bar."""
    if progress is True:
        return TqdmReporter(filename)
    return progress or None
