"""scripts/setup fails fast when no model can be had (no 5-minute llama.cpp build for nothing),
and shows a native build's progress from its log."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.test_cli import ROOT, scrubbed_env


def test_models_check_says_at_once_that_no_model_can_be_had(tmp_path: Path) -> None:
    env = {**scrubbed_env(tmp_path / "cache"), "COUNCIL_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "council.cli", "models", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: no model can be had: no provider key is set")
    assert "COUNCIL_LOCAL_MODEL=/path/to/any.gguf" in done.stderr
    assert "export OPENAI_API_KEY=..." in done.stderr

    with_key = subprocess.run(
        [sys.executable, "-m", "council.cli", "models", "check"],
        env={**env, "OPENAI_API_KEY": "sk-test-not-a-real-key"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert with_key.returncode == 0, with_key.stderr
    assert "the openai provider is configured" in with_key.stdout

    gguf = tmp_path / "any.gguf"
    gguf.write_bytes(b"GGUF")  # only its presence is checked here
    with_file = subprocess.run(
        [sys.executable, "-m", "council.cli", "models", "check"],
        env={**env, "COUNCIL_LOCAL_MODEL": str(gguf)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert with_file.returncode == 0, with_file.stderr
    assert str(gguf) in with_file.stdout


def test_setup_local_without_any_model_stops_before_building(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"  # empty: setup would have to build llama.cpp
    env = {
        **scrubbed_env(tmp_path / "cache"),
        "COUNCIL_OFFLINE": "1",
        "COUNCIL_WHEEL_CACHE": str(wheels),
    }
    started = time.monotonic()
    done = subprocess.run(
        # As scripts/demo installs; with --dev (scripts/test) it builds: the tests need it.
        [str(ROOT / "scripts" / "setup"), "--local"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    took = time.monotonic() - started
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error: no model can be had" in done.stderr
    assert "not building llama-cpp-python==0.3.36" in done.stderr
    assert "building llama-cpp-python" not in done.stdout
    assert not list(wheels.rglob("build.log"))
    assert took < 300  # seconds of installs, not a native build


def test_build_progress_shows_cmake_percent_lines_and_elapsed_time(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_text("")
    writer = subprocess.Popen(
        [
            "sh",
            "-c",
            f"sleep 1; echo '[ 12%] Building CXX object ggml.o' >> {log}; sleep 3; "
            f"echo '[ 57%] Building CXX object llama.o' >> {log}; sleep 1",
        ]
    )
    done = subprocess.run(
        [str(ROOT / "scripts" / "build-progress"), str(log), str(writer.pid)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    writer.wait()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("building llama.cpp: 12% (0m " in line and "ggml.o" in line for line in lines), lines
    assert lines[-1].startswith("setup: build finished after 0m ")
