"""How the flows reach the personas' models: the cache folder, the gateway, one persona call."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from council.config import CouncilConfig
from council.events import EventSink
from council.gateway import Gateway


def cache_root() -> Path:
    """Where environments and model answers are cached across runs and repositories."""
    base = os.environ.get("COUNCIL_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "council"


def make_gateway(config: CouncilConfig, emit: EventSink, *, spent_usd: float = 0.0) -> Gateway:
    """The gateway council.yaml describes: models, router settings, budget, answer cache."""
    cache_dir = None
    if config.cache.enabled:
        cache_dir = Path(config.cache.dir) if config.cache.dir else cache_root() / "models"
    return Gateway(
        [m.model_dump(exclude_none=True) for m in config.models],
        router_settings=config.router_options(),
        budget_usd=config.limits.budget_usd,
        spent_usd=spent_usd,
        cache_dir=cache_dir,
        emit=emit,
        default_timeout_s=config.limits.model_timeout_s,
    )


def ask_persona(
    gateway: Gateway,
    config: CouncilConfig,
    persona: str,
    messages: list[dict[str, str]],
    schema: type | None = None,
) -> Any:
    """One call with the persona's model and settings: text, or a validated `schema` instance."""
    settings = config.persona(persona)
    options = {
        "persona": persona,
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
    }
    if schema is None:
        return gateway.complete(settings.model, messages, **options).text
    return gateway.structured(settings.model, messages, schema, **options)
