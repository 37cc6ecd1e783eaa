"""Scale-out: `council serve --workers 0 --broker redis://...` with `council worker`s (Celery over
a real redis-server on 127.0.0.1): many runs at once, each executed once; workers stopped
(SIGTERM) and killed (SIGKILL) mid-run, and the run resumes on another worker."""

from __future__ import annotations

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
def cluster(tmp_path_factory, redis_url, serve_cache):
    data = tmp_path_factory.mktemp("celery-server")
    env = sv.server_env(serve_cache)
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
        with sv.serve(data, "--broker", redis_url, workers=0, cache=serve_cache) as server:
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
        # The queue is under test, not the heal: one cheap gate per run.
        body = {"repo": str(repo), "kind": "heal", "gates": ["test"]}
        created = http.post("/api/runs", json=body)
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


def test_workers_stopped_and_killed_mid_run_and_the_run_resumes_on_another(
    cluster, serve_model, tmp_path
):
    # One run, two workers lost under it: the first stopped (SIGTERM: a warm shutdown
    # interrupts the run and sends its job again), the second killed (SIGKILL: another
    # worker's reaper re-queues it when the lease runs out). The third finishes it.
    server, workers = cluster
    repo = sv.leap_repo(tmp_path / "leap", serve_model)
    serve_model.script("pacer", sv.PLAN)
    serve_model.script("maven", sv.CONTEXT)
    slow = Reply(content=sv.RIGHT, delay_s=60)
    serve_model.script("builder", slow, slow, sv.RIGHT)
    serve_model.script("guardian", sv.REVIEW)
    pacer_calls = len(serve_model.requests_for("pacer"))
    builder_calls = len(serve_model.requests_for("builder"))
    http = server.client()
    run = http.post(
        "/api/runs",
        json={"repo": str(repo), "feature": sv.INSTRUCTIONS, "tests": ["leap_test.py"]},
    ).json()
    store = Store(f"sqlite:///{server.data / 'server.db'}")
    from council.queue.jobs import JobQueue

    victims = []
    for n, sig in enumerate((signal.SIGTERM, signal.SIGKILL), start=1):
        sv.wait_until(
            lambda n=n: len(serve_model.requests_for("builder")) >= builder_calls + n, 180
        )
        holder = JobQueue(store).get(run["id"]).worker  # host:pid:thread
        victim = next(p for p, _log in workers if f":{p.pid}:" in holder)
        victim.send_signal(sig)
        victim.wait(timeout=60)
        victims.append(victim.pid)

    events = list(Client(server.url).events(run["id"]))
    assert events[-1][2]["status"] == "green"
    job = JobQueue(store).get(run["id"])
    assert job.attempts == 3 and not any(f":{pid}:" in job.worker for pid in victims)
    assert len(serve_model.requests_for("pacer")) == pacer_calls + 1  # the plan was not made again
    branch = http.get(f"/api/runs/{run['id']}").json()["branch"]
    log = sv.git(repo, "log", "--format=%s", f"main..{branch}")
    assert len(log.splitlines()) == len(set(log.splitlines()))  # no commit twice
