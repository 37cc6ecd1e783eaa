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
    event = ModelProgress(
        call_id="c",
        persona="pacer",
        alias="pacer",
        model="openai/gpt-4o",
        elapsed_s=12.4,
        tokens=318,
        tokens_per_s=27.1,
    )
    assert live == "  … " + progress_text(event)
    # In a narrow terminal the model gives way first, then the words.
    assert progress_text(event, 40) == "Pacer · 12.4s · 318 tokens · 27.1 tok/s"
    assert progress_text(event, 30) == "Pacer 12.4s 318t 27.1/s"


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


def _command_lines() -> list[str]:
    """Every `council ...` command the README shows: in a shell block (a pipe or `&&` splits a
    line into commands; comments and the `$ ` prompt are left out) or quoted in a sentence."""
    found = []
    for lang, block in re.findall(r"^```([^\n]*)\n(.*?)^```", README, flags=re.S | re.M):
        if lang not in ("bash", "sh", ""):
            continue
        for line in block.splitlines():
            code = re.split(r"\s#\s", line.removeprefix("$ "))[0]
            for part in re.split(r"\s(?:\||&&|&)\s?", code):
                part = part.strip().rstrip("&").strip()
                if part.startswith("council "):
                    found.append(part)
    prose = re.sub(r"^```.*?^```", "", README, flags=re.S | re.M)
    found += re.findall(r"`(council [^`]+)`", prose)  # `council ci init` in a sentence
    return found


def test_every_command_the_readme_shows_exists_with_its_options() -> None:
    """Each command path resolves and each option it names is that command's (so a pasted
    example is not refused with "No such option"); arguments are placeholders and not checked."""
    import shlex

    import typer

    from council.cli import app

    root = typer.main.get_command(app)
    lines = _command_lines()
    assert len(lines) > 30  # the check reads the README's blocks at all
    wrong = []
    for line in lines:
        try:
            tokens = shlex.split(line.replace("[", " ").replace("]", " "))[1:]
        except ValueError:
            tokens = line.replace("[", " ").replace("]", " ").split()[1:]
        command, chosen = root, [root]
        while tokens and hasattr(command, "commands"):
            names = tokens[0].split("|")  # `status|logs|stop`: each must exist
            if names[0] not in command.commands:
                break
            wrong += [f"{line}: no command '{n}'" for n in names if n not in command.commands]
            chosen = [command.commands[n] for n in names if n in command.commands]
            command = chosen[0]
            tokens.pop(0)
        if hasattr(command, "commands") and tokens and not tokens[0].startswith("-"):
            wrong.append(f"{line}: no command '{tokens[0]}'")
            continue
        # An option may belong to any of the alternatives (`logs [--follow]|rollback`).
        known = {o for c in chosen for p in c.params for o in (*p.opts, *p.secondary_opts)}
        known.add("--help")
        for token in tokens:
            option = token.split("=")[0]
            if re.fullmatch(r"--?[a-z][a-z-]*", option) and option not in known:
                wrong.append(f"{line}: {command.name} has no option {option}")
    assert not wrong, "\n".join(wrong)


def test_the_json_output_the_readme_describes_is_the_programs() -> None:
    from dataclasses import fields

    from council import events
    from council.pipelines.lifecycle import Outcome

    said = README.split("**Machine-readable output.**")[1].split("\n\n")[0]
    kinds = {
        getattr(cls, "model_fields", {}).get("kind").default
        for cls in vars(events).values()
        if isinstance(cls, type) and "kind" in getattr(cls, "model_fields", {})
    }
    named = set(re.findall(r"`([a-z_]+)`", said.split("`kind` names the event:")[1].split(")")[0]))
    assert named and named <= kinds, named - kinds
    outcome = said.split('{"outcome": {...}}')[1]
    assert {f.name for f in fields(Outcome)} - {"details"} <= set(re.findall(r"`(\w+)`", outcome))
