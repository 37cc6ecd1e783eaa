"""Attacks on `council deploy`'s local target: a hostile service tries to outlive a stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from council.targets.keeper import Kept

# A daemon that leaves every trace the keeper follows: it double-forks (reparented away from
# its parent), calls setsid (leaves the process group) and re-executes itself with an empty
# environment (drops the token), then writes its pid and sleeps forever.
ESCAPE = """
import os, sys, time
pidfile = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        code = ("import os, sys, time; "
                "open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)")
        os.execve(sys.executable, [sys.executable, "-c", code, pidfile], {})
    os._exit(0)
if sys.argv[2] == "stays":
    time.sleep(600)
"""


@pytest.mark.parametrize("main", ["stays", "exits"])  # "exits": a classic self-daemonizing start
def test_stop_ends_a_daemon_that_left_the_tree_the_group_and_its_environment(
    tmp_path: Path, main: str
):
    pidfile = tmp_path / "daemon.pid"
    (tmp_path / "svc.py").write_text(ESCAPE, encoding="utf-8")
    kept = Kept.start(
        [sys.executable, "svc.py", str(pidfile), main],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "")},
        log=tmp_path / "logs" / "svc.log",
    )
    daemon: psutil.Process | None = None
    try:
        deadline = time.monotonic() + 20
        while not pidfile.is_file() or not pidfile.read_text():
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.05)
        daemon = psutil.Process(int(pidfile.read_text()))
        assert daemon.environ().get("COUNCIL_SERVICE_TOKEN") is None  # it dropped the token
        kept.stop()  # what `council deploy stop` and `rollback` do
        assert not daemon.is_running() or daemon.status() == psutil.STATUS_ZOMBIE
    finally:
        if daemon is not None and daemon.is_running():
            daemon.kill()  # never leak it, even when the test fails


@pytest.mark.parametrize("name", ["deploy.yaml", "council.yaml"])
def test_a_configuration_saved_as_utf16_is_a_usage_error(tmp_path: Path, name: str):
    """Windows editors save YAML as UTF-16: exit 2 and what to do, never a traceback."""
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "init"], check=True)
    (tmp_path / name).write_text("deployment:\n  max_retries: 1\n", encoding="utf-16")
    done = subprocess.run(
        [sys.executable, "-m", "council.cli", "deploy", "--dry-run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{name}: not UTF-8 text (byte 0); save it as UTF-8" in done.stderr
