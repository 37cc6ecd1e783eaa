"""The one door to LiteLLM's private and undocumented APIs.

Council needs a few things LiteLLM does not publish: the Router's retry-sleep hook (to make the
backoff configurable), the Retry-After parser, the `_hidden_params` that say which deployment
answered, and the setup call that reads `custom_provider_map`. They are touched here and
nowhere else, and `problems()` checks each one against the installed LiteLLM, so an upgrade that
renames or reshapes one fails a test (tests/test_litellm_api.py) instead of silently losing the
backoff, the cost of the right deployment, or the local model.

LiteLLM is imported inside the functions: importing it takes seconds.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

# Router method LiteLLM calls between retries; council's subclass overrides it.
RETRY_SLEEP_METHOD = "_time_to_sleep_before_retry"
RETRY_SLEEP_PARAMS = (
    "self",
    "e",
    "remaining_retries",
    "num_retries",
    "healthy_deployments",
    "all_deployments",
)
# (exception, remaining retries, retries, healthy deployments, all deployments) -> seconds
RetrySleep = Callable[[Exception, int, int, "list | None", "list | None"], float]

_provider_lock = threading.Lock()


def router_class(sleep: RetrySleep) -> type:
    """A litellm.Router subclass whose sleep between retries is `sleep`."""
    from litellm import Router

    def _time_to_sleep_before_retry(
        self: Any,
        e: Exception,
        remaining_retries: int,
        num_retries: int,
        healthy_deployments: list | None = None,
        all_deployments: list | None = None,
    ) -> float:
        return sleep(e, remaining_retries, num_retries, healthy_deployments, all_deployments)

    return type("CouncilRouter", (Router,), {RETRY_SLEEP_METHOD: _time_to_sleep_before_retry})


def retry_after_s(exc: Exception) -> float | None:
    """Seconds the server asked to wait (Retry-After on the failed response), if it said so."""
    from litellm.utils import _get_retry_after_from_exception_header

    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    if not headers:
        return None
    value = _get_retry_after_from_exception_header(headers)
    return float(value) if value is not None and value >= 0 else None


def answering_model_id(response: Any) -> str:
    """The Router's id of the deployment that answered (it may be a fallback), or ''."""
    hidden = getattr(response, "_hidden_params", None) or {}
    return str(hidden.get("model_id") or "")


def close_stream(stream: Any) -> None:
    """Close a streamed answer before its end (the caller went away): LiteLLM's sync wrapper
    has no close(), the provider stream it wraps (`completion_stream`) has, and closing that
    drops the HTTP connection, so the server stops generating."""
    for target in (stream, getattr(stream, "completion_stream", None)):
        close = getattr(target, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001 - best effort: the call is abandoned anyway
                pass
            return


def register_custom_provider(provider: str, handler: Callable[[], Any]) -> None:
    """Add a CustomLLM handler under `provider/` once per process (`handler` builds it)."""
    import litellm

    with _provider_lock:
        if any(item.get("provider") == provider for item in litellm.custom_provider_map):
            return
        litellm.custom_provider_map = [
            *litellm.custom_provider_map,
            {"provider": provider, "custom_handler": handler()},
        ]
        # LiteLLM copies the map into its provider list only in this (undocumented) call.
        from litellm.utils import custom_llm_setup

        custom_llm_setup()


def problems() -> list[str]:
    """What no longer matches in the installed LiteLLM (empty when every private API fits)."""
    import litellm

    found: list[str] = []
    hook = getattr(litellm.Router, RETRY_SLEEP_METHOD, None)
    if hook is None:
        found.append(f"litellm.Router.{RETRY_SLEEP_METHOD} is gone: retries lose their backoff")
    else:
        params = tuple(inspect.signature(hook).parameters)
        if params != RETRY_SLEEP_PARAMS:
            found.append(
                f"litellm.Router.{RETRY_SLEEP_METHOD} takes {params}, expected {RETRY_SLEEP_PARAMS}"
            )
    try:
        from litellm.utils import _get_retry_after_from_exception_header as parse_retry_after

        if parse_retry_after({"retry-after": "3"}) != 3:
            found.append("litellm.utils._get_retry_after_from_exception_header reads no seconds")
    except ImportError:
        found.append("litellm.utils._get_retry_after_from_exception_header is gone")
    if not isinstance(getattr(litellm.ModelResponse(), "_hidden_params", None), dict):
        found.append("litellm.ModelResponse has no _hidden_params dict: costs lose the deployment")
    try:
        from litellm.utils import custom_llm_setup

        if inspect.signature(custom_llm_setup).parameters:
            found.append("litellm.utils.custom_llm_setup now takes arguments")
    except ImportError:
        found.append("litellm.utils.custom_llm_setup is gone: the local model is not registered")
    from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper

    if "completion_stream" not in inspect.signature(CustomStreamWrapper.__init__).parameters:
        found.append("CustomStreamWrapper takes no completion_stream: a cancelled call streams on")
    if not isinstance(getattr(litellm, "custom_provider_map", None), list):
        found.append("litellm.custom_provider_map is not a list")
    return found
