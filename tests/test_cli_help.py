"""What the command line says about itself: help without typer's type artefacts, `runs` at 80
columns, and `council init` writing only the detected languages and naming the key to set."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from council.cli import PROVIDER_NAMES
from council.config import PROVIDERS
from council.store import Store
from tests.test_cli import ROOT, scrubbed_env

COMMANDS = [
    [],
    ["init"],
    ["run"],
    ["resume"],
    ["heal"],
    ["runs"],
    ["show"],
    ["schema"],
    ["deploy"],
    ["deploy", "litellm-config"],
    ["models"],
    ["models", "pull"],
    ["models", "list"],
]


def _council(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "council.cli", *args],
        cwd=cwd,
        env=env or scrubbed_env(Path(tempfile.gettempdir()) / "council-help-cache"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "council")
def test_help_has_no_type_artefacts_and_fits_80_columns(command: list[str]) -> None:
    done = _council(*command, "--help")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "Usage:" in text
    for artefact in ("<bool>", "<str>", "<int>", "<float>", "<path>", "<list[", "{", "}"):
        assert artefact not in text, (artefact, text)
    assert max(len(line) for line in text.splitlines()) <= 80, text


def test_the_provider_names_in_help_are_the_presets() -> None:
    assert tuple(PROVIDER_NAMES) == tuple(PROVIDERS)


def test_runs_is_readable_at_80_columns(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    with Store.for_repo(repo) as store:
        long = "As a user, I want to view my profile: GET /api/v1/users/me/profile returns " * 2
        first = store.create_run(feature=long, repo=str(repo), config={})
        store.update_run(first, status="green", branch="council/" + "x" * 90, total_cost_usd=0.25)
        second = store.create_run(feature="gates", repo=str(repo), config={}, kind="heal")
        store.update_run(second, status="failed", branch="council/heal-20261129-2213")
    done = _council("runs", "--repo", str(repo))  # a pipe: 80 columns
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, done.stdout
    assert lines[0].split() == ["run", "when", "status", "cost", "feature", "/", "branch"]
    row = next(line for line in lines if line.startswith(first))
    assert "green" in row and "$0.2500" in row and row.endswith("…")
    assert any(line.startswith(second) and "heal: gates" in line for line in lines)
    assert any(line.strip() == "council/heal-20261129-2213" for line in lines)


# --- council init ----------------------------------------------------------------------------


def _init(repo: Path, **env: str):
    return _council("init", "--repo", str(repo), env={**scrubbed_env(repo / ".cache"), **env})


def _languages(repo: Path) -> dict:
    return yaml.safe_load((repo / "council.yaml").read_text())["languages"]


def test_init_on_a_node_project_writes_only_javascript(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "web", "scripts": {"test": "jest"}}')
    (tmp_path / "index.js").write_text("module.exports = 1;\n")
    done = _init(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "languages detected: javascript" in done.stdout
    langs = _languages(tmp_path)
    assert list(langs) == ["javascript"]
    assert langs["javascript"]["sast"] == ""  # bandit is Python's
    assert "set OPENAI_API_KEY before running" in done.stdout


def test_init_on_a_java_project_writes_only_java(tmp_path: Path) -> None:
    (tmp_path / "pom.xml").write_text("<project/>\n")
    done = _init(tmp_path, OPENAI_API_KEY="sk-test-not-a-real-key")
    assert done.returncode == 0, done.stderr
    assert list(_languages(tmp_path)) == ["java"]
    assert "before running" not in done.stdout
    assert "read from the environment: OPENAI_API_KEY" in done.stdout


def test_init_on_a_polyglot_repository_writes_each_language_with_its_root(tmp_path: Path) -> None:
    for folder, marker, text in (
        ("src/python", "pyproject.toml", '[project]\nname = "api"\nversion = "0"\n'),
        ("src/nodejs", "package.json", '{"name": "web"}'),
        ("src/java", "pom.xml", "<project/>\n"),
    ):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / marker).write_text(text)
    done = _init(tmp_path)
    assert done.returncode == 0, done.stderr
    langs = _languages(tmp_path)
    assert {name: spec["root"] for name, spec in langs.items()} == {
        "python": "src/python",
        "javascript": "src/nodejs",
        "java": "src/java",
    }
    assert re.search(r"languages detected: (\w+, ){2}\w+", done.stdout)
