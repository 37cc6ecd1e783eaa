"""`council deploy litellm-config`: council.yaml -> the LiteLLM proxy's litellm_config.yaml.

The generated file is loaded by LiteLLM's own proxy loader (ProxyConfig.load_config of
litellm==1.106.2, in an isolated environment built from deploy/litellm/requirements.txt: the
exact package set of the proxy image) and round-trips through council's parse_config.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from council.config import PERSONAS, parse_config
from council.errors import ConfigError
from council.infra.litellm_config import (
    MASTER_KEY_REF,
    build_litellm_config,
    render_litellm_config,
)

ROOT = Path(__file__).resolve().parents[1]
LITELLM_DIR = ROOT / "deploy" / "litellm"
AZURE_COUNCIL = LITELLM_DIR / "council.azure.yaml"
LITELLM_PIN = "litellm==1.106.2"

COUNCIL_YAML = textwrap.dedent(
    """\
    models:
      - model_name: council-strong
        litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY}
      - model_name: council-fast
        litellm_params:
          model: openai/gpt-4o-mini
          api_key: os.environ/OPENAI_API_KEY
          api_base: os.environ/OPENAI_API_BASE
        model_info: {input_cost_per_token: 0.0, output_cost_per_token: 0.0}
    router_settings:
      num_retries: 3
      timeout: 90
      fallbacks: [{council-strong: [council-fast]}]
    personas:
      pacer: {model: council-strong}
      maven: {model: council-fast}
      guardian: {model: council-strong}
      builder: {model: council-strong}
      artisan: {model: council-fast}
    cache: {enabled: true}
    """
)


def _council_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "KEY" not in k and "TOKEN" not in k}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


# --- the generator ---------------------------------------------------------------------------


def test_models_keep_their_environment_references():
    doc = build_litellm_config(parse_config(COUNCIL_YAML))
    params = {m["model_name"]: m["litellm_params"] for m in doc["model_list"]}
    assert params["council-strong"] == {
        "model": "openai/gpt-4o",
        "api_key": "os.environ/OPENAI_API_KEY",
    }
    assert params["council-fast"]["api_base"] == "os.environ/OPENAI_API_BASE"
    fast = next(m for m in doc["model_list"] if m["model_name"] == "council-fast")
    assert fast["model_info"] == {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0}
    assert doc["general_settings"]["master_key"] == MASTER_KEY_REF


def test_router_fallbacks_and_cache_are_carried_over():
    doc = build_litellm_config(parse_config(COUNCIL_YAML))
    router = doc["router_settings"]
    assert router["fallbacks"] == [{"council-strong": ["council-fast"]}]
    assert (router["num_retries"], router["timeout"]) == (3, 90)
    assert doc["litellm_settings"]["cache"] is True
    assert doc["litellm_settings"]["cache_params"] == {"type": "local"}

    no_cache = build_litellm_config(
        parse_config(COUNCIL_YAML.replace("cache: {enabled: true}", "cache: {enabled: false}"))
    )
    assert "cache" not in no_cache.get("litellm_settings", {})


def test_fallbacks_written_under_litellm_settings_move_to_the_router():
    text = (
        COUNCIL_YAML.replace("  fallbacks: [{council-strong: [council-fast]}]\n", "")
        + "litellm_settings:\n"
        + "  fallbacks: [{council-strong: [council-fast]}]\n"
        + "  drop_params: true\n"
    )
    doc = build_litellm_config(parse_config(text))
    assert doc["router_settings"]["fallbacks"] == [{"council-strong": ["council-fast"]}]
    assert "fallbacks" not in doc["litellm_settings"]
    assert doc["litellm_settings"]["drop_params"] is True


def test_each_persona_is_an_alias_for_its_model():
    doc = build_litellm_config(parse_config(COUNCIL_YAML))
    assert doc["router_settings"]["model_group_alias"] == {
        "pacer": "council-strong",
        "maven": "council-fast",
        "guardian": "council-strong",
        "builder": "council-strong",
        "artisan": "council-fast",
        "devops": "council-strong",  # not listed: the first model
    }


@pytest.mark.parametrize(
    ("where", "text"),
    [
        (
            "models[0] (council-strong).litellm_params.api_key",
            COUNCIL_YAML.replace("os.environ/OPENAI_API_KEY}", "sk-live-abcdef0123456789}", 1),
        ),
        (
            "general_settings.master_key",
            COUNCIL_YAML + "general_settings: {master_key: sk-1234567890abcdef}\n",
        ),
        (
            "environment_variables.AZURE_API_KEY",
            COUNCIL_YAML + "environment_variables: {AZURE_API_KEY: abcdef0123456789}\n",
        ),
    ],
)
def test_a_literal_credential_is_refused_and_not_repeated(where: str, text: str):
    with pytest.raises(ConfigError) as info:
        build_litellm_config(parse_config(text))
    message = info.value.message
    assert where in message
    assert "0123456789" not in message  # the value is masked, never echoed


def test_no_models_is_an_error():
    with pytest.raises(ConfigError, match="no models"):
        build_litellm_config(parse_config("personas: {}\n"))


# --- the command -----------------------------------------------------------------------------


def _council(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "council.cli", *args],
        cwd=cwd,
        env=_council_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_command_writes_the_file(tmp_path: Path):
    (tmp_path / "council.yaml").write_text(COUNCIL_YAML, encoding="utf-8")
    result = _council("deploy", "litellm-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "litellm_config.yaml").read_text(encoding="utf-8")
    assert written == render_litellm_config(parse_config(COUNCIL_YAML))
    assert "wrote litellm_config.yaml" in result.stdout

    other = tmp_path / "out" / "proxy.yaml"
    other.parent.mkdir()
    result = _council("deploy", "litellm-config", "--config", "council.yaml", "--out", str(other),
                      cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert other.read_text(encoding="utf-8") == written


def test_command_refuses_a_literal_key_with_exit_2(tmp_path: Path):
    secret = "sk-live-abcdef0123456789"
    text = COUNCIL_YAML.replace("os.environ/OPENAI_API_KEY}", f"{secret}}}", 1)
    (tmp_path / "council.yaml").write_text(text, encoding="utf-8")
    result = _council("deploy", "litellm-config", cwd=tmp_path)
    assert result.returncode == 2
    assert "literal credential" in result.stderr
    assert secret not in result.stderr + result.stdout
    assert not (tmp_path / "litellm_config.yaml").exists()


def test_command_reports_a_missing_config_with_exit_2(tmp_path: Path):
    result = _council("deploy", "litellm-config", "--config", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_committed_proxy_config_matches_the_generator():
    committed = (LITELLM_DIR / "litellm_config.yaml").read_text(encoding="utf-8")
    config = parse_config(AZURE_COUNCIL.read_text(encoding="utf-8"))
    assert committed == render_litellm_config(config, source=AZURE_COUNCIL.name), (
        "deploy/litellm/litellm_config.yaml is stale: run `council deploy litellm-config "
        "--config deploy/litellm/council.azure.yaml --out deploy/litellm/litellm_config.yaml`"
    )


# --- LiteLLM's own loader, and back through council ------------------------------------------

_LOADER = textwrap.dedent(
    """\
    import asyncio, json, sys
    import litellm
    from litellm.proxy.proxy_server import ProxyConfig

    for path in sys.argv[1:]:
        try:
            router, models, _ = asyncio.run(
                ProxyConfig().load_config(router=None, config_file_path=path)
            )
        except Exception as exc:
            print("RESULT " + json.dumps({"path": path, "error": repr(exc)}))
            continue
        cache = litellm.cache.cache if litellm.cache is not None else None
        print("RESULT " + json.dumps({
            "path": path,
            "models": sorted({m["model_name"] for m in models}),
            "deployments": [m["litellm_params"]["model"] for m in router.model_list],
            "aliases": router.model_group_alias,
            "fallbacks": router.fallbacks,
            "retries": router.num_retries,
            "timeout": router.timeout,
            "cache": type(cache).__name__ if cache is not None else None,
            "valid_router_args": sorted(litellm.Router.get_valid_args()),
        }))
    """
)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """LiteLLM's proxy config loader run once, in the proxy image's package set, on the
    generated config ('good') and on a broken one ('bad')."""
    uv = shutil.which("uv")
    assert uv, "uv is required (scripts/setup installs it)"
    work = tmp_path_factory.mktemp("loader")
    script = work / "load.py"
    script.write_text(_LOADER, encoding="utf-8")
    config = parse_config(AZURE_COUNCIL.read_text(encoding="utf-8"))
    good = work / "litellm_config.yaml"
    good.write_text(render_litellm_config(config), encoding="utf-8")
    bad = work / "bad.yaml"
    bad.write_text("model_list:\n  - model_name: only-a-name\n", encoding="utf-8")
    env = {f"{p.upper()}_API_KEY": f"test-key-{p}" for p in PERSONAS}
    env |= {f"{p.upper()}_API_BASE": f"http://127.0.0.1:9/{p}/v1" for p in PERSONAS}
    env["LITELLM_MASTER_KEY"] = "sk-test-master"
    result = subprocess.run(
        [
            uv,
            "run",
            "--no-project",
            "--quiet",
            "--python",
            "3.11",
            "--with-requirements",
            str(LITELLM_DIR / "requirements.txt"),
            "python",
            str(script),
            str(good),
            str(bad),
        ],  # fmt: skip
        env={**_council_env(), **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    results = [
        json.loads(x.removeprefix("RESULT "))
        for x in result.stdout.splitlines()
        if x.startswith("RESULT ")
    ]
    by_path = {r["path"]: r for r in results}
    return {"good": by_path[str(good)], "bad": by_path[str(bad)], "written": good}


def test_generated_config_loads_in_litellm_proxy_loader(loaded):
    config = parse_config(AZURE_COUNCIL.read_text(encoding="utf-8"))
    good = loaded["good"]
    assert "error" not in good, good.get("error")
    names = [m.model_name for m in config.models]
    assert set(names) <= set(good["models"])
    assert sorted(good["deployments"]) == sorted(m.litellm_params["model"] for m in config.models)
    assert good["fallbacks"] == config.router_options()["fallbacks"]
    assert good["retries"] == 2 and good["timeout"] == 120
    assert good["cache"] == "InMemoryCache"
    assert good["aliases"] == {p: config.persona(p).model for p in PERSONAS}
    # Every router setting written is one LiteLLM's Router accepts (the loader only warns).
    written = yaml.safe_load(loaded["written"].read_text(encoding="utf-8"))
    assert set(written["router_settings"]) <= set(good["valid_router_args"])


def test_proxy_loader_rejects_a_broken_config(loaded):
    """The loader check can fail: a model entry without litellm_params does not load."""
    assert "error" in loaded["bad"]


def test_generated_config_round_trips_through_council():
    config = parse_config(AZURE_COUNCIL.read_text(encoding="utf-8"))
    again = parse_config(render_litellm_config(config), source="litellm_config.yaml")
    assert [m.model_dump() for m in again.models] == [m.model_dump() for m in config.models]
    assert again.router_options()["fallbacks"] == config.router_options()["fallbacks"]
    for persona in PERSONAS:
        assert again.persona(persona).model == config.persona(persona).model
    assert again.litellm_settings["cache"] is True


def test_proxy_image_pins_litellm():
    requirements = (LITELLM_DIR / "requirements.txt").read_text(encoding="utf-8")
    assert LITELLM_PIN in requirements
    assert "--hash=sha256:" in requirements
    assert (LITELLM_DIR / "requirements.in").read_text(encoding="utf-8").strip() == (
        "litellm[proxy]==1.106.2"
    )
    dockerfile = (LITELLM_DIR / "Dockerfile").read_text(encoding="utf-8")
    assert "--require-hashes -r /app/requirements.txt" in dockerfile
    assert "\nUSER 10001:10001\n" in dockerfile
    assert "\nHEALTHCHECK " in dockerfile
