"""The `llmclient` command, run as a real process against a real LocalHub serving the real SmolLM2 model."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import psutil
import pytest

from llmclient import presets
from llmclient.testing import SMOLLM2_SHA256, LocalHub


def _ctrl_c_works() -> None:
    """In the child: SIGINT back to its default. A shell starts background jobs with SIGINT ignored, and a process
    inherits that, so under `bash .ci/run &` Ctrl-C in the pty would never reach the command under test."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


PRESET = "smollm2_135m_instruct"
REPO = presets.get(PRESET).repo
#: The real file (Q4_1) served under one of the preset's catalogued names, so the planner may pick it.
FILENAME = presets.get(PRESET).files["Q4_K_M"]
#: Small and quick: a short context, one thread (other test processes may share the CPU cores).
QUICK = ["--ctx", "512", "--threads", "1", "--temperature", "0"]
#: The model's worker thread at normal priority, so a busy machine does not starve the answers.
ENV = {**os.environ, "LLMCLIENT_WORKER_NICE": "0", "TERM": "dumb"}
for _name in ("HF_HUB_OFFLINE", "LLMCLIENT_CACHE_DIR", "LLMCLIENT_MEMORY_GB"):
    ENV.pop(_name, None)


def llmclient(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m llmclient ARGS`, its output captured."""
    command = [sys.executable, "-m", "llmclient", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, input=stdin, timeout=120, check=False)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The error line of a failed command, checking it failed with exit status 1 and said nothing else."""
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmclient: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def preset_hub(tmp_path_factory: pytest.TempPathFactory, smollm2: Path) -> Iterator[LocalHub]:
    """The preset's repo, mirrored: the real SmolLM2 file under the preset's Q4_K_M file name."""
    root = tmp_path_factory.mktemp("hub")
    (root / REPO).mkdir(parents=True)
    os.symlink(smollm2, root / REPO / FILENAME)
    with LocalHub(root) as hub:
        yield hub


@pytest.fixture(scope="module")
def pulled(
    tmp_path_factory: pytest.TempPathFactory, preset_hub: LocalHub
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A cache the preset was pulled into with `llmclient pull`, and that command's result."""
    cache = tmp_path_factory.mktemp("pulled")
    return cache, llmclient("pull", PRESET, "--endpoint", preset_hub.url, "--cache-dir", cache)


def test_presets_lists_the_catalogue_with_the_quant_and_size_planned_here(
    preset_hub: LocalHub, pulled: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    result = llmclient("presets", "--endpoint", preset_hub.url, "--cache-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "params", "context", "license", "quant", "size"]
    rows = {line.split()[0]: line.split() for line in lines[1 : len(presets.list()) + 1]}
    assert list(rows) == [p.name for p in presets.list()]
    # the one repo the hub has: planned from its listing and the file's header, so exact
    assert rows[PRESET] == [PRESET, "135M", "8k", "apache-2.0", "Q4_K_M", "98.4", "MB"]
    # the others are not on this hub: estimated from the catalogue, and marked so
    assert rows["mistral7b_instruct_v0_3"][1:4] == ["7.25B", "32k", "apache-2.0"]
    assert rows["mistral7b_instruct_v0_3"][4].startswith("~Q")
    assert "~ estimated from the parameter count" in result.stdout
    assert "the hub could not be asked about" in result.stdout

    # offline, from a cache that has the preset: what was stored is known, the rest estimated, no request made
    cache, _ = pulled
    preset_hub.clear_log()
    offline = llmclient("presets", "--offline", "--cache-dir", cache)
    assert offline.returncode == 0, offline.stderr
    rows = {line.split()[0]: line.split() for line in offline.stdout.splitlines()[1:] if line.strip()}
    assert rows[PRESET][4:] == ["Q4_K_M", "98.4", "MB"]
    assert rows["qwen2_5_7b_instruct"][4].startswith("~")
    assert "the hub could not be asked" not in offline.stdout
    assert preset_hub.requests == []


def test_plan_prints_the_plan_and_downloads_nothing(preset_hub: LocalHub, tmp_path: Path) -> None:
    result = llmclient("plan", PRESET, "--ctx", "512", "--endpoint", preset_hub.url, "--cache-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"model     {REPO} (preset {PRESET})"
    assert lines[1].startswith(f"file      {FILENAME}  (Q4_K_M, 0.10 GB)")
    assert lines[2].startswith("device    CPU")
    assert lines[3].startswith("context   512 tokens per request")
    assert re.search(r"^Q4_K_M +0.10 GB +512 .* chosen \(4 requests at once: KV cache for all\)$", result.stdout, re.M)
    assert not list(tmp_path.glob("models--*/blobs/*")), "planning downloads nothing"

    too_small = llmclient("plan", PRESET, "--memory-gb", "0.01", "--endpoint", preset_hub.url, "--cache-dir", tmp_path)
    assert "no file of this model fits here" in one_line_error(too_small)


def test_pull_downloads_the_planned_file_verified(pulled: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    cache, result = pulled
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first == f"{REPO}/{FILENAME}  (Q4_K_M, 98.4 MB)  verified, sha256 {SMOLLM2_SHA256}"
    path = Path(second.strip())
    assert path.is_file() and path.is_relative_to(cache) and path.name == FILENAME


def test_pull_on_a_terminal_shows_a_progress_bar_and_ctrl_c_keeps_the_partial_file(
    preset_hub: LocalHub, tmp_path: Path
) -> None:
    hub: list[str | Path] = ["--endpoint", preset_hub.url, "--cache-dir", tmp_path]
    preset_hub.throttle(20_000_000)
    try:
        pull = pexpect.spawn(sys.executable, ["-m", "llmclient", "pull", PRESET, *map(str, hub)], env=ENV,
                             encoding="utf-8", timeout=60, dimensions=(24, 120), preexec_fn=_ctrl_c_works)  # fmt: skip
        pull.expect(rf"{re.escape(FILENAME)}: +\d+%\|")
        pull.sendintr()
        pull.expect(pexpect.EOF)
        pull.close()
    finally:
        preset_hub.clear_faults()
    assert (pull.exitstatus, pull.before.strip().splitlines()[-1]) == (130, "llmclient: interrupted")
    listed = llmclient("list", *hub).stdout
    assert re.search(rf"^{REPO}/\(partial download\) .* partial$", listed, re.M), listed

    resumed = llmclient("pull", PRESET, *hub)
    assert resumed.returncode == 0, resumed.stderr
    assert f"verified, sha256 {SMOLLM2_SHA256}" in resumed.stdout
    assert "partial" not in llmclient("list", *hub).stdout


def test_list_shows_cached_files_with_their_size_and_whether_verified(
    pulled: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    cache, _ = pulled
    result = llmclient("list", "--cache-dir", cache)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["model", "quant", "size", "status"]
    assert lines[1].split() == [f"{REPO}/{FILENAME}", "Q4_K_M", "98.4", "MB", "verified"]
    assert lines[-1] == f"1 file(s), 98.4 MB, in {cache}"

    empty = llmclient("list", "--cache-dir", tmp_path)
    assert (empty.returncode, empty.stdout.strip()) == (0, f"no models in the cache at {tmp_path}")


def test_verify_finds_a_damaged_file_and_rm_removes_the_repo(preset_hub: LocalHub, tmp_path: Path) -> None:
    hub: list[str | Path] = ["--endpoint", preset_hub.url, "--cache-dir", tmp_path]
    pulled = llmclient("pull", f"{REPO}/{FILENAME}", *hub)  # a hub repo and file, named as such
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.startswith(f"{REPO}/{FILENAME}  (98.4 MB)  verified")

    ok = llmclient("verify", PRESET, *hub)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["ok", f"{REPO}/{FILENAME}", "98.4", "MB"]

    blob = next(tmp_path.glob("models--*/blobs/*"))
    with blob.open("r+b") as fh:
        fh.seek(50_000_000)
        fh.write(b"\xff" * 16)
    assert "changed since verified" in llmclient("list", *hub).stdout
    bad = llmclient("verify", FILENAME, *hub)  # a file name in the cache names it too
    assert "did not match their sha256 and were removed" in one_line_error(bad)
    assert bad.stdout.split()[:3] == ["CORRUPTED", "(removed)", f"{REPO}/{FILENAME}"]
    assert not blob.exists()
    assert re.search(rf"^{REPO}/{FILENAME} .* missing$", llmclient("list", *hub).stdout, re.M)

    removed = llmclient("rm", REPO, *hub)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.startswith(f"removed {REPO} (freed ")
    assert llmclient("list", *hub).stdout.startswith("no models in the cache")
    assert "is not in the cache" in one_line_error(llmclient("rm", PRESET, *hub))


def test_run_streams_the_answer_to_stdout(
    preset_hub: LocalHub, pulled: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    cache, _ = pulled
    prompt = "What is the capital of France? Answer in one word."
    hub: list[str | Path] = ["--endpoint", preset_hub.url, "--cache-dir", cache]
    result = llmclient("run", PRESET, prompt, *QUICK, "--max-tokens", "16", *hub)
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout and result.stdout.endswith("\n")
    assert result.stderr == ""


def test_an_unknown_preset_fails_in_one_line_naming_close_ones(tmp_path: Path) -> None:
    line = one_line_error(llmclient("run", "smollm2_135", "Hi", "--cache-dir", tmp_path))
    assert "no preset called 'smollm2_135'" in line and "Did you mean smollm2_135m" in line
    assert "llmclient presets" in line


def test_offline_without_the_model_in_the_cache_fails_clearly(tmp_path: Path) -> None:
    line = one_line_error(llmclient("run", PRESET, "Hi", "--offline", "--cache-dir", tmp_path))
    assert "is not in the cache" in line and "offline" in line


def test_usage_errors_exit_2() -> None:
    for args in ([], ["frobnicate"], ["run"], ["plan", PRESET, "--ctx", "0"]):
        result = llmclient(*args)
        assert result.returncode == 2, (args, result)
        assert "usage: llmclient" in result.stderr


def test_debug_adds_the_traceback(tmp_path: Path) -> None:
    result = llmclient("--debug", "run", PRESET, "Hi", "--offline", "--cache-dir", tmp_path)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "OfflineError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("llmclient: error: ")
    after = llmclient("run", PRESET, "Hi", "--offline", "--cache-dir", tmp_path, "--debug")  # after the command too
    assert "Traceback (most recent call last)" in after.stderr


def test_hw_shows_the_devices_and_memory_llama_cpp_sees() -> None:
    result = llmclient("hw")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^RAM +cpu +[\d.]+ GiB +[\d.]+ GiB +\d+ physical cores", result.stdout, re.M)
    assert "source: " in result.stdout
    budget = llmclient("hw", "--memory-gb", "3")
    assert "budget: 3.00 GB (given; detection overridden)" in budget.stdout


def test_the_console_script_and_module_are_the_same_command() -> None:
    script = shutil.which("llmclient", path=str(Path(sys.executable).parent))
    assert script is not None, "`pip install -e .` installs the llmclient console script beside this Python"
    from llmclient import __version__

    for command in ([script], [sys.executable, "-m", "llmclient"]):
        out = subprocess.run([*command, "--version"], capture_output=True, text=True, env=ENV, check=True).stdout
        assert out.strip() == f"llmclient {__version__}"


def test_chat_streams_turns_and_ctrl_c_stops_an_answer_but_not_the_chat(
    preset_hub: LocalHub, pulled: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    cache, _ = pulled
    args = ["-m", "llmclient", "chat", PRESET, "--endpoint", preset_hub.url, "--cache-dir", str(cache)]
    args += [*QUICK, "--ctx", "2048", "--max-tokens", "400"]
    chat = pexpect.spawn(
        sys.executable, args, env=ENV, encoding="utf-8", timeout=60, dimensions=(24, 200), preexec_fn=_ctrl_c_works
    )
    try:

        def turn(line: str) -> str:
            chat.sendline(line)
            chat.expect_exact("you> ")
            echoed, _, answer = chat.before.partition("\n")
            assert echoed.strip() == line
            return str(answer)

        chat.expect_exact("you> ")
        assert f"{PRESET}: {FILENAME} (Q4_K_M) on CPU, 2048-token context" in chat.before
        assert "Ctrl-C stops an answer; Ctrl-D leaves." in chat.before

        assert "Paris" in turn("What is the capital of France? Answer in one word.")
        assert turn("And what is the capital of Germany?").strip()  # a second turn, with the first remembered
        assert turn("/system You are a pirate. Always answer like a pirate.").strip() == "(system prompt set)"
        assert turn("Hello, who are you?").strip()
        assert turn("/reset").strip() == "(conversation forgotten; the system prompt stays)"

        chat.sendline("Write the numbers from 1 to 500 separated by commas.")
        chat.expect(r"\b30,")  # streaming, far from its end
        chat.sendintr()
        chat.expect_exact("[stopped]")
        chat.expect_exact("you> ")
        assert chat.isalive()
        process = psutil.Process(chat.pid)
        before = sum(process.cpu_times()[:2])
        time.sleep(1.0)
        assert sum(process.cpu_times()[:2]) - before < 0.3, "the generation went on after Ctrl-C"

        assert "Paris" in turn("What is the capital of France? Answer in one word.")
        chat.sendeof()
        chat.expect(pexpect.EOF)
    finally:
        chat.close(force=True)
    assert chat.exitstatus == 0, (chat.exitstatus, chat.signalstatus)
