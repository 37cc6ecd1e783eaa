"""The LiteLLM private APIs council uses still exist and still have the shape it relies on.

When this file fails after a LiteLLM upgrade, gateway/litellm_api.py needs a change: the backoff,
the cost of the deployment that answered, or the local model's registration would otherwise be
lost without an error.
"""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from council.gateway import litellm_api
from council.gateway.router import litellm_module
from tests.fakes.model_server import ScriptedModelServer


def test_the_installed_litellm_has_every_private_api_council_uses() -> None:
    assert litellm_api.problems() == []


def test_a_renamed_retry_hook_or_a_reshaped_one_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    litellm = litellm_module()
    monkeypatch.delattr(litellm.Router, litellm_api.RETRY_SLEEP_METHOD)
    assert any("retries lose their backoff" in p for p in litellm_api.problems())

    def reshaped(self, e, remaining_retries):  # type: ignore[no-untyped-def]
        return 0.0

    monkeypatch.setattr(litellm.Router, litellm_api.RETRY_SLEEP_METHOD, reshaped, raising=False)
    assert any("expected" in p for p in litellm_api.problems())


def test_a_missing_setup_call_or_hidden_params_are_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import litellm.utils

    litellm_module()
    monkeypatch.delattr(litellm.utils, "custom_llm_setup")
    monkeypatch.setattr(litellm.ModelResponse, "_hidden_params", None, raising=False)
    found = " ".join(litellm_api.problems())
    assert "custom_llm_setup is gone" in found
    assert "_hidden_params" in found


def test_router_class_overrides_the_retry_sleep_with_council_s_function() -> None:
    calls: list[tuple[int, int]] = []

    def sleep(e, remaining, retries, healthy, everything):  # type: ignore[no-untyped-def]
        calls.append((remaining, retries))
        return 0.25

    router = litellm_api.router_class(sleep)(
        model_list=[
            {"model_name": "a", "litellm_params": {"model": "openai/x", "api_key": "k"}},
        ]
    )
    hook = getattr(router, litellm_api.RETRY_SLEEP_METHOD)
    assert hook(RuntimeError("x"), 1, 2, None, None) == 0.25
    assert calls == [(1, 2)]


def test_retry_after_is_read_from_the_failed_response_headers() -> None:
    failed = SimpleNamespace(response=SimpleNamespace(headers=httpx.Headers({"Retry-After": "2"})))
    assert litellm_api.retry_after_s(failed) == 2.0  # type: ignore[arg-type]
    assert litellm_api.retry_after_s(RuntimeError("no response")) is None


def test_answering_model_id_reads_hidden_params_and_tolerates_their_absence() -> None:
    response = litellm_module().ModelResponse()
    response._hidden_params["model_id"] = "dep-7"
    assert litellm_api.answering_model_id(response) == "dep-7"
    assert litellm_api.answering_model_id(object()) == ""


def test_a_custom_provider_is_registered_once() -> None:
    litellm = litellm_module()
    built: list[int] = []

    def handler() -> object:
        built.append(1)
        return litellm.CustomLLM()

    before = list(litellm.custom_provider_map)
    try:
        litellm_api.register_custom_provider("council-test-provider", handler)
        litellm_api.register_custom_provider("council-test-provider", handler)
        assert built == [1]
        assert "council-test-provider" in litellm.provider_list
    finally:
        litellm.custom_provider_map = before


_FIRST_CALL = """
import json, sys
from council.gateway import Gateway
from council.gateway.router import litellm_module, warm_first_call

litellm_module()
missing = warm_first_call() if sys.argv[2] == "warm" else []
before = set(sys.modules)
gw = Gateway([{"model_name": "m", "litellm_params": {"model": "openai/gpt-4o-mini",
               "api_base": sys.argv[1], "api_key": "test-key-not-secret"}}],
             router_settings={"num_retries": 0})
assert gw.count_tokens("m", [{"role": "user", "content": "hi"}]) > 0
text = gw.complete("m", [{"role": "user", "content": "hi"}]).text
print(json.dumps({"missing": missing, "text": text, "new": sorted(set(sys.modules) - before)}))
"""


def test_the_preload_imports_what_the_first_completion_would_import(
    model_server: ScriptedModelServer,
) -> None:
    """The background preload of a run takes LiteLLM's first-call imports (the OpenAI client's
    resources, the proxy's file-id helpers, the default tokenizer: about 1.8 s of CPU) off the
    first model call and the first token count."""
    import json
    import subprocess
    import sys

    model_server.script(None, "hello", "hello")
    found = {}
    for mode in ("cold", "warm"):
        done = subprocess.run(
            [sys.executable, "-c", _FIRST_CALL, model_server.base_url, mode],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        found[mode] = json.loads(done.stdout.splitlines()[-1])
    assert found["warm"]["missing"] == []
    assert found["cold"]["text"] == found["warm"]["text"] == "hello"

    def heavy(mods: list[str]) -> list[str]:
        heavy = ("openai.resources", "litellm.proxy", "litellm.litellm_core_utils.default_enc")
        return [m for m in mods if m.startswith(heavy)]

    assert len(heavy(found["cold"]["new"])) > 50  # what the warm-up is for
    assert heavy(found["warm"]["new"]) == []
    assert len(found["warm"]["new"]) < len(found["cold"]["new"]) / 4


def test_starting_the_preload_again_never_waits_for_the_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`council run` starts the preload at once and the lifecycle asks again later: while the
    import holds its lock (seconds), the second start must return, not wait for it."""
    import threading

    from council.gateway import router

    monkeypatch.setattr(router, "_preload", None)
    started: list[threading.Thread] = []

    def start() -> bool:
        done = threading.Event()
        threading.Thread(
            target=lambda: (started.append(router.preload_litellm()), done.set()), daemon=True
        ).start()
        return done.wait(timeout=5)

    router._litellm_lock.acquire()  # an import in progress
    try:
        assert start() and start(), "starting the preload waited for the import"
        assert started[0] is started[1] and started[0].is_alive()
    finally:
        router._litellm_lock.release()
    started[0].join(timeout=120)
    assert not started[0].is_alive()
