"""Generators for deployment artefacts (LiteLLM proxy config, ...) with their validation."""

from council.infra.litellm_config import build_litellm_config, render_litellm_config

__all__ = ["build_litellm_config", "render_litellm_config"]
