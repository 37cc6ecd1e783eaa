"""One GGUF model loaded in-process through llama-cpp-python, shared by every persona.

llama.cpp contexts are not thread-safe, and two contexts would double the memory, so each model
file is loaded once per process and calls to it are serialised with a lock: personas running in
parallel tracks queue for the model instead of crashing it. The chat template is the one in the
file's own metadata (llama-cpp-python reads `tokenizer.chat_template`), so any instruction model
formats its prompts the way it was trained to.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from council.errors import LocalModelError
from council.local.gguf_file import read_info
from council.local.schema_bounds import bounded_schema
from council.local.tokens_out import TokenSink

DEFAULT_CONTEXT = 8192
INSTALL_HINT = (
    'Install the local extra: pip install "ai-council[local]" (scripts/setup --local builds it), '
    "or configure a provider (export OPENAI_API_KEY=..., or `council init --provider ...`)."
)


@dataclass
class ChatResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    latency_ms: float
    constrained: str = ""  # "", "schema" or "bounded schema"


def llama_cpp_module() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise LocalModelError(
            f"the local model needs llama-cpp-python, which is not installed ({exc})",
            hint=INSTALL_HINT,
        ) from None
    return llama_cpp


# llama-cpp-python's schema converter lets a string hold raw control characters, which no JSON
# parser accepts; llama.cpp's own converter excludes them. Tighten the rule the same way.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_STRICT_CHAR = 'char ::= [^"\\\\\\x00-\\x1F] |'


def json_grammar(schema_text: str) -> str:
    """GBNF for `schema_text` whose strings can only hold characters JSON allows unescaped."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return json_schema_to_gbnf(schema_text).replace(_LOOSE_CHAR, _STRICT_CHAR)


class LocalEngine:
    _loaded: dict[tuple[str, int], LocalEngine] = {}
    _loading = threading.Lock()

    def __init__(self, path: Path, n_ctx: int = DEFAULT_CONTEXT, threads: int | None = None):
        llama_cpp = llama_cpp_module()
        info = read_info(path)
        # Never ask for more context than the model was trained for.
        n_ctx = min(n_ctx, info.context_length or n_ctx)
        self.path = path
        self.lock = threading.Lock()
        started = time.perf_counter()
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads or max(1, os.cpu_count() or 1),
                chat_format=None,  # use the template in the GGUF metadata
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise LocalModelError(
                f"llama.cpp could not load {path}: {exc}",
                hint="The file may be truncated or made for a newer llama.cpp; "
                "run `council models pull` again or point COUNCIL_LOCAL_MODEL at another file.",
            ) from None
        self.load_s = time.perf_counter() - started
        self.n_ctx = n_ctx
        self._grammars: dict[str, Any] = {}
        self._on_token: TokenSink | None = None  # the current call's, set under self.lock
        self._count_sampled_tokens()

    def _count_sampled_tokens(self) -> None:
        """Report each token as llama.cpp samples it (Llama.generate samples one token per
        step), so a call in flight shows its tokens so far while the answer stays whole."""
        sample = self.llm.sample

        def counted(*args: Any, **kwargs: Any) -> Any:
            token = sample(*args, **kwargs)
            report = self._on_token
            if report is not None:
                try:
                    report(1)
                except Exception:  # noqa: BLE001 - a progress display never breaks a call
                    self._on_token = None
            return token

        self.llm.sample = counted

    @classmethod
    def shared(cls, path: Path, n_ctx: int = DEFAULT_CONTEXT) -> LocalEngine:
        """The process-wide engine for `path`, loaded on first use."""
        key = (str(Path(path).resolve()), n_ctx)
        with cls._loading:
            engine = cls._loaded.get(key)
            if engine is None:
                engine = cls(Path(path), n_ctx)
                cls._loaded[key] = engine
            return engine

    @classmethod
    def unload_all(cls) -> None:
        with cls._loading:
            for engine in cls._loaded.values():
                engine.close()
            cls._loaded.clear()

    def close(self) -> None:
        with self.lock:
            close = getattr(self.llm, "close", None)
            if close is not None:
                close()

    def _grammar(self, schema: dict[str, Any]) -> Any:
        text = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(text)
        if grammar is None:
            llama_cpp = llama_cpp_module()
            try:
                grammar = llama_cpp.LlamaGrammar.from_string(json_grammar(text), verbose=False)
            except Exception as exc:  # noqa: BLE001 - the converter raises bare errors
                raise LocalModelError(
                    f"cannot turn the answer schema into a grammar: {exc}"
                ) from None
            self._grammars[text] = grammar
        return grammar

    def _once(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        schema: dict[str, Any] | None,
        seed: int | None,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
        if seed is not None:
            options["seed"] = seed
        if schema is not None:
            options["grammar"] = self._grammar(schema)
        return self.llm.create_chat_completion(messages=messages, **options)

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 1024,
        temperature: float = 0.2,
        schema: dict[str, Any] | None = None,
        seed: int | None = None,
        on_token: TokenSink | None = None,
    ) -> ChatResult:
        """One completion; with `schema`, the answer is JSON that follows it, and it ends.

        An uncapped schema answer that runs out of tokens is asked again under a schema whose
        strings and arrays are capped to fit `max_tokens`, so the JSON always closes.
        `on_token(1)` is called for every token generated, the re-ask's included.
        """
        with self.lock:
            self._on_token = on_token
            try:
                started = time.perf_counter()
                response = self._once(messages, max_tokens, temperature, schema, seed)
                constrained = "schema" if schema is not None else ""
                choice = response["choices"][0]
                usage = dict(response.get("usage") or {})
                if schema is not None and choice.get("finish_reason") == "length":
                    margin = max(8, max_tokens // 16)
                    bounded = bounded_schema(schema, max_tokens - margin)
                    if bounded is not None:
                        response = self._once(messages, max_tokens, temperature, bounded, seed)
                        choice = response["choices"][0]
                        extra = response.get("usage") or {}
                        for key in ("prompt_tokens", "completion_tokens"):
                            usage[key] = int(usage.get(key, 0)) + int(extra.get(key, 0))
                        constrained = "bounded schema"
                return ChatResult(
                    text=choice["message"].get("content") or "",
                    prompt_tokens=int(usage.get("prompt_tokens", 0)),
                    completion_tokens=int(usage.get("completion_tokens", 0)),
                    finish_reason=str(choice.get("finish_reason") or ""),
                    latency_ms=(time.perf_counter() - started) * 1000,
                    constrained=constrained,
                )
            finally:
                self._on_token = None
