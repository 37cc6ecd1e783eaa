"""Canned persona answers for examples/profile-service, shaped like real model output.

Prose around fenced blocks, JSON wrapped in chatter, SEARCH/REPLACE edits: what the parsers must
survive. Used by the end-to-end tests and by bench/harness_overhead.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.fakes.model_server import ScriptedModelServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "profile-service"
FEATURE = (
    "As a user, I want to view my profile: GET /api/v1/users/me/profile returns username, "
    "email, full_name and join_date (ISO date)"
)
PERSONAS = ("pacer", "maven", "guardian", "builder", "artisan")

PLAN = {
    "summary": "add GET /api/v1/users/me/profile for the current user",
    "scope": "profile",
    "tasks": [
        {
            "id": "T1",
            "language": "python",
            "title": "Profile endpoint",
            "description": "Return the current user's public profile.",
            "acceptance_criteria": [
                "200 with username, email, full_name and join_date (YYYY-MM-DD)",
                "401 when X-User-Id is missing or unknown",
            ],
            "files": ["app/main.py", "app/models.py"],
        }
    ],
    "test_files": ["tests/test_profile.py"],
    "contract": '{"username": str, "email": str, "full_name": str, "join_date": "YYYY-MM-DD"}',
}

PLAN_REPLY = (
    "Sure! Here is a plan for the profile feature.\n\n```json\n"
    + json.dumps(PLAN, indent=2)
    + "\n```\n\nLet me know if you want changes."
)

CONTEXT_REPLY = json.dumps(
    {
        "files": ["app/main.py", "app/dependencies.py", "app/models.py", "tests/conftest.py"],
        "notes": "Use the current_user dependency; tests use the `client` fixture and X-User-Id.",
    }
)

TESTS_REPLY = '''I'll pin the behaviour down with two tests.

tests/test_profile.py
```python
"""The current user's profile."""


def test_profile_returns_the_current_user(client):
    response = client.get("/api/v1/users/me/profile", headers={"X-User-Id": "7"})
    assert response.status_code == 200
    assert response.json() == {
        "username": "linus",
        "email": "linus@example.com",
        "full_name": "Linus Torvalds",
        "join_date": "2020-01-31",
    }


def test_profile_needs_a_known_user(client):
    assert client.get("/api/v1/users/me/profile").status_code == 401
```

These fail today because the route does not exist.
'''

BROKEN_TESTS_REPLY = """Here are the tests:

tests/test_profile.py
```python
def test_profile(client)
    assert client.get("/api/v1/users/me/profile").status_code == 200
```
"""

_MODEL_EDIT = """app/models.py
```python
<<<<<<< SEARCH
class User(BaseModel):
=======
class Profile(BaseModel):
    username: str
    email: str
    full_name: str
    join_date: date


class User(BaseModel):
>>>>>>> REPLACE
```
"""

_IMPORT_EDIT = """app/main.py
```python
<<<<<<< SEARCH
from app.models import User
=======
from app.dependencies import current_user
from app.models import Profile, User
>>>>>>> REPLACE
```
"""


def _route_edit(path: str) -> str:
    return f'''app/main.py
```python
<<<<<<< SEARCH
@app.get("/api/v1/users/{{user_id}}", response_model=User)
=======
@app.get("{path}", response_model=Profile)
def get_my_profile(user: Annotated[User, Depends(current_user)]) -> Profile:
    return Profile(**user.model_dump(include={{"username", "email", "full_name", "join_date"}}))


@app.get("/api/v1/users/{{user_id}}", response_model=User)
>>>>>>> REPLACE
```
'''


BUILD_REPLY = (
    "The route must come before `/api/v1/users/{user_id}` so `me` is not read as an id.\n\n"
    + _MODEL_EDIT
    + "\n"
    + _IMPORT_EDIT
    + "\n"
    + _route_edit("/api/v1/users/me/profile")
)

# First code with a typo in the path: the tests stay red, Artisan fixes it.
BUILD_WRONG_REPLY = (
    "Adding the profile route.\n\n"
    + _MODEL_EDIT
    + "\n"
    + _IMPORT_EDIT
    + "\n"
    + _route_edit("/api/v1/user/me/profile")
)

REFINE_REPLY = """The route was registered as /api/v1/user/me/profile (singular), so the
request fell through to /api/v1/users/{user_id}.

app/main.py
```python
<<<<<<< SEARCH
@app.get("/api/v1/user/me/profile", response_model=Profile)
=======
@app.get("/api/v1/users/me/profile", response_model=Profile)
>>>>>>> REPLACE
```
"""

# Builder tries to make the tests pass by weakening them: must be refused.
CHEAT_REPLY = """The tests are too strict; I relaxed them.

tests/test_profile.py
```python
def test_profile_returns_the_current_user(client):
    assert True
```
"""

REVIEW_REPLY = json.dumps(
    {
        "verdict": "approve",
        "summary": "Small, correct change; the route is registered before the id route.",
        "comments": [
            {
                "severity": "low",
                "file": "app/main.py",
                "line": 18,
                "message": "A docstring on get_my_profile would help API docs.",
            }
        ],
    }
)


def make_repo(dest: Path) -> Path:
    """A fresh git repository holding a copy of the example project."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".ruff_cache", "__pycache__"))
    run = ["git", "-C", str(dest)]
    subprocess.run([*run, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*run, "add", "-A"], check=True)
    subprocess.run(
        [*run, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], check=True
    )
    return dest


def council_yaml(server: ScriptedModelServer, **limits: Any) -> str:
    """A council.yaml giving each persona its own model on the scripted server."""
    models = [
        {
            "model_name": p,
            "litellm_params": {
                "model": f"openai/{p}",
                "api_base": server.base_url,
                "api_key": "test-key-not-secret",
            },
            "model_info": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
        }
        for p in PERSONAS
    ]
    doc = {
        "models": models,
        "router_settings": {"num_retries": 0, "timeout": 30},
        "personas": {p: {"model": p, "temperature": 0.0, "max_tokens": 2000} for p in PERSONAS},
        "limits": {"max_iterations": 4, "budget_usd": 1.0, "test_timeout_s": 120, **limits},
        "cache": {"enabled": False},
    }
    return json.dumps(doc)  # JSON is YAML


def script_happy_path(server: ScriptedModelServer, *, build: str = BUILD_REPLY) -> None:
    server.script("pacer", PLAN_REPLY)
    server.script("maven", CONTEXT_REPLY)
    server.script("guardian", TESTS_REPLY, REVIEW_REPLY)
    server.script("builder", build)


# --- replies for tests/test_tdd_resilience.py ----------------------------------------------

# Tests that pass before any code exists: they pin down nothing the feature adds.
HEALTH_ONLY_TESTS_REPLY = '''These tests make sure the service keeps working.

tests/test_profile.py
```python
"""The service is up."""


def test_service_is_up(client):
    assert client.get("/health").json() == {"status": "ok"}
```
'''

_TELEMETRY_IMPORT_EDIT = """app/main.py
```python
<<<<<<< SEARCH
from app.repository import UserRepository, get_repository
=======
from app import telemetry  # noqa: F401  (usage report at start-up)
from app.repository import UserRepository, get_repository
>>>>>>> REPLACE
```
"""


def hostile_build_reply(overwrite: Path, create: Path, port: int) -> str:
    """Correct feature code plus a module that, at import, tries to write outside the work
    tree (recording each attempt in app/telemetry.log) and then to open a TCP connection to
    127.0.0.1:`port`, unguarded, so an isolated network makes the import crash."""
    module = f'''app/telemetry.py
```python
"""Usage telemetry, reported when the service starts."""

import socket
from pathlib import Path

_LOG = Path(__file__).with_name("telemetry.log")
_TARGETS = {{"overwrite": {str(overwrite)!r}, "create": {str(create)!r}}}


def _note(line: str) -> None:
    with _LOG.open("a", encoding="utf-8") as fh:
        fh.write(line + "\\n")


for _label, _target in _TARGETS.items():
    try:
        Path(_target).write_text("written by generated code\\n", encoding="utf-8")
    except OSError as exc:
        _note(f"{{_label}}: blocked: {{type(exc).__name__}}: {{exc}}")
    else:
        _note(f"{{_label}}: written")

_note("connect: trying")
with socket.create_connection(("127.0.0.1", {port}), timeout=5) as _sock:
    _sock.sendall(b"usage report\\n")
_note("connect: sent")
```
'''
    return (
        "I added the endpoint and a small usage report at start-up.\n\n"
        + module
        + "\n"
        + _MODEL_EDIT
        + "\n"
        + _IMPORT_EDIT
        + "\n"
        + _route_edit("/api/v1/users/me/profile")
        + "\n"
        + _TELEMETRY_IMPORT_EDIT
    )


# Artisan drops the start-up report that broke every test.
DROP_TELEMETRY_REPLY = """Importing app.telemetry fails in the test environment (no network), which
breaks the app's import and with it every test. The report is not part of the feature: drop it.

app/main.py
```python
<<<<<<< SEARCH
from app import telemetry  # noqa: F401  (usage report at start-up)
from app.repository import UserRepository, get_repository
=======
from app.repository import UserRepository, get_repository
>>>>>>> REPLACE
```
"""


def spinning_build_reply(marker: str) -> str:
    """Feature code whose handler starts a detached helper process (with `marker` in its
    command line, in a session of its own) and then spins forever: the test calling it hangs."""
    module = f'''app/spin.py
```python
"""Warm-up work done before answering a profile request."""

import subprocess
import sys
from pathlib import Path

_STARTED = Path(__file__).with_name("spin.started")


def warm_up() -> None:
    helper = subprocess.Popen(
        [sys.executable, "-c", "import time\\nwhile True:\\n    time.sleep(0.2)", {marker!r}],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _STARTED.write_text(f"{{helper.pid}}\\n", encoding="utf-8")
    while True:
        pass
```
'''
    imports = """app/main.py
```python
<<<<<<< SEARCH
from app.models import User
=======
from app.dependencies import current_user
from app.models import Profile, User
from app.spin import warm_up
>>>>>>> REPLACE
```
"""
    route = """app/main.py
```python
<<<<<<< SEARCH
@app.get("/api/v1/users/{user_id}", response_model=User)
=======
@app.get("/api/v1/users/me/profile", response_model=Profile)
def get_my_profile(user: Annotated[User, Depends(current_user)]) -> Profile:
    warm_up()
    return Profile(**user.model_dump(include={"username", "email", "full_name", "join_date"}))


@app.get("/api/v1/users/{user_id}", response_model=User)
>>>>>>> REPLACE
```
"""
    return "\n".join(
        ["Adding the endpoint with a warm-up step.\n", module, _MODEL_EDIT, imports, route]
    )
