"""council.yaml: the seed's LiteLLM config, persona defaults, env refs, located errors, presets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from council.config import (
    CONFIG_FILE,
    NO_MODEL_MESSAGE,
    PERSONAS,
    PROVIDERS,
    CouncilConfig,
    LanguageConfig,
    dump_config,
    load_config,
    parse_config,
    preset,
    resolve_config,
)
from council.errors import ConfigError

# The seed's `litellm_config.yaml` (Azure ML endpoints behind a LiteLLM proxy), verbatim.
SEED_LITELLM_CONFIG = """\
# litellm_config.yaml
model_list:
  - model_name: pacer-mistral-7b
    litellm_params:
      model: azure/pacer-mistral-7b-ep # This is the endpoint name in Azure ML
      api_key: os.environ/PACER_MISTRAL_API_KEY # Securely loaded from environment variable
      api_base: os.environ/PACER_MISTRAL_API_BASE # Scoring URI of the Azure ML endpoint
      # Optional: Add deployment_name if you have multiple deployments under one endpoint
      # deployment_name: "blue" 
  - model_name: builder-llama-3-8b
    litellm_params:
      model: azure/builder-llama-3-8b-ep
      api_key: os.environ/BUILDER_LLAMA3_API_KEY
      api_base: os.environ/BUILDER_LLAMA3_API_BASE
  - model_name: maven-phi-3-mini
    litellm_params:
      model: azure/maven-phi-3-mini-ep
      api_key: os.environ/MAVEN_PHI3_API_KEY
      api_base: os.environ/MAVEN_PHI3_API_BASE
  - model_name: guardian-codellama-7b
    litellm_params:
      model: azure/guardian-codellama-7b-ep
      api_key: os.environ/GUARDIAN_CODELLAMA_API_KEY
      api_base: os.environ/GUARDIAN_CODELLAMA_API_BASE
  - model_name: artisan-codegemma-7b
    litellm_params:
      model: azure/artisan-codegemma-7b-ep
      api_key: os.environ/ARTISAN_CODEGEMMA_API_KEY
      api_base: os.environ/ARTISAN_CODEGEMMA_API_BASE

litellm_settings:
  drop_params: True # Good practice to drop azure specific params before sending to model
  set_verbose: True # For debugging, can be turned to False in production
  # Optional: Add other LiteLLM settings like caching, fallbacks, etc.

# Environment variable mapping for API keys and bases will be:
# PACER_MISTRAL_API_KEY="your_azure_ml_endpoint_key_for_pacer"
# PACER_MISTRAL_API_BASE="https_pacer-mistral-7b-ep.eastus2.inference.ml.azure.com/score" (Example URI)
# ... and so on for each model.
"""  # noqa: E501, W291 - verbatim, trailing space included

SEED_ENV = [
    "PACER_MISTRAL_API_KEY",
    "PACER_MISTRAL_API_BASE",
    "BUILDER_LLAMA3_API_KEY",
    "BUILDER_LLAMA3_API_BASE",
    "MAVEN_PHI3_API_KEY",
    "MAVEN_PHI3_API_BASE",
    "GUARDIAN_CODELLAMA_API_KEY",
    "GUARDIAN_CODELLAMA_API_BASE",
    "ARTISAN_CODEGEMMA_API_KEY",
    "ARTISAN_CODEGEMMA_API_BASE",
]

# Everything that could make resolve_config pick a provider or satisfy a preset.
PROVIDER_ENV = [
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_API_KEY",
    "AZURE_API_BASE",
    "AZURE_API_VERSION",
    "LITELLM_PROXY_API_BASE",
    "LITELLM_PROXY_API_KEY",
]


@pytest.fixture
def no_provider_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*PROVIDER_ENV, *SEED_ENV, "COUNCIL_LOCAL_MODEL"]:
        monkeypatch.delenv(name, raising=False)
    # No embedded model either (tests/test_local_model.py covers choosing it).
    monkeypatch.setenv("COUNCIL_NO_LOCAL", "1")
    return monkeypatch


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.exit_code == 2
    return info.value.message


# --- the seed's LiteLLM config --------------------------------------------------------------


def test_seed_litellm_config_loads_as_is() -> None:
    config = parse_config(SEED_LITELLM_CONFIG, source="litellm_config.yaml")

    assert [m.model_name for m in config.models] == [
        "pacer-mistral-7b",
        "builder-llama-3-8b",
        "maven-phi-3-mini",
        "guardian-codellama-7b",
        "artisan-codegemma-7b",
    ]
    pacer = config.models[0]
    # Comments after values are YAML comments, not part of the value.
    assert pacer.litellm_params == {
        "model": "azure/pacer-mistral-7b-ep",
        "api_key": "os.environ/PACER_MISTRAL_API_KEY",
        "api_base": "os.environ/PACER_MISTRAL_API_BASE",
    }
    assert config.litellm_settings == {"drop_params": True, "set_verbose": True}
    assert config.personas == {}  # the seed names no personas: defaults apply
    assert config.limits.max_iterations == 5


def test_seed_personas_default_to_the_model_named_after_them() -> None:
    config = parse_config(SEED_LITELLM_CONFIG)
    assert {p: config.persona(p).model for p in PERSONAS} == {
        "pacer": "pacer-mistral-7b",
        "maven": "maven-phi-3-mini",
        "guardian": "guardian-codellama-7b",
        "builder": "builder-llama-3-8b",
        "artisan": "artisan-codegemma-7b",
        "devops": "pacer-mistral-7b",  # no model named after it: the first one
    }


def test_persona_defaulting_explicit_wins_prefix_is_case_blind_else_first_model() -> None:
    config = parse_config(
        """
models:
  - model_name: general
    litellm_params: {model: openai/gpt-4o-mini}
  - model_name: Builder-Big
    litellm_params: {model: openai/gpt-4o}
  - model_name: guardian-x
    litellm_params: {model: openai/gpt-4o}
personas:
  guardian:
    model: general
    temperature: 0.0
"""
    )
    assert config.persona("builder").model == "Builder-Big"  # prefix, any case
    assert config.persona("guardian").model == "general"  # explicit beats the name prefix
    assert config.persona("guardian").temperature == 0.0
    assert config.persona("pacer").model == "general"  # no match: the first model
    assert config.persona("pacer").temperature == 0.2  # and the default settings


def test_persona_with_no_models_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no models are configured"):
        CouncilConfig().persona("pacer")


def test_missing_env_names_the_os_environ_variables(no_provider_env: pytest.MonkeyPatch) -> None:
    config = parse_config(SEED_LITELLM_CONFIG)
    assert config.missing_env() == SEED_ENV

    no_provider_env.setenv("PACER_MISTRAL_API_KEY", "k1")
    no_provider_env.setenv("MAVEN_PHI3_API_BASE", "https://maven.example")
    no_provider_env.setenv("BUILDER_LLAMA3_API_KEY", "")  # empty counts as missing
    assert config.missing_env() == [
        n for n in SEED_ENV if n not in ("PACER_MISTRAL_API_KEY", "MAVEN_PHI3_API_BASE")
    ]

    for name in SEED_ENV:
        no_provider_env.setenv(name, "set")
    assert config.missing_env() == []


def test_missing_env_ignores_models_no_persona_uses(no_provider_env: pytest.MonkeyPatch) -> None:
    config = parse_config(
        """
models:
  - model_name: main
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/MAIN_KEY}
  - model_name: spare
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/SPARE_KEY}
personas:
  pacer: {model: main}
  maven: {model: main}
  guardian: {model: main}
  builder: {model: main}
  artisan: {model: main}
"""
    )
    no_provider_env.delenv("MAIN_KEY", raising=False)
    no_provider_env.delenv("SPARE_KEY", raising=False)
    assert config.missing_env() == ["MAIN_KEY"]
    # Literal (non-env) values are not references.
    assert config.models[0].env_refs() == ["MAIN_KEY"]


# --- errors name the key and the line -------------------------------------------------------

VALID_HEAD = """\
models:
  - model_name: main
    litellm_params:
      model: openai/gpt-4o-mini
"""


def test_unknown_key_names_key_and_line() -> None:
    message = config_error(VALID_HEAD + "limits:\n  max_iterations: 3\n  colour: red\n")
    assert "council.yaml:7: limits.colour: unknown key" in message

    message = config_error(VALID_HEAD + "persona:\n  pacer:\n    model: main\n")
    assert "council.yaml:5: persona: unknown key" in message


def test_unknown_key_with_a_block_value_names_the_keys_own_line() -> None:
    message = config_error(VALID_HEAD + "sandbox:\n  limits:\n    memory: 1\n")
    assert "council.yaml:6: sandbox.limits: unknown key" in message


def test_bad_type_names_key_and_line() -> None:
    message = config_error(VALID_HEAD + "limits:\n  budget_usd: 1.5\n  max_iterations: lots\n")
    assert message.startswith("invalid configuration\n")
    assert "council.yaml:7: limits.max_iterations: Input should be a valid integer" in message

    message = config_error(VALID_HEAD + "limits:\n  max_iterations: 0\n")
    assert "council.yaml:6: limits.max_iterations: Input should be greater than or equal to 1" in (
        message
    )


def test_a_mistyped_key_is_answered_with_the_key_meant() -> None:
    message = config_error(VALID_HEAD + "limits:\n  max_iteration: 3\n")
    assert "council.yaml:6: limits.max_iteration: unknown key (did you mean 'max_iterations'?)" in (
        message
    )
    message = config_error(VALID_HEAD + "personas:\n  pacer: {model: main, temprature: 0.1}\n")
    assert "personas.pacer.temprature: unknown key (did you mean 'temperature'?)" in message
    message = config_error(VALID_HEAD + "limit:\n  max_iterations: 3\n")
    assert "limit: unknown key (did you mean 'limits'?)" in message
    message = config_error("modles: []\n")
    assert "modles: unknown key (did you mean 'models'?)" in message
    message = config_error(VALID_HEAD + "gates:\n  - {name: lint, comand: ruff}\n")
    assert "gates.0.comand: unknown key (did you mean 'command'?)" in message


def test_an_unknown_key_with_nothing_close_lists_the_keys_allowed_there() -> None:
    message = config_error(VALID_HEAD + "sandbox:\n  colour: red\n")
    assert "sandbox.colour: unknown key (known: memory_mb, cpu_s, network)" in message


def test_a_wrong_value_is_quoted_beside_the_rule() -> None:
    message = config_error(VALID_HEAD + "sandbox:\n  network: maybe\n")
    assert "council.yaml:6: sandbox.network: Input should be a valid boolean" in message
    assert message.endswith("(got 'maybe')")
    message = config_error(VALID_HEAD + "personas:\n  pacer: {temperature: 0.1}\n")
    assert message.endswith("personas.pacer.model: missing (required)")


@pytest.mark.parametrize("value", [".inf", ".nan"])
def test_a_limit_must_be_finite(value: str) -> None:
    message = config_error(VALID_HEAD + f"limits:\n  budget_usd: {value}\n")
    assert "council.yaml:6: limits.budget_usd: Input should be a finite number" in message


def test_an_unknown_language_is_refused_with_the_one_meant() -> None:
    message = config_error(VALID_HEAD + "languages:\n  pyhton: {test: pytest}\n")
    said = "council.yaml:6: languages.pyhton: unknown language 'pyhton', did you mean 'python'?"
    assert said in message
    message = config_error(VALID_HEAD + "languages:\n  cobol: {}\n")
    assert "unknown language 'cobol' (known: python, javascript, java;" in message


def test_every_error_is_reported_not_just_the_first() -> None:
    message = config_error(
        VALID_HEAD + "limits:\n  max_iterations: lots\n  colour: red\ncontext:\n  map_tokens: -1\n"
    )
    lines = message.splitlines()[1:]
    assert [line.split(": ")[0] for line in lines] == [
        "council.yaml:6",
        "council.yaml:7",
        "council.yaml:9",
    ]


def test_bad_persona_model_reference_names_persona_model_and_line() -> None:
    message = config_error(
        VALID_HEAD + "personas:\n  pacer:\n    temperature: 0.1\n    model: gpt-5\n"
    )
    assert (
        "council.yaml:8: personas.pacer.model: persona 'pacer' uses model 'gpt-5', "
        "which is not in models (defined: main)"
    ) in message


def test_unknown_persona_names_it_and_its_line() -> None:
    message = config_error(VALID_HEAD + "personas:\n  reviewer:\n    model: main\n")
    assert "council.yaml:6: personas.reviewer: unknown persona 'reviewer'" in message


def test_model_entry_without_model_names_the_entry() -> None:
    message = config_error(
        "models:\n  - model_name: ok\n    litellm_params: {model: openai/x}\n"
        "  - model_name: broken\n    litellm_params:\n      api_key: os.environ/K\n"
    )
    assert "council.yaml:4: models.1: litellm_params.model is required" in message


def test_invalid_yaml_names_line() -> None:
    message = config_error(VALID_HEAD + "limits:\n  max_iterations: [1, 2\n")
    assert message.startswith("council.yaml:")
    assert "invalid YAML" in message
    line = int(message.split(":")[1])
    assert line in (6, 7)  # the flow sequence that never closes

    message = config_error("models:\n\t- model_name: tab\n")
    assert message.startswith("council.yaml:2: invalid YAML")


def test_top_level_must_be_a_mapping() -> None:
    assert config_error("- a\n- b\n") == "council.yaml:1: expected a mapping at the top level"


def test_models_and_model_list_together_are_refused() -> None:
    message = config_error(VALID_HEAD + "model_list: []\n")
    assert "either 'models' or 'model_list'" in message


def test_load_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_FILE
    path.write_text(VALID_HEAD + "limits:\n  colour: red\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{path}:6: limits.colour: unknown key" in info.value.message

    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_empty_file_is_a_config_with_no_models() -> None:
    config = parse_config("# nothing yet\n")
    assert config.models == []


# --- presets and resolve_config --------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_preset_validates_and_round_trips_through_yaml(provider: str) -> None:
    doc = preset(provider, {"python": LanguageConfig()})
    config = parse_config(dump_config(doc))
    assert {m.model_name for m in config.models} == {"council-strong", "council-fast"}
    assert set(config.personas) == set(PERSONAS)
    assert config.persona("maven").model == "council-fast"
    assert config.persona("builder").model == "council-strong"
    # The local preset has one model behind both aliases: falling back to it again is useless.
    fallbacks = [] if provider == "local" else [{"council-strong": ["council-fast"]}]
    assert config.router_options()["fallbacks"] == fallbacks
    assert config.language("python").test == "pytest"
    # Keys are environment references, never literal secrets.
    for entry in config.models:
        key = entry.litellm_params.get("api_key")
        assert key is None or key.startswith("os.environ/")


def test_unknown_preset_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown provider 'nope'"):
        preset("nope")


@pytest.mark.parametrize(
    ("env", "provider", "model"),
    [
        ({"OPENAI_API_KEY": "sk-test"}, "openai", "openai/gpt-4o"),
        ({"ANTHROPIC_API_KEY": "a-test"}, "anthropic", "anthropic/claude-sonnet-4-20250514"),
        (
            {"AZURE_API_KEY": "k", "AZURE_API_BASE": "https://x", "AZURE_API_VERSION": "2024"},
            "azure",
            "azure/gpt-4o",
        ),
        (
            {"LITELLM_PROXY_API_BASE": "http://proxy", "LITELLM_PROXY_API_KEY": "k"},
            "litellm-proxy",
            "litellm_proxy/builder",
        ),
        # OpenAI wins when several keys are set.
        ({"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o"}, "openai", "openai/gpt-4o"),
    ],
)
def test_resolve_config_picks_a_provider_from_env(
    tmp_path: Path,
    no_provider_env: pytest.MonkeyPatch,
    env: dict[str, str],
    provider: str,
    model: str,
) -> None:
    for name, value in env.items():
        no_provider_env.setenv(name, value)
    config, source = resolve_config(tmp_path)
    assert source == f"preset '{provider}' (from the environment)"
    builder = config.persona("builder").model
    assert next(m for m in config.models if m.model_name == builder).litellm_params["model"] == (
        model
    )


def test_resolve_config_names_a_presets_missing_variable(
    tmp_path: Path, no_provider_env: pytest.MonkeyPatch
) -> None:
    no_provider_env.setenv("AZURE_API_KEY", "k")
    no_provider_env.setenv("AZURE_API_BASE", "https://x")
    with pytest.raises(ConfigError) as info:
        resolve_config(tmp_path)
    assert "AZURE_API_VERSION" in info.value.message
    assert info.value.exit_code == 2


def test_resolve_config_prefers_the_repos_council_yaml(
    tmp_path: Path, no_provider_env: pytest.MonkeyPatch
) -> None:
    no_provider_env.setenv("OPENAI_API_KEY", "sk-test")
    (tmp_path / CONFIG_FILE).write_text(
        "models:\n  - model_name: local\n    litellm_params:\n"
        "      model: ollama_chat/qwen2.5-coder:7b\n      api_base: http://127.0.0.1:11434\n"
    )
    config, source = resolve_config(tmp_path)
    assert source == str(tmp_path / CONFIG_FILE)
    assert [m.model_name for m in config.models] == ["local"]

    explicit = tmp_path / "other.yaml"
    explicit.write_text(SEED_LITELLM_CONFIG)
    for name in SEED_ENV:
        no_provider_env.setenv(name, "set")
    config, source = resolve_config(tmp_path, explicit)
    assert source == str(explicit)
    assert config.persona("pacer").model == "pacer-mistral-7b"


def test_resolve_config_with_seed_config_and_no_keys_names_them(
    tmp_path: Path, no_provider_env: pytest.MonkeyPatch
) -> None:
    (tmp_path / CONFIG_FILE).write_text(SEED_LITELLM_CONFIG)
    with pytest.raises(ConfigError) as info:
        resolve_config(tmp_path)
    assert info.value.exit_code == 2
    assert ", ".join(SEED_ENV) in info.value.message
    assert "export PACER_MISTRAL_API_KEY=..." in info.value.message


def test_no_council_yaml_and_no_provider_key_is_the_no_model_error(
    tmp_path: Path, no_provider_env: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(tmp_path)
    assert info.value.message == NO_MODEL_MESSAGE
    assert info.value.exit_code == 2
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_API_KEY", "LITELLM_PROXY_API_BASE"):
        assert f"export {name}=" in NO_MODEL_MESSAGE


def test_council_yaml_without_models_is_the_no_model_error(
    tmp_path: Path, no_provider_env: pytest.MonkeyPatch
) -> None:
    (tmp_path / CONFIG_FILE).write_text("limits:\n  max_iterations: 2\n")
    with pytest.raises(ConfigError) as info:
        resolve_config(tmp_path)
    assert info.value.exit_code == 2
    assert info.value.message.endswith(NO_MODEL_MESSAGE)
    assert info.value.message.startswith(f"{tmp_path / CONFIG_FILE}: no models are configured.")


def test_dump_config_is_plain_yaml() -> None:
    doc = preset("ollama")
    assert yaml.safe_load(dump_config(doc)) == doc
