"""The README quotes what the program really prints, names every system package scripts/setup
installs, and links nothing outside the repository."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from council.events import ModelProgress
from council.interrupts import Interrupted
from council.render import progress_text
from council.workspace.run_lock import RepositoryBusy, RunLock
from tests.fakes import council_script as cs
from tests.test_cli import ROOT, scrubbed_env

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(text: str) -> list[str]:
    """The contents of every fenced block."""
    return re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)


def _block(first_line: str) -> str:
    found = [b for b in _blocks(README) if b.startswith(first_line)]
    assert len(found) == 1, f"README has {len(found)} blocks starting {first_line!r}"
    return found[0].rstrip("\n")


def _council(home: Path, *args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    full = {**scrubbed_env(home / "unused"), "HOME": str(home), **env}
    full.pop("COUNCIL_CACHE_DIR")  # the default place, under HOME: the README says ~/.cache
    full.pop("XDG_CACHE_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "council.cli", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _as_quoted(text: str, home: Path) -> str:
    return text.replace(str(home), "~").rstrip("\n")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return cs.make_repo(tmp_path / "svc")


def test_offline_message(home: Path, repo: Path) -> None:
    done = _council(home, "run", "a feature", "--repo", str(repo), COUNCIL_OFFLINE="1")
    assert done.returncode == 2, done.stderr
    assert _as_quoted(done.stderr, home) == _block("error: the local model ")


def test_no_model_message(home: Path, repo: Path) -> None:
    done = _council(home, "run", "a feature", "--repo", str(repo), COUNCIL_NO_LOCAL="1")
    assert done.returncode == 2, done.stderr
    assert _as_quoted(done.stderr, home) == _block("error: No model is configured")


def test_setup_fail_fast_message(home: Path) -> None:
    done = _council(home, "models", "check", COUNCIL_OFFLINE="1")
    assert done.returncode == 2
    quoted = _block("error: no model can be had").splitlines()
    assert _as_quoted(done.stderr, home).splitlines() == quoted[:2]
    setup = (ROOT / "scripts" / "setup").read_text()
    llama = re.search(r'^\s*llama="([^"]+)"', setup, flags=re.M)
    assert llama is not None
    said = re.search(r'echo "(setup: not building \$llama[^"]*)"', setup)
    assert said is not None
    assert said[1].replace("$llama", llama[1]) == quoted[2]


def test_model_sizes_come_from_the_catalogue(home: Path) -> None:
    done = _council(home, "models", "list", "--all")
    assert done.returncode == 0, done.stderr
    quoted = _block("$ council models list --all").splitlines()
    catalogue = quoted[quoted.index("catalogue (council models pull NAME):") :]
    real = done.stdout.splitlines()
    start = real.index("catalogue (council models pull NAME):")
    assert real[start : start + len(catalogue)] == catalogue


def test_invalid_configuration_message(home: Path, repo: Path) -> None:
    quoted = _block("error: invalid configuration")
    (repo / "council.yaml").write_text(
        "models:\n"
        "  - {model_name: m, litellm_params: {model: openai/gpt-4o-mini}}\n"
        "personas:\n"
        "  pacer: {model: m, temprature: 0.1}\n"
    )
    done = _council(home, "run", "a feature", "--repo", str(repo))
    assert done.returncode == 2
    assert done.stderr.rstrip("\n").endswith(quoted.splitlines()[-1])
    assert done.stderr.startswith(quoted.splitlines()[0])


def test_interrupt_progress_and_lock_lines_are_the_programs() -> None:
    interrupted = Interrupted(signal.SIGTERM, "r-20261129-4e531d").message()
    assert _block("interrupted (SIGTERM)") == interrupted

    live = _block("▶ plan (Pacer)").splitlines()[1]
    shown = progress_text(
        ModelProgress(
            call_id="c",
            persona="pacer",
            alias="pacer",
            model="openai/gpt-4o",
            elapsed_s=12.4,
            tokens=318,
            tokens_per_s=27.1,
        )
    )
    assert live == "  … " + shown


def test_the_lock_message_is_the_programs(tmp_path: Path) -> None:
    with RunLock.acquire(tmp_path, "council run 'x'"), pytest.raises(RepositoryBusy) as refused:
        RunLock.acquire(tmp_path, "council run 'y'")
    quoted = re.search(r"\(`(another council run [^`]*)`\)", README)
    assert quoted is not None
    prefix = quoted[1].split(" pid ")[0]
    assert refused.value.message.startswith(prefix + " pid ")


def test_every_system_package_setup_installs_is_named() -> None:
    setup = (ROOT / "scripts" / "setup").read_text()
    packages = set()
    for group in re.findall(r"need(?:_build)?\+=\(([^)]*)\)", setup):
        packages.update(group.split())
    assert {"git", "bubblewrap", "cmake", "g++"} <= packages
    for package in packages:
        assert f"`{package}`" in README, package


def test_no_link_leaves_the_repository() -> None:
    prose = re.sub(r"^```.*?^```", "", README, flags=re.S | re.M)
    for target in re.findall(r"\]\(([^)]+)\)", prose):
        if target.startswith("#"):
            continue
        assert "://" not in target, target
        assert (ROOT / target.split("#")[0]).exists(), target
    plain = re.sub(r"`[^`]*`", "", prose)
    assert "://" not in plain, "a bare URL in the prose"
    assert not re.search(r"(?<!\.)\.\./", prose), "a path outside the repository"
