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
