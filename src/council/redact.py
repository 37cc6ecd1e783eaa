"""Secret redaction: nothing that looks like a key or token reaches a prompt, a log or the store."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# Environment variable names whose values are secrets (scrubbed from sandboxes, masked in text).
SECRET_NAME = re.compile(
    r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|SESSION|COOKIE|PRIVATE)", re.IGNORECASE
)

# Shapes of well-known secrets, masked wherever they appear in free text.
_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{16,}"),  # OpenAI / Anthropic style keys
    re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"github_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"xox[abpr]-[A-Za-z0-9\-]{10,}"),  # Slack
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{16,}"),
    # key = value, key: value, and JSON's "key": "value"
    re.compile(r"(?i)((?:api[_-]?key|token|secret|password)['\"]?\s*[:=]\s*['\"]?)[^\s'\"]{8,}"),
]

MASK = "[REDACTED]"


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def _env_secret_values(env: Mapping[str, str]) -> list[str]:
    # Only values long enough to be a credential: masking "1" everywhere would wreck the text.
    return sorted(
        {v for k, v in env.items() if is_secret_name(k) and len(v) >= 8}, key=len, reverse=True
    )


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """Mask secret-shaped substrings and the values of secret environment variables."""
    if not text:
        return text
    for value in _env_secret_values(os.environ if env is None else env):
        text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        else:
            text = pattern.sub(MASK, text)
    return text


def scrubbed_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without variables whose names mark them as secrets."""
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if not is_secret_name(k)}
