"""Fixtures of the server's tests (`council serve`): one scripted model server and the
session's cache of test environments per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.model_server import ScriptedModelServer


@pytest.fixture(scope="module")
def serve_model() -> Iterator[ScriptedModelServer]:
    """One scripted model server for a module's runs."""
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def serve_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Council's cache of test environments, shared by the session's runs (as by a server's):
    set for the module, so the servers it starts inherit it."""
    root = tmp_path_factory.getbasetemp() / "council-cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COUNCIL_CACHE_DIR", str(root))
        yield root
