"""A heal killed while it sets up (before its first iteration), for real: a git hook holds
`git worktree add` so the `council heal` process is killed half-way through making its branch
and worktree. Resuming it works under the same branch name; a heal never resumed is closed
"interrupted" and the next heal removes what it left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from council.cli import app
from council.store import Store
from tests.fakes import council_script as cs
from tests.fakes import heal_corpus as hc

pytestmark = pytest.mark.usefixtures("env_cache")

HOOK = """#!/bin/sh
# The first checkout of a heal's worktree hangs: the test kills the heal while it sets up.
if [ ! -e "{marker}" ]; then : > "{marker}"; sleep 300; fi
"""


def _setup(tmp_path: Path, server) -> tuple[Path, Path, Path]:
    repo = hc.make_project(tmp_path / "p", hc.GOOD)
    marker = tmp_path / "hung"
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(HOOK.format(marker=marker))
    hook.chmod(0o755)
    doc = json.loads(cs.council_yaml(server))
    doc["gates"] = [{"name": "check", "command": f"{hc.PYTHON} -c \"print('ok')\""}]
    cfg = tmp_path / "council.yaml"
    cfg.write_text(json.dumps(doc))
    return repo, cfg, marker


def _heal_killed_in_setup(repo: Path, cfg: Path, marker: Path, sig: int) -> str:
    heal = subprocess.Popen(
        [sys.executable, "-m", "council.cli", "heal", "--repo", str(repo), "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the kill takes git and the hook too
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert heal.poll() is None, heal.stdout.read() if heal.stdout else ""
        assert time.monotonic() < deadline, "the heal never reached its set-up"
        time.sleep(0.05)
    os.killpg(heal.pid, sig)
    heal.communicate(timeout=60)
    with Store.for_repo(repo) as store:
        store.mark_orphans()  # what `council runs` does: a SIGKILLed run's process is gone
        run = store.latest_run()
        assert run is not None and run.kind == "heal"
        assert run.status == "interrupted", run
        assert "setup" not in store.completed_steps(run.id)
    return run.id


def _branches(repo: Path) -> set[str]:
    return set(hc.git(repo, "branch", "--list", "council/*", "--format=%(refname:short)").split())


def _worktrees(repo: Path) -> list[str]:
    listing = hc.git(repo, "worktree", "list", "--porcelain")
    assert "prunable" not in listing
    return [line for line in listing.splitlines() if line.startswith("worktree ")]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_heal_killed_in_its_setup_resumes_under_the_same_branch(tmp_path, model_server, sig):
    repo, cfg, marker = _setup(tmp_path, model_server)
    run_id = _heal_killed_in_setup(repo, cfg, marker, sig)
    half_made = _branches(repo)
    assert len(half_made) == 1 and next(iter(half_made)).startswith("council/heal-")

    resumed = CliRunner().invoke(
        app, ["resume", run_id, "--repo", str(repo), "--config", str(cfg), "--json"]
    )
    assert resumed.exit_code == 0, resumed.output
    outcome = json.loads(resumed.output.strip().splitlines()[-1])["outcome"]
    assert (outcome["run_id"], outcome["status"]) == (run_id, "green")
    # The same name, made once: the branch, its backup and one worktree; nothing left over.
    assert half_made == {outcome["branch"]}
    assert _branches(repo) == {outcome["branch"], outcome["backup_branch"]}
    assert len(_worktrees(repo)) == 2  # the checkout and the heal's worktree


def test_a_heal_killed_in_its_setup_and_not_resumed_is_tidied_by_the_next(tmp_path, model_server):
    repo, cfg, marker = _setup(tmp_path, model_server)
    killed = _heal_killed_in_setup(repo, cfg, marker, signal.SIGTERM)
    assert _branches(repo)  # its half-made branch

    again = CliRunner().invoke(app, ["heal", "--repo", str(repo), "--config", str(cfg), "--json"])
    assert again.exit_code == 0, again.output
    outcome = json.loads(again.output.strip().splitlines()[-1])["outcome"]
    assert outcome["status"] == "green" and outcome["run_id"] != killed
    assert "half-made set-up" in again.output and killed in again.output
    assert _branches(repo) == {outcome["branch"], outcome["backup_branch"]}
    assert len(_worktrees(repo)) == 2
    with Store.for_repo(repo) as store:
        assert store.get_run(killed).status == "interrupted"
    # `council show` of the killed heal says what happened instead of an empty table.
    shown = CliRunner().invoke(app, ["show", killed, "--repo", str(repo)])
    assert shown.exit_code == 0, shown.output
    assert "no iteration ran" in shown.output
