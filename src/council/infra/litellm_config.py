"""Write a LiteLLM proxy `litellm_config.yaml` from council.yaml's models and personas.

The proxy serves the same model aliases council.yaml defines, plus one alias per persona
(`pacer`, `maven`, `guardian`, `builder`, `artisan`) so that council's `litellm-proxy` preset
(which asks the proxy for `builder` and `maven`) reaches the persona's model. Keys stay
`os.environ/NAME` references; a literal credential anywhere is refused, never copied.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from council.config import ENV_REF, PERSONAS, CouncilConfig
from council.errors import ConfigError

MASTER_KEY_REF = f"{ENV_REF}LITELLM_MASTER_KEY"
_SECRET_WORDS = ("key", "token", "secret", "password", "credential")
HEADER = (
    "# litellm_config.yaml: written by `council deploy litellm-config` from {source}.\n"
    "# Keys are read from the environment (os.environ/NAME) when the proxy starts; none is\n"
    "# stored here. Regenerate instead of editing.\n"
)


def _is_secret_key(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _mask(value: str) -> str:
    return f"{value[:2]}***" if len(value) > 6 else "***"


def _refuse_literal_secrets(where: str, params: dict[str, Any]) -> None:
    for key, value in params.items():
        if isinstance(value, dict):
            _refuse_literal_secrets(f"{where}.{key}", value)
        elif _is_secret_key(key) and isinstance(value, str) and value:
            if not value.startswith(ENV_REF):
                raise ConfigError(
                    f"{where}.{key} holds a literal credential ({_mask(value)}); "
                    f"write it as {ENV_REF}NAME and set NAME in the proxy's environment"
                )


def _persona_aliases(config: CouncilConfig) -> dict[str, str]:
    """persona name -> the model alias it uses, unless a model already carries that name."""
    names = {m.model_name for m in config.models}
    return {p: config.persona(p).model for p in PERSONAS if p not in names}


def build_litellm_config(config: CouncilConfig) -> dict[str, Any]:
    """The LiteLLM proxy configuration (a dict) for a council configuration."""
    if not config.models:
        raise ConfigError("no models are configured: nothing for the proxy to serve")

    model_list = []
    for i, entry in enumerate(config.models):
        _refuse_literal_secrets(
            f"models[{i}] ({entry.model_name}).litellm_params", entry.litellm_params
        )
        item: dict[str, Any] = {
            "model_name": entry.model_name,
            "litellm_params": copy.deepcopy(entry.litellm_params),
        }
        if entry.model_info:
            item["model_info"] = copy.deepcopy(entry.model_info)
        model_list.append(item)

    router = copy.deepcopy(config.router_options())
    aliases = {**_persona_aliases(config), **router.get("model_group_alias", {})}
    if aliases:
        router["model_group_alias"] = aliases

    litellm_settings = copy.deepcopy(config.litellm_settings)
    litellm_settings.pop("fallbacks", None)  # carried in router_settings
    if config.cache.enabled and "cache" not in litellm_settings:
        # In-memory per replica; point cache_params at Redis to share it between replicas.
        litellm_settings["cache"] = True
        litellm_settings["cache_params"] = {"type": "local"}

    general = copy.deepcopy(config.general_settings)
    _refuse_literal_secrets("general_settings", general)
    general.setdefault("master_key", MASTER_KEY_REF)

    _refuse_literal_secrets("environment_variables", config.environment_variables)

    doc: dict[str, Any] = {"model_list": model_list, "router_settings": router}
    if litellm_settings:
        doc["litellm_settings"] = litellm_settings
    doc["general_settings"] = general
    if config.environment_variables:
        doc["environment_variables"] = copy.deepcopy(config.environment_variables)
    return doc


def render_litellm_config(config: CouncilConfig, source: str = "council.yaml") -> str:
    """The configuration as YAML text with a header saying where it came from."""
    body = yaml.safe_dump(build_litellm_config(config), sort_keys=False, default_flow_style=False)
    return HEADER.format(source=source) + body
