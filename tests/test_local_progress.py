"""The embedded model says what it is doing: while llama.cpp generates, the call's progress
counts its tokens (persona, model, elapsed, tokens so far, tokens/s), through the gateway and
on a real terminal, with a real (tiny, random-weight) GGUF model run by llama.cpp."""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path

import pytest

from council.config import CouncilConfig, preset
from council.events import ModelCall, ModelProgress
from council.local import LocalEngine
from council.local.tokens_out import token_sink
from council.personas.schemas import Plan
from council.pipelines.models import ask_persona, make_gateway
from tests.fakes.terminal import on_terminal, plain


def test_the_engine_reports_every_generated_token_to_the_callers_sink(tiny_model: Path) -> None:
    engine = LocalEngine.shared(tiny_model)
    counted: list[int] = []
    result = engine.chat(
        [{"role": "user", "content": "plan"}],
        max_tokens=300,
        schema=Plan.model_json_schema(),
        seed=1,
        on_token=counted.append,
    )
    # Every sampled token, the capped re-ask's included; llama.cpp's usage counts the same
    # tokens within one per answer (the end-of-text token, or one past max_tokens).
    assert set(counted) == {1}
    assert result.constrained == "bounded schema"  # two answers were generated
    assert abs(len(counted) - result.completion_tokens) <= 2
    # A sink that fails stops being called; the answer is unharmed.
    calls = []

    def broken(n: int) -> None:
        calls.append(n)
        raise RuntimeError("display gone")

    again = engine.chat([{"role": "user", "content": "x"}], max_tokens=40, seed=2, on_token=broken)
    assert calls == [1] and again.completion_tokens > 1
    # No sink: nothing is reported, and the last call's sink is not kept.
    engine.chat([{"role": "user", "content": "y"}], max_tokens=20, seed=3)
    assert calls == [1]


def test_an_embedded_model_call_in_flight_reports_its_tokens_through_the_gateway(
    local_env: pytest.MonkeyPatch,
) -> None:
    # An idle machine runs the tiny model's call in well under the default half second.
    local_env.setattr("council.gateway.progress.HEARTBEAT_S", 0.02)
    config = CouncilConfig.model_validate(preset("local"))
    config.cache.enabled = False  # the call must really reach llama.cpp
    config.personas["pacer"].max_tokens = 400  # seconds of grammar-constrained tokens
    events: list[object] = []
    gateway = make_gateway(config, events.append)
    plan = ask_persona(gateway, config, "pacer", [{"role": "user", "content": "add /health"}], Plan)
    assert isinstance(plan, Plan)
    progress = [e for e in events if isinstance(e, ModelProgress)]
    call = next(e for e in events if isinstance(e, ModelCall))
    assert progress, f"a {call.latency_ms / 1000:.1f} s call of the embedded model said nothing"
    assert {(e.persona, e.model) for e in progress} == {("pacer", "council-local/default")}
    tokens = [e.tokens for e in progress]
    assert tokens == sorted(tokens) and tokens[-1] > 0
    assert tokens[-1] <= call.completion_tokens + 2  # + the end-of-text token of each answer
    assert any(e.tokens_per_s > 0 for e in progress)
    assert events.index(call) > events.index(progress[-1])
    assert token_sink.get() is None  # the call's sink ends with the call


def test_parallel_calls_each_count_their_own_tokens(tiny_model: Path) -> None:
    """Personas in parallel tracks queue for the one engine; each call's sink gets only the
    tokens of its own answer (the sink travels in the calling thread's context)."""
    engine = LocalEngine.shared(tiny_model)
    counts: dict[str, list[int]] = {"a": [], "b": []}
    results = {}

    def ask(name: str, max_tokens: int) -> None:
        token = token_sink.set(counts[name].append)
        try:
            results[name] = engine.chat(
                [{"role": "user", "content": name}],
                max_tokens=max_tokens,
                temperature=0.8,
                seed=5,
                on_token=token_sink.get(),
            )
        finally:
            token_sink.reset(token)

    threads = [
        threading.Thread(target=ask, args=("a", 60)),
        threading.Thread(target=ask, args=("b", 200)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for name in ("a", "b"):
        # Its own answer's tokens (and the end-of-text token), not the other call's too.
        assert 0 < len(counts[name]) <= results[name].completion_tokens + 1


# --- on a terminal ---------------------------------------------------------------------------


def test_the_live_line_of_the_embedded_model_on_a_terminal(
    tmp_path: Path, tiny_model: Path
) -> None:
    """`council run` with no key runs the embedded model; on a pseudo-terminal, Pacer's call
    is a live line that counts llama.cpp's tokens as they come."""
    from tests.fakes import council_script as cs
    from tests.test_cli import ROOT, scrubbed_env

    repo = cs.make_repo(tmp_path / "svc")
    env = {**scrubbed_env(tmp_path / "cache"), "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("COUNCIL_NO_LOCAL", None)
    env.update(COUNCIL_LOCAL_MODEL=str(tiny_model), COUNCIL_OFFLINE="1")
    env["COUNCIL_PROGRESS_EVERY_S"] = "0.05"  # the tiny model's calls can end within 0.5 s
    seen = re.compile(
        rb"Pacer \xc2\xb7 council-local/default \xc2\xb7 [\d.]+s \xc2\xb7 [1-9]\d* tokens"
        rb" \xc2\xb7 [\d.]+ tok/s"
    )
    screen = on_terminal(
        [sys.executable, "-m", "council.cli", "run", "add GET /health", "--repo", str(repo)],
        cwd=ROOT,
        env=env,
        # Seen: the rest of the gibberish run is another test's business.
        stop_when=lambda screen: seen.search(screen) is not None,
    )
    text = plain(screen)
    live = re.findall(
        r"Pacer · council-local/default · (\d+\.\d)s · (\d+) tokens · (\d+\.\d) tok/s", text
    )
    assert live, text[-3000:]
    assert max(int(tokens) for _, tokens, _ in live) > 0
    assert "\x1b[" in screen.decode(errors="replace")  # redrawn in place, not appended
    assert "Traceback" not in text
