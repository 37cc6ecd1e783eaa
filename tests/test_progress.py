"""A terminal that always says what it is doing: model calls stream through the gateway, and a
call in flight is a live line (persona, model, elapsed, tokens, tokens/s) on a terminal, a plain
line now and then on a pipe, and a progress event at most every 2 s with `--json`."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from council.events import Emitter, ModelCall, ModelProgress
from council.gateway import Gateway
from council.render import PLAIN_PROGRESS_EVERY_S, LiveRenderer
from council.store import Store
from tests.fakes import council_script as cs
from tests.fakes.model_server import Reply, ScriptedModelServer
from tests.fakes.terminal import on_terminal, plain
from tests.test_cli import ROOT, scrubbed_env

SLOW_WORDS = 24  # Pacer's answer arrives word by word over a few seconds
ANSWER = " ".join(f"word{i}" for i in range(SLOW_WORDS))


def _deployment(server: ScriptedModelServer, **info: float) -> dict:
    return {
        "model_name": "fast",
        "litellm_params": {
            "model": "openai/gpt-4o-mini",
            "api_base": server.base_url,
            "api_key": "test-key-not-secret",
        },
        "model_info": info,
    }


def test_a_streamed_call_reports_tokens_as_they_come_and_keeps_usage_and_cost(
    model_server: ScriptedModelServer,
) -> None:
    model_server.script(
        None,
        Reply(
            content=ANSWER, chunk_delay_s=0.1, usage={"prompt_tokens": 40, "completion_tokens": 24}
        ),
    )
    events = []
    emit = Emitter()
    emit.subscribe(events.append)
    gw = Gateway(
        [_deployment(model_server, input_cost_per_token=1e-6, output_cost_per_token=2e-6)],
        router_settings={"num_retries": 0},
        emit=emit,
    )
    answer = gw.complete("fast", [{"role": "user", "content": "count"}], persona="builder")

    assert model_server.requests[0]["stream"] is True
    assert answer.text == ANSWER
    assert (answer.prompt_tokens, answer.completion_tokens) == (40, 24)
    assert answer.cost_usd == __import__("pytest").approx(40e-6 + 48e-6)
    progress = [e for e in events if isinstance(e, ModelProgress)]
    assert progress, "a 2.4 s call reported no progress"
    assert len({e.call_id for e in progress}) == 1
    tokens = [e.tokens for e in progress]
    assert tokens == sorted(tokens) and 0 < tokens[-1] <= SLOW_WORDS
    assert any(e.tokens_per_s > 0 for e in progress)
    assert progress[0].persona == "builder" and progress[0].model == "openai/gpt-4o-mini"
    call = [e for e in events if isinstance(e, ModelCall)]
    assert len(call) == 1 and events.index(call[0]) > events.index(progress[-1])


def test_retries_work_when_streaming(model_server: ScriptedModelServer) -> None:
    model_server.script(None, Reply(status=503), "recovered answer")
    gw = Gateway(
        [_deployment(model_server)],
        router_settings={"num_retries": 1, "backoff": {"initial_s": 0.01, "jitter_s": 0}},
    )
    assert gw.complete("fast", [{"role": "user", "content": "x"}]).text == "recovered answer"
    assert [r.get("stream") for r in model_server.requests] == [True, True]


def test_progress_is_not_stored(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'c.db'}") as store:
        run_id = store.create_run(feature="f", repo=str(tmp_path), config={})
        store.record_event(ModelProgress(run_id=run_id, call_id="c1", alias="a", elapsed_s=1))
        assert store.events(run_id) == []


def test_plain_output_prints_a_progress_line_now_and_then() -> None:
    out = io.StringIO()
    render = LiveRenderer(Console(file=out, width=80, highlight=False))
    for tenth in range(0, 251, 5):
        elapsed = tenth / 10
        render(
            ModelProgress(
                call_id="c1",
                persona="pacer",
                alias="pacer",
                model="openai/gpt-4o",
                elapsed_s=elapsed,
                tokens=int(elapsed * 10),
                tokens_per_s=10.0,
            )
        )
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    assert len(lines) == int(25 // PLAIN_PROGRESS_EVERY_S)
    assert lines[0] == "  … Pacer · openai/gpt-4o · 10.0s · 100 tokens · 10.0 tok/s"


# --- through the real command line -----------------------------------------------------------


def _slow_plan_repo(tmp_path: Path, server: ScriptedModelServer) -> Path:
    """Pacer streams its plan over ~3 s; Maven then fails, which ends the run quickly."""
    server.script("pacer", Reply(content=cs.PLAN_REPLY, chunk_delay_s=3.0 / 120))
    server.script("maven", Reply(status=500, error="maven is away"))
    repo = cs.make_repo(tmp_path / "svc")
    (repo / "council.yaml").write_text(cs.council_yaml(server))
    (repo / ".git" / "info" / "exclude").write_text("council.yaml\n")
    return repo


@pytest.mark.parametrize(
    ("columns", "line"),
    [
        ("100", r"Pacer · openai/pacer · (\d+\.\d)s · (\d+) tokens · (\d+\.\d) tok/s"),
        # Narrow: the model name gives way, so the rate is not cut off at the edge.
        ("46", r"… Pacer · (\d+\.\d)s · (\d+) tokens · (\d+\.\d) tok/s"),
    ],
    ids=["wide", "narrow"],
)
def test_the_live_line_on_a_terminal(tmp_path: Path, columns: str, line: str) -> None:
    with ScriptedModelServer() as server:
        repo = _slow_plan_repo(tmp_path, server)
        env = {**scrubbed_env(tmp_path / "cache"), "TERM": "xterm-256color", "COLUMNS": columns}
        screen = on_terminal(
            [sys.executable, "-m", "council.cli", "run", cs.FEATURE, "--repo", str(repo)],
            cwd=ROOT,
            env=env,
        )
    text = plain(screen)
    live = re.findall(line, text)
    assert live, text[-3000:]
    assert max(int(tokens) for _, tokens, _ in live) > 0
    assert "\x1b[" in screen.decode(errors="replace")  # redrawn in place, not appended
    assert "▶ plan (Pacer)" in text
    assert "maven is away" in text


def test_json_progress_at_most_every_two_seconds(tmp_path: Path) -> None:
    with ScriptedModelServer() as server:
        repo = _slow_plan_repo(tmp_path, server)
        server.reset()
        server.script("pacer", Reply(content=cs.PLAN_REPLY, chunk_delay_s=5.0 / 120))
        server.script("maven", Reply(status=500, error="maven is away"))
        done = subprocess.run(
            [sys.executable, "-m", "council.cli", "run", cs.FEATURE, "--repo", str(repo), "--json"],
            cwd=ROOT,
            env=scrubbed_env(tmp_path / "cache"),
            capture_output=True,
            text=True,
            timeout=300,
        )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    progress = [e for e in lines if e.get("kind") == "model_progress"]
    assert progress, done.stdout[-2000:] + done.stderr[-2000:]
    pacer = [e for e in progress if e["persona"] == "pacer"]
    assert pacer and len({e["call_id"] for e in pacer}) == 1
    for call_id in {e["call_id"] for e in progress}:
        elapsed = [e["elapsed_s"] for e in progress if e["call_id"] == call_id]
        assert all(b - a >= 2.0 for a, b in zip(elapsed, elapsed[1:], strict=False)), elapsed
    assert pacer[-1]["tokens"] > 0
    with Store.for_repo(repo) as store:
        run = store.latest_run()
        assert run is not None
        assert "model_progress" not in {e.kind for e in store.events(run.id)}
