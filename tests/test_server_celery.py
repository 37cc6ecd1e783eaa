"""Scale-out: `council serve --workers 0 --broker redis://...` with `council worker`s (Celery over
a real redis-server on 127.0.0.1): many runs at once, each executed once; a worker killed with
SIGKILL mid-run, and the run resumes on another worker."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from council.server.client import Client
from council.store import Store
from tests.fakes import serve as sv
from tests.fakes.model_server import Reply

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="scripts/setup installs it"),
]
N_RUNS = 20
N_WORKERS = 3


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    port = sv.free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    sv.wait_until(lambda: _pings(client), 20)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, redis_url, serve_cache):
    data = tmp_path_factory.mktemp("celery-server")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    workers = []
    try:
        for i in range(N_WORKERS):
            log = open(data / f"worker{i}.log", "ab")  # noqa: SIM115 - closed below
            argv = ["worker", "--broker", redis_url, "--data", str(data), "--lease", "3"]
            process = subprocess.Popen(
                [sys.executable, "-m", "council.cli", *argv, "--name", f"w{i}@%h"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            workers.append((process, log))
        with sv.serve(data, "--broker", redis_url, workers=0) as server:
            yield server, workers
    finally:
        for process, _log in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, log in workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


def _green_repo(dest: Path, serve_model) -> Path:
    repo = sv.leap_repo(dest, serve_model)
    (repo / "leap.py").write_text(
        "def leap_year(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n"
    )
    sv.git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "solved")
    return repo


def test_many_runs_at_once_on_three_workers_each_run_once(cluster, serve_model, tmp_path):
    server, _workers = cluster
    http = server.client()
    repos = [_green_repo(tmp_path / f"repo{i}", serve_model) for i in range(N_RUNS)]
    ids = []
    for repo in repos:
        created = http.post("/api/runs", json={"repo": str(repo), "kind": "heal"})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])

    def finished() -> bool:
        runs = {r["id"]: r for r in http.get("/api/runs", params={"limit": 500}).json()}
        return all(runs[i]["job_status"] == "done" for i in ids)

    sv.wait_until(finished, 240, every=0.5)
    store = Store(f"sqlite:///{server.data / 'server.db'}")
    from council.queue.jobs import JobQueue

    holders = set()
    for run_id in ids:
        shown = http.get(f"/api/runs/{run_id}").json()
        assert shown["status"] == "green", shown
        assert shown["attempts"] == 1  # claimed once
        assert len(store.events(run_id, kinds=["run_claimed"])) == 1  # executed once
        holders.add(JobQueue(store).get(run_id).worker.split(":")[1])  # the worker's pid
    assert len(holders) >= 2  # the runs were spread over the workers


def test_a_worker_killed_mid_run_and_the_run_resumes_on_another(cluster, serve_model, tmp_path):
    server, workers = cluster
    repo = sv.leap_repo(tmp_path / "leap", serve_model)
    serve_model.script("pacer", sv.PLAN)
    serve_model.script("maven", sv.CONTEXT)
    serve_model.script("builder", Reply(content=sv.RIGHT, delay_s=60), sv.RIGHT)
    serve_model.script("guardian", sv.REVIEW)
    pacer_calls = len(serve_model.requests_for("pacer"))
    builder_calls = len(serve_model.requests_for("builder"))
    http = server.client()
    run = http.post(
        "/api/runs",
        json={"repo": str(repo), "feature": sv.INSTRUCTIONS, "tests": ["leap_test.py"]},
    ).json()
    sv.wait_until(lambda: len(serve_model.requests_for("builder")) > builder_calls, 120)
    store = Store(f"sqlite:///{server.data / 'server.db'}")
    from council.queue.jobs import JobQueue

    holder = JobQueue(store).get(run["id"]).worker  # host:pid:thread
    victim = next(p for p, _log in workers if f":{p.pid}:" in holder)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)

    events = list(Client(server.url).events(run["id"]))
    assert events[-1][2]["status"] == "green"
    job = JobQueue(store).get(run["id"])
    assert job.attempts == 2 and f":{victim.pid}:" not in job.worker
    assert len(serve_model.requests_for("pacer")) == pacer_calls + 1  # the plan was not made again
    branch = http.get(f"/api/runs/{run['id']}").json()["branch"]
    log = sv.git(repo, "log", "--format=%s", f"main..{branch}")
    assert len(log.splitlines()) == len(set(log.splitlines()))  # no commit twice
