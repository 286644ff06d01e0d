"""`gguf` and `numpy`, imported only when needed and only after llama.cpp's native libraries.

On an H100 machine with numpy 2.5.2, a numpy loaded before llama.cpp's native libraries made every CUDA model load
crash in llama.cpp's tokenizer setup (SIGSEGV in `llama_model_load_from_file`; see `llmclient/__init__.py`). `gguf`
imports numpy, so llmclient imports either one through here, inside the function that needs it: then llama_cpp,
when it can be imported at all, always loads first, and a planner reading headers never pays for numpy.
"""

from __future__ import annotations

import contextlib
import sys
from types import ModuleType

__all__ = ["import_gguf", "import_numpy"]


def _llama_cpp_first() -> None:
    """Load llama_cpp if numpy is not loaded yet; without llama-cpp-python there is no load to protect."""
    if "numpy" not in sys.modules:
        with contextlib.suppress(ImportError):
            import llama_cpp  # noqa: F401


def import_gguf() -> ModuleType:
    """The `gguf` package (GGUF reading and writing, on numpy), imported after llama_cpp."""
    _llama_cpp_first()
    import gguf

    return gguf


def import_numpy() -> ModuleType:
    """The `numpy` package, imported after llama_cpp."""
    _llama_cpp_first()
    import numpy

    return numpy
