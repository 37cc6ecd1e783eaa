"""The local deploy target, for real: examples/profile-service exported from git, served by
uvicorn in the env cache's env, probed over HTTP, a crashing release rolled back, and no
process left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from council.deploy_config import parse_deploy_config
from council.processes import pid_alive
from council.targets import TargetError, get_target, target_for
from council.targets.base import Release, Target
from council.targets.local import LocalTarget
from council.targets.release import detect_app
from council.targets.serve_env import LAYER_MARKER, remove_orphan_layers
from council.targets.supervise import BoundedLog

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "profile-service"
# Leaves the service's process tree and group: a shell starts a new session and exits.
DAEMON = """
import subprocess

subprocess.run(["sh", "-c", "setsid sleep 600 >/dev/null 2>&1 &"], check=True)
"""
HEALTH_500 = """

@app.get("/healthz")
def broken_health() -> None:
    raise RuntimeError("the database is down")
"""
CRASH = """
import os

REQUIRED = os.environ["PROFILE_DB_URL"]  # crashes at start-up when it is not set
"""


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _commit(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)
    return _git(repo, "rev-parse", "HEAD")


def _example_with(repo: Path, extra: str) -> Path:
    """The example in a repository of its own, with `extra` appended to app/main.py."""
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__"))
    main = repo / "app" / "main.py"
    main.write_text(main.read_text(encoding="utf-8") + extra, encoding="utf-8")
    _git(repo, "init", "-q")
    _commit(repo, "the example, changed")
    return repo


def _processes_of(release_id: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("COUNCIL_RELEASE") == release_id:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A repository with the example in a subfolder, like a monorepo: the release is that folder.
    repo = tmp_path_factory.mktemp("repo")
    shutil.copytree(EXAMPLE, repo / "service", ignore=shutil.ignore_patterns("__pycache__"))
    _git(repo, "init", "-q")
    _commit(repo, "profile service")
    return repo / "service"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTarget]:
    cache = tmp_path_factory.getbasetemp() / "council-cache"  # the session's env cache
    local = get_target("local", state_dir=tmp_path_factory.mktemp("state"), cache_dir=cache)
    assert isinstance(local, LocalTarget)
    yield local
    local.stop()


def test_local_target_implements_the_interface(target: LocalTarget):
    assert isinstance(target, Target)
    with pytest.raises(TargetError, match="unknown deploy target 'mars'"):
        get_target("mars")


def test_deploy_yaml_chooses_and_configures_the_target(tmp_path: Path):
    config = parse_deploy_config(
        "app: svc.api:app\nhealth_path: /ready\nhealth_timeout_seconds: 7\n"
    )
    local = target_for(config, state_dir=tmp_path)
    assert isinstance(local, LocalTarget)
    assert (local.app, local.health_path, local.health_timeout_s) == ("svc.api:app", "/ready", 7)
    with pytest.raises(TargetError, match="the azure target has no process to manage here"):
        target_for(parse_deploy_config("target: azure\n"))
    secret = Release("r", "c", "t", tmp_path, "a:app", env={"DB_PASSWORD": "hunter2-hunter2"})
    assert "hunter2" not in repr(secret)


def test_profile_service_starts_healthy_answers_and_stops_clean(project: Path, target: LocalTarget):
    release = target.provision(project)
    assert release.app == "app.main:app"
    assert release.commit == _git(project, "rev-parse", "HEAD")
    assert release.tree == _git(project, "rev-parse", "HEAD:service")
    assert not (project / ".council-release").exists()  # the checkout is never touched

    instance = target.start(release)
    report = target.health(instance, timeout_s=60)
    assert report.healthy, (report.error, report.log_tail)
    assert httpx.get(instance.url + "/health").json() == {"status": "ok"}
    user = httpx.get(instance.url + "/api/v1/users/1").json()
    assert user["username"] == "ada"
    assert httpx.get(instance.url + "/api/v1/users/99").status_code == 404
    assert "Application startup complete" in target.logs(instance)
    assert target.status().running == (release.id,)
    assert target.status().last_healthy == release

    # The service's interpreter sees the project as installed (the env cache's layer for it).
    service = psutil.Process(instance.pid)
    code = "import importlib.metadata as m; print(m.version('profile-service'))"
    version = subprocess.run(
        [service.cmdline()[0], "-c", code],
        env=service.environ(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == "0.1.0"

    pids = _processes_of(release.id)
    assert instance.pid in pids
    target.stop()
    assert _processes_of(release.id) == []
    assert not any(pid_alive(pid) for pid in pids)
    with pytest.raises(httpx.ConnectError):
        httpx.get(instance.url + "/health")
    assert target.status().live == ()


def test_a_release_that_crashes_is_rolled_back_and_the_old_one_keeps_serving(
    project: Path, target: LocalTarget
):
    good = target.provision(project)
    serving = target.start(good)
    assert target.health(serving, timeout_s=60).healthy

    # The next commit reads a setting the environment does not have: it exits on start.
    main = project / "app" / "main.py"
    main.write_text(main.read_text(encoding="utf-8") + CRASH, encoding="utf-8")
    _commit(project.parent, "read the database URL")
    bad = target.provision(project)
    assert bad.id != good.id
    attempt = target.start(bad)
    report = target.health(attempt, timeout_s=60)

    assert not report.healthy
    assert report.exit_code not in (None, 0)
    assert "PROFILE_DB_URL" in report.log_tail  # the KeyError, for a diagnosis to read
    assert report.elapsed_s < 30  # a dead process is noticed, not probed until the timeout
    assert httpx.get(serving.url + "/api/v1/users/2").json()["username"] == "grace"

    back = target.rollback()
    assert back == serving
    assert target.status().running == (good.id,)
    assert _processes_of(bad.id) == []
    assert httpx.get(back.url + "/health").status_code == 200

    # Given the setting, the same commit is healthy and replaces the old release.
    fixed = target.provision(project, env={"PROFILE_DB_URL": "sqlite:///:memory:"})
    replaced = target.start(fixed)
    assert target.health(replaced, timeout_s=60).healthy
    assert target.status().running == (fixed.id,)
    assert _processes_of(good.id) == []
    target.stop()


def test_rollback_restarts_the_last_healthy_release_when_it_was_stopped(
    project: Path, target: LocalTarget
):
    _git(project.parent, "checkout", "-q", "HEAD~1")
    try:
        good = target.provision(project)
    finally:
        _git(project.parent, "checkout", "-q", "-")
    first = target.start(good)
    assert target.health(first, timeout_s=60).healthy
    target.stop()
    again = target.rollback()
    assert again.release == good and again.pid != first.pid
    assert httpx.get(again.url + "/api/v1/users/1").status_code == 200
    target.stop()
    assert _processes_of(good.id) == []


def test_a_daemon_that_escaped_the_process_tree_is_stopped_too(tmp_path: Path, target: LocalTarget):
    repo = _example_with(tmp_path / "daemon", DAEMON)
    release = target.provision(repo)
    instance = target.start(release)
    assert target.health(instance, timeout_s=60).healthy
    escaped = [psutil.Process(pid) for pid in _processes_of(release.id) if pid != instance.pid]
    sleeper = [p for p in escaped if p.name() == "sleep"]
    assert sleeper, [p.cmdline() for p in escaped]
    assert os.getpgid(sleeper[0].pid) != instance.pid  # not in the service's process group
    tree = {p.pid for p in psutil.Process(instance.pid).children(recursive=True)}
    assert sleeper[0].pid not in tree
    target.stop()
    assert _processes_of(release.id) == []


def test_a_health_endpoint_answering_500_is_unhealthy_after_the_timeout(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
):
    repo = _example_with(tmp_path / "sick", HEALTH_500)
    cache = tmp_path_factory.getbasetemp() / "council-cache"
    sick = LocalTarget(state_dir=tmp_path / "state", cache_dir=cache, health_path="/healthz")
    try:
        instance = sick.start(sick.provision(repo))
        report = sick.health(instance, timeout_s=3)
        assert not report.healthy and report.exit_code is None
        assert (report.status_code, report.attempts > 2) == (500, True)
        assert report.error.startswith("not healthy after 3s: HTTP 500")
        assert sick.status().last_healthy is None
        # The log is pumped from the service's pipe by a thread: on a loaded machine the
        # traceback of the last 500 may land a moment after the probe gave up.
        deadline = time.monotonic() + 15
        while "RuntimeError: the database is down" not in sick.logs(instance):
            assert time.monotonic() < deadline, sick.logs(instance)
            time.sleep(0.2)
    finally:
        sick.stop()


def test_rollback_without_a_healthy_release_is_an_error(tmp_path: Path):
    with pytest.raises(TargetError, match="nothing to roll back to"):
        LocalTarget(state_dir=tmp_path).rollback()


def test_detect_app_prefers_main_modules_and_src_layout(tmp_path: Path):
    (tmp_path / "src" / "shop" / "api").mkdir(parents=True)
    (tmp_path / "src" / "shop" / "api" / "main.py").write_text("api = FastAPI(title='x')\n")
    (tmp_path / "src" / "shop" / "other.py").write_text("app = Starlette()\n")
    assert detect_app(tmp_path) == "shop.api.main:api"
    with pytest.raises(TargetError, match="no ASGI app"):
        detect_app(tmp_path / "src" / "shop" / "api" / "nothing")


def test_logs_are_bounded(tmp_path: Path):
    log = BoundedLog(tmp_path / "service.log", max_bytes=1000)
    for n in range(200):
        log.write(f"line {n}\n".encode())
    text = log.path.read_text()
    assert log.path.stat().st_size <= 1000
    assert text.startswith("[... earlier output dropped ...]") and text.endswith("line 199\n")


def test_old_releases_are_pruned_but_never_the_one_to_roll_back_to(tmp_path: Path):
    releases = tmp_path / "releases"
    for n in range(8):
        folder = releases / f"r{n}"
        folder.mkdir(parents=True)
        (folder / ".council-release").write_text(f"r{n}\n")
        os.utime(folder, (1000 + n, 1000 + n))
    (releases / "r0.part").mkdir()  # an export in progress is not touched
    local = LocalTarget(state_dir=tmp_path)
    local._last_healthy = Release("r1", "c", "t", releases / "r1", "a:app")
    local._prune(releases, keep=releases / "r0")
    left = sorted(p.name for p in releases.iterdir())
    assert left == ["r0", "r0.part", "r1", "r3", "r4", "r5", "r6", "r7"]


def test_server_layers_of_removed_envs_are_removed(tmp_path: Path):
    alive, gone = tmp_path / "alive", tmp_path / "gone"
    alive.mkdir()
    for name, chained in (("a", alive), ("b", gone)):
        (tmp_path / "serve" / name).mkdir(parents=True)
        marker = {"chained": str(chained), "server": "uvicorn"}
        (tmp_path / "serve" / name / LAYER_MARKER).write_text(json.dumps(marker))
    (tmp_path / "serve" / ".build-x").mkdir()
    assert remove_orphan_layers(tmp_path / "serve") == [tmp_path / "serve" / "b"]
    assert sorted(p.name for p in (tmp_path / "serve").iterdir()) == [".build-x", "a"]
