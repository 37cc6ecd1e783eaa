"""The embedded local model, through the same code path a downloaded model takes.

The model is made here with the `gguf` package (tests/fakes/tiny_gguf.py: random weights, a
byte vocabulary) and run by the real llama.cpp; downloads go to a fake hub on 127.0.0.1. A guard
refuses any connection that is not to the loopback address, so these tests prove they need no
network.
"""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from council.config import CONFIG_FILE, CouncilConfig, preset, resolve_config
from council.errors import LocalModelError
from council.events import ModelCall
from council.local import (
    CATALOGUE,
    DEFAULT_MODEL,
    LocalEngine,
    download,
    present_models,
    read_info,
    resolve_model,
    spec_for,
)
from council.local.files import path_for
from council.local.provider import schema_of
from council.local.schema_bounds import bounded_schema, worst_case_tokens
from council.personas.schemas import ContextSelection, Plan, Review
from council.pipelines.models import ask_persona, make_gateway
from tests.fakes.hub_server import FakeHub
from tests.fakes.tiny_gguf import write_tiny_model


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection to a non-loopback address fails the test."""
    real = socket.socket.connect

    def connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in (
            "127.0.0.1",
            "::1",
            "localhost",
        ):
            raise AssertionError(f"network access during a test: {address}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def _local_config() -> CouncilConfig:
    config = CouncilConfig.model_validate(preset("local"))
    config.cache.enabled = False  # every call below must really reach llama.cpp
    for persona in config.personas.values():
        persona.max_tokens = 600  # random weights use every token they are given
    return config


# --- the model itself -----------------------------------------------------------------------


def test_tiny_model_is_a_real_gguf_file(tiny_model: Path) -> None:
    info = read_info(tiny_model)
    assert (info.architecture, info.quantisation) == ("llama", "F32")
    assert info.chat_template and info.context_length == 4096
    assert info.parameters > 10_000


def test_chat_completion_returns_tokens(tiny_model: Path) -> None:
    engine = LocalEngine.shared(tiny_model)
    result = engine.chat([{"role": "user", "content": "say something"}], max_tokens=24, seed=3)
    assert result.completion_tokens > 0
    # The chat template in the file's metadata formats the prompt (no built-in format chosen).
    assert engine.llm.chat_format == "chat_template.default"
    chatml = "<|im_start|>user\nsay something<|im_end|>\n<|im_start|>assistant\n"
    assert result.prompt_tokens == len(engine.llm.tokenize(chatml.encode(), special=True))
    assert result.text
    assert result.finish_reason in ("stop", "length")
    # One loaded model per file: asking again gives the same engine.
    assert LocalEngine.shared(tiny_model) is engine


@pytest.mark.parametrize("schema", [Plan, Review, ContextSelection])
def test_constrained_decoding_validates_from_random_weights(tiny_model: Path, schema: type) -> None:
    engine = LocalEngine.shared(tiny_model)
    for seed in range(3):
        result = engine.chat(
            [{"role": "user", "content": "answer in JSON"}],
            max_tokens=512,
            schema=schema.model_json_schema(),
            seed=seed,
        )
        assert result.constrained in ("schema", "bounded schema")
        schema.model_validate_json(result.text)  # raises if the JSON or its shape is wrong


def test_an_answer_that_runs_out_of_tokens_is_asked_again_under_a_bounded_schema(
    tiny_model: Path,
) -> None:
    # 300 tokens cannot hold an unbounded Plan from random weights; the capped retry must fit.
    engine = LocalEngine.shared(tiny_model)
    ways = []
    for seed in range(4):
        result = engine.chat(
            [{"role": "user", "content": "plan"}],
            max_tokens=300,
            schema=Plan.model_json_schema(),
            seed=seed,
        )
        Plan.model_validate_json(result.text)
        assert result.completion_tokens <= 600  # two attempts at most
        ways.append(result.constrained)
    assert "bounded schema" in ways


def test_bounded_schema_fits_the_budget_and_keeps_minimums() -> None:
    plan = Plan.model_json_schema()
    assert worst_case_tokens(plan) == float("inf")
    for budget in (300, 1000, 4000):
        bounded = bounded_schema(plan, budget)
        assert bounded is not None and worst_case_tokens(bounded) <= budget
        assert bounded["properties"]["tasks"]["minItems"] == 1
        assert bounded["properties"]["tasks"]["maxItems"] >= 1
    assert bounded_schema(plan, 20) is None  # cannot fit even one task: no false promise


def test_schema_of_reads_openai_response_formats() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert schema_of({"type": "json_schema", "json_schema": {"name": "A", "schema": schema}}) == (
        schema
    )
    assert schema_of({"type": "json_object"}) == {"type": "object"}
    assert schema_of({"type": "text"}) is None and schema_of(None) is None


# --- through the gateway, as personas use it ------------------------------------------------


def test_gateway_structured_call_uses_the_grammar_and_records_tokens_at_zero_cost(
    local_env: pytest.MonkeyPatch,
) -> None:
    config = _local_config()
    events: list[object] = []
    gateway = make_gateway(config, events.append)
    plan = ask_persona(gateway, config, "pacer", [{"role": "user", "content": "add /health"}], Plan)
    assert isinstance(plan, Plan)
    calls = [e for e in events if isinstance(e, ModelCall)]
    assert len(calls) == 1  # valid the first time: no repair re-ask
    call = calls[0]
    assert call.model == "council-local/default" and call.error is None
    assert call.prompt_tokens > 0 and call.completion_tokens > 0
    assert call.latency_ms > 0
    assert call.cost_usd == 0.0 and gateway.spent_usd == 0.0


def test_a_prompt_longer_than_the_context_is_a_clear_model_error(
    local_env: pytest.MonkeyPatch,
) -> None:
    from council.errors import ModelError

    config = _local_config()
    gateway = make_gateway(config, lambda e: None)
    huge = [{"role": "user", "content": "word " * 6000}]  # the tiny model's context is 4096
    with pytest.raises(ModelError, match=r"cannot take this prompt.*context\.map_tokens"):
        ask_persona(gateway, config, "maven", huge)


def test_cached_answers_are_per_model_file(
    local_env: pytest.MonkeyPatch, tmp_path: Path, tiny_model: Path
) -> None:
    config = CouncilConfig.model_validate(preset("local"))
    config.cache.dir = str(tmp_path / "answers")
    messages = [{"role": "user", "content": "hello"}]

    def ask() -> ModelCall:
        events: list[object] = []
        gateway = make_gateway(config, events.append)
        ask_persona(gateway, config, "maven", messages)
        gateway.close()
        return next(e for e in events if isinstance(e, ModelCall))

    assert ask().cached is False
    assert ask().cached is True  # same file: replayed, no llama.cpp call
    other = write_tiny_model(tmp_path / "other.gguf", seed=7)
    local_env.setenv("COUNCIL_LOCAL_MODEL", str(other))
    assert ask().cached is False  # another model file never gets the first one's answers


def test_two_personas_calling_concurrently_both_get_answers(
    local_env: pytest.MonkeyPatch, tiny_model: Path
) -> None:
    config = _local_config()
    events: list[object] = []
    gateway = make_gateway(config, events.append)
    answers: dict[str, object] = {}
    errors: list[BaseException] = []

    def ask(persona: str, schema: type | None) -> None:
        try:
            for _ in range(3):
                answers[persona] = ask_persona(
                    gateway, config, persona, [{"role": "user", "content": persona}], schema
                )
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [
        threading.Thread(target=ask, args=("guardian", Review)),
        threading.Thread(target=ask, args=("builder", None)),
        threading.Thread(target=ask, args=("pacer", Plan)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert isinstance(answers["guardian"], Review) and isinstance(answers["pacer"], Plan)
    assert isinstance(answers["builder"], str)
    assert len([e for e in events if isinstance(e, ModelCall) and e.error is None]) == 9
    loaded = [key for key in LocalEngine._loaded if key[0] == str(tiny_model.resolve())]
    assert len(loaded) == 1  # one model in memory for every persona


# --- choosing the local model, and clear errors ---------------------------------------------


def test_no_council_yaml_and_no_key_chooses_the_local_model(
    local_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config, source = resolve_config(tmp_path)
    assert "preset 'local'" in source
    assert {m.litellm_params["model"] for m in config.models} == {"council-local/default"}
    assert all(m.model_info["supports_response_schema"] for m in config.models)


def test_a_provider_key_wins_over_the_local_model(
    local_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local_env.setenv("OPENAI_API_KEY", "sk-test")
    config, _ = resolve_config(tmp_path)
    assert config.models[0].litellm_params["model"].startswith("openai/")
    (tmp_path / CONFIG_FILE).write_text(
        "models:\n  - model_name: m\n    litellm_params:\n      model: ollama_chat/x\n"
    )
    local_env.delenv("OPENAI_API_KEY")
    config, _ = resolve_config(tmp_path)
    assert config.models[0].litellm_params["model"] == "ollama_chat/x"


def test_missing_model_file_names_the_file_and_where_to_put_it(
    local_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local_env.delenv("COUNCIL_LOCAL_MODEL")
    local_env.setenv("COUNCIL_OFFLINE", "1")
    with pytest.raises(LocalModelError) as info:
        make_gateway(_local_config(), lambda e: None)
    spec = spec_for(DEFAULT_MODEL)
    text = str(info.value)
    assert info.value.exit_code == 2
    assert spec.filename in text and str(path_for(spec)) in text
    assert "COUNCIL_LOCAL_MODEL" in text and "OPENAI_API_KEY" in text


def test_without_llama_cpp_the_error_says_how_to_install_it(
    local_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_llama(name: str, *args: object, **kwargs: object) -> object:
        if name == "llama_cpp" or name.startswith("llama_cpp."):
            raise ImportError("No module named 'llama_cpp'")
        return real_import(name, *args, **kwargs)

    local_env.setattr(builtins, "__import__", no_llama)
    local_env.setenv("COUNCIL_OFFLINE", "1")
    local_env.delenv("COUNCIL_LOCAL_MODEL")
    with pytest.raises(LocalModelError) as info:
        make_gateway(_local_config(), lambda e: None)
    assert "needs llama-cpp-python" in info.value.message
    assert 'pip install "ai-council[local]"' in str(info.value)


def test_council_local_model_pointing_nowhere_is_a_clear_error(
    local_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local_env.setenv("COUNCIL_LOCAL_MODEL", str(tmp_path / "nope.gguf"))
    with pytest.raises(LocalModelError, match=r"COUNCIL_LOCAL_MODEL=.*nope\.gguf does not exist"):
        resolve_model()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: b"<html>rate limited</html>", "is not a GGUF file"),
        (lambda data: data[: len(data) // 3], "cut-short GGUF file"),
        (lambda data: data[: len(data) - 4096], "cut-short GGUF file"),
    ],
)
def test_a_corrupt_model_file_is_a_clear_error_not_a_crash(
    local_env: pytest.MonkeyPatch, tmp_path: Path, tiny_model: Path, damage, message: str
) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(damage(tiny_model.read_bytes()))
    local_env.setenv("COUNCIL_LOCAL_MODEL", str(bad))
    with pytest.raises(LocalModelError, match=message):
        resolve_model()
    with pytest.raises(LocalModelError, match=message):
        LocalEngine(bad)


# --- downloading ----------------------------------------------------------------------------


@pytest.fixture
def hub(local_env: pytest.MonkeyPatch, tiny_model: Path) -> Iterator[FakeHub]:
    spec = spec_for(DEFAULT_MODEL)
    with FakeHub({spec.path_on_hub: tiny_model.read_bytes()}) as server:
        local_env.setenv("HF_ENDPOINT", server.url)
        local_env.delenv("COUNCIL_LOCAL_MODEL")
        local_env.delenv("COUNCIL_OFFLINE", raising=False)
        local_env.delenv("HF_HUB_OFFLINE", raising=False)
        yield server


def test_first_use_downloads_the_default_model_with_progress_and_checksum(
    hub: FakeHub, tiny_model: Path
) -> None:
    seen: list[tuple[int, int]] = []
    path = resolve_model(progress=lambda done, total: seen.append((done, total)))
    spec = spec_for(DEFAULT_MODEL)
    assert path == path_for(spec) and path.read_bytes() == tiny_model.read_bytes()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.with_name(path.name + ".sha256").read_text().strip() == digest
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert not list(path.parent.glob("*.part"))
    # Present, so the next use makes no request at all.
    before = len(hub.requests)
    assert resolve_model() == path and len(hub.requests) == before


def test_an_interrupted_download_resumes_with_a_range_request(
    hub: FakeHub, tiny_model: Path
) -> None:
    spec = spec_for(DEFAULT_MODEL)
    hub.cut_after = 50_000
    with pytest.raises(LocalModelError) as info:
        download(spec, path_for(spec))
    part = path_for(spec).with_name(spec.filename + ".part")
    assert part.is_file() and 0 < part.stat().st_size < len(tiny_model.read_bytes())
    assert "resumes next time" in str(info.value)
    assert not path_for(spec).exists()  # never a half file in the final place
    download(spec, path_for(spec))
    gets = [r.range for r in hub.requests if r.method == "GET" and r.path.startswith("/cdn/")]
    assert gets == [None, "bytes=50000-"]  # the second request asks only for the rest
    assert path_for(spec).read_bytes() == tiny_model.read_bytes()


def test_a_checksum_mismatch_deletes_the_download(hub: FakeHub) -> None:
    spec = spec_for(DEFAULT_MODEL)
    hub.bad_etag = True
    with pytest.raises(LocalModelError, match="checksum mismatch"):
        download(spec, path_for(spec))
    assert not path_for(spec).exists()
    assert not path_for(spec).with_name(spec.filename + ".part").exists()


def test_models_list_shows_what_is_present(hub: FakeHub, tmp_path: Path) -> None:
    resolve_model()
    (path_for(spec_for(DEFAULT_MODEL)).parent / "broken.gguf").write_bytes(b"nope")
    found = {p.name: p for p in present_models()}
    assert found[DEFAULT_MODEL].info is not None
    assert found[DEFAULT_MODEL].info.quantisation == "F32"
    assert "not a GGUF file" in found["broken.gguf"].problem
    assert set(CATALOGUE) >= {DEFAULT_MODEL}


def test_no_network_during_these_tests_is_enforced() -> None:
    with pytest.raises(AssertionError, match="network access"):
        socket.create_connection(("192.0.2.1", 443), timeout=0.1)


def test_local_is_a_lower_layer_that_loads_nothing_heavy_on_import() -> None:
    code = (
        "import sys, council.local\n"
        "high = ('council.pipelines', 'council.personas', 'council.gateway', 'council.cli',"
        " 'council.config', 'llama_cpp', 'litellm')\n"
        "print(sorted(m for m in sys.modules if m.startswith(high)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the whole council on the embedded model ------------------------------------------------


def test_council_run_with_no_key_uses_the_local_model_and_gibberish_damages_nothing(
    tmp_path: Path, tiny_model: Path
) -> None:
    """No key, no council.yaml: the embedded model answers every persona. Random weights write
    gibberish, so the run must fail cleanly: a valid plan (grammar), no tests accepted, exit 1,
    the user's checkout untouched, and the calls on record at $0 with their tokens."""
    from tests.fakes import council_script as cs
    from tests.test_cli import ROOT, scrubbed_env
    from tests.test_tdd_flow import checkout_fingerprint

    repo = cs.make_repo(tmp_path / "svc")
    before = checkout_fingerprint(repo)
    env = scrubbed_env(tmp_path / "cache")
    env.pop("COUNCIL_NO_LOCAL", None)
    env.update(COUNCIL_LOCAL_MODEL=str(tiny_model), COUNCIL_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-m", "council.cli", "run", "add GET /health", "--repo", str(repo)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    assert "preset 'local'" in done.stdout
    assert "(council-local/default)" in done.stdout  # each call names the model that answered
    assert checkout_fingerprint(repo) == before
    shown = subprocess.run(
        [sys.executable, "-m", "council.cli", "show", "--repo", str(repo)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    totals = re.search(r"tokens: (\d+) in, (\d+) out\s+cost: \$(\S+)", shown.stdout)
    assert totals is not None, shown.stdout
    assert int(totals[1]) > 0 and int(totals[2]) > 0 and float(totals[3]) == 0.0
