"""How to load a model in mistral.rs: the settings a `Plan` turns into, and the in-situ quantization types."""

from __future__ import annotations

from dataclasses import dataclass

from llmclient.errors import InvalidSettingError
from llmclient.quants import Quant

__all__ = ["IN_SITU_QUANTS", "MistralRsSettings", "in_situ_quant"]

#: The types mistral.rs 0.9.5 can requantize a GGUF's weights to while loading (`Runner(in_situ_quant=...)`), by
#: its names, with their approximate bits per weight (the planner sizes the model by them).
IN_SITU_QUANTS: dict[str, float] = {
    "Q4_0": 4.5, "Q4_1": 5.0, "Q5_0": 5.5, "Q5_1": 6.0, "Q8_0": 8.5, "Q8_1": 9.0,
    "Q2K": 2.625, "Q3K": 3.4375, "Q4K": 4.5, "Q5K": 5.5, "Q6K": 6.5625, "Q8K": 9.125,
    "HQQ4": 4.5, "HQQ8": 8.5, "FP8": 8.0, "AFQ2": 2.5, "AFQ3": 3.5, "AFQ4": 4.5, "AFQ6": 6.5, "AFQ8": 8.5,
}  # fmt: skip


def in_situ_quant(name: str) -> Quant:
    """The in-situ quantization type called `name` (any case; `Q4_K` is mistral.rs's `Q4K`), as a `Quant`;
    `InvalidSettingError` listing the known ones."""
    key = name.upper().replace("_K", "K") if isinstance(name, str) else ""
    if key not in IN_SITU_QUANTS:
        raise InvalidSettingError(
            f"unknown in-situ quantization {name!r}; mistral.rs knows {', '.join(IN_SITU_QUANTS)} (or None: load the "
            "file's weights as they are)"
        )
    return Quant(key, IN_SITU_QUANTS[key], None, auto=False)


@dataclass(frozen=True)
class MistralRsSettings:
    """How to load a model in mistral.rs (normally taken from a `Plan`)."""

    n_ctx: int = 4096
    """The most tokens one request may hold (prompt + answer); a longer prompt is refused."""
    threads: int = 1
    """Compute threads (`RAYON_NUM_THREADS`; read once per process, by its first mistral.rs model)."""
    parallel: int = 4
    """Requests generated at once (`max_seqs`); more wait in the engine's queue, first come first served."""
    in_situ_quant: str | None = None
    """Requantize the weights to this type while loading (`IN_SITU_QUANTS`); None: the file's own."""
