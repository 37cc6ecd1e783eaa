"""The warm gateway process: real LiteLLM in it, against the scripted model server.

Every process these tests start lives in this module's own folder and is stopped at the end
(the rest of the suite runs with COUNCIL_GATEWAY=off: tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from council.errors import ModelError
from council.events import BaseEvent, ModelCall, Notice
from council.gateway import Gateway
from council.gateway.daemon import client, control
from council.gateway.daemon.wire import Endpoint, Unusable, endpoint, exchange, read_info
from council.gateway.litellm_calls import InProcess
from council.sandbox import probe, run
from tests.fakes.model_server import Reply, ScriptedModelServer

FAST = {"num_retries": 1, "retry_after": 0, "backoff": {"initial_s": 0.01, "max_s": 0.02}}
ISOLATING = [b for b in ("bwrap", "unshare") if probe(b).backend == b]
START_S = 180.0  # importing LiteLLM on a busy 2-core machine


@pytest.fixture(scope="module")
def gw_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The gateway process on, in a folder of this module's own; all of them stopped after."""
    folder = tmp_path_factory.mktemp("gw")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COUNCIL_GATEWAY", "on")
        mp.setenv("COUNCIL_GATEWAY_DIR", str(folder))
        mp.setenv("OPENAI_API_KEY", "sk-test-main")
        mp.delenv("COUNCIL_GATEWAY_IDLE_S", raising=False)
        try:
            yield folder
        finally:
            for ep in control.endpoints(folder):
                control.stop(ep)


def _start(idle_s: float = 600.0) -> tuple[Endpoint, dict[str, Any]]:
    ep = endpoint()
    control.start(ep, idle_s)
    info = control.wait_ready(ep, START_S)
    assert info is not None, ep.log.read_text() if ep.log.exists() else "no log"
    return ep, info


@pytest.fixture(scope="module")
def warm(gw_env: Path) -> tuple[Endpoint, dict[str, Any]]:
    """The module's long-lived gateway process (this environment's key)."""
    return _start()


class Recorder(list):
    def __call__(self, event: BaseEvent) -> None:
        self.append(event)

    def calls(self) -> list[dict[str, Any]]:
        return [
            e.model_dump(exclude={"latency_ms", "ts", "id", "timestamp"})
            for e in self
            if isinstance(e, ModelCall)
        ]

    def notices(self) -> list[str]:
        return [e.message for e in self if isinstance(e, Notice)]


def _models(server: ScriptedModelServer) -> list[dict[str, Any]]:
    base = {"api_base": server.base_url, "api_key": "os.environ/OPENAI_API_KEY"}
    return [
        # priced by LiteLLM's price map (cost computed by LiteLLM where it runs)
        {"model_name": "mini", "litellm_params": {"model": "openai/gpt-4o-mini", **base}},
        # priced in the config
        {
            "model_name": "own",
            "litellm_params": {"model": "openai/own-model", **base},
            "model_info": {"input_cost_per_token": 1e-4, "output_cost_per_token": 2e-4},
        },
    ]


def _session(gateway: Gateway) -> tuple[Any, ...]:
    ask = [{"role": "user", "content": "say hello to the world"}]
    first = gateway.complete("mini", ask, persona="pacer", max_tokens=40)
    second = gateway.complete("own", ask, persona="builder", temperature=0)
    with pytest.raises(ModelError) as failed:
        gateway.complete("own", [{"role": "user", "content": "fail"}], persona="maven")
    return (
        (first.text, first.cost_usd, first.prompt_tokens, first.completion_tokens),
        (second.text, second.cost_usd),
        str(failed.value),
        gateway.count_tokens("mini", ask),
        gateway.context_window("mini"),
        gateway.spent_usd,
    )


def _script(server: ScriptedModelServer) -> None:
    server.script("gpt-4o-mini", Reply("hello wide world", usage=None))
    server.script("own-model", "own answer here", Reply(status=500), Reply(status=500))


def test_warm_process_gives_the_same_events_and_costs_as_in_process(
    warm: tuple[Endpoint, dict[str, Any]], model_server: ScriptedModelServer
) -> None:
    results, events = [], []
    for backend in (InProcess(), client.backend_for(_models(model_server), print)):
        _script(model_server)
        recorder = Recorder()
        gateway = Gateway(
            _models(model_server), router_settings=FAST, budget_usd=5.0, emit=recorder,
            backend=backend,
        )  # fmt: skip
        results.append(_session(gateway))
        events.append(recorder)
        assert model_server.pending() == 0
    assert isinstance(client.backend_for(_models(model_server), print), client.Remote)
    in_process, remote = results
    assert remote == in_process
    assert remote[0][1] > 0 and remote[1][1] == pytest.approx(1e-4 * 5 + 2e-4 * 3, rel=0.5)
    assert "InternalServerError" in remote[2]
    assert events[1].calls() == events[0].calls() and len(events[1].calls()) == 3
    assert events[1].notices() == events[0].notices() == []
    # The process really served them: both configurations, the calls, the counts.
    kind, status = exchange(warm[0], warm[1]["token"], {"op": "status"})
    assert kind == "ok" and status["routers"] >= 1 and status["requests"] >= 5


def test_killed_process_mid_call_falls_back_with_one_notice(
    gw_env: Path, model_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-killed")  # its own process
    ep, info = _start()
    slow = Reply(" ".join(f"w{i}" for i in range(40)), chunk_delay_s=0.1)
    model_server.script("own-model", slow, "answered in-process", "again in-process")
    recorder = Recorder()
    gateway = Gateway(
        _models(model_server), router_settings=FAST, emit=recorder,
        backend=client.backend_for(
            _models(model_server), lambda m: recorder(Notice(level="warning", message=m))
        ),
    )  # fmt: skip
    result: dict[str, Any] = {}
    call = threading.Thread(
        target=lambda: result.update(c=gateway.complete("own", [{"role": "user", "content": "x"}]))
    )
    call.start()
    deadline = time.monotonic() + 60
    while not model_server.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # a few tokens are on their way
    os.kill(info["pid"], signal.SIGKILL)
    call.join(120)
    assert result["c"].text == "answered in-process"
    second = gateway.complete("own", [{"role": "user", "content": "y"}])
    assert second.text == "again in-process"
    (notice,) = recorder.notices()
    assert "gateway process is not usable" in notice and "sk-test" not in notice
    assert [c["response"] for c in recorder.calls()] == [
        "answered in-process",
        "again in-process",
    ]
    deadline = time.monotonic() + 10
    while control.running(ep) and time.monotonic() < deadline:
        time.sleep(0.05)
    control.clean(ep)  # what the killed process left
    assert not ep.socket.exists() and not ep.info.exists()


def test_other_keys_get_their_own_process_which_exits_when_idle(
    warm: tuple[Endpoint, dict[str, Any]],
    model_server: ScriptedModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-other")
    monkeypatch.setenv("UNRELATED_SETTING", "not-for-the-gateway")
    ep, info = _start(idle_s=2.0)
    assert ep.key != warm[0].key and info["pid"] != warm[1]["pid"]
    assert info["token"] != warm[1]["token"]
    environ = Path(f"/proc/{info['pid']}/environ").read_bytes().split(b"\0")
    assert b"OPENAI_API_KEY=sk-test-other" in environ
    assert not any(b"UNRELATED_SETTING" in item or b"sk-test-main" in item for item in environ)
    assert all("sk-test" not in p.name for p in ep.folder.iterdir())  # no secret in a path
    model_server.script("own-model", "from the other process")
    gateway = Gateway(
        _models(model_server), router_settings=FAST,
        backend=client.backend_for(_models(model_server), print),
    )  # fmt: skip
    assert gateway.complete("own", [{"role": "user", "content": "z"}]).text == (
        "from the other process"
    )
    deadline = time.monotonic() + 30
    while control.running(ep) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not control.running(ep)
    assert not ep.socket.exists() and not ep.info.exists()
    assert control.running(warm[0])  # the other key's process is untouched


def test_a_process_whose_folder_is_removed_exits(
    gw_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A temporary cache folder (a script's, a bench's) removed: its process does not linger."""
    folder = gw_env / "temporary"
    monkeypatch.setenv("COUNCIL_GATEWAY_DIR", str(folder))
    ep, _info = _start()
    shutil.rmtree(folder)
    deadline = time.monotonic() + 60
    while control._spawned[str(ep.socket)].poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert control._spawned[str(ep.socket)].poll() == 0


def test_a_closed_client_cancels_the_call_in_the_process(
    warm: tuple[Endpoint, dict[str, Any]], model_server: ScriptedModelServer
) -> None:
    ep, info = warm
    slow = Reply(" ".join(f"w{i}" for i in range(60)), chunk_delay_s=0.1)  # 6 s of answer
    model_server.script("own-model", slow)
    request = {
        "op": "complete",
        "model_list": client._resolved(_models(model_server)),
        "settings": FAST,
        "alias": "own",
        "messages": [{"role": "user", "content": "long"}],
        "kwargs": {},
        "stream": True,
    }
    for i, deployment in enumerate(request["model_list"]):
        deployment["model_info"] = {**deployment.get("model_info", {}), "id": f"council-{i}"}

    class CtrlC(Exception):
        pass

    def interrupt(_n: int) -> None:
        raise CtrlC  # as ^C would, between two tokens

    started = time.monotonic()
    with pytest.raises(CtrlC):
        exchange(ep, info["token"], request, interrupt)
    deadline = time.monotonic() + 3
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _kind, status = exchange(ep, info["token"], {"op": "status"})
        if status["calls"] == 0:
            break
        time.sleep(0.05)
    assert status["calls"] == 0 and time.monotonic() - started < 5


def test_a_wrong_token_or_another_mount_namespace_is_refused(
    warm: tuple[Endpoint, dict[str, Any]],
) -> None:
    ep, info = warm
    with pytest.raises(Unusable):
        client._rebuild(exchange(ep, "0" * 64, {"op": "ping"})[1])
    assert exchange(ep, info["token"], {"op": "ping"}) == ("ok", {"pid": info["pid"]})
    # The right token from a process in its own mount namespace (as in the sandbox): refused.
    code = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = {sys.path!r}
        from council.gateway.daemon.wire import Endpoint, Unusable, exchange
        from pathlib import Path
        try:
            print(exchange(Endpoint(Path({str(ep.folder)!r}), {ep.key!r}), {info["token"]!r},
                           {{"op": "ping"}}))
        except Unusable as exc:
            print("refused", exc)
        """
    )
    out = subprocess.run(
        ["unshare", "--mount", sys.executable, "-c", code], capture_output=True, text=True
    )
    assert out.stdout.startswith("refused"), out.stdout + out.stderr


@pytest.mark.parametrize("backend", ISOLATING)
def test_code_in_the_sandbox_cannot_reach_the_process(
    warm: tuple[Endpoint, dict[str, Any]], backend: str, tmp_path: Path
) -> None:
    ep, info = warm
    code = textwrap.dedent(
        f"""
        import os, socket
        for what, act in (
            ("listing", lambda: os.listdir({str(ep.folder)!r})),
            ("token", lambda: open({str(ep.info)!r}).read()),
            ("socket", lambda: socket.socket(socket.AF_UNIX).connect({str(ep.socket)!r})),
        ):
            try:
                print(what, "REACHED", act())
            except OSError as exc:
                print(what, "blocked", type(exc).__name__)
        """
    )
    for network in (False, True):
        result = run(
            [sys.executable, "-c", code], tmp_path, timeout_s=60, network=network,
            sandbox=probe(backend),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "REACHED" not in result.stdout.replace("listing REACHED []", ""), result.stdout
        assert info["token"] not in result.output
        assert result.stdout.count("blocked") >= 2


def _calc_repo(dest: Path, server: ScriptedModelServer) -> Path:
    """A one-function exercise (as bench/run_overhead.py builds) with its tests given."""
    from tests.fakes import council_script as cs

    dest.mkdir()
    (dest / "calc.py").write_text("def add(a, b):\n    raise NotImplementedError\n")
    (dest / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    git = ["git", "-C", str(dest), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "exercise"], check=True)
    (dest / "council.yaml").write_text(cs.council_yaml(server, max_iterations=2))
    (dest / ".git" / "info" / "exclude").write_text("council.yaml\n")
    server.script("pacer", cs.PLAN_REPLY)
    server.script("maven", cs.CONTEXT_REPLY)
    server.script("builder", "Done.\n\ncalc.py\n```python\ndef add(a, b):\n    return a + b\n```\n")
    server.script("guardian", cs.REVIEW_REPLY)
    return dest


def test_a_council_run_through_the_warm_process_matches_an_in_process_run(
    warm: tuple[Endpoint, dict[str, Any]],
    model_server: ScriptedModelServer,
    env_cache: Path,
    tmp_path: Path,
) -> None:
    ep, info = warm
    runs = {}
    for mode in ("off", "on"):
        repo = _calc_repo(tmp_path / mode, model_server)
        _kind, before = exchange(ep, info["token"], {"op": "status"})
        done = subprocess.run(
            [sys.executable, "-m", "council.cli", "run", "--tests", "test_calc.py",
             "Implement add.", "--repo", str(repo), "--json"],
            env={**os.environ, "COUNCIL_GATEWAY": mode}, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        _kind, after = exchange(ep, info["token"], {"op": "status"})
        runs[mode] = (events, after["requests"] - before["requests"] - 1)  # less the status
        outcome = next(e["outcome"] for e in events if "outcome" in e)
        assert outcome["status"] == "green", done.stdout[-2000:] + done.stderr[-2000:]
    fields = ("persona", "alias", "model", "prompt_tokens", "completion_tokens", "cost_usd",
              "response", "error", "cached")  # fmt: skip

    def calls(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [tuple(e[f] for f in fields) for e in events if e.get("kind") == "model_call"]

    assert calls(runs["on"][0]) == calls(runs["off"][0]) and len(calls(runs["on"][0])) >= 3
    assert runs["off"][1] == 0 and runs["on"][1] >= len(calls(runs["on"][0]))  # it served them
    notices = [e["message"] for e in runs["on"][0] if e.get("kind") == "notice"]
    assert not any("gateway process" in n for n in notices)


def test_gateway_status_and_stop_commands(warm: tuple[Endpoint, dict[str, Any]]) -> None:
    council = [sys.executable, "-m", "council.cli"]
    shown = subprocess.run(
        [*council, "gateway", "status", "--json"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    (mine,) = [p for p in status["processes"] if p["this_environment"]]
    assert mine["state"] == "running" and mine["status"]["pid"] == warm[1]["pid"]
    assert warm[1]["token"] not in shown.stdout
    text = subprocess.run([*council, "gateway", "status"], capture_output=True, text=True)
    assert f"pid {warm[1]['pid']}" in text.stdout and "this environment" in text.stdout
    stopped = subprocess.run([*council, "gateway", "stop"], capture_output=True, text=True)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    assert not control.running(warm[0]) and read_info(warm[0]) is None
    assert not warm[0].socket.exists()
    after = subprocess.run([*council, "gateway", "status"], capture_output=True, text=True)
    assert "no gateway process is running" in after.stdout


def test_the_first_event_written_by_hand_is_the_event_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`council run` writes its first event before the event models load (time to first
    event): the line must be what StepStarted itself would write."""
    from council.cli import STARTING, _starting
    from council.events import StepStarted

    _starting(True)
    line = capsys.readouterr().out.strip()
    model = json.loads(StepStarted(step="start", detail=STARTING).model_dump_json())
    written = json.loads(line)
    assert list(written) == list(model)  # same keys, same order
    assert {**written, "ts": 0} == {**model, "ts": 0}
    assert StepStarted.model_validate_json(line).detail == STARTING
    _starting(False)
    assert capsys.readouterr().out == f"▶ start: {STARTING}\n"
