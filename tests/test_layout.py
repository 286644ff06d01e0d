"""The package's layout: no import circles between its modules, and no module past ~400 lines.

The import graph is read from the source with `ast`, so it holds every import a module can make: at the top, inside
functions (lazy imports) and under `if TYPE_CHECKING:`. A circle through any of them means two modules cannot be
understood, or changed, one without the other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "llmclient"

#: Generated files: data, not code to read top to bottom.
GENERATED = frozenset({"llmclient/presets/_catalogue.py", "llmclient/presets/_methods.py"})
MAX_LINES = 400


def module_name(path: Path) -> str:
    """`llmclient/cli/_cache.py` -> `llmclient.cli._cache`; a package's `__init__.py` is the package itself."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _known(name: str, known: Iterable[str]) -> str | None:
    """`name` if it is one of our modules, else the longest of ours it lies in (None outside the package)."""
    known = set(known)
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def imported(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """The modules of ours that `module` imports anywhere in its source.

    `from pkg import name` is an import of the submodule `pkg.name` when there is one, else of `pkg`.
    """
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, known)
                if target is not None:
                    yield target
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                target = submodule if submodule in known else _known(base, known)
                if target is not None:
                    yield target


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the modules of ours it imports (itself left out)."""
    found = modules()
    known = set(found)
    return {name: set(imported(name, path, known)) - {name} for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary circle of imports, each once, starting from its smallest module name."""
    found: list[list[str]] = []
    order = sorted(graph)
    for start_index, start in enumerate(order):
        allowed = set(order[start_index:])  # circles through smaller names were found from those
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start] & allowed)))]
        path, on_path = [start], {start}
        while stack:
            successors = stack[-1][1]
            step = next(successors, None)
            if step is None:
                stack.pop()
                on_path.discard(path.pop())
            elif step == start:
                found.append([*path, start])
            elif step not in on_path:
                stack.append((step, iter(sorted(graph[step] & allowed))))
                path.append(step)
                on_path.add(step)
    return found


def test_the_import_graph_sees_lazy_type_checking_and_submodule_imports() -> None:
    graph = import_graph()
    assert "llmclient.errors" in graph["llmclient.cache"]
    assert "llmclient.presets" in graph["llmclient.cli._common"]  # `from llmclient import presets`: a submodule
    assert "llmclient" in graph["llmclient.cli._parser"]  # `from llmclient import __version__`: the package
    assert "llmclient._native" in graph["llmclient._gguf.parse"]
    assert "llmclient.backends.llama_cpp._model" in graph["llmclient.backends.llama_cpp._engine"]  # in a function
    assert "llmclient.testing.localhub" in graph["llmclient.testing"]  # a package's __init__ is a node of its own


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    listing = "\n".join(" -> ".join(c) for c in found)
    print(f"{len(found)} import cycle(s)" + (f":\n{listing}" if found else ""))
    assert not found, "import cycles:\n" + listing


def test_no_module_is_longer_than_400_lines() -> None:
    lengths = {
        path.relative_to(PACKAGE.parent).as_posix(): len(path.read_text().splitlines()) for path in modules().values()
    }
    long = {name: n for name, n in sorted(lengths.items()) if n > MAX_LINES and name not in GENERATED}
    print("\n".join(f"{n:5} {name}" for name, n in long.items()) or "none longer than 400 lines")
    assert not long, f"longer than {MAX_LINES} lines; split them by responsibility: {long}"
