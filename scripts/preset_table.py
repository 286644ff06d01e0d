"""The README's table of presets, generated from the catalogue (`llmclient.presets.list()`).

python scripts/preset_table.py                     # print the table (markdown)
python scripts/preset_table.py --write README.md   # replace the block between the markers with it
python scripts/preset_table.py --check README.md   # exit 1, with a diff, if that block is stale (a test runs this)

The block lies between the lines `<!-- presets:start -->` and `<!-- presets:end -->`.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START = "<!-- presets:start -->"
END = "<!-- presets:end -->"
NOTE = "<!-- generated from llmclient/presets/_catalogue.py by `python scripts/preset_table.py --write README.md` -->"


def _params(billions: float) -> str:
    return f"{billions * 1000:.0f}M" if billions < 1 else f"{billions:g}B"


def _context(tokens: int) -> str:
    return f"{tokens // 1024}k" if tokens % 1024 == 0 else str(tokens)


def render() -> str:
    """The table in markdown: one row per preset, in catalogue order."""
    sys.path.insert(0, str(ROOT))
    from llmclient import presets

    header = ["preset method (aliases)", "model", "params", "context", "license", "GGUF repo", "quants (best first)"]
    lines = ["| " + " | ".join(header) + " |", "| --- | --- | ---: | ---: | --- | --- | --- |"]
    for p in presets.list():
        method = f"`{p.name}()`" + "".join(f" `{a}()`" for a in p.aliases)
        repo = f"[{p.repo}](https://huggingface.co/{p.repo})"
        quants = " ".join(p.quants)
        cells = [method, p.display, _params(p.params_b), _context(p.context_length), p.license, repo, quants]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def block() -> str:
    """What belongs between the markers: the generated-file note and the table, each line ending in a newline."""
    return f"\n{NOTE}\n\n{render()}\n"


def split(text: str, path: Path) -> tuple[str, str, str]:
    """`text` as (up to and including the start marker, the block, from the end marker on)."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(
            f"{path} has no preset block: put the lines {START} and {END}, in that order, where the table goes"
        )
    cut = start + len(START)
    return text[:cut], text[cut:end], text[end:]


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the table; the exit status for `--check`."""
    parser = argparse.ArgumentParser(description="The README's preset table, from the catalogue.")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", type=Path, metavar="FILE", help="replace the block between the markers in FILE")
    action.add_argument("--check", type=Path, metavar="FILE", help="exit 1 if FILE's block is not the table")
    args = parser.parse_args(argv)
    if args.write is None and args.check is None:
        sys.stdout.write(render())
        return 0
    path: Path = args.write or args.check
    head, current, tail = split(path.read_text(encoding="utf-8"), path)
    wanted = block()
    if args.check is not None:
        if current == wanted:
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True), wanted.splitlines(keepends=True), f"{path} (now)", "generated"
        )
        sys.stderr.writelines(diff)
        fix = f"python scripts/preset_table.py --write {path}"
        print(f"\n{path}'s preset table is out of date: run {fix}", file=sys.stderr)
        return 1
    if current != wanted:
        path.write_text(head + wanted + tail, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
