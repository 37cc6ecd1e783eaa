"""The embedded local model: GGUF files fetched from the hub and run in-process by llama.cpp.

Sits below the gateway (which reaches it as the LiteLLM provider `council-local`); imports only
errors and paths from the rest of council.
"""

from council.local.catalogue import CATALOGUE, DEFAULT_MODEL, LocalModelSpec, spec_for
from council.local.download import download, sha256_of
from council.local.engine import ChatResult, LocalEngine, llama_cpp_module
from council.local.files import ENV_MODEL, Present, models_dir, present_models, resolve_model
from council.local.gguf_file import GGUFInfo, read_info
from council.local.provider import PROVIDER, is_local

__all__ = [
    "CATALOGUE",
    "DEFAULT_MODEL",
    "ENV_MODEL",
    "PROVIDER",
    "ChatResult",
    "GGUFInfo",
    "LocalEngine",
    "LocalModelSpec",
    "Present",
    "download",
    "is_local",
    "llama_cpp_module",
    "models_dir",
    "present_models",
    "read_info",
    "resolve_model",
    "sha256_of",
    "spec_for",
]
