"""The gateway against the real LiteLLM Router and a scripted OpenAI-compatible server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from council.errors import BudgetExceeded, ConfigError, ModelError, StructuredOutputError
from council.events import BaseEvent, ModelCall, Notice
from council.gateway import Completion, Gateway
from tests.fakes.model_server import Reply, ScriptedModelServer

# Retries stay real but fast: a few milliseconds of backoff instead of LiteLLM's 0.5 s and up.
FAST = {
    "num_retries": 2,
    "retry_after": 0,
    "backoff": {"initial_s": 0.01, "max_s": 0.02, "jitter_s": 0},
}
PRICED = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}


def deployment(
    alias: str, model: str, server: ScriptedModelServer, **model_info: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "model_name": alias,
        "litellm_params": {"model": model, "api_base": server.base_url, "api_key": "dummy-key"},
    }
    if model_info:
        entry["model_info"] = model_info
    return entry


class Recorder:
    def __init__(self) -> None:
        self.events: list[BaseEvent] = []

    def __call__(self, event: BaseEvent) -> None:
        self.events.append(event)

    @property
    def calls(self) -> list[ModelCall]:
        return [e for e in self.events if isinstance(e, ModelCall)]

    @property
    def notices(self) -> list[Notice]:
        return [e for e in self.events if isinstance(e, Notice)]


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]


def test_complete_happy_path(model_server: ScriptedModelServer) -> None:
    model_server.script(
        "local-model", Reply("Hello!", usage={"prompt_tokens": 10, "completion_tokens": 20})
    )
    events = Recorder()
    gateway = Gateway(
        [deployment("main", "openai/local-model", model_server, **PRICED)],
        router_settings=FAST,
        emit=events,
    )
    result = gateway.complete("main", ask("hi"), persona="pacer", temperature=0.2, max_tokens=50)

    assert isinstance(result, Completion)
    assert result.text == "Hello!"
    assert (result.alias, result.model) == ("main", "openai/local-model")
    assert (result.prompt_tokens, result.completion_tokens) == (10, 20)
    assert result.cost_usd == pytest.approx(10 * 0.001 + 20 * 0.002)
    assert gateway.spent_usd == pytest.approx(0.05)
    assert result.latency_ms > 0 and result.cached is False
    (request,) = model_server.requests
    assert request["model"] == "local-model"
    assert request["messages"] == ask("hi")
    assert request["temperature"] == 0.2 and request["max_tokens"] == 50
    (call,) = events.calls
    assert call.persona == "pacer" and call.alias == "main" and call.response == "Hello!"
    assert call.cost_usd == pytest.approx(0.05) and call.total_cost_usd == pytest.approx(0.05)
    assert call.error is None


def test_cost_from_litellm_price_map(model_server: ScriptedModelServer) -> None:
    model_server.script(
        "gpt-4o-mini", Reply("ok", usage={"prompt_tokens": 1000, "completion_tokens": 500})
    )
    gateway = Gateway(
        [deployment("cheap", "openai/gpt-4o-mini", model_server)], router_settings=FAST
    )
    result = gateway.complete("cheap", ask("hi"))
    # gpt-4o-mini in LiteLLM's map: $0.15 / 1M input tokens, $0.60 / 1M output tokens.
    assert result.cost_usd == pytest.approx(1000 * 0.15e-6 + 500 * 0.60e-6)
    assert gateway.spent_usd == pytest.approx(result.cost_usd)


def test_custom_price_in_litellm_params_accumulates(model_server: ScriptedModelServer) -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 10}
    model_server.script("vllm-model", Reply("a", usage=usage), Reply("b", usage=usage))
    entry = deployment("self-hosted", "openai/vllm-model", model_server)
    entry["litellm_params"].update(input_cost_per_token=1e-5, output_cost_per_token=3e-5)
    gateway = Gateway([entry], router_settings=FAST, spent_usd=1.0)
    gateway.complete("self-hosted", ask("one"))
    gateway.complete("self-hosted", ask("two"))
    assert gateway.spent_usd == pytest.approx(1.0 + 2 * (100 * 1e-5 + 10 * 3e-5))


def test_unknown_price_costs_nothing_and_warns_once(model_server: ScriptedModelServer) -> None:
    model_server.script("mystery-7b", "a", "b")
    events = Recorder()
    gateway = Gateway(
        [deployment("m", "openai/mystery-7b", model_server)],
        router_settings=FAST,
        budget_usd=1.0,
        emit=events,
    )
    assert gateway.complete("m", ask("one")).cost_usd == 0.0
    assert gateway.complete("m", ask("two")).cost_usd == 0.0
    assert gateway.spent_usd == 0.0
    (notice,) = events.notices
    assert notice.level == "warning" and "mystery-7b" in notice.message


def test_budget_refuses_before_calling(model_server: ScriptedModelServer) -> None:
    model_server.script("local-model", "never sent")
    gateway = Gateway(
        [deployment("main", "openai/local-model", model_server, **PRICED)],
        router_settings=FAST,
        budget_usd=0.5,
        spent_usd=0.3,
    )
    # Worst case: >= 300 answer tokens x $0.002 = $0.60 on top of $0.30 spent > $0.50.
    with pytest.raises(BudgetExceeded) as caught:
        gateway.complete("main", ask("hi"), max_tokens=300)
    message = str(caught.value)
    assert "spent $0.3000" in message and "budget $0.5000" in message and "estimate $0.6" in message
    assert model_server.requests == []
    assert gateway.spent_usd == pytest.approx(0.3)


def test_budget_counts_spending_between_calls(model_server: ScriptedModelServer) -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 40}
    model_server.script("local-model", Reply("first", usage=usage), "second")
    gateway = Gateway(
        [deployment("main", "openai/local-model", model_server, **PRICED)],
        router_settings=FAST,
        budget_usd=0.2,
    )
    # The default worst case (1024 answer tokens) would not fit: max_tokens keeps it small.
    assert gateway.complete("main", ask("a"), max_tokens=50).text == "first"
    assert gateway.spent_usd == pytest.approx(5 * 0.001 + 40 * 0.002)
    with pytest.raises(BudgetExceeded):
        gateway.complete("main", ask("b"), max_tokens=50)
    with pytest.raises(BudgetExceeded):
        gateway.complete("main", ask("b"))
    assert len(model_server.requests) == 1


def test_cache_hit_makes_no_request_and_costs_nothing(
    model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    model_server.script("local-model", "answer one", "answer two", "answer three")
    models = [deployment("main", "openai/local-model", model_server, **PRICED)]
    events = Recorder()
    gateway = Gateway(models, router_settings=FAST, cache_dir=tmp_path / "cache", emit=events)
    first = gateway.complete("main", ask("same"), temperature=0)
    spent = gateway.spent_usd
    second = gateway.complete("main", ask("same"), temperature=0)

    assert first.cached is False and first.cost_usd > 0
    assert second.cached is True and second.cost_usd == 0.0
    assert second.text == "answer one"
    assert len(model_server.requests) == 1
    assert gateway.spent_usd == spent
    assert [c.cached for c in events.calls] == [False, True]

    # A different temperature is a different question.
    assert gateway.complete("main", ask("same"), temperature=1).text == "answer two"
    # The cache is on disk: a new gateway (a new process) replays it.
    again = Gateway(models, router_settings=FAST, cache_dir=tmp_path / "cache")
    assert again.complete("main", ask("same"), temperature=0).cached is True
    assert len(model_server.requests) == 2


def test_failed_answers_are_not_cached(model_server: ScriptedModelServer, tmp_path: Path) -> None:
    model_server.script("local-model", Reply(status=500), "recovered")
    gateway = Gateway(
        [deployment("main", "openai/local-model", model_server)],
        router_settings={**FAST, "num_retries": 0},
        cache_dir=tmp_path,
    )
    with pytest.raises(ModelError):
        gateway.complete("main", ask("q"))
    result = gateway.complete("main", ask("q"))
    assert (result.text, result.cached) == ("recovered", False)


def test_retries_same_deployment_with_backoff(model_server: ScriptedModelServer) -> None:
    model_server.script("flaky", Reply(status=500), Reply(status=503), "third time lucky")
    gateway = Gateway([deployment("main", "openai/flaky", model_server)], router_settings=FAST)
    assert gateway.complete("main", ask("q")).text == "third time lucky"
    assert len(model_server.requests_for("flaky")) == 3


def test_failing_alias_falls_back_to_another(model_server: ScriptedModelServer) -> None:
    model_server.script("broken", *[Reply(status=500)] * 3)
    model_server.script(
        "backup", Reply("from backup", usage={"prompt_tokens": 1, "completion_tokens": 1})
    )
    events = Recorder()
    gateway = Gateway(
        [
            deployment("primary", "openai/broken", model_server),
            deployment("secondary", "openai/backup", model_server, **PRICED),
        ],
        router_settings={**FAST, "fallbacks": [{"primary": ["secondary"]}]},
        emit=events,
    )
    result = gateway.complete("primary", ask("q"), persona="builder")
    assert result.text == "from backup"
    assert (result.alias, result.model) == ("secondary", "openai/backup")
    assert result.cost_usd == pytest.approx(0.003)  # priced as the deployment that answered
    assert [r["model"] for r in model_server.requests] == ["broken"] * 3 + ["backup"]
    assert model_server.pending("broken") == 0
    assert [c.alias for c in events.calls] == ["secondary"]


def test_timeout_is_retried_then_falls_back(model_server: ScriptedModelServer) -> None:
    model_server.script("slow", *[Reply("too late", delay_s=1.5)] * 3)
    model_server.script("fast", "in time")
    gateway = Gateway(
        [
            deployment("primary", "openai/slow", model_server),
            deployment("secondary", "openai/fast", model_server),
        ],
        router_settings={**FAST, "fallbacks": [{"primary": ["secondary"]}]},
    )
    result = gateway.complete("primary", ask("q"), timeout_s=0.3)
    assert result.text == "in time" and result.alias == "secondary"
    assert [r["model"] for r in model_server.requests] == ["slow"] * 3 + ["fast"]


def test_everything_failing_is_one_clear_model_error(model_server: ScriptedModelServer) -> None:
    model_server.script("a", *[Reply(status=500, error="upstream exploded")] * 3)
    model_server.script("b", *[Reply(status=500, error="upstream exploded")] * 3)
    events = Recorder()
    gateway = Gateway(
        [deployment("one", "openai/a", model_server), deployment("two", "openai/b", model_server)],
        router_settings={**FAST, "fallbacks": [{"one": ["two"]}]},
        emit=events,
    )
    with pytest.raises(ModelError) as caught:
        gateway.complete("one", ask("q"), persona="artisan")
    message = str(caught.value)
    assert "'one'" in message and "upstream exploded" in message
    assert "Traceback" not in message and "Debug Information" not in message
    assert len(model_server.requests) == 6
    (call,) = events.calls
    assert call.alias == "one" and call.persona == "artisan"
    assert call.error is not None and "upstream exploded" in call.error
    assert gateway.spent_usd == 0.0


def test_unknown_alias_is_a_config_error(model_server: ScriptedModelServer) -> None:
    gateway = Gateway([deployment("main", "openai/m", model_server)], router_settings=FAST)
    with pytest.raises(ConfigError, match="'nope'.*main"):
        gateway.complete("nope", ask("q"))
    assert model_server.requests == []


def test_bad_model_list_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="model_name"):
        Gateway([{"litellm_params": {"model": "openai/x"}}])
    with pytest.raises(ConfigError, match="litellm_params.model"):
        Gateway([{"model_name": "x", "litellm_params": {}}])


def test_environment_references_are_resolved_by_the_router(
    model_server: ScriptedModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNCIL_TEST_API_BASE", model_server.base_url)
    monkeypatch.setenv("COUNCIL_TEST_API_KEY", "not-a-real-key")
    model_server.script("env-model", "resolved")
    entry = {
        "model_name": "main",
        "litellm_params": {
            "model": "openai/env-model",
            "api_base": "os.environ/COUNCIL_TEST_API_BASE",
            "api_key": "os.environ/COUNCIL_TEST_API_KEY",
        },
    }
    gateway = Gateway([entry], router_settings=FAST)
    assert gateway.complete("main", ask("q")).text == "resolved"
    assert entry["litellm_params"]["api_base"] == "os.environ/COUNCIL_TEST_API_BASE"


def test_events_are_redacted(model_server: ScriptedModelServer) -> None:
    secret = "sk-" + "a1B2c3D4e5" * 3
    model_server.script("m", f"I will use {secret} as you asked.")
    events = Recorder()
    gateway = Gateway(
        [deployment("main", "openai/m", model_server)], router_settings=FAST, emit=events
    )
    result = gateway.complete("main", ask(f"deploy with key {secret}"))
    assert secret in result.text  # the caller gets the real answer
    assert secret in model_server.requests[0]["messages"][1]["content"]
    (call,) = events.calls
    dumped = call.model_dump_json()
    assert secret not in dumped
    assert "[REDACTED]" in call.messages[1]["content"] and "[REDACTED]" in call.response
    assert call.messages[0] == {"role": "system", "content": "You are terse."}


class Plan(BaseModel):
    title: str
    tasks: list[str]
    effort: int


def test_structured_reads_fenced_json_with_prose(model_server: ScriptedModelServer) -> None:
    model_server.script(
        "m",
        'Sure! Here is the plan:\n```json\n{"title": "Add login", "tasks": ["form", "api",],'
        ' "effort": 3}\n```\nLet me know if you need more.',
    )
    gateway = Gateway([deployment("main", "openai/m", model_server)], router_settings=FAST)
    plan = gateway.structured("main", ask("plan the login feature"), Plan)
    assert plan == Plan(title="Add login", tasks=["form", "api"], effort=3)
    (request,) = model_server.requests
    last = request["messages"][-1]
    assert last["role"] == "user" and last["content"].startswith("plan the login feature")
    assert "Plan" in last["content"] and '"effort"' in last["content"]


def test_structured_repairs_once(model_server: ScriptedModelServer) -> None:
    bad = '{"title": "Add login", "tasks": "form"}'
    model_server.script(
        "m",
        bad,
        lambda body: (
            '{"title": "Add login", "tasks": ["form"], "effort": 2}'
            if "effort" in body["messages"][-1]["content"]
            else "wrong repair prompt"
        ),
    )
    events = Recorder()
    gateway = Gateway(
        [deployment("main", "openai/m", model_server, **PRICED)],
        router_settings=FAST,
        emit=events,
    )
    plan = gateway.structured("main", ask("plan"), Plan, persona="pacer")
    assert plan.effort == 2 and plan.tasks == ["form"]
    first, second = model_server.requests
    assert second["messages"][: len(first["messages"])] == first["messages"]
    assert second["messages"][-2] == {"role": "assistant", "content": bad}
    repair = second["messages"][-1]["content"]
    assert "tasks" in repair and "effort" in repair and "Field required" in repair
    assert len(events.calls) == 2
    assert gateway.spent_usd == pytest.approx(sum(c.cost_usd for c in events.calls))


def test_structured_broken_twice_raises(model_server: ScriptedModelServer) -> None:
    model_server.script("m", "I think the plan is good.", '{"title": 5, "tasks": []}')
    gateway = Gateway([deployment("main", "openai/m", model_server)], router_settings=FAST)
    with pytest.raises(StructuredOutputError) as caught:
        gateway.structured("main", ask("plan"), Plan)
    message = str(caught.value)
    assert "Plan" in message and "'main'" in message
    assert "title" in message and "effort" in message
    assert len(model_server.requests) == 2


def test_structured_answers_are_cached_once_valid(
    model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    model_server.script("m", "no json here", '{"title": "t", "tasks": [], "effort": 1}')
    gateway = Gateway(
        [deployment("main", "openai/m", model_server)], router_settings=FAST, cache_dir=tmp_path
    )
    first = gateway.structured("main", ask("plan"), Plan, temperature=0)
    second = gateway.structured("main", ask("plan"), Plan, temperature=0)
    again = Gateway(
        [deployment("main", "openai/m", model_server)], router_settings=FAST, cache_dir=tmp_path
    ).structured("main", ask("plan"), Plan, temperature=0)
    assert first == second == again == Plan(title="t", tasks=[], effort=1)
    assert len(model_server.requests) == 2  # the first ask and its repair; the repeats are cached


def test_a_retry_in_the_same_run_while_sampling_asks_the_model_again(
    model_server: ScriptedModelServer, tmp_path: Path
) -> None:
    """Guardian's third attempt may repeat its second word for word; at temperature 0.2 the
    model may answer better, while the cached answer would fail the same way again."""
    model_server.script("m", "first answer", "second answer")
    models = [deployment("main", "openai/m", model_server)]
    gateway = Gateway(models, router_settings=FAST, cache_dir=tmp_path)
    assert gateway.complete("main", ask("tests"), temperature=0.2).text == "first answer"
    retry = gateway.complete("main", ask("tests"), temperature=0.2)
    assert (retry.text, retry.cached) == ("second answer", False)
    # A later run (a new gateway) replays the latest answer without a request.
    later = Gateway(models, router_settings=FAST, cache_dir=tmp_path)
    replay = later.complete("main", ask("tests"), temperature=0.2)
    assert (replay.text, replay.cached) == ("second answer", True)
    assert len(model_server.requests) == 2


def test_backoff_grows_and_respects_bounds() -> None:
    from council.gateway.router import Backoff

    backoff = Backoff(initial_s=0.1, max_s=0.5, jitter_s=0.0, min_s=0.15)
    assert [backoff.delay(n) for n in range(4)] == [0.15, 0.2, 0.4, 0.5]
    assert backoff.delay(0, server_hint_s=0.3) == 0.3  # Retry-After wins when sane
    assert backoff.delay(0, server_hint_s=60) == 0.15  # ...and is ignored when not


def test_router_really_waits_between_retries(model_server: ScriptedModelServer) -> None:
    import time

    model_server.script("flaky", Reply(status=500), Reply(status=500), "ok")
    settings = {"num_retries": 2, "backoff": {"initial_s": 0.1, "max_s": 1, "jitter_s": 0}}
    gateway = Gateway([deployment("main", "openai/flaky", model_server)], router_settings=settings)
    started = time.perf_counter()
    assert gateway.complete("main", ask("q")).text == "ok"
    # Two sleeps before the two retries: 0.1 s then 0.2 s.
    assert time.perf_counter() - started >= 0.3


def test_parallel_calls_cannot_overrun_the_budget(model_server: ScriptedModelServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    usage = {"prompt_tokens": 1, "completion_tokens": 1}
    model_server.script("m", *[Reply("slow", delay_s=0.5, usage=usage)] * 2)
    gateway = Gateway(
        [deployment("main", "openai/m", model_server, **PRICED)],
        router_settings=FAST,
        budget_usd=0.3,  # room for one worst case (100 tokens x $0.002 + prompt), not two
    )
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(gateway.complete, "main", ask("q"), max_tokens=100) for _ in range(2)
        ]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result().text)
            except BudgetExceeded:
                outcomes.append("refused")
    assert sorted(outcomes) == ["refused", "slow"]
    assert len(model_server.requests) == 1
    assert gateway.spent_usd == pytest.approx(0.003)


def test_litellm_is_imported_without_loading_a_dotenv_file() -> None:
    # LiteLLM's DEV mode calls dotenv.load_dotenv() at import (a `.env` above its install
    # folder would land in council's environment); the gateway imports it in PRODUCTION mode.
    probe = (
        "import dotenv, os\n"
        "calls = []\n"
        "dotenv.load_dotenv = lambda *a, **k: calls.append(a) or False\n"
        "os.environ.pop('LITELLM_MODE', None)\n"
        "from council.gateway.router import litellm_module\n"
        "litellm_module()\n"
        "print(len(calls), os.environ['LITELLM_MODE'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["0", "PRODUCTION"]
