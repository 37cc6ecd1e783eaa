"""Tests-given mode on JavaScript (node --test) and Java (JUnit 5) exercises."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from council.config import parse_config
from council.events import Emitter
from council.pipelines.run import TddFlow
from council.store import Store
from tests.fakes import council_script as cs

TASK = "Implement isLeap(year): true for Gregorian leap years."
PLAN = json.dumps(
    {
        "summary": "implement isLeap",
        "scope": "leap",
        "tasks": [{"id": "T1", "title": "isLeap", "acceptance_criteria": ["given tests pass"]}],
    }
)
CONTEXT = json.dumps({"files": [], "notes": ""})
REVIEW = json.dumps({"verdict": "approve", "summary": "Correct.", "comments": []})


@dataclass
class Exercise:
    files: dict[str, str]
    tests: str  # the given test file
    code: str  # the file Builder edits
    stub_line: str
    right_line: str
    wrong_line: str


JS = Exercise(
    files={
        "package.json": '{"name": "leap", "type": "module", "scripts": {"test": "node --test"}}\n',
        "leap.js": "export function isLeap(year) {\n  throw new Error('Remove this line');\n}\n",
        "leap.test.js": (
            "import { test } from 'node:test';\n"
            "import assert from 'node:assert/strict';\n"
            "import { isLeap } from './leap.js';\n\n"
            "test('2015 is not', () => assert.equal(isLeap(2015), false));\n"
            "test('1996 is', () => assert.equal(isLeap(1996), true));\n"
            "test('2100 is not', () => assert.equal(isLeap(2100), false));\n"
            "test('2000 is', () => assert.equal(isLeap(2000), true));\n"
        ),
    },
    tests="leap.test.js",
    code="leap.js",
    stub_line="  throw new Error('Remove this line');",
    right_line="  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);",
    wrong_line="  return year % 4 === 0;",
)

JAVA = Exercise(
    files={
        "src/main/java/Leap.java": (
            "public class Leap {\n"
            "    public static boolean isLeap(int year) {\n"
            '        throw new UnsupportedOperationException("Delete this statement");\n'
            "    }\n"
            "}\n"
        ),
        "src/test/java/LeapTest.java": (
            "import static org.junit.jupiter.api.Assertions.assertEquals;\n\n"
            "import org.junit.jupiter.api.Test;\n\n"
            "class LeapTest {\n"
            "    @Test void notDivisibleBy4() { assertEquals(false, Leap.isLeap(2015)); }\n"
            "    @Test void divisibleBy4() { assertEquals(true, Leap.isLeap(1996)); }\n"
            "    @Test void centuryNot400() { assertEquals(false, Leap.isLeap(2100)); }\n"
            "    @Test void divisibleBy400() { assertEquals(true, Leap.isLeap(2000)); }\n"
            "}\n"
        ),
    },
    tests="src/test/java/LeapTest.java",
    code="src/main/java/Leap.java",
    stub_line='        throw new UnsupportedOperationException("Delete this statement");',
    right_line="        return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);",
    wrong_line="        return year % 4 == 0;",
)


def _edit(path: str, old: str, new: str) -> str:
    block = f"<<<<<<< SEARCH\n{old}\n=======\n{new}\n>>>>>>> REPLACE"
    return f"Here is the change.\n\n{path}\n```\n{block}\n```\n"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def _repo(root: Path, exercise: Exercise) -> Path:
    for name, text in exercise.files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "exercise")
    return root


def _run(repo: Path, server, exercise: Exercise, events: list):
    emit = Emitter()
    emit.subscribe(events.append)
    pipeline = TddFlow.start(
        repo=repo,
        feature=TASK,
        config=parse_config(cs.council_yaml(server)),
        store=Store.for_repo(repo),
        emit=emit,
        given_tests=[exercise.tests],
    )
    return pipeline.execute()


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "council-cache"))


@pytest.mark.slow
@pytest.mark.parametrize("exercise", [JS, JAVA], ids=["javascript", "java"])
def test_stub_red_then_right_answer_green(exercise, tmp_path, model_server):
    repo = _repo(tmp_path, exercise)
    model_server.script("pacer", PLAN)
    model_server.script("maven", CONTEXT)
    model_server.script("builder", _edit(exercise.code, exercise.stub_line, exercise.right_line))
    model_server.script("guardian", REVIEW)
    events: list = []
    outcome = _run(repo, model_server, exercise, events)

    assert outcome.status == "green", outcome.reason
    reports = [e for e in events if e.kind == "tests_reported"]
    red = next(e for e in reports if e.phase == "red-1")
    assert red.passed == 0 and red.failed + red.errors >= 4
    last = reports[-1]
    assert last.passed == 4 and last.failed == 0 and last.errors == 0
    assert (
        _git(repo, "show", f"{outcome.branch}:{exercise.tests}") == exercise.files[exercise.tests]
    )


@pytest.mark.slow
@pytest.mark.parametrize("exercise", [JS, JAVA], ids=["javascript", "java"])
def test_wrong_answer_then_fix_takes_two_iterations(exercise, tmp_path, model_server):
    repo = _repo(tmp_path, exercise)
    model_server.script("pacer", PLAN)
    model_server.script("maven", CONTEXT)
    model_server.script("builder", _edit(exercise.code, exercise.stub_line, exercise.wrong_line))
    model_server.script("artisan", _edit(exercise.code, exercise.wrong_line, exercise.right_line))
    model_server.script("guardian", REVIEW)
    events: list = []
    outcome = _run(repo, model_server, exercise, events)

    assert outcome.status == "green", outcome.reason
    phases = {e.phase: e for e in events if e.kind == "tests_reported"}
    assert phases["iteration-1"].failed == 1 and phases["iteration-1"].passed == 3
    assert phases["iteration-2"].failed == 0 and phases["iteration-2"].passed == 4


@pytest.mark.slow
def test_java_tests_that_need_an_absent_library_stop_naming_it(tmp_path, model_server):
    """No test compiles because Gson is not in the project: that is not missing feature code,
    and no Builder call can fix it; the run stops saying what to add and where."""
    tests = (
        JAVA.files[JAVA.tests]
        .replace(
            "import org.junit.jupiter.api.Test;\n",
            "import org.junit.jupiter.api.Test;\nimport com.google.gson.Gson;\n",
        )
        .replace(
            "    @Test void divisibleBy400()",
            "    @Test void asJson() {\n"
            '        assertEquals("true", new Gson().toJson(Leap.isLeap(2000)));\n'
            "    }\n"
            "    @Test void divisibleBy400()",
        )
    )
    exercise = Exercise(**{**JAVA.__dict__, "files": {**JAVA.files, JAVA.tests: tests}})
    repo = _repo(tmp_path, exercise)
    model_server.script("pacer", PLAN)
    model_server.script("maven", CONTEXT)
    events: list = []
    outcome = _run(repo, model_server, exercise, events)

    assert outcome.status == "failed"
    assert "package com.google.gson does not exist" in outcome.reason
    assert "a library this project does not have" in outcome.reason
    assert "lib/ (lib/*.jar is on the test classpath)" in outcome.reason
    assert not model_server.requests_for("builder")
    red = next(e for e in events if e.kind == "tests_reported" and e.phase == "red-1")
    assert red.passed == 0 and red.errors >= 1
