"""How the flows reach the personas' models: the cache folder, the gateway, one persona call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from council.config import CouncilConfig
from council.events import EventSink, Notice
from council.gateway import Gateway
from council.gateway.daemon.client import backend_for
from council.local import is_local, llama_cpp_module, resolve_model
from council.paths import cache_root

__all__ = ["ask_persona", "cache_root", "ensure_local_models", "make_gateway"]


def _download_notices(name: str, emit: EventSink) -> Callable[[int, int], None]:
    """A progress callback that emits a notice at every tenth of the download."""
    reported = -1

    def progress(done: int, total: int) -> None:
        nonlocal reported
        step = int(10 * done / total) if total else 0
        if step > reported:
            reported = step
            emit(
                Notice(
                    message=f"downloading local model {name}: "
                    f"{done / 1e6:.0f} of {total / 1e6:.0f} MB"
                )
            )

    return progress


def ensure_local_models(config: CouncilConfig, emit: EventSink) -> None:
    """Fetch (first use) and check every embedded model the config names, before any work
    starts: a missing file is a clear error now, not a failed model call halfway through."""
    names = {
        m.litellm_params["model"].split("/", 1)[1]
        for m in config.models
        if is_local(str(m.litellm_params.get("model", "")))
    }
    if names:
        llama_cpp_module()  # not installed: say so before downloading a gigabyte
    for name in sorted(names):
        resolve_model(name, fetch=True, progress=_download_notices(name, emit))


def make_gateway(config: CouncilConfig, emit: EventSink, *, spent_usd: float = 0.0) -> Gateway:
    """The gateway council.yaml describes: models, router settings, budget, answer cache."""
    ensure_local_models(config, emit)
    cache_dir = None
    if config.cache.enabled:
        cache_dir = Path(config.cache.dir) if config.cache.dir else cache_root() / "models"
    models = [m.model_dump(exclude_none=True) for m in config.models]
    return Gateway(
        models,
        router_settings=config.router_options(),
        budget_usd=config.limits.budget_usd,
        spent_usd=spent_usd,
        cache_dir=cache_dir,
        emit=emit,
        default_timeout_s=config.limits.model_timeout_s,
        # LiteLLM's work in the warm gateway process when there is one (gateway/daemon).
        backend=backend_for(
            models,
            lambda message: emit(Notice(level="warning", message=message)),
            configured=config.gateway.warm_process,
            idle_s=config.gateway.idle_timeout_s,
        ),
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
