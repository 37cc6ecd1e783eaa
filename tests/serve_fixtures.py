"""Fixtures of the server's tests (`council serve`), one of each per session: a scripted model
server, the cache of test environments, an embedded-pool server (the API, dashboard and schema
tests share it), a redis-server on 127.0.0.1 and a headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import serve as sv
from tests.fakes.model_server import ScriptedModelServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(__file__).parent / "artifacts" / "dashboard"


@pytest.fixture(scope="session")
def serve_model() -> Iterator[ScriptedModelServer]:
    """One scripted model server for the session's server runs."""
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture(scope="session")
def serve_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Council's cache of test environments, shared by the session's runs (as by a server's);
    the servers and workers the tests start are given it."""
    return tmp_path_factory.getbasetemp() / "council-cache"


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, serve_cache: Path) -> Iterator[sv.Served]:
    """One `council serve` (2 embedded workers, no keys) for the session."""
    with sv.serve(tmp_path_factory.mktemp("server"), cache=serve_cache) as server:
        yield server


def _missing(what: str) -> None:
    """In CI a missing service is a failure (a skip there proves nothing); locally, a skip."""
    if os.environ.get("CI"):
        pytest.fail(what)
    pytest.skip(what)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server on a free loopback port, nothing saved to disk."""
    if shutil.which("redis-server") is None:
        _missing("redis-server is not installed (scripts/setup --dev installs it)")
    import redis

    port = sv.free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)

    def pings() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        sv.wait_until(pings, 20)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium (Debian's) driven by Playwright; screenshots go to SHOTS."""
    if CHROMIUM is None:
        _missing("chromium is not installed (scripts/setup --dev installs it)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()
