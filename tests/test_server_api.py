"""`council serve` over real HTTP: submit -> queued -> running -> green with the scripted model,
the event stream (SSE) with reconnects, cancel, a killed worker, and API keys."""

from __future__ import annotations

import json
import os
import re
import signal
import threading

import psutil
import pytest

from council.server.client import Client
from council.store import Store
from tests.fakes import serve as sv
from tests.fakes.model_server import Reply

pytestmark = pytest.mark.slow


JSON = {"Content-Type": "application/json"}


def _events(server: sv.Served, run_id: str, after: int = 0):
    return list(Client(server.url).events(run_id, after=after))


def test_submit_goes_queued_running_green_and_streams_every_event_once(
    served, serve_model, tmp_path
):
    repo = sv.leap_repo(tmp_path / "leap", serve_model)
    sv.script_runs(serve_model)
    http = served.client()
    created = http.post(
        "/api/runs",
        json={"repo": str(repo), "feature": sv.INSTRUCTIONS, "tests": ["leap_test.py"]},
    )
    assert created.status_code == 201, created.text
    run = created.json()
    assert run["status"] == "queued" and run["kind"] == "run"

    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.add(http.get(f"/api/runs/{run['id']}").json()["status"])
            stop.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        events = _events(served, run["id"])
    finally:
        stop.set()
        watcher.join()

    assert events[-1][1] == "end" and events[-1][2]["status"] == "green"
    seqs = [seq for seq, _kind, _data in events[:-1]]
    assert seqs == list(range(1, len(seqs) + 1))  # every event once, in order
    kinds = [kind for _seq, kind, _data in events]
    assert "run_started" in kinds and kinds[-2] == "run_finished"
    assert "running" in seen

    shown = http.get(f"/api/runs/{run['id']}").json()
    assert shown["status"] == "green" and shown["job_status"] == "done"
    assert shown["events"] == len(seqs)
    assert shown["usage"]["model_calls"] == 4  # pacer, maven, builder, guardian (review)
    assert [s["name"] for s in shown["steps"]][-1] == "commit"
    assert "leap_year" in sv.git(repo, "show", f"{shown['branch']}:leap.py")
    assert run["id"] in [r["id"] for r in http.get("/api/runs").json()]

    # Reconnecting after event 5 gives exactly the events after it, then the end.
    again = _events(served, run["id"], after=5)
    assert [s for s, _k, _d in again[:-1]] == seqs[5:]
    # The header form of a reconnect (what a browser's EventSource sends).
    with http.stream(
        "GET", f"/api/runs/{run['id']}/events", headers={"Last-Event-ID": str(len(seqs) - 1)}
    ) as response:
        text = response.read().decode()
    assert text.count("\nevent: ") + text.startswith("event: ") == 1 + 1  # last event + end
    assert text.startswith(f"id: {len(seqs)}\n")


def _pid_of(server: sv.Served, run_id: str) -> int:
    """The process executing the run, as its run_claimed event recorded it."""
    with Store(f"sqlite:///{server.data / 'server.db'}") as store:
        return store.get_run(run_id).pid


def test_a_killed_worker_leaves_the_run_queued_and_it_resumes_from_its_last_step(
    served, serve_model, tmp_path
):
    repo = sv.leap_repo(tmp_path / "leap", serve_model)
    serve_model.script("pacer", sv.PLAN)
    serve_model.script("maven", sv.CONTEXT)
    # The builder answers slowly: the worker is killed while it waits.
    serve_model.script("builder", Reply(content=sv.RIGHT, delay_s=60))
    serve_model.script("builder", sv.RIGHT)
    serve_model.script("guardian", sv.REVIEW)
    pacer_calls = len(serve_model.requests_for("pacer"))
    http = served.client()
    run = http.post(
        "/api/runs",
        json={"repo": str(repo), "feature": sv.INSTRUCTIONS, "tests": ["leap_test.py"]},
    ).json()
    builder_before = len(serve_model.requests_for("builder"))
    sv.wait_until(lambda: len(serve_model.requests_for("builder")) > builder_before, 90)
    pid = _pid_of(served, run["id"])
    assert "council.queue.child" in " ".join(psutil.Process(pid).cmdline())
    os.kill(pid, signal.SIGKILL)

    events = _events(served, run["id"])
    assert events[-1][2]["status"] == "green"
    shown = http.get(f"/api/runs/{run['id']}").json()
    assert shown["attempts"] == 2
    # plan and context were not asked again; one feature commit on the branch.
    assert len(serve_model.requests_for("pacer")) == pacer_calls + 1
    log = sv.git(repo, "log", "--format=%s", f"main..{shown['branch']}").splitlines()
    assert len(log) == len(set(log)) and len(log) >= 1


def test_cancel_stops_the_runs_sandboxed_processes(served, serve_model, tmp_path):
    marker = f"council-serve-spin-{os.getpid()}-{tmp_path.name}"
    repo = sv.leap_repo(tmp_path / "leap", serve_model)
    sv.script_runs(serve_model, build=sv.spinning(marker))
    http = served.client()
    run = http.post(
        "/api/runs",
        json={"repo": str(repo), "feature": sv.INSTRUCTIONS, "tests": ["leap_test.py"]},
    ).json()

    def spinning() -> list[psutil.Process]:
        return [
            p
            for p in psutil.process_iter(["cmdline"])
            if marker in " ".join(p.info["cmdline"] or [])
        ]

    sv.wait_until(spinning, 120, every=0.3)
    cancelled = http.post(f"/api/runs/{run['id']}/cancel")
    assert cancelled.status_code == 202
    events = _events(served, run["id"])
    assert events[-1][2]["status"] == "cancelled"
    sv.wait_until(lambda: not spinning(), 20, every=0.3)
    assert http.get(f"/api/runs/{run['id']}").json()["job_status"] == "cancelled"
    # A cancelled run can be resumed; here we only check it is accepted and queued again.
    serve_model.reset()
    resumed = http.post(f"/api/runs/{run['id']}/resume")
    assert resumed.status_code == 202 and resumed.json()["status"] == "queued"
    http.post(f"/api/runs/{run['id']}/cancel")
    sv.wait_until(
        lambda: http.get(f"/api/runs/{run['id']}").json()["job_status"] == "cancelled", 60
    )


def test_bad_submissions_are_refused_with_a_reason(served, tmp_path):
    http = served.client()
    plain = tmp_path / "plain"
    plain.mkdir()
    for body, words in [
        ({"repo": str(plain), "feature": "x"}, "git"),
        ({"repo": "relative/path", "feature": "x"}, "absolute"),
        ({"repo": str(tmp_path / "missing"), "feature": "x"}, "no repository"),
        ({"repo": str(plain), "feature": "x", "gates": ["test"]}, "kind heal"),
        ({"repo": f"{plain}\u0000", "feature": "x"}, "U+0000"),  # was a 500 (schemathesis)
        ({"repo": str(plain), "feature": "x", "tests": ["\ud823a.py"]}, "U+D823"),
    ]:
        # As JSON escapes (a lone surrogate cannot be sent as UTF-8).
        sent = json.dumps(body).encode()
        response = http.post("/api/runs", content=sent, headers=JSON)
        assert response.status_code == 400, response.text
        assert words in response.json()["detail"]
    assert http.post("/api/runs", json={"repo": ""}).status_code == 422
    assert http.get("/api/runs/r-nope").status_code == 404


def test_keys_limit_repositories_and_rate(tmp_path_factory, serve_model, redis_url, tmp_path, page):
    # Its own server (once a key exists, every request needs one) with no worker of its own:
    # its jobs go to a broker nobody consumes, so they stay queued until cancelled.
    data = tmp_path_factory.mktemp("keyed")
    mine = sv.leap_repo(tmp_path / "mine", serve_model)
    theirs = sv.leap_repo(tmp_path / "theirs", serve_model)

    def create(name: str, repo, *more: str) -> str:
        done = sv.council("keys", "create", name, "--repo", str(repo), "--data", str(data), *more)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    key_a = create("a", mine)
    key_b = create("b", theirs)
    key_slow = create("slow", mine, "--rate", "2")
    org = tmp_path / "org"
    key_org = create("org", f"file://{org}/*")
    listed = sv.council("keys", "list", "--data", str(data))
    assert key_a not in listed.stdout and "a: " in listed.stdout  # never the secret

    unread = redis_url.rsplit("/", 1)[0] + "/1"  # not the database the Celery tests' use
    with sv.serve(data, "--broker", unread, workers=0) as server:
        a, b = server.client(key_a), server.client(key_b)
        assert server.client().get("/api/runs").status_code == 401
        assert server.client("ck_bogus_x").get("/api/runs").status_code == 401
        body = {"repo": str(mine), "feature": sv.INSTRUCTIONS, "tests": ["leap_test.py"]}
        assert b.post("/api/runs", json=body).status_code == 403
        run = a.post("/api/runs", json=body)
        assert run.status_code == 201, run.text
        run_id = run.json()["id"]
        assert a.post(f"/api/runs/{run_id}/cancel").status_code == 202
        assert b.get(f"/api/runs/{run_id}").status_code == 404
        assert b.get(f"/api/runs/{run_id}/events").status_code == 404
        assert b.post(f"/api/runs/{run_id}/cancel").status_code == 404
        assert run_id not in [r["id"] for r in b.get("/api/runs").json()]
        assert run_id in [r["id"] for r in a.get("/api/runs").json()]

        slow = server.client(key_slow)
        codes = [slow.get("/api/runs").status_code for _ in range(3)]
        assert codes[:2] == [200, 200] and codes[2] == 429

        assert a.get(f"/api/runs/{run_id}").json()["status"] == "cancelled"
        again = a.post(f"/api/runs/{run_id}/cancel")
        assert again.status_code == 409 and "already finished" in again.json()["detail"]

        # The dashboard in Chromium: sent to the login form, the key is posted (never in a
        # URL: history and access logs keep those) and kept in an HttpOnly cookie.
        visited: list[str] = []
        page.on("request", lambda request: visited.append(request.url))
        page.goto(f"{server.url}/runs/{run_id}")
        assert page.url == f"{server.url}/login"
        page.fill("input[name=key]", key_a)
        page.click("button")
        page.wait_for_url(f"{server.url}/")
        page.locator(f"#run-{run_id}").wait_for()
        cookie = next(c for c in page.context.cookies() if c["name"] == "council_key")
        assert cookie["httpOnly"] and visited and not any(key_a in url for url in visited)

        # A URL pattern cannot be escaped with a dot segment (git would follow it).
        escape = {"repo": f"file://{org}/../theirs", "feature": sv.INSTRUCTIONS}
        refused = server.client(key_org).post("/api/runs", json=escape)
        assert refused.status_code == 400 and "'..' segment" in refused.json()["detail"]

        key_b_id = key_b.split("_")[1]
        assert sv.council("keys", "revoke", key_b_id, "--data", str(data)).returncode == 0
        assert b.get("/api/runs").status_code == 401


def test_metrics_parse_with_the_prometheus_parser_and_feed_the_alert_rules(
    served, serve_model, tmp_path
):
    import httpx
    import yaml
    from prometheus_client.parser import text_string_to_metric_families

    # A run whose planner's provider fails (no retries in the scripted council.yaml): the
    # error counter and the failed run are what the error-rate alerts read.
    repo = sv.leap_repo(tmp_path / "leap", serve_model)
    serve_model.script("pacer", Reply(status=500, error="provider down"))
    http = served.client()
    body = {"repo": str(repo), "feature": sv.INSTRUCTIONS, "tests": ["leap_test.py"]}
    broken = http.post("/api/runs", json=body).json()["id"]
    end = _events(served, broken)[-1]
    assert end[2]["status"] in ("error", "failed"), end

    response = httpx.get(f"{served.url}/metrics", timeout=30)
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    runs = {tuple(s.labels.values()): s.value for s in families["council_runs"].samples}
    assert runs.get(("run", "green"), 0) >= 1  # the green run of the first test
    assert runs.get(("run", end[2]["status"]), 0) >= 1
    calls = families["council_model_calls"].samples
    assert any(s.labels["persona"] == "pacer" and s.value >= 2 for s in calls)
    errors = {s.labels["model"]: s.value for s in families["council_model_errors"].samples}
    assert errors.get("openai/pacer", 0) >= 1, errors
    cost = families["council_cost_usd"].samples
    assert any(s.labels["persona"] == "builder" and s.value > 0 for s in cost)
    latency = [s for s in families["council_model_latency_seconds"].samples]
    assert any(s.name.endswith("_bucket") and s.labels["le"] == "+Inf" for s in latency)
    assert "council_queue_jobs" in families and "council_cost_usd" in families

    exported = {s.name for f in families.values() for s in f.samples}
    rules = yaml.safe_load((sv.ROOT / "deploy" / "prometheus" / "council-alerts.yml").read_text())
    for rule in rules["groups"][0]["rules"]:
        named = set(re.findall(r"\bcouncil_[a-z_]+", rule["expr"]))
        assert named and named <= exported, (rule["alert"], named - exported)


def test_council_submit_follows_a_heal_to_its_end(served, serve_model, tmp_path):
    repo = sv.leap_repo(tmp_path / "leap", serve_model)
    (repo / "leap.py").write_text(
        "def leap_year(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n"
    )
    sv.git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "solved")
    done = sv.council(
        "submit",
        "--kind",
        "heal",
        "--gates",
        "test",
        "--repo",
        str(repo),
        "--server",
        served.url,
        "--follow",
        "--json",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    run_id = lines[0]
    kinds = [json.loads(line)["kind"] for line in lines[1:]]
    assert kinds[0] == "run_claimed" and kinds[-1] == "run_finished"
    shown = served.client().get(f"/api/runs/{run_id}").json()
    assert shown["status"] == "green" and shown["feature"] == "heal: test"  # --gates test only

    # A request the API's schema refuses is told field by field, not as a raw error list.
    bad = sv.council("submit", "x", "--kind", "nope", "--repo", str(repo), "--server", served.url)
    assert bad.returncode == 2, bad.stderr
    assert "422: kind: Input should be 'run' or 'heal'" in bad.stderr and "[{" not in bad.stderr


def test_serve_refuses_another_address_without_a_key_and_submit_says_no_server(tmp_path):
    done = sv.council("serve", "--host", "0.0.0.0", "--data", str(tmp_path))
    assert done.returncode == 2 and "no API key" in done.stderr
    port = sv.free_port()
    done = sv.council(
        "submit", "x", "--repo", str(tmp_path), "--server", f"http://127.0.0.1:{port}"
    )
    assert done.returncode == 2 and "no council server answers" in done.stderr
