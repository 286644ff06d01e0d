"""The quantization types, ordered by quality: data the planner ranks model files by.

Higher in `QUANTS` is better. K-quants and i-quants are placed by their bits per weight; the older Q4_0/Q4_1/
Q5_0/Q5_1 sit just below the K-quant of similar size, which beats them at equal size. The `_L`/`_XL` variants
(bartowski's: a K-quant with Q8_0 embedding and output) sit just above their base. Unquantized types are
listed but never picked automatically: twice Q8_0's memory for no quality a chat user can tell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["QUANTS", "Quant", "quant_from_file_type", "quant_from_filename", "quant_named", "quality_rank"]


@dataclass(frozen=True)
class Quant:
    """One quantization type."""

    name: str
    """As in file names, upper case: `Q4_K_M`."""
    bits_per_weight: float
    """Approximate average bits per weight of a whole model file (llama.cpp's `quantize --help` figures)."""
    file_type: int | None
    """llama.cpp's `LLAMA_FTYPE_MOSTLY_*` value in `general.file_type`, None for a naming-only variant."""
    auto: bool = True
    """Whether the planner may pick it without being asked."""


#: Best first.
QUANTS: tuple[Quant, ...] = (
    Quant("F32", 32.0, 0, auto=False),
    Quant("BF16", 16.0, 32, auto=False),
    Quant("F16", 16.0, 1, auto=False),
    Quant("Q8_0", 8.50, 7),
    Quant("Q6_K_L", 6.70, None),
    Quant("Q6_K", 6.56, 18),
    Quant("Q5_K_L", 5.90, None),
    Quant("Q5_K_M", 5.69, 17),
    Quant("Q5_K_S", 5.54, 16),
    Quant("Q5_1", 6.00, 9),
    Quant("Q5_0", 5.50, 8),
    Quant("Q4_K_L", 5.10, None),
    Quant("Q4_K_M", 4.89, 15),
    Quant("Q4_K_S", 4.58, 14),
    Quant("IQ4_NL", 4.50, 25),
    Quant("IQ4_XS", 4.25, 30),
    Quant("Q4_1", 5.00, 3),
    Quant("Q4_0", 4.55, 2),
    Quant("Q3_K_XL", 4.40, None),
    Quant("Q3_K_L", 4.27, 13),
    Quant("Q3_K_M", 3.91, 12),
    Quant("IQ3_M", 3.66, 27),
    Quant("IQ3_S", 3.44, 26),
    Quant("Q3_K_S", 3.41, 11),
    Quant("IQ3_XS", 3.30, 22),
    Quant("IQ3_XXS", 3.06, 23),
    Quant("Q2_K_L", 3.20, None),
    Quant("Q2_K", 2.96, 10),
    Quant("Q2_K_S", 2.79, 21),
    Quant("IQ2_M", 2.70, 29),
    Quant("IQ2_S", 2.50, 28),
    Quant("IQ2_XS", 2.31, 20),
    Quant("IQ2_XXS", 2.06, 19),
    Quant("IQ1_M", 1.75, 31),
    Quant("IQ1_S", 1.56, 24),
)

_BY_NAME = {q.name: q for q in QUANTS}
_RANK = {q.name: i for i, q in enumerate(QUANTS)}
_BY_FTYPE = {q.file_type: q for q in QUANTS if q.file_type is not None}
# Longest names first so that Q4_K_M wins over Q4_K and IQ4_XS over Q4_X...
_NAME_RE = re.compile(
    r"(?:^|[-._])(" + "|".join(sorted((re.escape(q.name) for q in QUANTS), key=len, reverse=True)) + r")(?=$|[-._])",
    re.IGNORECASE,
)


def quant_named(name: str) -> Quant | None:
    """The quant called `name` (any case), or None."""
    return _BY_NAME.get(name.upper())


def quant_from_filename(filename: str) -> Quant | None:
    """The quant a GGUF file's name states (`...-Q4_K_M.gguf`, `...q8_0-00001-of-00002.gguf`), or None."""
    stem = filename.rsplit("/", 1)[-1]
    matches = _NAME_RE.findall(stem)
    return _BY_NAME[matches[-1].upper()] if matches else None


def quant_from_file_type(file_type: int | None) -> Quant | None:
    """The quant a GGUF header's `general.file_type` names, or None."""
    return _BY_FTYPE.get(file_type) if file_type is not None else None


def quality_rank(quant: Quant | None) -> int:
    """Sort key: smaller is better; unknown quants last."""
    return _RANK.get(quant.name, len(QUANTS)) if quant is not None else len(QUANTS)
