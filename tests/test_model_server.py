"""The scripted model server answers like an OpenAI-compatible endpoint and records requests."""

from __future__ import annotations

import time

import httpx

from tests.fakes.model_server import Reply, ScriptedModelServer


def _ask(
    server: ScriptedModelServer, model: str, text: str = "hi", path: str = "/chat/completions"
):
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(server.base_url + path, json=body, timeout=10)


def test_answers_in_openai_shape(model_server: ScriptedModelServer) -> None:
    model_server.script("m1", "hello there")
    response = _ask(model_server, "m1", "say hello")
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "m1"
    assert data["id"].startswith("chatcmpl-")
    assert isinstance(data["created"], int)
    choice = data["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "hello there"}
    assert choice["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["prompt_tokens"] == 2 and usage["completion_tokens"] == 2
    assert usage["total_tokens"] == 4


def test_base_url_and_path_without_v1(model_server: ScriptedModelServer) -> None:
    assert model_server.base_url == f"http://127.0.0.1:{model_server.port}/v1"
    model_server.script(None, "from default")
    root = model_server.base_url.removesuffix("/v1")
    response = httpx.post(
        root + "/chat/completions",
        json={"model": "x", "messages": [{"role": "user", "content": "q"}]},
        timeout=10,
    )
    assert response.json()["choices"][0]["message"]["content"] == "from default"


def test_queues_per_model_in_order_then_default(model_server: ScriptedModelServer) -> None:
    model_server.script("a", "a1", "a2")
    model_server.script("b", "b1")
    model_server.script(None, "d1")
    contents = [
        _ask(model_server, m).json()["choices"][0]["message"]["content"]
        for m in ("a", "b", "a", "a")
    ]
    assert contents == ["a1", "b1", "a2", "d1"]
    assert [r["model"] for r in model_server.requests] == ["a", "b", "a", "a"]
    assert model_server.pending("a") == 0 and model_server.pending() == 0


def test_exhausted_script_is_a_500(model_server: ScriptedModelServer) -> None:
    model_server.script("a", "only one")
    assert _ask(model_server, "a").status_code == 200
    response = _ask(model_server, "a")
    assert response.status_code == 500
    assert "script exhausted" in response.json()["error"]["message"]
    assert len(model_server.requests) == 2


def test_reply_status_usage_and_callable(model_server: ScriptedModelServer) -> None:
    model_server.script(
        "m",
        Reply(status=503, error="overloaded"),
        Reply("counted", usage={"prompt_tokens": 100, "completion_tokens": 7}),
        lambda body: "echo: " + body["messages"][-1]["content"],
        lambda body: Reply(status=429) if "limit" in body["messages"][0]["content"] else "ok",
    )
    failed = _ask(model_server, "m")
    assert failed.status_code == 503 and failed.json()["error"]["message"] == "overloaded"
    usage = _ask(model_server, "m").json()["usage"]
    assert usage == {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}
    echoed = _ask(model_server, "m", "ping").json()["choices"][0]["message"]["content"]
    assert echoed == "echo: ping"
    assert _ask(model_server, "m", "over the limit").status_code == 429


def test_delay_is_real(model_server: ScriptedModelServer) -> None:
    model_server.script("slow", Reply("late", delay_s=0.3))
    started = time.perf_counter()
    assert _ask(model_server, "slow").status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_unknown_route_is_404_and_not_recorded(model_server: ScriptedModelServer) -> None:
    response = httpx.post(model_server.base_url + "/embeddings", json={}, timeout=10)
    assert response.status_code == 404
    assert model_server.requests == []


def test_context_manager_frees_the_port() -> None:
    with ScriptedModelServer() as server:
        server.script("m", "x")
        url = server.base_url
        assert _ask(server, "m").status_code == 200
    try:
        httpx.post(url + "/chat/completions", json={}, timeout=2)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("server still answering after it was stopped")
