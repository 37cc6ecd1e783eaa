"""Helpers for the server's tests: a real `council serve` process on 127.0.0.1, small
repositories (the leap-year exercise, tests given) and scripted persona answers for them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests import test_tests_given as tg
from tests.fakes import council_script as cs
from tests.fakes.model_server import ScriptedModelServer

ROOT = Path(__file__).resolve().parents[2]
# The leap-year exercise of the tests-given mode's own tests: a stub, its tests, the answer.
INSTRUCTIONS, STUB, TESTS, PLAN, CONTEXT, RIGHT = (
    tg.INSTRUCTIONS,
    tg.STUB,
    tg.TESTS,
    tg.PLAN,
    tg.CONTEXT,
    tg.RIGHT,
)
REVIEW = cs.REVIEW_REPLY.replace("app/main.py", "leap.py")


def spinning(marker: str) -> str:
    """An answer whose code starts a detached helper (`marker` in its command line) and then
    spins: the test run hangs until someone kills it."""
    return tg._answer(
        "    import subprocess\n"
        "    import sys\n\n"
        "    subprocess.Popen(\n"
        "        [sys.executable, '-c', 'import time\\nwhile True:\\n    time.sleep(0.2)',\n"
        f"         {marker!r}],\n"
        "        start_new_session=True,\n"
        "    )\n"
        "    while True:\n"
        "        pass"
    )


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def leap_repo(dest: Path, model: ScriptedModelServer) -> Path:
    """A git repository holding the leap exercise, with a council.yaml (not committed, as a
    user keeps it) that points every persona at the scripted model server."""
    dest.mkdir(parents=True)
    (dest / "leap.py").write_text(STUB)
    (dest / "leap_test.py").write_text(TESTS)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "exercise")
    (dest / "council.yaml").write_text(cs.council_yaml(model))
    (dest / ".git" / "info" / "exclude").write_text("council.yaml\n.council/\n")
    return dest


def script_runs(model: ScriptedModelServer, n: int = 1, build: str = RIGHT) -> None:
    """Answers for `n` tests-given runs of the leap exercise (one per persona call)."""
    for _ in range(n):
        model.script("pacer", PLAN)
        model.script("maven", CONTEXT)
        model.script("builder", build)
        model.script("guardian", REVIEW)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    url: str
    data: Path
    process: subprocess.Popen

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def council(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "council.cli", *args],
        capture_output=True,
        text=True,
        env=env or os.environ.copy(),
        timeout=120,
        check=False,
    )


def server_env(cache: Path | None = None) -> dict[str, str]:
    """The environment of a server or worker the tests start."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    if cache is not None:
        env["COUNCIL_CACHE_DIR"] = str(cache)
    return env


@contextmanager
def serve(
    data: Path, *args: str, workers: int = 2, lease_s: float = 3.0, cache: Path | None = None
) -> Iterator[Served]:
    """`council serve` as its own process on a free loopback port, stopped with SIGTERM;
    `cache`: the cache of test environments its runs share (COUNCIL_CACHE_DIR)."""
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    log = open(data / "serve.log", "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "council.cli",
            "serve",
            "--port",
            str(port),
            "--data",
            str(data),
            "--workers",
            str(workers),
            "--lease",
            str(lease_s),
            *args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=server_env(cache),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(url) or process.poll() is not None, 90)
        if process.poll() is not None:
            raise RuntimeError(f"council serve exited: {(data / 'serve.log').read_text()}")
        yield Served(url=url, data=data, process=process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(predicate, timeout: float, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"not true within {timeout} s: {predicate}")
