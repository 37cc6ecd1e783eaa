"""The only door to models: LiteLLM Router calls with budget guard, disk cache, cost and events."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from council.errors import BudgetExceeded, ConfigError, ModelError, StructuredOutputError
from council.events import EventSink, ModelCall, Notice, null_sink
from council.gateway.cache import ExchangeCache, cache_key
from council.gateway.litellm_calls import Answer, Backend, Call, InProcess
from council.gateway.pricing import Price, deployment_price, price_map_model
from council.gateway.progress import CallProgress
from council.gateway.structured import parse_answer, repair_messages, with_schema_instruction
from council.local.files import model_identity
from council.local.provider import is_local
from council.redact import redact

T = TypeVar("T", bound=BaseModel)

log = logging.getLogger(__name__)

# Worst case assumed for the answer's length when the caller sets no max_tokens.
DEFAULT_MAX_TOKENS_ESTIMATE = 1024


@dataclass
class Completion:
    """One answer: the text, which alias and LiteLLM model gave it, and what it cost."""

    text: str
    model: str  # the LiteLLM model of the deployment that answered, e.g. "openai/gpt-4o-mini"
    alias: str  # the alias that answered (differs from the one asked after a fallback)
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    cached: bool


class Gateway:
    """Calls models by alias through a LiteLLM Router; every exchange becomes a ModelCall event."""

    def __init__(
        self,
        model_list: list[dict],
        *,
        router_settings: dict | None = None,
        budget_usd: float | None = None,
        spent_usd: float = 0.0,
        cache_dir: Path | None = None,
        emit: EventSink = null_sink,
        default_timeout_s: float = 120.0,
        backend: Backend | None = None,
    ) -> None:
        self._model_list = _with_ids(model_list)
        self._aliases: dict[str, list[dict[str, Any]]] = {}
        for deployment in self._model_list:
            self._aliases.setdefault(deployment["model_name"], []).append(deployment)
        self._by_id = {d["model_info"]["id"]: d for d in self._model_list}
        self._settings = dict(router_settings or {})
        self._fallbacks = _fallback_map(self._settings.get("fallbacks"))
        self._timeout_s = float(self._settings.get("timeout") or default_timeout_s)
        self._budget_usd = budget_usd
        self._spent_usd = float(spent_usd)
        self._reserved_usd = (
            0.0  # worst-case cost of calls in flight, so parallel calls can't overrun
        )
        self._cache = ExchangeCache(Path(cache_dir)) if cache_dir is not None else None
        self._emit = emit
        self._lock = threading.Lock()
        # LiteLLM itself: in this process, or a warm gateway process (gateway/daemon).
        self._backend: Backend = backend if backend is not None else InProcess()
        self._prices: dict[str, Price | None] = {}
        self._warned: set[str] = set()
        self._asked: set[str] = set()  # cache keys asked through this gateway (one run)

    # -- public ------------------------------------------------------------------------------
    @property
    def spent_usd(self) -> float:
        with self._lock:
            return self._spent_usd

    @property
    def aliases(self) -> list[str]:
        return list(self._aliases)

    def context_window(self, alias: str) -> int | None:
        """The most prompt tokens every deployment of `alias` (and its fallbacks) accepts:
        `model_info.max_input_tokens` from the config, else LiteLLM's model info; None when
        no deployment's window is known."""
        known = []
        for name in [alias, *self._fallbacks.get(alias, [])]:
            for deployment in self._aliases.get(name, []):
                window = self._input_window(deployment)
                if window:
                    known.append(window)
        return min(known) if known else None

    def count_tokens(self, alias: str, messages: list[dict]) -> int:
        """The prompt's size in the tokens of the alias's first model (LiteLLM's counter)."""
        self._check_alias(alias)
        return self._count_tokens(self._aliases[alias][0]["litellm_params"]["model"], messages)

    def complete(
        self,
        alias: str,
        messages: list[dict],
        *,
        persona: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout_s: float | None = None,
    ) -> Completion:
        """Ask `alias` (with the Router's retries and fallbacks); cached answers cost nothing."""
        self._check_alias(alias)
        key = self._key(alias, messages, temperature, max_tokens, None)
        hit = self._from_cache(key, alias, messages, persona, temperature)
        if hit is not None:
            return hit
        completion = self._exchange(alias, messages, persona, temperature, max_tokens, timeout_s)
        self._store(key, completion)
        return completion

    def structured(
        self,
        alias: str,
        messages: list[dict],
        schema: type[T],
        *,
        persona: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout_s: float | None = None,
    ) -> T:
        """Ask for JSON matching `schema`; one repair re-ask if the answer does not validate."""
        self._check_alias(alias)
        key = self._key(alias, messages, temperature, max_tokens, _schema_id(schema))
        hit = self._from_cache(key, alias, messages, persona, temperature)
        if hit is not None:
            value, _problem = parse_answer(hit.text, schema)
            if value is not None:
                return value
        asked = with_schema_instruction(messages, schema)
        extra = self._response_format(alias, schema)
        first = self._exchange(alias, asked, persona, temperature, max_tokens, timeout_s, extra)
        value, problem = parse_answer(first.text, schema)
        if value is None:
            again = repair_messages(asked, first.text, problem, schema)
            second = self._exchange(
                alias, again, persona, temperature, max_tokens, timeout_s, extra
            )
            value, problem = parse_answer(second.text, schema)
            if value is None:
                raise StructuredOutputError(
                    f"the answer from model alias {alias!r} is not a valid {schema.__name__} "
                    f"even after one repair re-ask:\n{problem}",
                    hint="Try a stronger model for this persona or simplify the output schema.",
                )
            first = second
        # Only a validated answer is worth replaying.
        self._store(key, first)
        return value

    def _response_format(self, alias: str, schema: type[BaseModel]) -> dict[str, Any]:
        """Ask for schema-constrained output where every deployment that may answer supports it.

        A deployment says so with `model_info.supports_response_schema` (LiteLLM's own flag);
        the embedded local model turns it into a llama.cpp grammar. Others get the schema in
        the prompt only, so a provider that rejects `response_format` is never sent one.
        """
        names = [alias, *self._fallbacks.get(alias, [])]
        deployments = [d for name in names for d in self._aliases.get(name, [])]
        if not deployments or not all(
            d["model_info"].get("supports_response_schema") for d in deployments
        ):
            return {}
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
            }
        }

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()

    # -- one exchange ------------------------------------------------------------------------
    def _exchange(
        self,
        alias: str,
        messages: list[dict],
        persona: str | None,
        temperature: float | None,
        max_tokens: int | None,
        timeout_s: float | None,
        extra: dict[str, Any] | None = None,
    ) -> Completion:
        estimate = self._reserve(alias, messages, max_tokens)
        kwargs: dict[str, Any] = {
            "timeout": timeout_s if timeout_s is not None else self._timeout_s,
            **(extra or {}),
        }
        if temperature is not None:
            kwargs["temperature"] = temperature
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        started = time.perf_counter()
        try:
            with CallProgress(self._emit, persona, alias, self._models(alias)[0]) as progress:
                answer = self._ask(alias, messages, kwargs, progress)
        except Exception as exc:  # noqa: BLE001 - every provider failure becomes one ModelError
            latency_ms = (time.perf_counter() - started) * 1000
            with self._lock:
                self._reserved_usd -= estimate
            cause = _short_cause(exc)
            self._emit_call(
                persona, alias, self._models(alias)[0], messages, "", 0, 0, 0.0, latency_ms,
                cached=False, error=cause,
            )  # fmt: skip
            raise ModelError(
                f"model call to alias {alias!r} failed after retries and fallbacks: {cause}",
                hint="Check the model configuration (api_base, key, model name) for this alias.",
            ) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        deployment = self._by_id.get(answer.model_id, self._aliases[alias][0])
        cost = self._actual_cost(deployment, answer)
        with self._lock:
            self._reserved_usd -= estimate
            self._spent_usd += cost
        completion = Completion(
            text=answer.text,
            model=deployment["litellm_params"]["model"],
            alias=deployment["model_name"],
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            cost_usd=cost,
            latency_ms=latency_ms,
            cached=False,
        )
        self._emit_completion(persona, messages, completion)
        return completion

    def _ask(
        self, alias: str, messages: list[dict], kwargs: dict[str, Any], progress: CallProgress
    ) -> Answer:
        """One Router call. Streamed where every deployment that may answer can stream, so the
        answer's tokens are counted as they come (the live progress line)."""
        settings = {k: v for k, v in self._settings.items() if k != "timeout"}
        settings["timeout"] = self._timeout_s
        call = Call(self._model_list, settings, alias, messages, kwargs, self._streams(alias))
        return self._backend.complete(call, progress.tokens)

    def _streams(self, alias: str) -> bool:
        """Whether calls to `alias` stream: not when the embedded model may answer (its
        provider answers whole, and reports its tokens to the progress line as it generates
        them: local/tokens_out.py)."""
        names = [alias, *self._fallbacks.get(alias, [])]
        return not any(
            is_local(d["litellm_params"]["model"]) for n in names for d in self._aliases.get(n, [])
        )

    # -- budget and cost ---------------------------------------------------------------------
    def _reserve(self, alias: str, messages: list[dict], max_tokens: int | None) -> float:
        """Refuse the call (BudgetExceeded) when its worst case would pass the budget."""
        if self._budget_usd is None:
            return 0.0
        estimate = self._estimate(alias, messages, max_tokens)
        with self._lock:
            committed = self._spent_usd + self._reserved_usd
            if committed + estimate > self._budget_usd:
                raise BudgetExceeded(
                    f"model call to alias {alias!r} refused: spent ${committed:.4f}, "
                    f"worst-case estimate ${estimate:.4f}, budget ${self._budget_usd:.4f}",
                    hint="Raise the budget or use a cheaper model for this persona.",
                )
            self._reserved_usd += estimate
        return estimate

    def _estimate(self, alias: str, messages: list[dict], max_tokens: int | None) -> float:
        """Worst case over the alias and its fallbacks: any of them may end up answering."""
        answer_tokens = max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS_ESTIMATE
        worst = 0.0
        for name in [alias, *self._fallbacks.get(alias, [])]:
            for deployment in self._aliases.get(name, []):
                price = self._price(deployment)
                if price is None:
                    continue
                prompt_tokens = self._count_tokens(deployment["litellm_params"]["model"], messages)
                worst = max(worst, price.cost(prompt_tokens, answer_tokens))
        return worst

    def _price(self, deployment: dict[str, Any]) -> Price | None:
        model_id = deployment["model_info"]["id"]
        if model_id not in self._prices:
            self._prices[model_id] = deployment_price(deployment, self._backend.model_info)
            if self._prices[model_id] is None:
                self._warn_unpriced(deployment)
        return self._prices[model_id]

    def _actual_cost(self, deployment: dict[str, Any], answer: Answer) -> float:
        price = self._price(deployment)
        if price is None:
            return 0.0
        if price.source == "price-map" and answer.litellm_cost is not None:
            return answer.litellm_cost  # LiteLLM's arithmetic: cached-token discounts, tiers
        return price.cost(answer.prompt_tokens, answer.completion_tokens)

    def _input_window(self, deployment: dict[str, Any]) -> int | None:
        info = deployment.get("model_info") or {}
        if isinstance(info.get("max_input_tokens"), int) and info["max_input_tokens"] > 0:
            return int(info["max_input_tokens"])
        try:
            known = self._backend.model_info(price_map_model(deployment))
        except Exception:  # noqa: BLE001 - LiteLLM raises a bare Exception for unmapped models
            return None
        value = known.get("max_input_tokens")
        return int(value) if isinstance(value, int) and value > 0 else None

    def _count_tokens(self, model: str, messages: list[dict]) -> int:
        try:
            return self._backend.count_tokens(model, messages)
        except Exception:  # noqa: BLE001 - a rough count is enough for a worst-case estimate
            return sum(len(json.dumps(m.get("content", ""))) for m in messages) // 3 + 4

    def _warn_unpriced(self, deployment: dict[str, Any]) -> None:
        model = deployment["litellm_params"]["model"]
        if model in self._warned:
            return
        self._warned.add(model)
        message = (
            f"no price known for model {model!r} (alias {deployment['model_name']!r}): its calls "
            "are counted as $0; set model_info.input_cost_per_token / output_cost_per_token"
        )
        log.warning(message)
        self._emit(Notice(level="warning", message=message))

    # -- cache -------------------------------------------------------------------------------
    def _models(self, alias: str) -> list[str]:
        return [d["litellm_params"]["model"] for d in self._aliases[alias]]

    def _key(
        self,
        alias: str,
        messages: list[dict],
        temperature: float | None,
        max_tokens: int | None,
        schema: str | None,
    ) -> str | None:
        if self._cache is None:
            return None
        models = [
            f"{m}@{model_identity(m.split('/', 1)[1])}" if is_local(m) else m
            for m in self._models(alias)
        ]
        return cache_key(models, messages, temperature, max_tokens, schema)

    def _from_cache(
        self,
        key: str | None,
        alias: str,
        messages: list[dict],
        persona: str | None,
        temperature: float | None,
    ) -> Completion | None:
        if key is None or self._cache is None:
            return None
        # The cache replays answers across runs (resume, a re-run). Within one run, asking the
        # very same question again while sampling (temperature not 0) is a retry that wants a
        # new answer: replaying the old one would repeat the failure it is retrying.
        with self._lock:
            repeat = key in self._asked
            self._asked.add(key)
        if repeat and temperature != 0:
            return None
        started = time.perf_counter()
        record = self._cache.get(key)
        if record is None:
            return None
        record.update(cost_usd=0.0, cached=True, latency_ms=(time.perf_counter() - started) * 1000)
        try:
            completion = Completion(**record)
        except TypeError:
            return None  # a record from an older layout: ask the model again
        self._emit_completion(persona, messages, completion)
        return completion

    def _store(self, key: str | None, completion: Completion) -> None:
        if key is not None and self._cache is not None:
            self._cache.put(key, asdict(completion))

    # -- events ------------------------------------------------------------------------------
    def _emit_completion(self, persona: str | None, messages: list[dict], c: Completion) -> None:
        self._emit_call(
            persona, c.alias, c.model, messages, c.text, c.prompt_tokens, c.completion_tokens,
            c.cost_usd, c.latency_ms, cached=c.cached, error=None,
        )  # fmt: skip

    def _emit_call(
        self,
        persona: str | None,
        alias: str,
        model: str,
        messages: list[dict],
        response: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost_usd: float,
        latency_ms: float,
        *,
        cached: bool,
        error: str | None,
    ) -> None:
        self._emit(
            ModelCall(
                persona=persona,
                alias=alias,
                model=model,
                messages=[_redact_message(m) for m in messages],
                response=redact(response),
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost_usd=cost_usd,
                total_cost_usd=self.spent_usd,
                latency_ms=latency_ms,
                cached=cached,
                error=error,
            )
        )

    def _check_alias(self, alias: str) -> None:
        if alias not in self._aliases:
            known = ", ".join(sorted(self._aliases)) or "none"
            raise ConfigError(f"unknown model alias {alias!r} (configured: {known})")


def _with_ids(model_list: list[dict]) -> list[dict[str, Any]]:
    """A validated deep copy of model_list in which every deployment has a model_info.id."""
    if not isinstance(model_list, list) or not model_list:
        raise ConfigError("model_list must be a non-empty list of deployments")
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(model_list):
        if not isinstance(entry, dict) or not entry.get("model_name"):
            raise ConfigError(f"model_list[{i}] needs a model_name")
        params = entry.get("litellm_params")
        if not isinstance(params, dict) or not params.get("model"):
            raise ConfigError(f"model_list[{i}] ({entry['model_name']}) needs litellm_params.model")
        deployment = copy.deepcopy(entry)
        info = dict(deployment.get("model_info") or {})
        # Our own ids let us map the Router's answer back to the deployment that gave it.
        info.setdefault("id", f"council-{i}")
        deployment["model_info"] = info
        out.append(deployment)
    return out


def _fallback_map(fallbacks: Any) -> dict[str, list[str]]:
    mapping: dict[str, list[str]] = {}
    for item in fallbacks or []:
        if isinstance(item, dict):
            for alias, others in item.items():
                mapping.setdefault(str(alias), []).extend(str(o) for o in others or [])
    return mapping


def _schema_id(schema: type[BaseModel]) -> str:
    shape = json.dumps(schema.model_json_schema(), sort_keys=True)
    return f"{schema.__name__}:{hashlib.sha256(shape.encode()).hexdigest()[:12]}"


def _redact_message(message: dict) -> dict[str, Any]:
    out = dict(message)
    content = out.get("content")
    if isinstance(content, str):
        out["content"] = redact(content)
    elif isinstance(content, list):
        out["content"] = [
            {**part, "text": redact(part["text"])}
            if isinstance(part, dict) and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
    return out


def _short_cause(exc: Exception) -> str:
    """One redacted line about what went wrong, without LiteLLM's debugging essay."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text.removeprefix("litellm.")
    name = type(exc).__name__
    text = text.replace(f"{name}: {name}: ", f"{name}: ")  # LiteLLM repeats the class name
    if not text.startswith(name):
        text = f"{name}: {text}" if text else name
    return redact(text[:300])
