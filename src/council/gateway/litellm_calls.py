"""Everything the Gateway asks of LiteLLM, behind one small seam.

The Gateway keeps the budget, the cache, the events, the redaction and the persona logic; the
LiteLLM work (a Router call, a token count, a model's price-map entry) goes through a backend:
`InProcess` here, or `gateway.daemon.client.Remote`, which asks a warm gateway process that
runs this same `InProcess` (so both give the same answers, costs and errors).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from council.errors import ModelError
from council.gateway.litellm_api import answering_model_id, close_stream
from council.gateway.pricing import configured_price, price_map_model
from council.gateway.router import build_router, litellm_module

# What the Gateway reads from LiteLLM's model info (price map): nothing else crosses.
MODEL_INFO_KEYS = ("max_input_tokens", "input_cost_per_token", "output_cost_per_token")
ROUTERS_KEPT = 16  # a gateway process keeps the Routers of this many configurations


@dataclass
class Answer:
    """One Router call's outcome, as plain data."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model_id: str  # the Router's id of the deployment that answered ('' if it did not say)
    litellm_cost: float | None  # LiteLLM's cost for a price-map-priced deployment, else None


@dataclass
class Call:
    """One Router call, as plain data (it crosses to the gateway process as it is)."""

    model_list: list[dict[str, Any]]  # deployments with their model_info.id
    settings: dict[str, Any]  # router_settings, with the timeout
    alias: str
    messages: list[dict]
    kwargs: dict[str, Any]  # temperature, max_tokens, timeout, response_format
    stream: bool  # stream the answer (tokens counted as they come)


class Cancelled(Exception):
    """The caller went away (Ctrl-C in the client): the stream was closed."""


class Backend(Protocol):
    def complete(self, call: Call, on_token: Callable[[], None]) -> Answer: ...

    def count_tokens(self, model: str, messages: list[dict]) -> int: ...

    def model_info(self, model: str) -> dict[str, Any]: ...


def config_hash(model_list: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    shape = json.dumps([model_list, settings], sort_keys=True, default=str)
    return hashlib.sha256(shape.encode()).hexdigest()


class InProcess:
    """LiteLLM in this process; one Router per (model_list, settings), built at first use."""

    def __init__(self) -> None:
        self._routers: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def router(self, model_list: list[dict[str, Any]], settings: dict[str, Any]) -> Any:
        key = config_hash(model_list, settings)
        with self._lock:
            if key not in self._routers:
                # The Router resolves os.environ/NAME in place: give it a copy.
                self._routers[key] = build_router(copy.deepcopy(model_list), dict(settings))
                while len(self._routers) > ROUTERS_KEPT:
                    self._routers.popitem(last=False)
            self._routers.move_to_end(key)
            return self._routers[key]

    @property
    def routers(self) -> int:
        return len(self._routers)

    def complete(
        self,
        call: Call,
        on_token: Callable[[], None],
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Answer:
        """One Router call. Streamed when asked, so the answer's tokens are counted as they
        come; the chunks are then built into the same response a plain call returns."""
        router = self.router(call.model_list, call.settings)
        alias, messages, kwargs = call.alias, call.messages, call.kwargs
        if not call.stream:
            response = router.completion(model=alias, messages=messages, **kwargs)
        else:
            # The Router retries and falls back while the stream opens; a failure once the
            # answer is flowing ends the call (a ModelError, like any other failure).
            chunks_in = router.completion(
                model=alias,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **kwargs,
            )
            chunks = []
            for chunk in chunks_in:
                if cancelled():
                    close_stream(chunks_in)
                    raise Cancelled("the caller went away")
                chunks.append(chunk)
                if any(getattr(c.delta, "content", None) for c in chunk.choices or ()):
                    on_token()
            response = litellm_module().stream_chunk_builder(chunks, messages=messages)
            if response is None:
                raise ModelError(f"model alias {alias!r} streamed an empty answer")
        return _answer(response, call.model_list, alias)

    def count_tokens(self, model: str, messages: list[dict]) -> int:
        return int(litellm_module().token_counter(model=model, messages=messages))

    def model_info(self, model: str) -> dict[str, Any]:
        info = litellm_module().get_model_info(model=model)
        return {key: info.get(key) for key in MODEL_INFO_KEYS}


def _answer(response: Any, model_list: list[dict[str, Any]], alias: str) -> Answer:
    model_id = answering_model_id(response)
    by_id = {d["model_info"]["id"]: d for d in model_list}
    deployment = by_id.get(model_id) or next(d for d in model_list if d["model_name"] == alias)
    usage = getattr(response, "usage", None)
    cost = None
    if configured_price(deployment) is None:
        # LiteLLM's own arithmetic knows about cached-token discounts and tiers.
        try:
            cost = float(
                litellm_module().completion_cost(
                    completion_response=response, model=price_map_model(deployment)
                )
            )
        except Exception:  # noqa: BLE001 - the gateway falls back to per-token arithmetic
            cost = None
    return Answer(
        text=response.choices[0].message.content or "",
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        model_id=model_id,
        litellm_cost=cost,
    )
