"""Fixtures for the embedded model's tests: one tiny real GGUF file per session, and an
environment in which council has no provider key and chooses that file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.tiny_gguf import write_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture
def local_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model: Path
) -> pytest.MonkeyPatch:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_API_KEY", "LITELLM_PROXY_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("COUNCIL_NO_LOCAL", raising=False)
    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COUNCIL_LOCAL_MODEL", str(tiny_model))
    return monkeypatch
