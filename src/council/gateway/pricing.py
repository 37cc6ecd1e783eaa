"""Prices per token for a deployment: custom prices from config first, else LiteLLM's price map."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PRICE_KEYS = ("input_cost_per_token", "output_cost_per_token")


@dataclass(frozen=True)
class Price:
    """USD per token; `source` says where it came from ("config", "price-map")."""

    input_per_token: float
    output_per_token: float
    source: str

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input_per_token + completion_tokens * self.output_per_token


def configured_price(deployment: dict[str, Any]) -> Price | None:
    """The per-token price written in the deployment's model_info or litellm_params, if any."""
    for source in (deployment.get("model_info") or {}, deployment.get("litellm_params") or {}):
        if any(source.get(key) is not None for key in PRICE_KEYS):
            return Price(
                float(source.get("input_cost_per_token") or 0.0),
                float(source.get("output_cost_per_token") or 0.0),
                "config",
            )
    return None


def price_map_model(deployment: dict[str, Any]) -> str:
    """The model name to look up in the price map (Azure deployments name theirs in base_model)."""
    info = deployment.get("model_info") or {}
    return str(info.get("base_model") or deployment["litellm_params"]["model"])


def deployment_price(
    deployment: dict[str, Any], model_info: Callable[[str], dict[str, Any]]
) -> Price | None:
    """Custom price, else the price map's (`model_info`: LiteLLM's entry for a model), else
    None (unknown: the caller warns and charges 0)."""
    price = configured_price(deployment)
    if price is not None:
        return price
    try:
        info = model_info(price_map_model(deployment))
    except Exception:  # noqa: BLE001 - LiteLLM raises a bare Exception for unmapped models
        return None
    inp, out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if inp is None and out is None:
        return None
    return Price(float(inp or 0.0), float(out or 0.0), "price-map")
