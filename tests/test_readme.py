"""The README says what the code does: its preset table is the catalogue's, and it shows the two commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SCRIPT = ROOT / "scripts" / "preset_table.py"


def preset_table(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True)


def bash_blocks(markdown: str) -> list[str]:
    """The contents of the ```bash fenced blocks in `markdown`."""
    return re.findall(r"^```bash\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)


def test_the_readme_preset_table_is_the_catalogue() -> None:
    checked = preset_table("--check", "README.md")
    assert checked.returncode == 0, checked.stderr


def test_the_readme_shows_the_main_job_and_the_test_command_in_bash_blocks() -> None:
    commands = [line.split("#")[0].strip() for block in bash_blocks(README.read_text()) for line in block.splitlines()]
    assert "python examples/offline_demo.py" in commands
    assert "python -m pytest" in commands


def test_the_table_script_writes_the_block_between_the_markers_and_then_checks_clean(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# title\n\n<!-- presets:start -->\nstale\n<!-- presets:end -->\n\nafter\n")
    stale = preset_table("--check", str(doc))
    assert stale.returncode == 1 and "out of date" in stale.stderr and "-stale" in stale.stderr
    assert preset_table("--write", str(doc)).returncode == 0
    text = doc.read_text()
    assert text.startswith("# title\n\n<!-- presets:start -->\n") and text.endswith("<!-- presets:end -->\n\nafter\n")
    assert "| `smollm2_135m_instruct()` `smollm2_135m()` | SmolLM2 135M Instruct | 135M | 8k | apache-2.0 |" in text
    assert preset_table("--check", str(doc)).returncode == 0
    printed = preset_table()
    assert printed.returncode == 0 and printed.stdout in text


def test_the_table_script_says_where_the_markers_go_when_they_are_missing(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# no markers\n")
    result = preset_table("--check", str(doc))
    assert result.returncode != 0 and "<!-- presets:start -->" in result.stderr


def test_the_readme_examples_print_what_the_readme_says() -> None:
    """Each `python readme-run` block (structured output, tool calling) prints the `text readme-output` after it."""
    text = README.read_text()
    blocks = re.findall(
        r"^```python readme-run\n(.*?)^```.*?^```text readme-output\n(.*?)^```", text, re.MULTILINE | re.DOTALL
    )
    assert len(blocks) == 2
    for code, shown in blocks:
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout == shown
