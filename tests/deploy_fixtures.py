"""Fixtures and helpers the deploy tests share: one scripted model server per module, the
session's env cache, and `council deploy --json` run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.model_server import ScriptedModelServer
from tests.test_cli import scrubbed_env


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as s:
        yield s


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "council-cache"  # the session's env cache


def deploy_cli(
    repo: Path, cache: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> tuple[int, list[dict], str]:
    """`council deploy --json ARGS` in `repo`: (exit code, the JSON lines, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "council.cli", "deploy", "--json", *args],
        cwd=repo,
        env={**scrubbed_env(cache), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, lines, done.stderr
