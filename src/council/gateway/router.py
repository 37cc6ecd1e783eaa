"""Lazy LiteLLM import and the Router we build from council's model_list and router_settings.

Importing LiteLLM takes seconds, so nothing here runs at `import council` time. The Router
subclass only changes how long it sleeps between retries, so the backoff is configurable
(LiteLLM's own is fixed at import time by environment variables).
"""

from __future__ import annotations

import importlib
import logging
import os
import random
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from council.errors import ConfigError
from council.gateway.litellm_api import register_custom_provider, retry_after_s, router_class
from council.local.provider import PROVIDER, is_local
from council.local.provider import handler as local_handler

log = logging.getLogger(__name__)

# Council-only keys in router_settings; everything else goes to litellm.Router unchanged.
BACKOFF_KEY = "backoff"
DEFAULT_NUM_RETRIES = 2


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between retries of one model group: initial * 2**n, capped, jittered."""

    initial_s: float = 0.5
    max_s: float = 8.0
    jitter_s: float = 0.75
    min_s: float = 0.0  # LiteLLM's `retry_after` router setting: never sleep less than this

    def delay(self, attempt: int, server_hint_s: float | None = None) -> float:
        # A server that says how long to wait (Retry-After) knows best, if the wait is sane.
        if server_hint_s is not None and 0 < server_hint_s <= self.max_s:
            return server_hint_s + self.jitter_s * random.random()
        base = min(max(self.initial_s * (2.0**attempt), self.min_s), self.max_s)
        return base + self.jitter_s * random.random()


def backoff_from_settings(value: Any, retry_after: float) -> Backoff:
    if value is None:
        return Backoff(min_s=retry_after)
    if isinstance(value, int | float):
        return Backoff(initial_s=float(value), min_s=retry_after)
    if isinstance(value, dict):
        unknown = set(value) - {"initial_s", "max_s", "jitter_s"}
        if unknown:
            raise ConfigError(f"router_settings.backoff: unknown keys {sorted(unknown)}")
        return Backoff(
            initial_s=float(value.get("initial_s", 0.5)),
            max_s=float(value.get("max_s", 8.0)),
            jitter_s=float(value.get("jitter_s", 0.75)),
            min_s=retry_after,
        )
    raise ConfigError("router_settings.backoff must be a number or {initial_s, max_s, jitter_s}")


# Imported by LiteLLM inside its first completion or token count, not at `import litellm`
# (measured on 1.106.2: about 1.8 s of CPU on 2 cores): the OpenAI client's resources, the
# proxy's file-id helpers that every completion consults, and the default tokenizer (tiktoken's
# cl100k, loaded when the module is imported) that counts prompts for budgets and windows.
FIRST_CALL_MODULES = (
    "openai.resources",
    "litellm.proxy.openai_files_endpoints.common_utils",
    "httpcore._sync.connection_pool",
    "litellm.litellm_core_utils.default_encoding",
)

_litellm: ModuleType | None = None
_litellm_lock = threading.Lock()  # one importer; everyone else waits for it
_preload: threading.Thread | None = None
_preload_lock = threading.Lock()


def litellm_module() -> ModuleType:
    """Import LiteLLM once, offline-safe and quiet (the gateway reports failures itself).

    Waits for a background import started by `preload_litellm` instead of racing it.
    """
    global _litellm
    with _litellm_lock:
        if _litellm is None:
            # Without this LiteLLM fetches its price map from GitHub at import time.
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            # In its default DEV mode LiteLLM loads the first `.env` found walking up from its
            # own install folder into os.environ at import: a file nobody named could set keys
            # or endpoints. Council reads its settings from council.yaml and the environment.
            os.environ.setdefault("LITELLM_MODE", "PRODUCTION")
            import litellm

            litellm.suppress_debug_info = True
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
                # LiteLLM logs every failed attempt at ERROR; the gateway makes events of them.
                logging.getLogger(name).setLevel(logging.CRITICAL)
            _litellm = litellm
        return _litellm


def preload_litellm() -> threading.Thread:
    """Import LiteLLM (seconds of CPU) in a daemon thread, so it overlaps a run's worktree,
    environment and baseline work instead of delaying the first model call by as much; then
    the modules LiteLLM imports only inside its first call (FIRST_CALL_MODULES)."""

    def load() -> None:
        try:
            litellm_module()
        except Exception:  # noqa: BLE001 - the first real call imports again and reports it
            log.debug("preloading LiteLLM failed", exc_info=True)
            return
        warm_first_call()

    global _preload
    # Once per process: a second start returns the first thread. Not under _litellm_lock,
    # which the import holds for seconds: starting a preload never waits for one.
    with _preload_lock:
        if _preload is None:
            _preload = threading.Thread(target=load, name="litellm-preload", daemon=True)
            _preload.start()
        return _preload


def warm_first_call() -> list[str]:
    """Import what LiteLLM's first completion would import on the caller's time; the modules
    that could not be imported (an upgrade moved them: the call then imports its own)."""
    missing = []
    for name in FIRST_CALL_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - only a warm-up: the call itself still works
            missing.append(name)
    return missing


def build_router(model_list: list[dict[str, Any]], settings: dict[str, Any]) -> Any:
    """A litellm.Router over `model_list`, with council's defaults and backoff."""
    litellm_module()
    if any(is_local(str(d.get("litellm_params", {}).get("model", ""))) for d in model_list):
        register_custom_provider(PROVIDER, local_handler)

    settings = dict(settings)
    settings.setdefault("num_retries", DEFAULT_NUM_RETRIES)
    # A cooled-down deployment makes the next call fail with "no deployments available" even
    # though the server is back; only cool down when the config asks for it.
    if not {"cooldown_time", "allowed_fails", "allowed_fails_policy", "disable_cooldowns"} & set(
        settings
    ):
        settings["disable_cooldowns"] = True
    backoff = backoff_from_settings(
        settings.pop(BACKOFF_KEY, None), float(settings.get("retry_after", 0) or 0)
    )

    def sleep(
        e: Exception,
        remaining_retries: int,
        num_retries: int,
        healthy_deployments: list | None,
        all_deployments: list | None,
    ) -> float:
        # Another healthy deployment in the group: switch to it at once (LiteLLM's rule).
        if (all_deployments is None or len(all_deployments) != 1) and healthy_deployments:
            return 0.0
        return backoff.delay(max(0, num_retries - remaining_retries), retry_after_s(e))

    CouncilRouter = router_class(sleep)
    try:
        return CouncilRouter(model_list=model_list, **settings)
    except TypeError as exc:
        raise ConfigError(f"router_settings: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - LiteLLM validates the model list with many types
        raise ConfigError(f"model_list is not usable by LiteLLM: {exc}") from exc
