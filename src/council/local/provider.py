"""`council-local/<name>` as a LiteLLM custom provider, so the gateway's Router, retries,
fallbacks, cache, cost ledger and events treat the embedded model like any other.

A deployment `{"model": "council-local/qwen2.5-coder-1.5b"}` (or `council-local/default`) is
answered by the shared in-process engine. A `response_format` carrying a JSON schema becomes a
llama.cpp grammar, so structured answers always parse.
"""

from __future__ import annotations

from typing import Any

from council.errors import LocalModelError
from council.local.engine import LocalEngine
from council.local.files import model_file, resolve_model
from council.local.tokens_out import token_sink

PROVIDER = "council-local"


def is_local(model: str) -> bool:
    return model.startswith(PROVIDER + "/")


def schema_of(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema in an OpenAI-style response_format, if it carries one."""
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema") or {}
        return spec.get("schema") if isinstance(spec, dict) else None
    if response_format.get("type") == "json_object":
        return response_format.get("schema") or {"type": "object"}
    return None


def engine_for(name: str) -> LocalEngine:
    """The loaded engine for `name`. Every call comes here, so the file's header is read only
    when the engine is first loaded (LocalEngine checks it), not on each call."""
    path = model_file(name)
    if not path.is_file():
        resolve_model(name, fetch=False)  # raises the clear "not downloaded" error
    return LocalEngine.shared(path)


def _handler_class() -> type:
    from litellm import CustomLLM
    from litellm.types.utils import Usage

    class LocalLLM(CustomLLM):
        """Answers `council-local/*` deployments from the shared engine."""

        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            optional = dict(kwargs.get("optional_params") or {})
            response = kwargs["model_response"]
            try:
                result = engine_for(model).chat(
                    [{"role": m["role"], "content": m.get("content") or ""} for m in messages],
                    max_tokens=int(optional.get("max_tokens") or 1024),
                    temperature=float(optional.get("temperature", 0.2)),
                    schema=schema_of(optional.get("response_format")),
                    seed=optional.get("seed"),
                    # The gateway's call in flight (LiteLLM runs this in the caller's context).
                    on_token=token_sink.get(),
                )
            except LocalModelError as exc:
                from litellm.llms.custom_llm import CustomLLMError

                raise CustomLLMError(status_code=500, message=str(exc)) from exc
            except ValueError as exc:  # llama.cpp: the prompt does not fit the context
                from litellm.llms.custom_llm import CustomLLMError

                raise CustomLLMError(
                    status_code=400,
                    message=f"the local model cannot take this prompt ({exc}); lower "
                    "context.map_tokens / context.file_tokens in council.yaml",
                ) from exc
            response.choices[0].message.content = result.text
            response.choices[0].finish_reason = result.finish_reason or "stop"
            response.model = f"{PROVIDER}/{model}"
            response.usage = Usage(
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                total_tokens=result.prompt_tokens + result.completion_tokens,
            )
            return response

    return LocalLLM


def handler() -> Any:
    """The CustomLLM that answers `council-local/*` (the gateway registers it with LiteLLM)."""
    return _handler_class()()
