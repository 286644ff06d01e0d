"""Write `llmclient/presets/_methods.py`: one typed builder method per preset and alias, from the catalogue.

python scripts/gen_preset_methods.py          # rewrite the file
python scripts/gen_preset_methods.py --check  # exit 1 if the file is out of date (a test runs this)
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "llmclient" / "presets" / "_methods.py"

HEADER = '''"""One builder method per catalogued preset and alias, so IDEs and mypy know them all.

Generated from the catalogue by `python scripts/gen_preset_methods.py`; do not edit by hand (a test checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typing_extensions import Self

__all__ = ["PresetMethods"]


class PresetMethods:
    """The preset methods of every builder (each returns the builder it was called on, changed)."""

    if TYPE_CHECKING:

        def preset(self, name: str) -> Self: ...
'''


def render() -> str:
    sys.path.insert(0, str(TARGET.parents[2]))
    from llmclient.presets._catalogue import PRESETS

    parts = [HEADER]
    for p in PRESETS:
        quants = ", ".join(p.quants)
        context = f"{p.context_length // 1024}k" if p.context_length >= 1024 else str(p.context_length)
        doc = f"{p.display}: {p.params_b:g}B parameters, {context} context, {p.license} license ({p.repo}; {quants})."
        if p.embedding is not None:
            e = p.embedding
            doc = (
                f"{p.display}: an embedding model (client.embed; no chat), {e.dimension} dimensions, up to "
                f"{e.max_tokens} tokens a text, {e.pooling} pooling, {p.params_b:g}B parameters, {p.license} license "
                f"({p.repo}; {quants})."
            )
        for method, text in [(p.name, doc), *((a, f"Alias of `{p.name}`: {doc}") for a in p.aliases)]:
            lines = textwrap.wrap(text, 108)
            body = lines[0] if len(lines) == 1 else "\n        ".join([*lines, ""])
            parts.append(
                f'\n    def {method}(self) -> Self:\n        """{body}"""\n        return self.preset("{p.name}")\n'
            )
    return "".join(parts)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python scripts/gen_preset_methods.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
