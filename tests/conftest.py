"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.model_server import ScriptedModelServer

# No test downloads a model from the hub: a local model that is not on disk is an error at once
# (tests that exercise downloading unset this and point HF_ENDPOINT at a fake hub).
os.environ["COUNCIL_OFFLINE"] = "1"
os.environ.pop("HF_ENDPOINT", None)
# The suite's many `council` processes run LiteLLM in-process (each test's own, as before); the
# warm gateway process is tested on purpose in tests/test_gateway_daemon.py, which turns it on
# in its own folder and stops every process it started.
os.environ["COUNCIL_GATEWAY"] = "off"


@pytest.fixture
def model_server() -> Iterator[ScriptedModelServer]:
    """A scripted OpenAI-compatible server on 127.0.0.1, stopped after the test."""
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def env_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Council's cache for test environments, shared by the tests of a session (as by runs)."""
    root = tmp_path_factory.getbasetemp() / "council-cache"
    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(root))
    return root


# one Azurite per session for the doit tests; one tiny GGUF model for the embedded model's tests;
# one scripted model server per module and the session's env cache for the deploy tests and
# for the server's tests (serve_model, serve_cache)
pytest_plugins = [
    "tests.doit_fixtures",
    "tests.local_fixtures",
    "tests.deploy_fixtures",
    "tests.serve_fixtures",
]
