"""`council deploy status | logs [--follow] | rollback | stop` on the local target, for real:
services started by one command (detached, under their keeper) are found, followed, rolled
back and stopped by later ones through the state in `.council/deploy/`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from council.cli_deploy import local_target
from council.processes import pid_alive
from tests.test_cli import scrubbed_env
from tests.test_target_local import _commit, _git

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "profile-service"
CRASH = '\nimport os\n\nREQUIRED = os.environ["PROFILE_DB_URL"]  # crashes at start-up\n'


def _council(*args: str, cwd: Path, cache: Path, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "council.cli", *args],
        cwd=cwd,
        env=scrubbed_env(cache),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    repo = tmp_path_factory.mktemp("deploy-cli") / "svc"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__"))
    _git(repo, "init", "-q")
    _commit(repo, "profile service")
    yield repo
    local_target(repo).stop()  # whatever a failed test left running


def test_a_detached_service_is_looked_after_by_later_commands(
    project: Path, cache: Path, monkeypatch
):
    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(cache))
    target = local_target(project)
    good = target.provision(project)
    instance = target.start(good)
    assert target.health(instance, timeout_s=60).healthy
    del target  # this "command" ends; its service keeps running under its keeper

    status = _council("deploy", "status", "--json", cwd=project, cache=cache)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["live"] == [
        {
            "release": good.id,
            "commit": good.commit,
            "url": instance.url,
            "pid": instance.pid,
            "running": True,
            "started_at": instance.started_at,
        }
    ]
    assert data["last_healthy"]["release"] == good.id
    assert httpx.get(instance.url + "/api/v1/users/1").json()["username"] == "ada"
    assert (project / ".council" / "deploy" / "local" / "state.json").is_file()
    assert _git(project, "status", "--porcelain") == ""  # .council/ is excluded, never a change

    # logs --follow prints what the service writes from now on, and ends when it stops.
    follow = subprocess.Popen(
        [sys.executable, "-m", "council.cli", "deploy", "logs", "--follow", "-n", "1"],
        cwd=project,
        env=scrubbed_env(cache),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2)  # the follower's start-up
        # A bad release (it crashes at start-up) is started beside the good one ...
        main = project / "app" / "main.py"
        main.write_text(main.read_text(encoding="utf-8") + CRASH, encoding="utf-8")
        _commit(project, "needs PROFILE_DB_URL")
        later = local_target(project)
        bad = later.start(later.provision(project))
        report = later.health(bad, timeout_s=30)
        assert not report.healthy and report.exit_code not in (None, 0)
        assert "KeyError: 'PROFILE_DB_URL'" in report.log_tail

        # ... rolled back by a third command: the good one still answers, the bad one is gone.
        rolled = _council("deploy", "rollback", "--json", cwd=project, cache=cache)
        assert rolled.returncode == 0, rolled.stderr
        assert json.loads(rolled.stdout) == {"release": good.id, "url": instance.url}
        assert httpx.get(instance.url + "/health").json() == {"status": "ok"}
        text = _council("deploy", "status", cwd=project, cache=cache).stdout
        assert f"release {good.id}" in text and bad.release.id not in text.split("last")[0]

        stopped = _council("deploy", "stop", cwd=project, cache=cache)
        assert stopped.stdout.strip() == "stopped 1 release(s)"
        out, _ = follow.communicate(timeout=30)  # it ends by itself once the service stopped
    finally:
        follow.kill()
    assert "Uvicorn running on" in out.splitlines()[0]
    assert "Shutting down" in out  # written by the service as it was stopped
    assert not pid_alive(instance.pid)

    def carrying_a_release() -> list[psutil.Process]:
        return [
            p
            for p in psutil.process_iter(["environ"])
            if p.info["environ"]
            and p.info["environ"].get("COUNCIL_RELEASE") in (good.id, bad.release.id)
        ]

    # A SIGKILLed process leaves the process table a moment after the signal (a loaded machine
    # makes the moment longer): whatever still carries a release must be on its way out.
    psutil.wait_procs(carrying_a_release(), timeout=10)
    assert not carrying_a_release()  # (a zombie carries no environment)


def test_commands_without_a_live_release_or_outside_git_are_clear_errors(
    project: Path, cache: Path, tmp_path: Path
):
    logs = _council("deploy", "logs", cwd=project, cache=cache)
    assert (logs.returncode, logs.stderr.splitlines()[0]) == (2, "error: no live release here")
    plain = _council("deploy", "status", "--repo", str(tmp_path), cwd=project, cache=cache)
    assert plain.returncode == 2 and "is not inside a git repository" in plain.stderr
    mars = _council("deploy", "--target", "mars", cwd=project, cache=cache)
    assert (mars.returncode, mars.stderr.splitlines()[-1]) == (
        2,
        "error: unknown deploy target 'mars'; known: local, azure",
    )
    fresh = tmp_path / "fresh"  # a repository nothing was ever deployed from
    fresh.mkdir()
    _git(fresh, "init", "-q")
    back = _council("deploy", "rollback", "--repo", str(fresh), cwd=project, cache=cache)
    assert (back.returncode, back.stderr.splitlines()[0]) == (
        2,
        "error: nothing to roll back to: no release of this target was healthy",
    )
    # --dry-run on the local target would otherwise deploy: refused before anything is made.
    dry = _council("deploy", "--dry-run", cwd=project, cache=cache)
    assert dry.returncode == 2 and "--dry-run is for --target azure" in dry.stderr
    assert not (project / ".council" / "worktrees").exists() or not any(
        (project / ".council" / "worktrees").iterdir()
    )
    assert "Traceback" not in logs.stderr + plain.stderr + mars.stderr + back.stderr + dry.stderr
