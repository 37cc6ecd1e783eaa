"""A deploy killed while its release starts is recorded "interrupted" and `council resume`
finishes it from the unfinished step (the artefacts are not made again), with nothing of the
killed attempt left serving beside the healthy release."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from council.cli_deploy import local_target
from council.store import Store
from tests.fakes import council_script as cs
from tests.fakes.model_server import ScriptedModelServer
from tests.test_cli import scrubbed_env
from tests.test_target_local import _commit, _git

SLOW_START = "\nimport time\n\ntime.sleep(3)  # warms a cache before it serves\n"


def test_a_killed_deploy_resumes_to_healthy(
    tmp_path: Path, server: ScriptedModelServer, cache: Path
):
    repo = cs.make_repo(tmp_path / "svc")
    main = repo / "app" / "main.py"
    main.write_text(main.read_text(encoding="utf-8") + SLOW_START, encoding="utf-8")
    (repo / "deploy.yaml").write_text("health_timeout_seconds: 60\n")
    _commit(repo, "a slow start")
    (repo / "council.yaml").write_text(cs.council_yaml(server))
    env = scrubbed_env(cache)
    deploy = subprocess.Popen(
        [sys.executable, "-m", "council.cli", "deploy", "--json"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert deploy.stdout is not None
        for line in deploy.stdout:  # killed once its release has started
            if '"kind":"service_started"' in line.replace(" ", ""):
                deploy.send_signal(signal.SIGTERM)
                break
        deploy.wait(timeout=60)
    finally:
        deploy.kill()
    assert deploy.returncode != 0
    with Store.for_repo(repo) as store:
        run = store.latest_run()
        assert (run.kind, run.status) == ("deploy", "interrupted")
        assert set(store.completed_steps(run.id)) == {"setup", "build_container"}

    try:
        resumed = subprocess.run(
            [sys.executable, "-m", "council.cli", "resume", run.id, "--json"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        events = [json.loads(x) for x in resumed.stdout.splitlines() if x.startswith("{")]
        kinds = [e.get("kind") for e in events]
        assert "artefacts_checked" not in kinds  # a finished step is not done again
        outcome = events[-1]["outcome"]
        assert (outcome["run_id"], outcome["status"]) == (run.id, "green")
        assert httpx.get(outcome["url"] + "/health").json() == {"status": "ok"}
        status = local_target(repo).status()
        assert [i.url for i in status.live] == [outcome["url"]]  # the killed attempt is gone
    finally:
        local_target(repo).stop()


HOOK = """#!/bin/sh
# The checkout of a deploy's worktree hangs while the marker is absent: the test kills there.
if [ ! -e "{marker}" ]; then : > "{marker}"; sleep 300; fi
"""


def test_deploys_killed_in_their_setup_leave_nothing_once_one_is_resumed(
    tmp_path: Path, server: ScriptedModelServer, cache: Path
):
    """Two deploys SIGKILLed while `git worktree add` makes their branch (a git hook holds
    it): the second removes what the first left; resuming the first sets it up again under its
    own name and removes what the second left."""
    repo = cs.make_repo(tmp_path / "svc")
    (repo / "council.yaml").write_text(cs.council_yaml(server))
    marker = tmp_path / "hung"
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(HOOK.format(marker=marker))
    hook.chmod(0o755)
    env = scrubbed_env(cache)
    killed = []
    for _ in range(2):
        marker.unlink(missing_ok=True)
        deploy = subprocess.Popen(
            [sys.executable, "-m", "council.cli", "deploy", "--json"],
            cwd=repo,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # the kill takes git and its hook too
        )
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert deploy.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(deploy.pid, signal.SIGKILL)
        deploy.wait(timeout=60)
        with Store.for_repo(repo) as store:
            killed.append(store.latest_run().id)

    def named(run_id: str) -> str:
        return "council/deploy-local-" + run_id.removeprefix("r-")

    # The second deploy removed what the first left before it set up; its own is half-made.
    branches = _git(repo, "branch", "--list", "council/*", "--format=%(refname:short)").split()
    assert branches == [named(killed[1])]

    try:
        resumed = subprocess.run(
            [sys.executable, "-m", "council.cli", "resume", killed[0], "--json"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        events = [json.loads(x) for x in resumed.stdout.splitlines() if x.startswith("{")]
        outcome = events[-1]["outcome"]
        assert (outcome["run_id"], outcome["status"]) == (killed[0], "green")
        notes = [e["message"] for e in events if e.get("kind") == "notice"]
        assert f"removed the half-made set-up of deploy {killed[1]}" in notes
        left = _git(repo, "branch", "--list", "council/*", "--format=%(refname:short)").split()
        assert left == [outcome["branch"]] == [named(killed[0])]  # its own name, made again
        worktrees = _git(repo, "worktree", "list", "--porcelain")
        assert worktrees.count("worktree ") == 2 and "prunable" not in worktrees
    finally:
        local_target(repo).stop()
