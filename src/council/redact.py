"""Secret redaction: nothing that looks like a key or token reaches a prompt, a log or the store.

What is masked is a secret's VALUE, never code that merely names one: the values of secret
environment variables (and of the variables council.yaml reads keys from), well-known token
shapes, and literal values assigned to key-like names. `SECRET = os.environ.get('API_KEY')`
survives byte for byte; `SECRET = "hunter2-hunter2"` does not.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Iterable, Mapping

# Environment variable names whose values are secrets (scrubbed from sandboxes, masked in text).
SECRET_NAME = re.compile(
    r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|SESSION|COOKIE|PRIVATE)", re.IGNORECASE
)

# Variables whose names match SECRET_NAME but hold plumbing, not credentials: masking their
# values would rewrite paths and desktop names all over command output.
_NOT_SECRET = re.compile(
    r"^(SSH_AUTH_SOCK|XAUTHORITY|DESKTOP_SESSION|XDG_SESSION_\w+|DBUS_SESSION_BUS_ADDRESS|"
    r"GPG_AGENT_INFO|KEYTIMEOUT|\w*KEYMAP\w*|\w*_KEYRING\w*)$"
)

MASK = "[REDACTED]"

# Shapes of well-known secrets, masked wherever they appear. A pattern with a group keeps
# group 1 (the label before the value) and masks the rest.
_SHAPES = [
    re.compile(r"\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_\-]{16,}"),  # OpenAI / Anthropic
    re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"),  # Stripe
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),  # Slack
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"),  # Google API key
    re.compile(r"\bnpm_[A-Za-z0-9]{36}"),  # npm
    re.compile(r"\bpypi-[A-Za-z0-9_\-]{50,}"),  # PyPI upload token
    re.compile(r"\bhf_[A-Za-z0-9]{30,}"),  # Hugging Face
    # JSON Web Tokens: base64url header and payload that both start with '{"'.
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    # Azure connection strings and SAS URLs.
    re.compile(r"((?:AccountKey|SharedAccessKey)=)[A-Za-z0-9+/%]{8,}={0,2}"),  # base64 keys
    re.compile(r"(SharedAccessSignature=)[^;\s'\"]{8,}"),
    re.compile(r"([?&]sig=)[A-Za-z0-9%+/=]{16,}"),
    # user:password@ in URLs.
    re.compile(r"(://[\w.%+~-]+:)[^@\s/'\"\[\]]{3,}(?=@)"),
    re.compile(r"(?i)(\bauthorization['\"]?\s*[:=]\s*['\"]?\w+\s+)[A-Za-z0-9._\-~+/]{8,}=*"),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._\-~+/]{16,}=*"),
]

# A key-like name given a value: `password = "..."`, `api_key: ...`, `"token": "..."`,
# `API_TOKEN=...`, `--password=...`. Group `value` is judged by _is_secret_value.
_KEY_NAME = (
    r"[\w.\-]*?(?:api[_\-]?key|apikey|access[_\-]?key|secret[_\-]?key|client[_\-]?secret"
    r"|token|secret|password|passwd)"
)
_ASSIGNMENT = re.compile(
    r"(?i)(?P<label>\b" + _KEY_NAME + r"['\"]?(?:\s*:\s*str)?\s*(?<![=!<>:])(?:==|:|=)(?!=)\s*)"
    r"(?:(?P<quote>['\"])(?P<quoted>[^'\"\s]{8,})(?P=quote)"
    r"|(?P<bare>[^\s'\"(),;&\[\]{}<>`]{8,})(?=$|[\s,;&)\]}'\"]))"
)
_DOTTED_NAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")

# Names and literal values council.yaml declares as keys (register_secret_* below).
_configured_names: set[str] = set()
_configured_values: set[str] = set()


def register_secret_names(names: Iterable[str]) -> None:
    """Treat these environment variables' values as secrets (council.yaml's `os.environ/NAME`)."""
    _configured_names.update(n for n in names if n)


def register_secret_values(values: Iterable[str]) -> None:
    """Treat these literal strings as secrets (a key written into council.yaml itself)."""
    _configured_values.update(v for v in values if isinstance(v, str) and len(v) >= 8)


def is_secret_name(name: str) -> bool:
    return name in _configured_names or bool(SECRET_NAME.search(name))


def _is_masked_name(name: str) -> bool:
    return name in _configured_names or _named_like_a_secret(name)


@functools.lru_cache(maxsize=4096)
def _named_like_a_secret(name: str) -> bool:
    # Cached: every event a run stores is redacted, and each redaction looks at every variable
    # of the environment (these regexes were three quarters of a redaction's time).
    return bool(SECRET_NAME.search(name)) and not _NOT_SECRET.match(name)


def _env_secret_values(env: Mapping[str, str]) -> list[str]:
    # Only values long enough to be a credential: masking "1" everywhere would wreck the text.
    # A path is where a secret lives, not a secret; masking it would garble command output.
    values = {
        v
        for k, v in env.items()
        if _is_masked_name(k) and len(v) >= 8 and not v.startswith(("/", "unix:"))
    }
    return sorted(values | _configured_values, key=len, reverse=True)


def _is_secret_value(value: str, quoted: bool) -> bool:
    """Whether the right-hand side of `token = <value>` is a credential rather than code."""
    if "{" in value or "}" in value or value.startswith(("$", "%", "os.environ")):
        return False  # a template or a reference to where the secret lives
    if not quoted and value.startswith(("/", "./", "../", "~/")):
        return False  # a path to a key file, not the key
    if value == MASK or value.startswith(MASK):
        return False
    if _ENV_NAME.match(value):
        return False  # the name of a variable that holds the secret
    if quoted:
        return True
    if _DOTTED_NAME.match(value):
        return False  # settings.api_key, self.token: attribute access
    if _IDENTIFIER.match(value):
        # token=access_token is a variable; abc123def456 is a value.
        return sum(c.isdigit() for c in value) >= 3
    return True


def _mask_assignment(match: re.Match[str]) -> str:
    quoted = match.group("quoted")
    value = quoted if quoted is not None else match.group("bare")
    if not _is_secret_value(value, quoted is not None):
        return match.group(0)
    if quoted is not None:
        quote = match.group("quote")
        return f"{match.group('label')}{quote}{MASK}{quote}"
    return match.group("label") + MASK


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """Mask secret values: secret environment variables' values, token shapes, literal keys."""
    if not text:
        return text
    for value in _env_secret_values(os.environ if env is None else env):
        text = text.replace(value, MASK)
    for pattern in _SHAPES:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        else:
            text = pattern.sub(MASK, text)
    return _ASSIGNMENT.sub(_mask_assignment, text)


def redact_tree(value: object) -> object:
    """Redact every string inside a JSON-shaped value (dict keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact_tree(k): redact_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]
    return value


def scrubbed_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without variables whose names mark them as secrets."""
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if not is_secret_name(k)}


_base_factory = logging.getLogRecordFactory()


def _redacting_factory(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)  # type: ignore[arg-type]
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        return record  # a malformed format call: logging reports it itself
    record.msg, record.args = redact(message), None
    return record


def install_log_redaction() -> None:
    """Mask secrets in every log record council (or a library it calls) writes from now on."""
    if logging.getLogRecordFactory() is not _redacting_factory:
        logging.setLogRecordFactory(_redacting_factory)


# Everything that stores or sends text imports this module, so logs are covered from the start.
install_log_redaction()
