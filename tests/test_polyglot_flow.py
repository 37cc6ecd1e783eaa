"""One feature across Python, JavaScript (React) and Java: parallel tracks, one commit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from council.config import parse_config
from council.events import Emitter
from council.pipelines.run import TddFlow
from council.pipelines.tracks import discover_tracks
from council.store import Store
from tests.fakes import council_script as cs
from tests.fakes import fullstack_script as fs


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def fullstack(tmp_path, monkeypatch, tmp_path_factory) -> Path:
    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "council-cache"))
    repo = tmp_path / "profile-fullstack"
    shutil.copytree(fs.EXAMPLE, repo, ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return repo


def test_the_polyglot_layout_is_three_tracks(fullstack, model_server):
    config = parse_config(cs.council_yaml(model_server))
    tracks = discover_tracks(fullstack, config)
    assert sorted((t.language, t.root) for t in tracks) == [
        ("java", "src/java"),
        ("javascript", "src/nodejs"),
        ("python", "src/python"),
    ]
    assert all(not t.solo for t in tracks)
    py = next(t for t in tracks if t.language == "python")
    assert py.is_test_file("src/python/tests/test_x.py")
    assert not py.is_test_file("src/nodejs/tests/x.test.jsx")
    assert py.local("src/python/app/main.py") == "app/main.py"


@pytest.mark.slow
def test_fullstack_feature_all_three_languages_green_in_one_commit(fullstack, model_server):
    model_server.script("pacer", cs.json.dumps(fs.PLAN))
    model_server.script("maven", fs.CONTEXT)
    model_server.script("guardian", *([fs.guardian] * 4))
    model_server.script("builder", *([fs.builder] * 3))
    events: list = []
    config = parse_config(cs.council_yaml(model_server, test_timeout_s=300))
    emit = Emitter()
    emit.subscribe(events.append)
    pipeline = TddFlow.start(
        repo=fullstack,
        feature=fs.FEATURE,
        config=config,
        store=Store.for_repo(fullstack),
        emit=emit,
    )
    outcome = pipeline.execute()

    assert outcome.status == "green", outcome.reason
    reds = {e.language: e for e in events if e.kind == "tests_reported" and e.phase == "red-1"}
    assert set(reds) == {"python", "javascript", "java"}
    assert all(r.passed == 0 for r in reds.values())
    greens = {
        e.language: e for e in events if e.kind == "tests_reported" and e.phase == "iteration-1"
    }
    assert {lang: (e.failed, e.errors) for lang, e in greens.items()} == {
        "python": (0, 0),
        "javascript": (0, 0),
        "java": (0, 0),
    }
    log = _git(fullstack, "log", "--format=%s", f"main..{outcome.branch}").splitlines()
    assert [line.split(":")[0] for line in log] == ["feat(profile)", "test(profile)"]
    files = _git(fullstack, "show", "--name-only", "--format=", outcome.branch).split()
    assert sorted(files) == [
        "src/java/src/main/java/com/example/profile/ProfileView.java",
        "src/nodejs/src/UserProfileDisplay.jsx",
        "src/python/app/main.py",
    ]
    # node_modules and build output never reach the branch.
    tracked = _git(fullstack, "ls-tree", "-r", "--name-only", outcome.branch)
    assert "node_modules" not in tracked and ".class" not in tracked


@pytest.mark.slow
def test_a_missing_toolchain_is_reported_and_the_other_languages_still_run(
    fullstack, model_server, tmp_path
):
    from council.toolchains import JavaToolchain

    model_server.script("pacer", cs.json.dumps(fs.PLAN))
    model_server.script("maven", fs.CONTEXT)
    model_server.script("guardian", *([fs.guardian] * 3))
    model_server.script("builder", *([fs.builder] * 2))
    events: list = []
    emit = Emitter()
    emit.subscribe(events.append)
    pipeline = TddFlow.start(
        repo=fullstack,
        feature=fs.FEATURE,
        config=parse_config(cs.council_yaml(model_server, test_timeout_s=300)),
        store=Store.for_repo(fullstack),
        emit=emit,
    )
    # A machine without Debian's junit5 jars: a real toolchain that cannot find its launcher.
    empty = tmp_path / "no-jars"
    empty.mkdir()
    java = next(t for t in pipeline.tracks if t.language == "java")
    java.toolchain = JavaToolchain(java_lib=empty)
    outcome = pipeline.execute()

    assert outcome.status == "green", outcome.reason
    assert "skipped (toolchain missing): java" in outcome.reason
    errors = [e.message for e in events if e.kind == "notice" and e.level == "error"]
    assert len(errors) == 1 and errors[0].startswith("java skipped") and "junit5" in errors[0]
    languages = {e.language for e in events if e.kind == "tests_reported"}
    assert languages == {"python", "javascript"}
    files = _git(fullstack, "show", "--name-only", "--format=", outcome.branch).split()
    assert sorted(files) == ["src/nodejs/src/UserProfileDisplay.jsx", "src/python/app/main.py"]
