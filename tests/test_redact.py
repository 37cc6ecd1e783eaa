"""Redaction masks secret values and leaves code that merely names a key byte for byte."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from council import redact as redact_module
from council.config import parse_config, register_config_secrets
from council.events import BaseEvent
from council.gateway import Gateway
from council.redact import MASK, redact, scrubbed_env
from council.sandbox import run
from council.store import Store
from tests.fakes.model_server import ScriptedModelServer

# Code a model writes all the time: it names keys, it does not contain them.
CODE_NAMING_KEYS = """import os

SECRET = os.environ.get('OPENAI_API_KEY')
api_key = os.environ["AZURE_API_KEY"]
token = request.headers.get("Authorization")
headers = {"Authorization": f"Bearer {token}"}
client = OpenAI(api_key=api_key)
password = settings.db_password
API_KEY_ENV = "OPENAI_API_KEY"
refresh_token = access_token
token: str = field(default_factory=make_token)


def get_token(secret: str, password_file: str = "/run/secrets/db") -> str:
    return secret or open(password_file).read()
"""

CONFIG_NAMING_KEYS = """model_list:
  - litellm_params:
      api_key: os.environ/AZURE_API_KEY
      api_base: ${AZURE_API_BASE}
env:
  API_TOKEN: $CI_TOKEN
  PASSWORD_FILE: /run/secrets/password
"""

# Code that describes secrets: patterns and URL templates, no value in them.
CODE_ABOUT_SECRETS = """# https://[user[:pass]@]host[:port]/owner/repo[.git][/]
STORAGE_KEY = re.compile(r"AccountKey=[A-Za-z0-9+/=]{20,}")
url = f"https://{user}:{password}@{host}/"
"""

# (text, the secret in it) for each shape council must mask.
SECRET_VALUES = [
    ("key = 'sk-proj-A1b2C3d4E5f6G7h8I9j0K1'", "sk-proj-A1b2C3d4E5f6G7h8I9j0K1"),
    ("export GH=ghp_" + "A1b2C3d4E5" * 4, "ghp_" + "A1b2C3d4E5" * 4),
    ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    (
        "jwt: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFU",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFU",
    ),
    (
        "DefaultEndpointsProtocol=https;AccountName=dev;AccountKey=Zm9vYmFyYmF6cXV4+/12==;"
        "EndpointSuffix=core.windows.net",
        "Zm9vYmFyYmF6cXV4+/12==",
    ),
    ("Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey=c2VjcmV0a2V5MTIz=", "c2VjcmV0a2V5"),
    ("secret = 'hunter2-hunter2'", "hunter2-hunter2"),
    ('{"api_key": "abcd1234efgh5678ijkl"}', "abcd1234efgh5678ijkl"),
    ("password: s3cr3tpassw0rd", "s3cr3tpassw0rd"),
    ("AZURE_API_KEY=0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
    ("if password == 'letmein-2024':", "letmein-2024"),
    ("git clone https://bot:p4ssw0rd-x@example.com/r.git", "p4ssw0rd-x"),
    ("curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA=='", "dXNlcjpwYXNzd29yZA=="),
    ("curl -H 'x-api-key: 9f8e7d6c5b4a39281706'", "9f8e7d6c5b4a39281706"),
    ("run --password=S3cretP4ss! --verbose", "S3cretP4ss!"),
]


@pytest.fixture(autouse=True)
def _no_registered_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # Registration is process-wide: each test starts without what another one registered.
    monkeypatch.setattr(redact_module, "_configured_names", set())
    monkeypatch.setattr(redact_module, "_configured_values", set())


@pytest.mark.parametrize("text", [CODE_NAMING_KEYS, CONFIG_NAMING_KEYS, CODE_ABOUT_SECRETS])
def test_code_that_names_keys_survives_byte_for_byte(text: str) -> None:
    assert redact(text, {}) == text


def test_the_reported_line_survives_with_the_key_set() -> None:
    line = "SECRET = os.environ.get('OPENAI_API_KEY')"
    assert redact(line, {"OPENAI_API_KEY": "sk-live-value-123456789"}) == line


@pytest.mark.parametrize(("text", "secret"), SECRET_VALUES)
def test_secret_values_are_masked(text: str, secret: str) -> None:
    masked = redact(text, {})
    assert secret not in masked
    assert MASK in masked


def test_masking_keeps_the_label_and_the_quotes() -> None:
    assert redact("secret = 'hunter2-hunter2'", {}) == f"secret = '{MASK}'"
    assert redact('{"api_key": "abcd1234efgh5678"}', {}) == f'{{"api_key": "{MASK}"}}'
    assert redact("AccountName=a;AccountKey=Zm9vYmFy==;X=y", {}) == (
        f"AccountName=a;AccountKey={MASK};X=y"
    )


def test_secret_environment_values_are_masked_but_paths_are_not() -> None:
    env = {
        "MY_SERVICE_TOKEN": "plainvalue-no-shape",
        "SSH_AUTH_SOCK": "/tmp/ssh-XXXX/agent.123",
        "DESKTOP_SESSION": "ubuntu-wayland",
        "HOME": "/home/someone",
    }
    text = "got plainvalue-no-shape via /tmp/ssh-XXXX/agent.123 on ubuntu-wayland"
    assert redact(text, env) == f"got {MASK} via /tmp/ssh-XXXX/agent.123 on ubuntu-wayland"


def test_configured_key_variables_and_literals_are_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Neither name says "key": only council.yaml knows they hold one.
    monkeypatch.setenv("LLM_GATEWAY_PASS", "gateway-value-31337")
    config = parse_config(
        "models:\n"
        "  - model_name: a\n"
        "    litellm_params: {model: openai/a, api_key: os.environ/LLM_GATEWAY_PASS}\n"
        "  - model_name: b\n"
        "    litellm_params: {model: openai/b, api_key: literal-in-yaml-42}\n"
    )
    assert redact("x gateway-value-31337 literal-in-yaml-42") == "x gateway-value-31337 " + (
        "literal-in-yaml-42"
    )
    register_config_secrets(config)
    assert redact("x gateway-value-31337 literal-in-yaml-42") == f"x {MASK} {MASK}"
    assert "LLM_GATEWAY_PASS" not in scrubbed_env()


def test_values_are_redacted_wherever_they_are_stored_and_code_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_server: ScriptedModelServer
) -> None:
    """Through the real gateway, sandbox, store and logging: both directions at once."""
    env_secret = "env-only-value-9f8e7d6c"
    shaped = "ghp_" + "Z9y8X7w6V5" * 4
    monkeypatch.setenv("OPENAI_API_KEY", env_secret)
    answer = (
        f"Use the key you gave me ({env_secret}) only through the environment:\n\n"
        f"app/settings.py\n```python\n{CODE_NAMING_KEYS}```\nNever commit {shaped}.\n"
    )
    model_server.script("m", answer)

    store = Store.for_repo(tmp_path)
    run_id = store.create_run(feature="settings", repo=str(tmp_path), config={})

    def sink(event: BaseEvent) -> None:
        store.record_event(event.model_copy(update={"run_id": run_id}))

    gateway = Gateway(
        [
            {
                "model_name": "main",
                "litellm_params": {
                    "model": "openai/m",
                    "api_base": model_server.base_url,
                    "api_key": "dummy-key",
                },
            }
        ],
        router_settings={"num_retries": 0},
        emit=sink,
    )
    reply = gateway.complete("main", [{"role": "user", "content": f"key is {env_secret}"}])
    assert env_secret in reply.text  # the caller works with the real answer

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "settings.py").write_text(CODE_NAMING_KEYS)
    result = run(
        [sys.executable, "-c", f"print(open('app/settings.py').read()); print('{shaped}')"],
        tmp_path,
        timeout_s=30,
        emit=sink,
    )
    assert result.exit_code == 0 and shaped in result.stdout

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("council.test_redact")
    logger.addHandler(handler)
    try:
        logger.warning("retrying with %s after %s", env_secret, "SECRET = os.environ.get('K')")
    finally:
        logger.removeHandler(handler)
    assert records[0].getMessage() == f"retrying with {MASK} after SECRET = os.environ.get('K')"

    (exchange,) = store.exchanges(run_id)
    assert CODE_NAMING_KEYS in exchange.response  # code byte for byte
    assert exchange.response.count(MASK) == 2
    (call,) = store.events(run_id, kinds=["model_call"])
    assert CODE_NAMING_KEYS in call.response and call.messages[0]["content"] == f"key is {MASK}"
    (command,) = store.commands(run_id)
    assert CODE_NAMING_KEYS.strip() in command.output_tail and shaped not in command.output_tail
    store.close()
    for path in (tmp_path / ".council").iterdir():
        data = path.read_bytes()
        assert env_secret.encode() not in data and shaped.encode() not in data, path
