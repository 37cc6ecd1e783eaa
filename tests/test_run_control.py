"""Run control from the command line: limits checked before anything is made, one run per
repository (a lock naming its holder), and runs stopped by a signal or gone with their process
recorded as interrupted, with how to resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from council.store import Store
from council.workspace.run_lock import LOCK_RELATIVE_PATH, RepositoryBusy, RunLock
from tests.fakes import council_script as cs
from tests.fakes.model_server import Reply, ScriptedModelServer
from tests.test_cli import ROOT, assert_clean_error, cache_dir, council, scrubbed_env  # noqa: F401


def _branches(repo: Path) -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(repo), "branch", "--format=%(refname:short)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()


def _repo(tmp_path: Path, server: ScriptedModelServer) -> Path:
    repo = cs.make_repo(tmp_path / "svc")
    (repo / "council.yaml").write_text(cs.council_yaml(server))
    (repo / ".git" / "info" / "exclude").write_text("council.yaml\n")
    return repo


@pytest.fixture
def cli(council):  # noqa: F811 - the fixture imported from tests.test_cli
    """`council` from tests/test_cli.py: the CLI in a subprocess with a scrubbed environment."""
    return council


@pytest.fixture
def server():
    with ScriptedModelServer() as s:
        yield s


# --- limits on the command line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--budget", "0"], "--budget must be more than 0"),
        (["--budget", "-1.5"], "--budget must be more than 0"),
        (["--budget", "nan"], "--budget must be more than 0"),
        (["--max-iterations", "0"], "--max-iterations must be at least 1"),
    ],
)
def test_run_limits_are_checked_before_a_branch_or_store_is_made(
    cli, server, tmp_path: Path, args: list[str], says: str
) -> None:
    repo = _repo(tmp_path, server)
    before = _branches(repo)
    result = cli("run", "add a profile endpoint", "--repo", str(repo), *args)
    assert_clean_error(result)
    assert says in result.err
    assert not (repo / ".council").exists()
    assert _branches(repo) == before
    assert server.requests == []


def test_heal_and_resume_check_the_same_limits(cli, server, tmp_path: Path) -> None:
    repo = _repo(tmp_path, server)
    heal = cli("heal", "--repo", str(repo), "--budget", "0")
    assert_clean_error(heal)
    assert "--budget must be more than 0" in heal.err
    heal = cli("heal", "--repo", str(repo), "--max-iterations", "0")
    assert_clean_error(heal)
    assert "--max-iterations must be at least 1" in heal.err
    resume = cli("resume", "--repo", str(repo), "--budget", "-2")
    assert_clean_error(resume)
    assert "--budget must be more than 0" in resume.err
    assert not (repo / ".council").exists()


def test_council_yaml_limits_obey_the_same_rules(cli, server, tmp_path: Path) -> None:
    repo = cs.make_repo(tmp_path / "svc")
    doc = json.loads(cs.council_yaml(server))
    doc["limits"]["budget_usd"] = 0
    (repo / "council.yaml").write_text(json.dumps(doc))
    result = cli("run", "add a profile endpoint", "--repo", str(repo))
    assert_clean_error(result)
    assert "limits.budget_usd" in result.err
    assert not (repo / ".council").exists()


# --- one run per repository ----------------------------------------------------------------

_HOLD = """
import sys, time
from pathlib import Path
from council.workspace.run_lock import RunLock
lock = RunLock.acquire(Path(sys.argv[1]), "council run 'the first one'")
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_run_is_refused_naming_the_holder(cli, server, tmp_path: Path) -> None:
    repo = _repo(tmp_path, server)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(repo)],
        stdout=subprocess.PIPE,
        text=True,
        env=scrubbed_env(tmp_path / "cache"),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = _branches(repo)
        result = cli("run", "add a profile endpoint", "--repo", str(repo))
        assert_clean_error(result)
        assert "another council run is working on this repository" in result.err
        assert f"pid {holder.pid} " in result.err
        assert "council run 'the first one'" in result.err
        assert str(repo / LOCK_RELATIVE_PATH) in result.err
        assert _branches(repo) == before
        assert server.requests == []
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_file = tmp_path / LOCK_RELATIVE_PATH
    lock_file.parent.mkdir(parents=True)
    lock_file.write_text(json.dumps({"pid": dead.pid, "host": "here", "command": "council run"}))

    with RunLock.acquire(tmp_path, "council run 'next'") as lock:
        assert lock.took_over is not None and lock.took_over["pid"] == dead.pid
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
        # While held, the same process cannot take it twice either (flock is per open file).
        with pytest.raises(RepositoryBusy, match=f"pid {os.getpid()} "):
            RunLock.acquire(tmp_path, "council run 'third'")
    # Released: free again, and it names nobody.
    assert lock_file.read_text() == ""
    RunLock.acquire(tmp_path, "council run 'after'").release()


# --- interrupted runs ----------------------------------------------------------------------


def _start_run(tmp_path: Path, server: ScriptedModelServer) -> tuple[Path, subprocess.Popen]:
    # Pacer takes long to answer: the run is in its first model call when the signal comes.
    server.script("pacer", Reply(content=cs.PLAN_REPLY, delay_s=20))
    repo = _repo(tmp_path, server)
    proc = subprocess.Popen(
        [sys.executable, "-m", "council.cli", "run", cs.FEATURE, "--repo", str(repo)],
        cwd=ROOT,
        env=scrubbed_env(tmp_path / "cache"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not server.requests_for("pacer"):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never asked Pacer"
        time.sleep(0.05)
    return repo, proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_run_stopped_by_a_signal_records_interrupted_and_says_how_to_resume(
    cli, server, tmp_path: Path, sig: signal.Signals
) -> None:
    repo, proc = _start_run(tmp_path, server)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, (out, err)
    assert "Traceback" not in err
    with Store.for_repo(repo) as store:
        run = store.latest_run()
    assert run is not None and run.status == "interrupted"
    assert f"interrupted ({sig.name}); `council resume {run.id}` continues the run" in err
    assert f"council resume {run.id}" in run.reason
    assert not (repo / LOCK_RELATIVE_PATH).read_text()  # the lock was released

    listed = cli("runs", "--repo", str(repo), "--json")
    assert [(r["id"], r["status"]) for r in json.loads(listed.out)] == [(run.id, "interrupted")]


def test_a_run_whose_process_is_gone_shows_as_interrupted(cli, server, tmp_path: Path) -> None:
    repo, proc = _start_run(tmp_path, server)
    proc.kill()  # SIGKILL: the run cannot record anything itself
    proc.communicate(timeout=30)
    with Store.for_repo(repo) as store:
        run = store.latest_run()
    assert run is not None and run.status == "running" and run.pid == proc.pid

    listed = cli("runs", "--repo", str(repo))
    assert listed.code == 0, listed.err
    assert "interrupted" in listed.out and "running" not in listed.out
    shown = cli("show", run.id, "--repo", str(repo))
    assert shown.code == 0, shown.err
    assert shown.out.startswith(f"run {run.id}  interrupted")
    assert f"council resume {run.id}" in shown.out

    # The next run takes the lock the killed one left behind.
    server.script("pacer", Reply(status=500, error="no more"))
    again = cli("run", "another feature", "--repo", str(repo))
    assert "another council run" not in again.err


def test_an_interrupted_heal_says_to_heal_again_not_to_resume() -> None:
    from council.interrupts import Interrupted

    said = Interrupted(signal.SIGHUP, "r-1", go_on="`council heal` again continues").message()
    assert said == "interrupted (SIGHUP); `council heal` again continues"
    assert (
        Interrupted(signal.SIGINT, "r-1")
        .message()
        .startswith("interrupted (SIGINT); `council resume r-1` continues the run")
    )
