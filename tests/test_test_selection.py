"""Test selection in `council run`: the loop runs the tests that matter, the full suite runs once
as the final gate, no tree is tested twice, and `--tests` takes test ids in every language.

Real git, real pytest / node --test / JUnit, real LiteLLM against the scripted model server;
test runs are counted from the run's own events.
"""

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
from tests import test_tests_given as leap
from tests import test_tests_given_polyglot as poly
from tests.fakes import council_script as cs

SHOP = {
    "calc.py": "def add(a, b):\n    return a - b\n",
    "report.py": "from calc import add\n\n\ndef total(xs):\n    out = 0\n"
    "    for x in xs:\n        out = add(out, x)\n    return out\n",
    "other.py": "def name():\n    return 'other'\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
    "tests/test_report.py": "from report import total\n\n\ndef test_empty():\n"
    "    assert total([]) == 0\n",
    "tests/test_other.py": "from other import name\n\n\ndef test_name():\n"
    "    assert name() == 'other'\n",
    # The slow part of the suite: nothing the change touches reaches it.
    "tests/test_slow.py": "import time\n\n\ndef test_slow():\n    time.sleep(2)\n",
}
SHOP_PLAN = json.dumps(
    {
        "summary": "fix add",
        "scope": "calc",
        "tasks": [{"id": "T1", "title": "add adds", "acceptance_criteria": ["tests pass"]}],
    }
)
SHOP_FIX = """The operator was wrong.

calc.py
```python
<<<<<<< SEARCH
    return a - b
=======
    return a + b
>>>>>>> REPLACE
```
"""
REVIEW = json.dumps({"verdict": "approve", "summary": "Correct.", "comments": []})


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def _repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return poly._repo(root, poly.Exercise(files, "", "", "", "", ""))


def _shop(tmp_path: Path, server) -> Path:
    """The shop project, with the model scripted to fix calc.add in one go."""
    server.script("pacer", SHOP_PLAN)
    server.script("maven", json.dumps({"files": ["calc.py"], "notes": ""}))
    server.script("builder", SHOP_FIX)
    server.script("guardian", REVIEW)
    return _repo(tmp_path / "shop", SHOP)


def _run(
    repo: Path,
    server,
    tests: list[str],
    events: list,
    feature: str = "fix",
    config: str = "",
    **limits,
):
    emit = Emitter()
    emit.subscribe(events.append)
    pipeline = TddFlow.start(
        repo=repo,
        feature=feature,
        config=parse_config(config or cs.council_yaml(server, **limits)),
        store=Store.for_repo(repo),
        emit=emit,
        given_tests=tests,
    )
    return pipeline.execute()


def _test_runs(events: list) -> list:
    """One tests_reported event per real test run (a reused result is a notice, not a run)."""
    return [e for e in events if e.kind == "tests_reported"]


def _test_commands(events: list) -> list[list[str]]:
    """The test runner commands that ran (pytest, node --test, the JUnit launcher)."""

    def is_test_run(argv: list[str]) -> bool:
        return (
            argv[1:3] == ["-m", "pytest"]
            or argv[1:2] == ["--test"]
            or (Path(argv[0]).name == "java" and "-jar" in argv)
        )

    return [e.argv for e in events if e.kind == "command_run" and is_test_run(e.argv)]


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "council-cache"))


@pytest.mark.slow
def test_loop_runs_selected_tests_and_the_slow_full_suite_once_at_the_end(tmp_path, model_server):
    repo = _shop(tmp_path, model_server)
    events: list = []
    outcome = _run(repo, model_server, ["tests/test_calc.py"], events)

    assert outcome.status == "green", outcome.reason
    runs = _test_runs(events)
    assert [(e.phase, e.scope) for e in runs] == [
        ("red-1", "selected"),
        ("iteration-1", "selected"),
        ("full-suite", "full"),
    ]
    # Red: the given test only. The loop: the given test and the one the change reaches
    # through report.py's import of calc; never the slow or the unrelated test.
    assert (runs[0].passed, runs[0].failed) == (0, 1)
    assert (runs[1].passed, runs[1].failed) == (2, 0)
    assert runs[2].passed == 4 and runs[2].failed == 0
    commands = _test_commands(events)
    assert len(commands) == 3
    loop = " ".join(commands[1])
    assert "tests/test_calc.py" in loop and "tests/test_report.py" in loop
    assert "test_slow" not in loop and "test_other" not in loop
    assert not any("test_slow" in " ".join(argv) for argv in commands[:2])


@pytest.mark.slow
def test_full_suite_always_runs_the_whole_suite_in_the_loop(tmp_path, model_server):
    repo = _shop(tmp_path, model_server)
    events: list = []
    outcome = _run(repo, model_server, ["tests/test_calc.py"], events, full_suite="always")

    assert outcome.status == "green", outcome.reason
    runs = _test_runs(events)
    # The loop's run is the full suite already: the final gate reuses it.
    assert [(e.phase, e.scope) for e in runs] == [("red-1", "selected"), ("iteration-1", "full")]
    assert any(e.kind == "notice" and "result reused" in e.message for e in events)


@pytest.mark.slow
def test_one_iteration_tests_given_run_makes_two_test_runs(tmp_path, model_server):
    repo = _repo(tmp_path / "leap", {"leap.py": leap.STUB, "leap_test.py": leap.TESTS})
    leap._script(model_server, leap.RIGHT)
    events: list = []
    outcome = _run(repo, model_server, ["leap_test.py"], events)

    assert outcome.status == "green", outcome.reason
    assert [e.phase for e in _test_runs(events)] == ["red-1", "iteration-1"]
    assert len(_test_commands(events)) == 2
    reused = [e.message for e in events if e.kind == "notice" and "result reused" in e.message]
    assert len(reused) == 1 and "full-suite" in reused[0] and "iteration-1" in reused[0]


@pytest.mark.slow
def test_each_later_iteration_adds_one_test_run(tmp_path, model_server):
    repo = _repo(tmp_path / "leap", {"leap.py": leap.STUB, "leap_test.py": leap.TESTS})
    leap._script(model_server, leap.WRONG, leap.FIX)
    events: list = []
    outcome = _run(repo, model_server, ["leap_test.py"], events)

    assert outcome.status == "green", outcome.reason
    assert [e.phase for e in _test_runs(events)] == ["red-1", "iteration-1", "iteration-2"]
    assert len(_test_commands(events)) == 3


@pytest.mark.slow
def test_tests_takes_a_pytest_node_id(tmp_path, model_server):
    repo = _repo(tmp_path / "leap", {"leap.py": leap.STUB, "leap_test.py": leap.TESTS})
    leap._script(model_server, leap.RIGHT)
    events: list = []
    outcome = _run(
        repo, model_server, ["leap_test.py::LeapTest::test_year_divisible_by_400"], events
    )

    assert outcome.status == "green", outcome.reason
    runs = _test_runs(events)
    assert (runs[0].phase, runs[0].passed, runs[0].failed) == ("red-1", 0, 1)
    assert runs[0].failures == ["leap_test.py::LeapTest::test_year_divisible_by_400"]
    assert (runs[1].phase, runs[1].passed, runs[1].failed) == ("iteration-1", 1, 0)
    # The final gate runs the whole file (the suite), once.
    assert (runs[2].phase, runs[2].scope, runs[2].passed) == ("full-suite", "full", 4)
    assert "leap_test.py::LeapTest::test_year_divisible_by_400" in _test_commands(events)[0]


@pytest.mark.slow
def test_tests_takes_a_pytest_keyword_expression(tmp_path, model_server):
    repo = _repo(tmp_path / "leap", {"leap.py": leap.STUB, "leap_test.py": leap.TESTS})
    leap._script(model_server, leap.RIGHT)
    events: list = []
    spec = "leap_test.py -k 'divisible_by_400 or not_by_400'"
    outcome = _run(repo, model_server, [spec], events)

    assert outcome.status == "green", outcome.reason
    red = _test_runs(events)[0]
    assert sorted(red.failures) == [
        "leap_test.py::LeapTest::test_year_divisible_by_100_not_by_400",
        "leap_test.py::LeapTest::test_year_divisible_by_400",
    ]
    assert red.passed == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("exercise", "spec", "test_id"),
    [
        (poly.JS, "leap.test.js::2000 is", "leap.test.js::2000 is"),
        (poly.JS, "leap.test.js -t '2000 is'", "leap.test.js::2000 is"),
        (poly.JAVA, "LeapTest#divisibleBy400", "src/test/java/LeapTest.java::divisibleBy400"),
    ],
    ids=["javascript-id", "javascript-t", "java"],
)
def test_tests_takes_test_ids_in_javascript_and_java(
    exercise, spec, test_id, tmp_path, model_server
):
    repo = poly._repo(tmp_path, exercise)
    model_server.script("pacer", poly.PLAN)
    model_server.script("maven", poly.CONTEXT)
    model_server.script(
        "builder", poly._edit(exercise.code, exercise.stub_line, exercise.right_line)
    )
    model_server.script("guardian", REVIEW)
    events: list = []
    outcome = _run(repo, model_server, [spec], events, feature=poly.TASK)

    assert outcome.status == "green", outcome.reason
    runs = _test_runs(events)
    assert (runs[0].phase, runs[0].passed, runs[0].failures) == ("red-1", 0, [test_id])
    assert (runs[1].phase, runs[1].passed, runs[1].failed) == ("iteration-1", 1, 0)
    assert runs[-1].scope == "full" and runs[-1].passed == 4


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["leap_test.py::LeapTest::test_nope", "leap_test.py -k nope"])
def test_a_test_id_that_names_no_test_stops_the_run_saying_so(spec, tmp_path, model_server):
    repo = _repo(tmp_path / "leap", {"leap.py": leap.STUB, "leap_test.py": leap.TESTS})
    model_server.script("pacer", leap.PLAN)
    model_server.script("maven", leap.CONTEXT)
    outcome = _run(repo, model_server, [spec], [])

    assert outcome.status == "failed"
    assert "no such test in that file" in outcome.reason and "nope" in outcome.reason
    assert not model_server.requests_for("builder")


def test_a_test_id_for_a_missing_file_or_in_bad_syntax_is_a_usage_error(tmp_path, model_server):
    repo = _repo(tmp_path / "leap", {"leap.py": leap.STUB, "leap_test.py": leap.TESTS})
    with pytest.raises(UsageError, match="no such file"):
        _run(repo, model_server, ["missing_test.py::test_x"], [])
    with pytest.raises(UsageError, match="unexpected '--verbose'"):
        _run(repo, model_server, ["leap_test.py --verbose"], [])
    with pytest.raises(UsageError, match="incomplete -k"):
        _run(repo, model_server, ["leap_test.py -k 'leap and'"], [])


# --- pieces: partial results of a killed run, the import graph, test ids ----------------------


@pytest.fixture(scope="module")
def py_env(tmp_path_factory):
    from council.toolchains import PythonToolchain

    root = _repo(tmp_path_factory.mktemp("seed") / "p", {"m.py": "X = 1\n"})
    cache = tmp_path_factory.getbasetemp() / "council-cache" / "envs"
    return PythonToolchain(), PythonToolchain().prepare(root, cache_dir=cache)


def test_a_run_killed_at_its_limit_returns_what_finished_and_names_what_was_running(
    tmp_path, py_env
):
    toolchain, env = py_env
    root = _repo(
        tmp_path / "p",
        {
            "tests/test_a.py": "def test_fast():\n    pass\n\n\ndef test_wrong():\n"
            "    assert 1 == 2\n",
            "tests/test_b.py": "import time\n\n\ndef test_hangs():\n    time.sleep(120)\n",
        },
    )
    report = toolchain.run_tests(root, env, timeout_s=5)

    assert report.timed_out and not report.green
    outcomes = {c.id: c.outcome for c in report.cases}
    assert outcomes["tests/test_a.py::test_fast"] == "passed"
    assert outcomes["tests/test_a.py::test_wrong"] == "failed"
    assert outcomes["tests/test_b.py::test_hangs"] == "error"
    assert report.running == ["tests/test_b.py::test_hangs"]
    assert (report.passed, report.failed, report.errors) == (1, 1, 1)
    assert "tests/test_b.py::test_hangs" in report.failure_summary()
    event = report.event("iteration-1")
    assert event.timed_out and event.running == ["tests/test_b.py::test_hangs"]


def test_import_graph_finds_tests_reached_directly_transitively_and_through_conftest(tmp_path):
    from council.toolchains import PythonToolchain

    root = _repo(
        tmp_path / "p",
        {
            "src/pkg/__init__.py": "",
            "src/pkg/core.py": "def f():\n    return 1\n",
            "src/pkg/api.py": "from .core import f\n",
            "src/pkg/other.py": "X = 1\n",
            "tests/test_api.py": "from pkg import api\n",
            "tests/test_core.py": "import pkg.core\n",
            "tests/test_other.py": "from pkg.other import X\n",
            "tests/fix/conftest.py": "from tests_helpers import helper\n",
            "tests/fix/test_uses_fixture.py": "def test_x():\n    pass\n",
            "tests_helpers.py": "from pkg.api import f as helper\n",
        },
    )
    affected = PythonToolchain().affected_tests(root, ["src/pkg/core.py"])
    assert affected == [
        "tests/fix/test_uses_fixture.py",
        "tests/test_api.py",
        "tests/test_core.py",
    ]
    assert PythonToolchain().affected_tests(root, ["src/pkg/other.py"]) == ["tests/test_other.py"]
    # A package's __init__ runs for every import of its modules.
    assert len(PythonToolchain().affected_tests(root, ["src/pkg/__init__.py"])) == 4


def test_java_references_reach_tests_through_other_classes(tmp_path):
    from council.toolchains.affected import affected_java_tests

    files = {
        "src/main/java/demo/Repo.java": "package demo;\nclass Repo {}\n",
        "src/main/java/demo/Service.java": "package demo;\nclass Service { Repo r; }\n",
        "src/main/java/demo/Clock.java": "package demo;\n// uses Repo only in a comment\n",
        "src/test/java/demo/ServiceTest.java": "package demo;\nclass ServiceTest { Service s; }\n",
        "src/test/java/demo/ClockTest.java": "package demo;\nclass ClockTest { Clock c; }\n",
    }
    root = _repo(tmp_path / "j", files)
    main = sorted(f for f in files if "/main/" in f)
    tests = sorted(f for f in files if "/test/" in f)
    found = affected_java_tests(root, ["src/main/java/demo/Repo.java"], main, tests)
    assert found == ["src/test/java/demo/ServiceTest.java"]


@pytest.mark.parametrize(
    ("spec", "case_id", "expected"),
    [
        ("t.py::test_a", "t.py::test_a", True),
        ("t.py::test_a", "t.py::test_a[1-2]", True),
        ("t.py::test_a", "t.py::test_ab", False),
        ("t.py::K", "t.py::K::test_a", True),
        ("t.py -k 'a and not b'", "t.py::K::test_a", True),
        ("t.py -k 'a and not b'", "t.py::K::test_ab", False),
        ("t.py -k '(x or K) and a'", "t.py::K::test_a", True),
        ("s.test.js::adds", "s.test.js::math > adds", True),
        ("s.test.js -t 'math'", "s.test.js::math > adds", True),
        ("s.test.js::adds", "other.test.js::adds", False),
        ("src/test/java/CalcTest.java#adds", "src/test/java/CalcTest.java::adds", True),
        ("src/test/java/CalcTest.java#adds", "src/test/java/CalcTest.java::adds(int)", True),
    ],
)
def test_test_ids_match_the_results_they_name(spec, case_id, expected):
    from council.toolchains.test_ids import parse_test_spec

    assert parse_test_spec(spec).matches(case_id) is expected


# --- bounded prompts ------------------------------------------------------------------------


def test_excerpt_keeps_the_head_and_the_named_blocks_and_marks_what_it_left_out():
    from council.context.budget import excerpt, fit_files
    from council.context.tokens import count_tokens

    body = "".join(
        f"    def test_case_{i}(self):\n        self.assertEqual(compute({i}), {i * 2})\n\n"
        for i in range(400)
    )
    head = "import unittest\n\nfrom calc import compute\n\n\n"
    text = f"{head}class CalcTest(unittest.TestCase):\n{body}"
    cut = excerpt(text, 600, ["test_case_321"])
    assert count_tokens(cut) <= 700
    assert cut.startswith("import unittest")
    assert "def test_case_321(self):\n        self.assertEqual(compute(321), 642)" in cut
    assert "left out" in cut and "def test_case_399" not in cut
    fitted = fit_files({"small.py": "X = 1\n", "big_test.py": text}, 800)
    assert fitted["small.py"] == "X = 1\n" and "left out" in fitted["big_test.py"]


def test_fit_prompt_shrinks_to_the_limit_or_says_it_cannot():
    from council.context.budget import PromptTooLarge, fit_prompt
    from council.context.tokens import count_tokens

    def render(facts):
        files = "\n".join(f"{p}\n{t}" for p, t in facts["files"].items())
        return [{"role": "user", "content": f"{facts['task']}\n{facts['map']}\n{files}"}]

    def count(messages):
        return sum(count_tokens(m["content"]) for m in messages)

    facts = {
        "task": "Fix it.",
        "map": "\n".join(f"module_{i}.py: def f_{i}()" for i in range(500)),
        "files": {f"f{i}.py": "\n".join(f"x_{j} = {j}" for j in range(300)) for i in range(5)},
    }
    assert count(render(facts)) > 10_000
    messages = fit_prompt(render, facts, 3000, count)
    assert count(messages) <= 3000 and messages[0]["content"].startswith("Fix it.")
    # A fixed part (the template itself) over the limit leaves nothing to cut.
    with pytest.raises(PromptTooLarge):
        fit_prompt(lambda f: [*render(f), {"role": "system", "content": "rule " * 4000}],
                   facts, 3000, count)  # fmt: skip


@pytest.mark.slow
def test_a_prompt_over_a_small_context_window_is_shrunk_before_it_is_sent(tmp_path, model_server):
    from council.gateway.router import litellm_module

    padding = "".join(
        f"    def test_padding_{i}(self):\n        self.assertTrue(leap_year is not None)\n\n"
        for i in range(600)
    )
    repo = _repo(
        tmp_path / "leap", {"leap.py": leap.STUB, "leap_test.py": leap.TESTS + "\n" + padding}
    )
    leap._script(model_server, leap.RIGHT)
    config = json.loads(cs.council_yaml(model_server))
    window = 4000
    for model in config["models"]:
        if model["model_name"] == "builder":
            model["model_info"]["max_input_tokens"] = window
    config["personas"]["builder"]["max_tokens"] = 500
    given = ["leap_test.py::LeapTest::test_year_divisible_by_400"]
    outcome = _run(repo, model_server, given, [], leap.INSTRUCTIONS, json.dumps(config))

    assert outcome.status == "green", outcome.reason
    sent = model_server.requests_for("builder")[0]["messages"]
    full_file = count_tokens_of(leap.TESTS + padding)
    assert full_file > 2 * window  # the whole test file alone would not fit
    assert litellm_module().token_counter(model="gpt-4o", messages=sent) <= window
    prompt = sent[-1]["content"]
    assert "def test_year_divisible_by_400(self):" in prompt and "left out" in prompt
    assert "def leap_year(year):" in prompt  # the code to change is there in full


def count_tokens_of(text: str) -> int:
    from council.gateway.router import litellm_module

    return litellm_module().token_counter(model="gpt-4o", text=text)


# --- the final gate: failures that were there before, and failures the change caused -----------


@pytest.mark.slow
def test_a_test_failing_before_the_change_too_does_not_block_the_final_gate(tmp_path, model_server):
    repo = _shop(tmp_path, model_server)
    (repo / "tests" / "test_flaky.py").write_text("def test_known_bad():\n    assert False\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "known bad")
    events: list = []
    outcome = _run(repo, model_server, ["tests/test_calc.py"], events)

    assert outcome.status == "green", outcome.reason
    runs = _test_runs(events)
    assert [e.phase for e in runs] == ["red-1", "iteration-1", "full-suite", "base-check"]
    assert runs[2].failures == ["tests/test_flaky.py::test_known_bad"]
    assert runs[3].failures == ["tests/test_flaky.py::test_known_bad"]  # on the base commit
    notes = [e.message for e in events if e.kind == "notice" and "base commit too" in e.message]
    assert notes and "tests/test_flaky.py::test_known_bad" in notes[0]
    # The worktree is back as the change left it.
    assert "a + b" in _git(repo, "show", f"{outcome.branch}:calc.py")


@pytest.mark.slow
def test_a_test_the_change_broke_outside_the_selection_stops_the_run_at_the_final_gate(
    tmp_path, model_server
):
    files = {
        **SHOP,
        "rate.txt": "2\n",
        "tests/test_rate.py": "from pathlib import Path\n\n\ndef test_rate():\n"
        "    assert Path('rate.txt').read_text().strip() == '2'\n",
    }
    model_server.script("pacer", SHOP_PLAN)
    model_server.script("maven", json.dumps({"files": ["calc.py"], "notes": ""}))
    # The fix also edits a data file no import reaches: the loop cannot see what it breaks.
    model_server.script("builder", SHOP_FIX + "\nrate.txt\n```\n3\n```\n")
    repo = _repo(tmp_path / "shop", files)
    events: list = []
    outcome = _run(repo, model_server, ["tests/test_calc.py"], events)

    assert outcome.status == "failed"
    assert "full test suite does not pass" in outcome.reason
    assert "tests/test_rate.py::test_rate" in outcome.reason
    runs = _test_runs(events)
    assert [e.phase for e in runs] == ["red-1", "iteration-1", "full-suite", "base-check"]
    assert runs[3].failures == []  # it passed before the change
