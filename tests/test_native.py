"""gguf and numpy load only when needed, and never before llama.cpp's native libraries (see llmclient._native).

Each check runs in a fresh interpreter: this one has numpy loaded long ago.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmclient import ModelCache
from llmclient.testing import LocalHub
from tests.conftest import REPO

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent

#: Records the first import of numpy and of llama_cpp, in order, into `ORDER`.
RECORD_ORDER = """
import sys
ORDER = []
class Recorder:
    def find_spec(self, name, path=None, target=None):
        if name in ("numpy", "llama_cpp") and name not in ORDER:
            ORDER.append(name)
        return None
sys.meta_path.insert(0, Recorder())
"""


def python(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)


async def test_headers_and_the_cache_work_where_llama_cpp_cannot_be_imported(
    hub: LocalHub, cache: ModelCache, tmp_path: Path
) -> None:
    await cache.fetch(REPO, "README.md", endpoint=hub.url, progress=False)
    script = (
        "import sys, anyio\n"
        "sys.modules['llama_cpp'] = None  # as where llama-cpp-python is not installed\n"
        "import llmclient.metadata, llmclient.cache, llmclient.testing\n"
        "from llmclient.testing.synthetic import write_synthetic_gguf\n"
        f"info = llmclient.metadata.read_gguf_info(write_synthetic_gguf({str(tmp_path / 'm.gguf')!r}))\n"
        f"scan = anyio.run(llmclient.cache.ModelCache({str(cache.root)!r}).scan)\n"
        "print(info.architecture, info.block_count, [f.filename for f in scan.files], sys.modules['llama_cpp'])\n"
    )
    result = python(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["llama", "4", "['README.md']", "None"]


def test_reading_a_header_loads_llama_cpp_before_numpy(tmp_path: Path) -> None:
    script = RECORD_ORDER + (
        "from llmclient.metadata import read_gguf_info\n"
        "from llmclient.testing.synthetic import write_synthetic_gguf\n"
        f"info = read_gguf_info(write_synthetic_gguf({str(tmp_path / 'm.gguf')!r}))\n"
        "print(info.architecture, ORDER)\n"
    )
    result = python(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "llama ['llama_cpp', 'numpy']"


@pytest.mark.parametrize("llama_cpp", ["importable", "missing"])
def test_import_gguf_loads_llama_cpp_first_when_it_can(llama_cpp: str) -> None:
    # _native.py on its own, without the package's __init__ (which imports llama_cpp itself today)
    script = RECORD_ORDER + (
        "import importlib.util\n"
        + ("sys.modules['llama_cpp'] = None\n" if llama_cpp == "missing" else "")
        + f"spec = importlib.util.spec_from_file_location('native', {str(ROOT / 'llmclient' / '_native.py')!r})\n"
        "native = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(native)\n"
        "print(native.import_gguf().GGUFWriter.__name__, ORDER)\n"
    )
    result = python(script)
    assert result.returncode == 0, result.stderr
    expected = ["llama_cpp", "numpy"] if llama_cpp == "importable" else ["numpy"]
    assert result.stdout.strip() == f"GGUFWriter {expected}"


def test_importing_the_header_cache_planner_and_testing_modules_does_not_import_gguf() -> None:
    # numpy cannot be checked here yet: llmclient/__init__.py imports llama_cpp, which imports numpy
    script = (
        "import sys\n"
        "import llmclient.cache, llmclient.metadata, llmclient.planner, llmclient.hardware, llmclient.estimate\n"
        "import llmclient.testing.synthetic, llmclient.testing.localhub, llmclient.cli\n"
        "print('gguf' in sys.modules)\n"
    )
    result = python(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
