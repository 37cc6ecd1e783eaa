"""council.yaml: the schema (pydantic), loading with line-numbered errors, provider presets.

`models:` is LiteLLM's `model_list` shape, so a LiteLLM proxy's `litellm_config.yaml` loads
as-is (`model_list:` is accepted as a synonym, `os.environ/NAME` references are kept for the
LiteLLM router to resolve).
"""

from __future__ import annotations

import difflib
import os
import shlex
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from council.errors import ConfigError
from council.redact import register_secret_names, register_secret_values

CONFIG_FILE = "council.yaml"
# The personas in the order a run meets them; each is a file in council/personas/ (title, role,
# templates, default model), read only when needed. tests/test_personas.py checks that this list
# and the files agree, so config stays cheap to import.
PERSONAS = ("pacer", "maven", "guardian", "builder", "artisan", "devops")
# The languages a track can be (toolchains/); `languages:` keys outside these would be ignored.
LANGUAGES = ("python", "javascript", "java")
ENV_REF = "os.environ/"
Schema = TypeVar("Schema", bound=BaseModel)


class ModelEntry(BaseModel):
    """One deployment in LiteLLM's `model_list` shape."""

    model_config = ConfigDict(extra="allow")

    model_name: str
    litellm_params: dict[str, Any]
    model_info: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_model(self) -> ModelEntry:
        if not self.litellm_params.get("model"):
            raise ValueError("litellm_params.model is required (e.g. 'openai/gpt-4o-mini')")
        return self

    def env_refs(self) -> list[str]:
        """Names of environment variables this entry reads through `os.environ/NAME`."""
        refs = []
        for value in self.litellm_params.values():
            if isinstance(value, str) and value.startswith(ENV_REF):
                refs.append(value[len(ENV_REF) :])
        return refs


class PersonaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    max_tokens: int = Field(4096, gt=0)


class Limits(BaseModel):
    # No infinite budget or time limit (`.inf` is valid YAML): a limit that cannot be reached
    # is a mistake, not a setting.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_iterations: int = Field(5, ge=1, le=50)
    budget_usd: float = Field(2.0, gt=0)
    test_timeout_s: float = Field(300, gt=0)
    model_timeout_s: float = Field(120, gt=0)
    install_timeout_s: float = Field(900, gt=0)
    max_test_attempts: int = Field(3, ge=1, le=10)  # Guardian tries to produce valid red tests
    max_edit_reasks: int = Field(2, ge=0, le=5)  # edits that do not apply go back this often
    # Largest file an edit may leave behind. Real projects hold modules of several hundred KB;
    # edits to them are SEARCH/REPLACE against the file on disk, so size costs no prompt tokens.
    max_file_kb: int = Field(2048, gt=0)

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_kb * 1024

    # When the whole test suite runs: once as the final gate before review (the loop runs only
    # the tests that matter), on every run (`always`, the behaviour before selection), or never.
    full_suite: Literal["always", "final", "never"] = "final"
    full_suite_timeout_s: float = Field(1800, gt=0)  # the final gate's own time limit


class LanguageConfig(BaseModel):
    """Gate commands for one language. An empty string switches that gate off.

    For Python each command names the tool council drives and passes on its arguments; for
    JavaScript and Java the runner and tools are detected and these act as on/off switches.
    """

    model_config = ConfigDict(extra="forbid")

    test: str = "pytest"
    lint: str = "ruff check"
    format: str = "ruff format --check"
    sast: str = "bandit"
    typecheck: str = "tsc --noEmit"  # JavaScript/TypeScript projects with a tsconfig.json
    test_dir: str | None = None  # default: tests/ (Python, JavaScript), src/test/java (Java)
    root: str | None = None  # the project's folder in the repository; default: discovered


class ContextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    map_tokens: int = Field(4000, gt=0)
    file_tokens: int = Field(8000, gt=0)
    # Most tokens a Builder/Artisan prompt may carry (files, tests, failures), and always less
    # than the model's context window (LiteLLM's model info, or model_info.max_input_tokens).
    prompt_tokens: int = Field(32000, ge=2000)


class SandboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_mb: int = Field(2048, gt=0)
    cpu_s: int = Field(600, gt=0)
    network: bool = False  # test runs get no network unless this is switched on


class GateConfig(BaseModel):
    """One quality gate for `council heal`: a named command with a time limit."""

    model_config = ConfigDict(extra="forbid")

    name: str
    command: str = ""  # empty: the built-in gate of that name (install, lint, test)
    timeout_s: float = Field(300, gt=0)
    required: bool = True


def _deny_entry(entry: str) -> str:
    entry = entry.strip()
    if not entry or "\n" in entry:
        raise ValueError("a deny entry is one command prefix on one line, e.g. 'terraform destroy'")
    try:
        shlex.split(entry)
    except ValueError as exc:
        raise ValueError(f"cannot parse {entry!r} as a command: {exc}") from None
    return entry


class PolicyConfig(BaseModel):
    """The command policy for commands a model proposes (`council heal`): `deny` adds command
    prefixes (matched on the parsed command) to the built-in rules and seed 004's list."""

    model_config = ConfigDict(extra="forbid")

    deny: list[Annotated[str, AfterValidator(_deny_entry)]] = Field(default_factory=list)


class CacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    dir: str | None = None  # default: ~/.cache/council/models


class GatewayConfig(BaseModel):
    """The warm gateway process (gateway/daemon): LiteLLM loaded once, shared by runs."""

    model_config = ConfigDict(extra="forbid")

    warm_process: bool = True  # COUNCIL_GATEWAY=off|on overrides; off by default when CI=true
    idle_timeout_s: float = Field(900.0, gt=0)  # then the process exits


class CouncilConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    models: list[ModelEntry] = Field(default_factory=list, alias="model_list")
    router_settings: dict[str, Any] = Field(default_factory=dict)
    # Accepted so a LiteLLM proxy config loads unchanged; council reads `cache` and `fallbacks`.
    litellm_settings: dict[str, Any] = Field(default_factory=dict)
    general_settings: dict[str, Any] = Field(default_factory=dict)
    environment_variables: dict[str, Any] = Field(default_factory=dict)
    personas: dict[str, PersonaConfig] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    languages: dict[str, LanguageConfig] = Field(default_factory=dict)
    context: ContextConfig = Field(default_factory=ContextConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    gates: list[GateConfig] = Field(default_factory=list)  # `council heal`; empty: detected
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)

    @model_validator(mode="before")
    @classmethod
    def _accept_model_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and "models" in data and "model_list" in data:
            raise ValueError("give either 'models' or 'model_list', not both")
        return data

    @model_validator(mode="after")
    def _personas_name_models(self) -> CouncilConfig:
        # The errors carry the key they are about (ctx["loc"]) so messages name its line.
        for language in self.languages:
            if language not in LANGUAGES:
                close = difflib.get_close_matches(language, LANGUAGES, n=1)
                raise PydanticCustomError(
                    "unknown_language",
                    "unknown language '{language}'{hint} (known: {known}; TypeScript is "
                    "javascript)",
                    {
                        "language": language,
                        "hint": f", did you mean '{close[0]}'?" if close else "",
                        "known": ", ".join(LANGUAGES),
                        "loc": ("languages", language),
                    },
                )
        names = {m.model_name for m in self.models}
        for persona, cfg in self.personas.items():
            if persona not in PERSONAS:
                raise PydanticCustomError(
                    "unknown_persona",
                    "unknown persona '{persona}' (known: {known})",
                    {
                        "persona": persona,
                        "known": ", ".join(PERSONAS),
                        "loc": ("personas", persona),
                    },
                )
            if names and cfg.model not in names:
                raise PydanticCustomError(
                    "unknown_model",
                    "persona '{persona}' uses model '{model}', which is not in models "
                    "(defined: {defined})",
                    {
                        "persona": persona,
                        "model": cfg.model,
                        "defined": ", ".join(sorted(names)),
                        "loc": ("personas", persona, "model"),
                    },
                )
        return self

    def persona(self, name: str) -> PersonaConfig:
        """The persona's settings; unlisted: the model named after it, else the first."""
        if name in self.personas:
            return self.personas[name]
        if not self.models:
            raise ConfigError("no models are configured")
        for entry in self.models:
            if entry.model_name.lower().startswith(name):
                return PersonaConfig(model=entry.model_name)
        return PersonaConfig(model=self.models[0].model_name)

    def language(self, name: str) -> LanguageConfig:
        return self.languages.get(name, LanguageConfig())

    def router_options(self) -> dict[str, Any]:
        """Router settings with fallbacks from either place LiteLLM configs keep them."""
        options = dict(self.router_settings)
        if "fallbacks" not in options and "fallbacks" in self.litellm_settings:
            options["fallbacks"] = self.litellm_settings["fallbacks"]
        return options

    def snapshot(self) -> dict[str, Any]:
        """The configuration as JSON for the run record; literal credentials masked."""
        data = self.model_dump(mode="json")
        for entry in data["models"]:
            for key, value in entry["litellm_params"].items():
                if _is_literal_key(key, value):
                    entry["litellm_params"][key] = "[REDACTED]"
        return data

    def missing_env(self) -> list[str]:
        """Environment variables that the personas' models (and their fallbacks) need but lack."""
        used = {self.persona(p).model for p in PERSONAS}
        missing: list[str] = []
        for entry in self.models:
            if entry.model_name not in used:
                continue
            for ref in entry.env_refs():
                if not os.environ.get(ref) and ref not in missing:
                    missing.append(ref)
        return missing


# --- loading ---------------------------------------------------------------------------------


def _node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """Walk a composed YAML node tree along a pydantic error location.

    A location ending in a mapping key gives the key's node, so the line named is the key's own
    (not the first line of a nested block under it).
    """
    key_node: yaml.Node | None = None
    for key in loc:
        key_node = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    node, key_node = v, k
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if key >= len(node.value):
                return node
            node = node.value[key]
        else:
            return node
    return key_node or node


def _unwrap(schema: Any) -> Any:
    """`X | None` -> X (the one type beside None); anything else as it is."""
    if typing.get_origin(schema) in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(schema) if a is not type(None)]
        return kinds[0] if len(kinds) == 1 else None
    return schema


def _is_model(schema: Any) -> bool:
    return isinstance(schema, type) and issubclass(schema, BaseModel)


def _keys_at(schema: Any, loc: tuple[Any, ...]) -> list[str]:
    """The keys the schema allows in the mapping at `loc` (field names or their aliases); []
    when that mapping is free-form (a dict of anything) or the path leaves the schema."""
    for key in loc:
        schema = _unwrap(schema)
        if _is_model(schema):
            field = schema.model_fields.get(key) or next(
                (f for f in schema.model_fields.values() if f.alias == key), None
            )
            if field is None:
                return []
            schema = field.annotation
        elif typing.get_origin(schema) in (list, dict):  # an index or a free key
            schema = typing.get_args(schema)[-1]
        else:
            return []
    schema = _unwrap(schema)
    if not _is_model(schema):
        return []
    names = [[name, f.alias] if f.alias else [name] for name, f in schema.model_fields.items()]
    return [n for pair in names for n in pair]


def _unknown_key(schema: Any, loc: tuple[Any, ...]) -> str:
    """ "unknown key", with the key meant when the typo is close, else the keys allowed."""
    known = _keys_at(schema, loc[:-1])
    if not known:
        return "unknown key"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean '{close[0]}'?)"
    return f"unknown key (known: {', '.join(known)})"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _describe(
    errors: ValidationError, root: yaml.Node | None, source: str, schema: Any = None
) -> str:
    lines = []
    for err in errors.errors():
        loc = tuple((err.get("ctx") or {}).get("loc") or err["loc"])
        loc = tuple(x for x in loc if not (isinstance(x, str) and x.startswith("function")))
        key = ".".join(str(x) for x in loc) or "(top level)"
        node = _node_at(root, loc)
        where = f"{source}:{node.start_mark.line + 1}" if node is not None else source
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = _unknown_key(schema, loc)
        elif err["type"] == "missing":
            msg = "missing (required)"
        elif not isinstance(err.get("input"), dict | list) and "input" in err:
            msg += f" (got {_shown(err['input'])})"  # what the file says, beside the rule
        lines.append(f"{where}: {key}: {msg}")
    return "\n".join(lines)


def parse_config(text: str, source: str = CONFIG_FILE) -> CouncilConfig:
    """Parse and validate council.yaml text; errors name the key and line."""
    return validate_yaml(text, CouncilConfig, source)


def validate_yaml(text: str, schema: type[Schema], source: str) -> Schema:
    """Parse YAML text into `schema` (a mapping at the top); errors name the key and line.
    Shared by council.yaml and deploy.yaml (deploy_config.py)."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text) if root is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: expected a mapping at the top level")
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            f"invalid configuration\n{_describe(exc, root, source, schema)}"
        ) from None


def read_config_text(path: Path) -> str:
    """A configuration file's text, or a ConfigError that says why not (unreadable, or not
    UTF-8: an editor's UTF-16 save is a usage error, not a traceback)."""
    try:
        return path.read_text(encoding="utf-8-sig")  # a UTF-8 byte-order mark is fine
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def load_config(path: Path) -> CouncilConfig:
    return parse_config(read_config_text(path), source=str(path))


# --- presets ---------------------------------------------------------------------------------

# provider -> (models: strong, fast), the environment it needs, and any extra params.
_PRESETS: dict[str, dict[str, Any]] = {
    "openai": {
        "strong": "openai/gpt-4o",
        "fast": "openai/gpt-4o-mini",
        "params": {"api_key": "os.environ/OPENAI_API_KEY"},
    },
    "anthropic": {
        "strong": "anthropic/claude-sonnet-4-20250514",
        "fast": "anthropic/claude-3-5-haiku-20241022",
        "params": {"api_key": "os.environ/ANTHROPIC_API_KEY"},
    },
    "azure": {
        "strong": "azure/gpt-4o",
        "fast": "azure/gpt-4o-mini",
        "params": {
            "api_key": "os.environ/AZURE_API_KEY",
            "api_base": "os.environ/AZURE_API_BASE",
            "api_version": "os.environ/AZURE_API_VERSION",
        },
    },
    "ollama": {
        "strong": "ollama_chat/qwen2.5-coder:7b",
        "fast": "ollama_chat/qwen2.5-coder:7b",
        "params": {"api_base": "http://127.0.0.1:11434"},
        "info": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0},
    },
    # The embedded model (llama.cpp in-process): one model shared by every persona, free,
    # slow on a CPU, with grammar-constrained JSON for the structured answers.
    "local": {
        "strong": "council-local/default",
        "fast": "council-local/default",
        "params": {},
        "info": {
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
            "supports_response_schema": True,
        },
        "router": {"num_retries": 0, "timeout": 1800, "fallbacks": []},
        "max_tokens": 2048,
        # Prompt + answer must fit the model's 8k context (council.local's default).
        "context": {"map_tokens": 1500, "file_tokens": 3000},
    },
    "litellm-proxy": {
        "strong": "litellm_proxy/builder",
        "fast": "litellm_proxy/maven",
        "params": {
            "api_key": "os.environ/LITELLM_PROXY_API_KEY",
            "api_base": "os.environ/LITELLM_PROXY_API_BASE",
        },
    },
}
PROVIDERS = tuple(_PRESETS)


def preset(provider: str, languages: Mapping[str, LanguageConfig] | None = None) -> dict:
    """A council.yaml document (as a dict) for one provider."""
    if provider not in _PRESETS:
        raise ConfigError(f"unknown provider '{provider}' (choose from: {', '.join(PROVIDERS)})")
    spec = _PRESETS[provider]
    models = []
    for alias, key in (("council-strong", "strong"), ("council-fast", "fast")):
        entry: dict[str, Any] = {
            "model_name": alias,
            "litellm_params": {"model": spec[key], **spec["params"]},
        }
        if "info" in spec:
            entry["model_info"] = dict(spec["info"])
        models.append(entry)
    from council.personas.catalogue import load_personas

    # Each persona file names its default alias: council-strong for planning, tests, code,
    # review and deployment; council-fast for context, which is cheap.
    defaults = load_personas()
    personas = {
        p: {
            "model": defaults[p].model,
            "temperature": 0.2 if p != "pacer" else 0.1,
            "max_tokens": spec.get("max_tokens", 4096),
        }
        for p in PERSONAS
    }
    return {
        "models": models,
        "router_settings": {
            "num_retries": 2,
            "timeout": 120,
            "fallbacks": [{"council-strong": ["council-fast"]}],
            **spec.get("router", {}),
        },
        "personas": personas,
        "limits": Limits().model_dump(),
        "languages": {k: language_doc(k, v) for k, v in (languages or {}).items()},
        "context": ContextConfig.model_validate(spec.get("context", {})).model_dump(),
    }


# The gates each language's toolchain runs (for JavaScript, switches for detected tools; Java
# has none beyond compiling and testing), so `council init` writes no gate a run would ignore.
LANGUAGE_GATES = {
    "python": ("test", "lint", "format", "sast"),
    "javascript": ("lint", "format", "typecheck"),
    "java": (),
}


def language_doc(language: str, config: LanguageConfig) -> dict[str, Any]:
    """A language's council.yaml entry: the gates it has, and its folders when they are set."""
    doc: dict[str, Any] = {g: getattr(config, g) for g in LANGUAGE_GATES.get(language, ())}
    doc.update({k: getattr(config, k) for k in ("test_dir", "root") if getattr(config, k)})
    return doc


def _provider_from_env() -> str | None:
    return provider_key_configured() or ("local" if local_model_available() else None)


def provider_key_configured() -> str | None:
    """The provider whose key (or proxy) the environment configures, without the local model."""
    if os.environ.get("OPENAI_API_KEY"):
        return "openai"
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "anthropic"
    if os.environ.get("AZURE_API_KEY") and os.environ.get("AZURE_API_BASE"):
        return "azure"
    if os.environ.get("LITELLM_PROXY_API_BASE"):
        return "litellm-proxy"
    return None


def local_model_available() -> bool:
    """Whether the embedded model can be the default: llama-cpp-python is installed (or a
    model file is named) and the user has not switched it off with COUNCIL_NO_LOCAL=1."""
    if os.environ.get("COUNCIL_NO_LOCAL", "").lower() in ("1", "true", "yes"):
        return False
    import importlib.util

    return bool(os.environ.get("COUNCIL_LOCAL_MODEL")) or (
        importlib.util.find_spec("llama_cpp") is not None
    )


NO_MODEL_MESSAGE = (
    "No model is configured for the council.\n"
    "Set one of these and run again:\n"
    "  export OPENAI_API_KEY=...                      # OpenAI\n"
    "  export ANTHROPIC_API_KEY=...                   # Anthropic\n"
    "  export AZURE_API_KEY=... AZURE_API_BASE=... AZURE_API_VERSION=...   # Azure OpenAI\n"
    "  export LITELLM_PROXY_API_BASE=... LITELLM_PROXY_API_KEY=...         # a LiteLLM proxy\n"
    "or write a council.yaml with `council init --provider "
    "openai|azure|anthropic|ollama|litellm-proxy` and edit its models,\n"
    "or run an open model on this machine with no key: "
    'pip install "ai-council[local]" (see the README).'
)


def resolve_config(repo: Path, explicit: Path | None = None) -> tuple[CouncilConfig, str]:
    """The configuration for a run and where it came from.

    Order: --config, then <repo>/council.yaml, then a preset chosen from provider keys in the
    environment. No model anywhere is a ConfigError (exit 2) saying exactly what to set.
    """
    path = explicit or (repo / CONFIG_FILE)
    if explicit is not None or path.exists():
        config = load_config(path)
        source = str(path)
    else:
        provider = _provider_from_env()
        if provider is None:
            raise ConfigError(NO_MODEL_MESSAGE)
        config = CouncilConfig.model_validate(preset(provider))
        source = (
            "preset 'local' (no council.yaml and no provider key: the embedded model)"
            if provider == "local"
            else f"preset '{provider}' (from the environment)"
        )
    if not config.models:
        raise ConfigError(f"{source}: no models are configured.\n{NO_MODEL_MESSAGE}")
    register_config_secrets(config)
    missing = config.missing_env()
    if missing:
        raise ConfigError(
            f"{source}: the configured models need environment variables that are not set: "
            f"{', '.join(missing)}\nSet them (export {missing[0]}=...) and run again."
        )
    return config, source


def register_config_secrets(config: CouncilConfig) -> None:
    """Teach redaction the keys this configuration uses: the variables it reads and literals."""
    for entry in config.models:
        register_secret_names(entry.env_refs())
        register_secret_values(
            value for key, value in entry.litellm_params.items() if _is_literal_key(key, value)
        )


def _is_literal_key(param: str, value: Any) -> bool:
    """A credential written into the configuration itself rather than read from a variable."""
    secret = any(w in param.lower() for w in ("key", "token", "secret", "password"))
    return secret and isinstance(value, str) and not value.startswith(ENV_REF)


def dump_config(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=False)
