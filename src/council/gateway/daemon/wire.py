"""What the gateway process and its clients agree on: which process, where, and the messages.

Standard library only and cheap to import: every `council` process that talks to a gateway
process imports this.

One gateway process per (council version, its code, LiteLLM version, Python, the values of the
environment variables that change what LiteLLM does): different keys never share a process,
and an upgrade never talks to an old one. The socket and the info file (pid and the random
per-process token every request must carry) live in `paths.gateway_dir()`, a 0700 folder the
sandbox hides. The key in their names is a hash: no secret is ever in a path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import council
from council.paths import gateway_dir

PROTOCOL = 1
# Environment variables that change what LiteLLM does or whom it calls with which key.
_MATTERS = re.compile(
    r"^(OPENAI|AZURE|ANTHROPIC|LITELLM|AWS|GOOGLE|VERTEX|GEMINI|COHERE|MISTRAL|GROQ|DEEPSEEK|"
    r"OPENROUTER|TOGETHER|TOGETHERAI|HUGGINGFACE|HF|XAI|OLLAMA|FIREWORKS|PERPLEXITY|REPLICATE|"
    r"DATABRICKS|WATSONX|NVIDIA|CLOUDFLARE|VOYAGE|CEREBRAS|SAMBANOVA|BEDROCK|SAGEMAKER)_"
    r"|(_API_KEY|_API_BASE|_API_VERSION|_BASE_URL|_KEY|_TOKEN|_SECRET)$"
    r"|^(HTTPS?_PROXY|ALL_PROXY|NO_PROXY|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|"
    r"CURL_CA_BUNDLE)$",
    re.IGNORECASE,
)
# Also passed to the gateway process (not part of its key): where things are, the language.
_PLAIN = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
# Files of council that run inside the gateway process: a changed one means a new process.
_CODE = ("gateway/router.py", "gateway/litellm_api.py", "gateway/litellm_calls.py",
         "gateway/pricing.py", "gateway/daemon/server.py", "gateway/daemon/wire.py")  # fmt: skip
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes


def matters(name: str) -> bool:
    return bool(_MATTERS.search(name))


def daemon_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a gateway process gets: exactly what its key covers, plus locale/paths."""
    environ = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in environ.items() if matters(k) or k in _PLAIN}
    # LiteLLM must not fetch its price map from GitHub, nor read a stray .env at import.
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.setdefault("LITELLM_MODE", "PRODUCTION")
    return env


def _litellm_version() -> str:
    """LiteLLM's version from its dist-info folder's name (importlib.metadata costs ~20 ms)."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith("litellm-") and name.endswith(".dist-info"):
                return name[len("litellm-") : -len(".dist-info")]
    return "none"


def _code_stamp() -> str:
    root = Path(council.__file__).parent
    stamps = []
    for rel in _CODE:
        try:
            stamps.append(f"{rel}:{(root / rel).stat().st_mtime_ns}")
        except OSError:
            stamps.append(f"{rel}:-")
    return ";".join(stamps)


def daemon_key(environ: dict[str, str] | None = None) -> str:
    env = daemon_env(environ)
    parts = [
        f"protocol={PROTOCOL}",
        f"council={council.__version__}",
        f"code={_code_stamp()}",
        f"litellm={_litellm_version()}",
        f"python={sys.executable}",
        *(f"{k}={env[k]}" for k in sorted(env) if matters(k)),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Endpoint:
    """The files of one gateway process."""

    folder: Path
    key: str

    @property
    def socket(self) -> Path:
        return self.folder / f"{self.key}.sock"

    @property
    def info(self) -> Path:  # {"pid", "token", ...}: written once the process answers
        return self.folder / f"{self.key}.json"

    @property
    def lock(self) -> Path:  # held (flock) by the living process
        return self.folder / f"{self.key}.lock"

    @property
    def log(self) -> Path:  # what the process printed when it could not start
        return self.folder / f"{self.key}.log"

    def usable(self) -> bool:
        return len(os.fsencode(str(self.socket))) <= MAX_SOCKET_PATH


def endpoint(environ: dict[str, str] | None = None) -> Endpoint:
    return Endpoint(gateway_dir(), daemon_key(environ))


def read_info(ep: Endpoint) -> dict[str, Any] | None:
    try:
        info = json.loads(ep.info.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("token"), str) else None


class Unusable(Exception):
    """The gateway process could not serve the request (not the model's failure)."""


def exchange(
    ep: Endpoint,
    token: str,
    request: dict[str, Any],
    on_tokens: Any = None,
    *,
    connect_s: float = 2.0,
    silence_s: float = 15.0,
) -> tuple[str, Any]:
    """("ok", result) or ("err", {type, message, hint}) for one request; Unusable when the
    process is gone, silent for `silence_s` (it beats every 2 s), or speaks no protocol."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(connect_s)
        sock.connect(str(ep.socket))
        send(sock, {"v": PROTOCOL, "token": token, **request})
        sock.settimeout(silence_s)
        lines = Lines(sock)
        while True:
            message = lines.next()
            if message is None:
                raise Unusable("it closed the connection mid-request")
            for kind in ("ok", "err"):
                if kind in message:
                    return kind, message[kind]
            if "tok" in message:
                if on_tokens is not None:
                    on_tokens(int(message["tok"]))
            elif "hb" not in message:
                raise Unusable("it sent an unknown message")
    except (OSError, ValueError, TypeError) as exc:
        raise Unusable(f"{type(exc).__name__}: {exc}") from None
    finally:
        sock.close()  # on ^C too: the process sees it and cancels the call


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message, default=str).encode() + b"\n")


class Lines:
    """Newline-delimited JSON messages read from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def next(self) -> dict[str, Any] | None:
        """The next message, or None at the end of the stream. ValueError: not our protocol."""
        while b"\n" not in self._buffer:
            data = self._sock.recv(65536)
            if not data:
                return None
            self._buffer += data
            if len(self._buffer) > 64 * 1024 * 1024:
                raise ValueError("message too long")
        line, self._buffer = self._buffer.split(b"\n", 1)
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError("not a message")
        return message
