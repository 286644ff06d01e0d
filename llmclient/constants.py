"""Every environment variable llmclient reads is read here, and nowhere else.

huggingface_hub keeps reading its own (`HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_OFFLINE`, ...); llmclient defers to it
for those through `hub_offline()`.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from huggingface_hub import constants as hf_constants

from llmclient.errors import InvalidSettingError

#: Where models are cached unless a root is given: `LLMCLIENT_CACHE_DIR`, else the platform's user cache dir.
CACHE_DIR_ENV = "LLMCLIENT_CACHE_DIR"

#: Seconds without a byte from the hub before a transfer attempt is abandoned and retried.
DOWNLOAD_TIMEOUT_ENV = "LLMCLIENT_DOWNLOAD_TIMEOUT"
DEFAULT_DOWNLOAD_TIMEOUT = 30.0

#: Attempts in a row that may fail without receiving a byte before a download gives up.
DEFAULT_MAX_RETRIES = 5


#: An explicit memory budget in GB for the planner, replacing detection (GPU memory if there are GPUs, else RAM).
MEMORY_GB_ENV = "LLMCLIENT_MEMORY_GB"


#: How much the decode thread (and the compute threads it starts) lowers its scheduling priority (Linux nice
#: increment). Default 0: a niced team gets a small share of the CPU whenever anything else is runnable, and an
#: unprivileged thread cannot take a nice back. 10 keeps the event loop's worst ticks lower on a machine of its own.
WORKER_NICE_ENV = "LLMCLIENT_WORKER_NICE"
DEFAULT_WORKER_NICE = 0


def worker_nice() -> int:
    """`$LLMCLIENT_WORKER_NICE` (0-19) or the default: the nice increment of the decode thread."""
    value = os.environ.get(WORKER_NICE_ENV, "").strip()
    if not value:
        return DEFAULT_WORKER_NICE
    if not value.isdigit() or int(value) > 19:
        raise InvalidSettingError(f"{WORKER_NICE_ENV}={value!r} must be a whole number from 0 to 19; or unset it")
    return int(value)


#: Whether the compute-thread count follows what the machine has free (1, the default) or stays at the plan's
#: threads (0). See `llmclient.backends.llama_cpp._threads`.
ADAPTIVE_THREADS_ENV = "LLMCLIENT_ADAPTIVE_THREADS"


def _switch(name: str) -> bool | None:
    """`$name` as True (1) or False (0), None when unset; anything else is refused."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if value not in ("0", "1"):
        raise InvalidSettingError(f"{name}={value!r} must be 0 or 1; or unset it")
    return value == "1"


def adaptive_threads() -> bool:
    """`$LLMCLIENT_ADAPTIVE_THREADS`: True unless it is 0 (read once, when the process's decode thread starts)."""
    return _switch(ADAPTIVE_THREADS_ENV) is not False


#: Whether the worker hands out a step's tokens while the next batch is computed: 1 always, 0 never; unset, where
#: layers run on a GPU (on a CPU the decode computes before it returns, so there is nothing to overlap).
OVERLAP_ENV = "LLMCLIENT_OVERLAP"


def overlap_steps() -> bool | None:
    """`$LLMCLIENT_OVERLAP` as True/False, or None (unset: the backend decides)."""
    return _switch(OVERLAP_ENV)


#: Whether tokens a constraint (`schema=`, ...) leaves no choice about are decoded in one batch with the sampled
#: one (1, the default) or one a step like any other (0). See `llmclient.backends.llama_cpp._batch`.
JUMP_FORWARD_ENV = "LLMCLIENT_JUMP_FORWARD"


def jump_forward() -> bool:
    """`$LLMCLIENT_JUMP_FORWARD`: True unless it is 0 (read when a model loads)."""
    return _switch(JUMP_FORWARD_ENV) is not False


#: The API key `LlmClient.remote()` sends (as `Authorization: Bearer ...`) to the servers it was given, when no
#: `api_key=` is passed. Not `OPENAI_API_KEY`: a key for OpenAI should not travel to self-hosted replicas.
API_KEY_ENV = "LLMCLIENT_API_KEY"


def remote_api_key() -> str | None:
    """`$LLMCLIENT_API_KEY`, or None when unset or empty."""
    value = os.environ.get(API_KEY_ENV, "").strip()
    return value or None


#: mistral.rs's log filter (Rust's `RUST_LOG`): set before `import mistralrs` unless the app set it, since its
#: logger starts at import and writes to stdout, in colour. `error` keeps it quiet but for failures.
MISTRALRS_LOG_ENV = "RUST_LOG"
DEFAULT_MISTRALRS_LOG = "error"
#: mistral.rs's compute threads (rayon's global pool), read once per process when it first computes.
MISTRALRS_THREADS_ENV = "RAYON_NUM_THREADS"


def mistralrs_environment(threads: int) -> dict[str, str]:
    """The variables to set before mistral.rs is imported, those the app has not set itself: its log filter
    (`RUST_LOG=error`) and its compute threads (`RAYON_NUM_THREADS`, the plan's; rayon reads it once per process,
    so the first mistral.rs model of the process decides it for all)."""
    wanted = {MISTRALRS_LOG_ENV: DEFAULT_MISTRALRS_LOG, MISTRALRS_THREADS_ENV: str(threads)}
    return {name: value for name, value in wanted.items() if not os.environ.get(name, "").strip()}


def memory_budget_gb() -> float | None:
    """`$LLMCLIENT_MEMORY_GB` as a number of GB, or None when unset."""
    value = os.environ.get(MEMORY_GB_ENV, "").strip()
    if not value:
        return None
    try:
        gigabytes = float(value)
    except ValueError:
        gigabytes = -1.0
    if not gigabytes > 0:
        raise InvalidSettingError(f"{MEMORY_GB_ENV}={value!r} must be a positive number of GB, e.g. 12; or unset it")
    return gigabytes


def default_cache_dir() -> Path:
    """The cache root: `$LLMCLIENT_CACHE_DIR` if set, else `platformdirs.user_cache_dir("llmclient")`."""
    value = os.environ.get(CACHE_DIR_ENV)
    if value:
        return Path(value).expanduser()
    return Path(platformdirs.user_cache_dir("llmclient", appauthor=False))


def download_timeout() -> float:
    """The read timeout for transfers, from `$LLMCLIENT_DOWNLOAD_TIMEOUT` (seconds) or the default."""
    value = os.environ.get(DOWNLOAD_TIMEOUT_ENV)
    if not value:
        return DEFAULT_DOWNLOAD_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        message = f"{DOWNLOAD_TIMEOUT_ENV}={value!r} is not a number of seconds; unset it or use e.g. 30"
        raise InvalidSettingError(message) from None
    if seconds <= 0:
        raise InvalidSettingError(f"{DOWNLOAD_TIMEOUT_ENV}={value!r} must be positive; unset it or use e.g. 30")
    return seconds


def hub_offline() -> bool:
    """Whether huggingface_hub's offline mode (`HF_HUB_OFFLINE`) is on.

    huggingface_hub reads the variable once, at import; it is read again here so that setting it later in the
    process (as tests and notebooks do) takes effect too.
    """
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return hf_constants.is_offline_mode() or value.strip().upper() in {"1", "ON", "YES", "TRUE"}
