"""Errors from outside council (file system, a damaged run database) are a message and exit 2.

Run for real in a subprocess: what matters is what the user sees on stderr, and that no
traceback reaches it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """\
models:
  - model_name: council-strong
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY}
"""


def council(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "KEY" not in k and "TOKEN" not in k}
    env["COUNCIL_NO_LOCAL"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "council.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_clean_error(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.startswith("error: ")


def test_writing_into_a_missing_folder_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "council.yaml").write_text(CONFIG, encoding="utf-8")
    target = tmp_path / "missing" / "dir" / "x.yaml"
    done = council("deploy", "litellm-config", "--out", str(target), cwd=tmp_path)
    assert_clean_error(done)
    assert f"error: {target}: No such file or directory" in done.stderr
    assert not target.parent.exists()


@pytest.fixture
def repo_with_corrupt_db(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "init"], check=True)
    (repo / ".council").mkdir()
    (repo / ".council" / "council.db").write_bytes(b"this is not an SQLite file\n" * 40)
    return repo


@pytest.mark.parametrize("command", [["runs"], ["show"]])
def test_a_corrupt_run_database_is_a_message_with_the_way_out(
    repo_with_corrupt_db: Path, command: list[str]
) -> None:
    done = council(*command, "--repo", str(repo_with_corrupt_db), cwd=repo_with_corrupt_db)
    assert_clean_error(done)
    assert "the council database cannot be used: file is not a database" in done.stderr
    assert "mv .council/council.db" in done.stderr
    # The damaged file is left for the user to inspect, not replaced behind their back.
    assert (repo_with_corrupt_db / ".council" / "council.db").read_bytes().startswith(b"this is")


def test_as_user_error_leaves_programming_errors_alone() -> None:
    import sqlite3

    from council.errors import as_user_error

    assert as_user_error(KeyError("x")) is None
    assert as_user_error(sqlite3.IntegrityError("UNIQUE constraint failed")) is None
    problem = as_user_error(sqlite3.DatabaseError("database disk image is malformed"))
    assert problem is not None and problem.exit_code == 2
    assert as_user_error(PermissionError(13, "Permission denied", "/x")).message == (
        "/x: Permission denied"
    )
