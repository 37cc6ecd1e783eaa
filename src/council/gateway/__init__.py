"""The only door to models: LiteLLM Router, retries/fallbacks, cache, cost ledger, budget guard."""

from council.gateway.gateway import Completion, Gateway
from council.gateway.jsonout import JSONExtractionError, extract_json

__all__ = ["Completion", "Gateway", "JSONExtractionError", "extract_json"]
