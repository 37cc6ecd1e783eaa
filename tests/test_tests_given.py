"""Tests-given mode (`council run --tests`): tests by a person, frozen at once, no Guardian."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from council.config import parse_config
from council.errors import UsageError
from council.events import Emitter
from council.pipelines.run import TddFlow
from council.store import Store
from tests.fakes import council_script as cs

INSTRUCTIONS = "Given a year, report if it is a leap year (Gregorian rules).\n"
STUB = """def leap_year(year):
    pass
"""
TESTS = """import unittest

from leap import leap_year


class LeapTest(unittest.TestCase):
    def test_year_not_divisible_by_4(self):
        self.assertIs(leap_year(2015), False)

    def test_year_divisible_by_4_not_by_100(self):
        self.assertIs(leap_year(1996), True)

    def test_year_divisible_by_100_not_by_400(self):
        self.assertIs(leap_year(2100), False)

    def test_year_divisible_by_400(self):
        self.assertIs(leap_year(2000), True)
"""

PLAN = json.dumps(
    {
        "summary": "implement leap_year",
        "scope": "leap",
        "tasks": [
            {
                "id": "T1",
                "title": "leap_year",
                "acceptance_criteria": ["the given tests in leap_test.py pass"],
                "files": ["leap.py"],
            }
        ],
    }
)
CONTEXT = json.dumps({"files": ["leap.py", "leap_test.py"], "notes": "plain functions"})


def _answer(body: str) -> str:
    return f"""Here is the implementation.

leap.py
```python
<<<<<<< SEARCH
def leap_year(year):
    pass
=======
def leap_year(year):
{body}
>>>>>>> REPLACE
```
"""


RIGHT = _answer("    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)")
WRONG = _answer("    return year % 4 == 0")
FIX = """The century rule was missing.

leap.py
```python
<<<<<<< SEARCH
    return year % 4 == 0
=======
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
>>>>>>> REPLACE
```
"""
EDIT_TEST = """The tests look wrong to me; I relaxed one.

leap_test.py
```python
<<<<<<< SEARCH
        self.assertIs(leap_year(2100), False)
=======
        self.assertIs(leap_year(2100), True)
>>>>>>> REPLACE
```
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def exercise(tmp_path, monkeypatch, tmp_path_factory) -> Path:
    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "council-cache"))
    repo = tmp_path / "leap"
    repo.mkdir()
    (repo / "INSTRUCTIONS.md").write_text(INSTRUCTIONS)
    (repo / "leap.py").write_text(STUB)
    (repo / "leap_test.py").write_text(TESTS)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "exercise")
    return repo


def _run(repo: Path, server, events: list | None = None, tests=("leap_test.py",), **limits):
    config = parse_config(cs.council_yaml(server, **limits))
    emit = Emitter()
    if events is not None:
        emit.subscribe(events.append)
    pipeline = TddFlow.start(
        repo=repo,
        feature=INSTRUCTIONS,
        config=config,
        store=Store.for_repo(repo),
        emit=emit,
        given_tests=list(tests),
    )
    return pipeline.execute()


def _script(server, *build: str) -> None:
    server.script("pacer", PLAN)
    server.script("maven", CONTEXT)
    server.script("builder", build[0])
    if len(build) > 1:
        server.script("artisan", *build[1:])
    server.script("guardian", cs.REVIEW_REPLY.replace("app/main.py", "leap.py"))


@pytest.mark.slow
def test_stub_is_red_then_a_correct_answer_is_green(exercise, model_server):
    _script(model_server, RIGHT)
    events: list = []
    outcome = _run(exercise, model_server, events)

    assert outcome.status == "green", outcome.reason
    reports = [e for e in events if e.kind == "tests_reported"]
    red = next(e for e in reports if e.phase == "red-1")
    assert red.failed == 4 and red.passed == 0
    assert reports[-1].passed == 4 and reports[-1].failed == 0
    # Guardian wrote no tests: its only call was the review.
    assert len(model_server.requests_for("guardian")) == 1
    assert "Review (approve)" in _git(exercise, "log", "-1", "--format=%b", outcome.branch)
    assert _git(exercise, "show", f"{outcome.branch}:leap_test.py") == TESTS


@pytest.mark.slow
def test_wrong_answer_then_a_fix_takes_two_iterations(exercise, model_server):
    _script(model_server, WRONG, FIX)
    events: list = []
    outcome = _run(exercise, model_server, events)

    assert outcome.status == "green", outcome.reason
    phases = [(e.phase, e.failed) for e in events if e.kind == "tests_reported"]
    assert ("iteration-1", 1) in phases and ("iteration-2", 0) in phases
    assert (
        "test_year_divisible_by_100_not_by_400"
        in (model_server.requests_for("artisan")[0]["messages"][-1]["content"])
    )


@pytest.mark.slow
def test_editing_a_given_test_is_refused(exercise, model_server):
    _script(model_server, EDIT_TEST)
    model_server.script("builder", RIGHT)
    events: list = []
    outcome = _run(exercise, model_server, events)

    assert outcome.status == "green", outcome.reason
    refused = [e for e in events if e.kind == "edit_refused"]
    assert [e.path for e in refused] == ["leap_test.py"] and "frozen" in refused[0].reason
    assert _git(exercise, "show", f"{outcome.branch}:leap_test.py") == TESTS


@pytest.mark.slow
def test_given_tests_that_already_pass_stop_the_run(exercise, model_server):
    (exercise / "leap.py").write_text(
        "def leap_year(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n"
    )
    _git(exercise, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "solved")
    model_server.script("pacer", PLAN)
    model_server.script("maven", CONTEXT)
    outcome = _run(exercise, model_server)

    assert outcome.status == "failed"
    assert "already pass" in outcome.reason
    assert not model_server.requests_for("builder")


def test_given_tests_must_exist_in_the_repository(exercise, model_server):
    with pytest.raises(UsageError, match="no such file"):
        _run(exercise, model_server, tests=("missing_test.py",))
    with pytest.raises(UsageError, match="not inside the repository"):
        _run(exercise, model_server, tests=("/etc/hostname",))
